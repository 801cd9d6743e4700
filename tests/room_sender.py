"""A student's browser, as a separate process: send N drawings to a room, print each acknowledged id.

python tests/room_sender.py URL CODE N NAME   (PYTHONPATH=the checkout). CODE "-" means: open the
store (migrating it when needed), print "ready", then read the code from stdin, so that several
senders can start together on an empty database. Each line "ack <id> <send_id>" is printed (and
flushed) only after `send` returned, i.e. after the commit. The durability test kills it mid-run.
"""

import sys
import zlib

import numpy as np

from knn_core.room import open_store


def main(url: str, code: str, n: int, name: str) -> None:
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    with open_store(url) as store:
        if code == "-":
            print("ready", flush=True)
            code = sys.stdin.readline().strip()
        for i in range(n):
            pixels = rng.integers(1, 256, (28, 28), dtype=np.uint8)
            send_id = f"{name}-{i}"
            d = store.send(code, pixels, label=i % 10, predicted=(i * 7) % 10, student=name, send_id=send_id)
            print(f"ack {d.id} {send_id}", flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
