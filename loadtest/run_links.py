"""The server's memory while one session opens the attacker's links one after the other (issue #16).

    .venv/bin/python -m loadtest.run_links --links 9

Starts `streamlit run app.py`, draws once (the default classifier and refusal rule), then opens each of
the first --links links of ``attacker.all_settings()`` (every method and metric at 60,000 training
digits first, k, weights and tie rule varied) and draws a digit on it, printing after each the seconds
it took, the prediction and the server process's RSS and VmHWM (its peak RSS since it started: a
moment's spike that an RSS sampled every 0.5 s misses is in it).
"""
from __future__ import annotations

import argparse
import asyncio
import time

from . import payloads
from .attacker import all_settings
from .protocol import Session
from .server import Server, read_memory


async def draw_on(url: str, query: str, png: bytes):
    async with Session(url, query=query) as s:
        return await s.draw(png)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--links", type=int, default=9, help="how many of the attacker's links (default %(default)s)")
    args = p.parse_args(argv)
    png = payloads.drawings(1)[0][0]
    with Server("app.py") as srv:
        asyncio.run(draw_on(srv.url, "", png))
        mem = read_memory(srv.pid)
        print(f"{'warm (the default drawn once)':64s}          RSS {mem['VmRSS']:5.0f} MB  VmHWM {mem['VmHWM']:5.0f} MB")
        for query in all_settings()[: args.links]:
            t = time.perf_counter()
            r = asyncio.run(draw_on(srv.url, query, png))
            mem = read_memory(srv.pid)
            print(f"{query[:64]:64s} {r.prediction!s:>2} {time.perf_counter() - t:5.1f} s  RSS {mem['VmRSS']:5.0f} MB  "
                  f"VmHWM {mem['VmHWM']:5.0f} MB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
