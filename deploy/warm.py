"""Open one page on a freshly started Streamlit server, headless, so that its process is warm.

    python -m deploy.warm [STREAMLIT RUN OPTIONS ...]     # scripts/run_app.sh runs it beside the server

A Streamlit process imports the app's modules (knn_core with scikit-learn, SciPy, pandas, OpenCV,
Plotly; 2-8 s on these 2 cores) on the first script run, not when it starts, and the first visitor
looks at a blank page meanwhile.  This waits until the server answers /_stcore/health, then does what a
browser does on opening the app (one WebSocket, one `rerun_script`, read until `script_finished`,
as loadtest/protocol.py records), so that the first student's page is the server's second run.  It
takes the port and address from the same options as `streamlit run` (default 8501) and only talks to
this machine.
"""
from __future__ import annotations

import asyncio
import os
import sys
import time
import urllib.request

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

SCRIPT_FINISHED_EARLY_FOR_RERUN = 2  # another run follows


def server_url(argv: list[str]) -> str:
    """The local URL of the server `streamlit run app.py ARGV` starts."""
    options = {"--server.port": os.environ.get("STREAMLIT_SERVER_PORT", "8501"), "--server.address": "127.0.0.1"}
    for i, arg in enumerate(argv):
        name, eq, value = arg.partition("=")
        if name in options:
            options[name] = value if eq else (argv[i + 1] if i + 1 < len(argv) else options[name])
    host = options["--server.address"]
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::", "localhost") else host
    return f"http://{host}:{int(options['--server.port'])}"


def wait_healthy(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer /_stcore/health within {timeout:.0f} s")
        time.sleep(0.2)


async def open_page(url: str, timeout: float) -> None:
    """One first page load over the WebSocket, read to its end (the app's default page, no settings)."""
    import websockets  # Streamlit's own dependency

    ws_url = "ws://" + url.split("://", 1)[1] + "/_stcore/stream"
    async with websockets.connect(ws_url, subprotocols=["streamlit"], origin=url, max_size=None,
                                  open_timeout=timeout, ping_interval=None) as ws:
        msg = BackMsg()
        msg.rerun_script.query_string = ""
        msg.rerun_script.page_name = ""
        await ws.send(msg.SerializeToString())
        while True:
            m = ForwardMsg()
            m.ParseFromString(await asyncio.wait_for(ws.recv(), timeout))
            if m.WhichOneof("type") == "script_finished" and m.script_finished != SCRIPT_FINISHED_EARLY_FOR_RERUN:
                return


def main(argv: list[str] | None = None, timeout: float = 180.0) -> int:
    url = server_url(sys.argv[1:] if argv is None else argv)
    try:
        wait_healthy(url, timeout)
        t0 = time.monotonic()
        asyncio.run(open_page(url, timeout))
    except Exception as exc:  # a warm-up that failed costs the first visitor a wait, nothing more
        print(f"kNN Digit Lab: the warm-up page did not load ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    print(f"  kNN Digit Lab is ready (the first page's run took {time.monotonic() - t0:.1f} s): {url}",
          file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
