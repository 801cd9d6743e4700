"""A student's browser, as a separate process: send N drawings to a room, print each acknowledged id.

python tests/room_sender.py URL CODE N NAME   (PYTHONPATH=the checkout). The durability test kills it
with SIGKILL mid-run; the concurrency test runs several at once. Each line "ack <id> <send_id>" is
printed (and flushed) only after `send` returned, i.e. after the commit.
"""

import sys

import numpy as np

from knn_core.room import open_store


def main(url: str, code: str, n: int, name: str) -> None:
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    with open_store(url, migrate_schema=False) as store:
        for i in range(n):
            pixels = rng.integers(0, 256, (28, 28), dtype=np.uint8)
            send_id = f"{name}-{i}"
            d = store.send(code, pixels, label=i % 10, predicted=(i * 7) % 10, student=name, send_id=send_id)
            print(f"ack {d.id} {send_id}", flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
