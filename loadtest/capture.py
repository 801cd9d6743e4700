"""Record what a real browser sends to the server when a stroke ends, decoded.

    .venv/bin/python -m loadtest.capture [--page draw]

Starts `streamlit run app.py` on a free local port, opens the page in
headless Chromium, draws one stroke and prints the WebSocket handshake
(Sec-WebSocket-Protocol) and every frame in both directions, decoded with
Streamlit's own protobufs (BackMsg from the browser, ForwardMsg from the
server).  This is how loadtest/protocol.py knows what to replay: after a
stroke the browser sends one BackMsg ``rerun_script`` whose widget states
hold the canvas value as a JSON string
``{"drawing": {"raw": <fabric.js objects>, "data": "data:image/png;base64,..."}}``
(a 280 x 280 RGBA PNG); the server answers with deltas, one of them the
``Prediction`` metric, then ``script_finished``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time

from .browser import CHROMIUM_ARGS
from .server import Server


def summarise_back(payload: bytes) -> str:
    from streamlit.proto.BackMsg_pb2 import BackMsg

    m = BackMsg()
    m.ParseFromString(payload)
    kind = m.WhichOneof("type")
    if kind != "rerun_script":
        return f"{kind}"
    rs = m.rerun_script
    parts = [f"rerun_script query={rs.query_string!r} page_script_hash={rs.page_script_hash!r}"
             + (f" fragment_id={rs.fragment_id!r}" if rs.fragment_id else "")]
    for w in rs.widget_states.widgets:
        which = w.WhichOneof("value")
        value = getattr(w, which) if which else None
        if which == "json_value":
            v = json.loads(value)
            data = ((v.get("drawing") or {}).get("data") or "")
            value = f"json: drawing.raw.objects={len(((v.get('drawing') or {}).get('raw') or {}).get('objects', []))}, " \
                    f"drawing.data={data[:30]!r}... ({len(data)} chars)"
        parts.append(f"    widget {w.id}: {which} = {str(value)[:120]}")
    return "\n".join(parts)


def summarise_forward(payload: bytes) -> str:
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    m = ForwardMsg()
    m.ParseFromString(payload)
    kind = m.WhichOneof("type")
    if kind == "delta":
        d = m.delta
        what = d.WhichOneof("type")
        fragment = f" (fragment {d.fragment_id[:8]})" if d.fragment_id else ""
        if what == "new_element":
            el = d.new_element.WhichOneof("type")
            extra = ""
            if el == "metric":
                extra = f" {d.new_element.metric.label}={d.new_element.metric.body}"
            elif el == "alert":
                extra = f" {d.new_element.alert.body[:80]!r}"
            return f"delta new_element {el}{extra}{fragment} at {list(m.metadata.delta_path)}"
        return f"delta {what} at {list(m.metadata.delta_path)}{fragment}"
    if kind == "script_finished":
        return f"script_finished {m.script_finished}"
    return kind


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Record and decode the WebSocket frames of one stroke.")
    p.add_argument("--path", default="/", help="page path and query, e.g. /neighbour_vote?k=7")
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    events: list = []
    with Server("app.py") as srv, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.on("Network.webSocketWillSendHandshakeRequest",
               lambda e: events.append(("handshake", e["request"]["headers"], time.monotonic())))
        cdp.on("Network.webSocketHandshakeResponseReceived",
               lambda e: events.append(("handshake-response", e["response"]["headers"], time.monotonic())))

        def on_ws(ws):
            ws.on("framesent", lambda b: events.append(("sent", b, time.monotonic())))
            ws.on("framereceived", lambda b: events.append(("recv", b, time.monotonic())))

        page.on("websocket", on_ws)
        page.goto(srv.url + args.path)
        canvas = page.locator("canvas.upper-canvas >> visible=true")
        canvas.wait_for()
        page.wait_for_timeout(1500)
        events.append(("mark", "stroke ends", time.monotonic()))
        box = canvas.bounding_box()
        page.mouse.move(box["x"] + 140, box["y"] + 45)
        page.mouse.down()
        page.mouse.move(box["x"] + 140, box["y"] + 235, steps=6)
        page.mouse.up()
        page.locator('[data-testid="stMetricValue"]').first.wait_for()
        page.wait_for_timeout(1000)
        browser.close()

    t0 = None
    for kind, payload, t in events:
        if kind.startswith("handshake"):
            shown = {k: v for k, v in payload.items()
                     if k.lower() in ("sec-websocket-protocol", "sec-websocket-extensions", "origin", "cookie")}
            print(f"{kind.upper()} {json.dumps(shown)}")
        elif kind == "mark":
            t0 = t
            print(f"---- {payload}")
        elif isinstance(payload, str):
            print(f"{kind} text frame {payload[:80]!r}")
        else:
            dt = f"{(t - t0) * 1000:7.0f} ms" if t0 else "        "
            text = summarise_back(payload) if kind == "sent" else summarise_forward(payload)
            print(f"{dt} {'->' if kind == 'sent' else '<-'} {len(payload):6d} B {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
