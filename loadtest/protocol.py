"""A Streamlit client at the WebSocket level: what a browser sends, without the browser.

What a browser does (recorded with ``python -m loadtest.capture``):

1. It GETs ``/_stcore/health`` (which sets the ``_streamlit_xsrf`` cookie),
   then opens ``ws://HOST/_stcore/stream`` with ``Sec-WebSocket-Protocol:
   streamlit, <xsrf token>`` (the token is optional: without it the server
   only skips the auth cookie) and an ``Origin`` of the same host.
2. It sends a ``BackMsg`` with ``rerun_script`` (the URL's query string,
   no widget states, the page's name from the URL path) and reads
   ``ForwardMsg``\\ s until ``script_finished``; the ``navigation`` message
   names each page's ``page_script_hash``.
3. When a stroke ends, the canvas component sets its widget value and the
   browser sends another ``rerun_script`` with the page's hash and the widget
   states; the canvas' value is a JSON string
   ``{"drawing": {"raw": {...fabric.js objects...}, "data": "data:image/png;base64,..."}}``
   (the drawing as a 280 x 280 RGBA PNG, which the server decodes into
   ``image_data``).  The server streams the page's deltas (among them the
   ``Prediction`` metric) and then ``script_finished``.  A widget inside an
   ``st.fragment`` (the Draw page's canvas) reruns only that fragment: its
   deltas carry the fragment's id, and the browser names it in the rerun
   (``fragment_id``); the run ends with ``script_finished`` 3.
4. An upload: ``file_urls_request`` -> ``file_urls_response`` (an upload URL),
   an HTTP PUT of the file (multipart, with the XSRF cookie and header), then
   a rerun whose file uploader state names the file.

:class:`Session` does exactly that, so a load test exercises the server's
real work (decoding the PNG, preprocessing, the neighbour search, the vote,
rendering the page) and none of a browser's.
"""
from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

ALERT_KINDS = {1: "error", 2: "warning", 3: "info", 4: "success"}


class ProtocolError(RuntimeError):
    """The server did something a browser would not expect (closed, timed out, no such widget)."""


@dataclass
class RunResult:
    """What one script run showed."""

    started: float
    metrics: dict = field(default_factory=dict)  # label -> body
    alerts: list = field(default_factory=list)  # (kind, body)
    exceptions: list = field(default_factory=list)  # messages of st.exception / uncaught errors
    widgets: list = field(default_factory=list)  # names of the widgets this run drew ("canvas", keys)
    html: list = field(default_factory=list)  # bodies of the st.html elements
    t_metric: float | None = None  # s from sending the rerun to the Prediction metric's delta
    t_done: float | None = None  # s to script_finished
    finish: int | None = None  # ScriptFinishedStatus
    n_messages: int = 0

    @property
    def prediction(self) -> str | None:
        return self.metrics.get("Prediction")

    def texts(self, kind: str) -> list[str]:
        return [b for k, b in self.alerts if k == kind]


def canvas_value(png: bytes) -> str:
    """The canvas widget's JSON value for a drawing given as PNG bytes (as the component sends it)."""
    data = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    raw = {"version": "7.4.0", "objects": [], "background": "#000000"}
    return json.dumps({"drawing": {"raw": raw, "data": data}, "backgroundFit": None})


PRESENT_READY = "present_ready_button"  # pages/neighbour_vote.py: pressed by the page once its large type is in


class Session:
    """One browser tab's conversation with the server.

    ``async with Session(url, "draw", query="k=5") as s: r = await s.draw(png)``
    """

    def __init__(self, base_url: str, page: str = "", query: str = "", timeout: float = 60.0):
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"load tests only talk to this machine; got {base_url}")
        self.base_url = base_url.rstrip("/")
        self.ws_url = f"ws://{parsed.netloc}/_stcore/stream"
        self.page = page
        self.query = query
        self.timeout = timeout
        self.page_hash = ""
        self.session_id = ""
        self.widget_ids: dict[str, str] = {}  # "canvas", "file_uploader", widget keys -> id
        self.widget_fragments: dict[str, str] = {}  # the same names -> the id of the fragment drawing them
        self.auto_reruns: dict[str, float] = {}  # fragment id -> seconds: st.fragment(run_every=...) (the
        # browser reruns such a fragment on that timer: a load test does it with rerun([], fragment_id))
        self.xsrf = ""
        self.cookies: dict[str, str] = {}  # name -> value, kept across reconnects like a browser's
        self._ws = None
        self._request_id = 0

    # ------------------------------------------------------------------ connection
    async def __aenter__(self) -> "Session":
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def connect(self, wait: float | None = None) -> RunResult:
        """Open the socket the way the browser does and run the page once (the first load; see
        :meth:`rerun` for `wait`)."""
        import websockets

        await asyncio.to_thread(self._health)
        self.xsrf = self.cookies.get("_streamlit_xsrf", "")
        protocols = ["streamlit"] + ([self.xsrf] if self.xsrf else [])
        self._ws = await websockets.connect(
            self.ws_url, subprotocols=protocols, origin=self.base_url, additional_headers=self._cookie_header(),
            max_size=None, compression=None, open_timeout=self.timeout, ping_interval=None,
        )
        self._keep_cookies(self._ws.response.headers.get_all("Set-Cookie"))
        first = await self.rerun([], wait=wait)
        if PRESENT_READY in self.widget_ids:  # a present=1 link's first run: the page's script presses it
            return await self.press(PRESENT_READY, wait=wait)
        return first

    def _health(self) -> None:
        """GET /_stcore/health like the browser does first: the server sets the _streamlit_xsrf cookie
        there (and nginx in front of several processes its route cookie: scripts/serve.sh)."""
        req = urllib.request.Request(self.base_url + "/_stcore/health", headers=self._cookie_header())
        with urllib.request.urlopen(req, timeout=self.timeout) as r:
            self._keep_cookies(r.headers.get_all("Set-Cookie"))

    def _keep_cookies(self, headers) -> None:
        for header in headers or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]

    def _cookie_header(self) -> dict:
        """The cookies this tab holds, as a browser sends them with every request."""
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
            self._ws = None

    # ----------------------------------------------------------------------- runs
    def _context(self) -> dict:
        return {"timezone": "UTC", "timezone_offset": 0, "locale": "en-US",
                "url": f"{self.base_url}/{self.page}", "is_embedded": False, "color_scheme": "light"}

    async def rerun(self, widgets: list[WidgetState], fragment_id: str = "", *,
                    wait: float | None = None) -> RunResult:
        """Send a rerun with these widget states (of the fragment `fragment_id` only, if given);
        read until the run finishes.

        With `wait`, stop reading after `wait` seconds even if the run goes on (a user who looks
        at the page for a while and leaves): the result is what arrived (``finish`` None), and the
        session should be closed then, since the rest of the run's messages are still to come.
        """
        if self._ws is None:
            raise ProtocolError("not connected")
        msg = BackMsg()
        rs = msg.rerun_script
        rs.query_string = self.query
        rs.page_script_hash = self.page_hash
        if not self.page_hash:
            rs.page_name = self.page
        rs.widget_states.widgets.extend(widgets)
        rs.fragment_id = fragment_id
        for k, v in self._context().items():
            setattr(rs.context_info, k, v)
        result = RunResult(started=time.perf_counter())
        await self._send(msg)
        if wait is None:
            await self._read_run(result)
        else:
            try:
                await asyncio.wait_for(self._read_run(result), timeout=wait)
            except asyncio.TimeoutError:
                pass  # still running: the caller leaves
        return result

    async def _send(self, msg: BackMsg) -> None:
        import websockets

        try:
            await self._ws.send(msg.SerializeToString())
        except websockets.ConnectionClosed as exc:
            raise ProtocolError(f"the server closed the connection ({exc})") from None

    async def _recv(self) -> ForwardMsg:
        import websockets

        try:
            data = await asyncio.wait_for(self._ws.recv(), timeout=self.timeout)
        except asyncio.TimeoutError:
            raise ProtocolError(f"no message from the server for {self.timeout} s") from None
        except websockets.ConnectionClosed as exc:
            raise ProtocolError(f"the server closed the connection ({exc})") from None
        if isinstance(data, str):
            raise ProtocolError("the server sent a text frame")
        m = ForwardMsg()
        m.ParseFromString(data)
        return m

    async def _read_run(self, result: RunResult) -> None:
        while True:
            m = await self._recv()
            result.n_messages += 1
            kind = m.WhichOneof("type")
            if kind == "new_session":
                self.session_id = m.new_session.initialize.session_id or self.session_id
            elif kind == "navigation":
                self.page_hash = m.navigation.page_script_hash
            elif kind == "auto_rerun":
                self.auto_reruns[m.auto_rerun.fragment_id] = m.auto_rerun.interval
            elif kind == "page_info_changed":
                self.query = m.page_info_changed.query_string
            elif kind == "delta" and m.delta.WhichOneof("type") == "new_element":
                self._element(m.delta.new_element, result, m.delta.fragment_id)
            elif kind == "script_finished":
                result.finish = m.script_finished
                result.t_done = time.perf_counter() - result.started
                # 0: finished, 3: fragment finished; 2 (FINISHED_EARLY_FOR_RERUN) is followed by a new run
                if m.script_finished != 2:
                    return

    def _element(self, el, result: RunResult, fragment_id: str = "") -> None:
        what = el.WhichOneof("type")
        if what == "metric":
            result.metrics[el.metric.label] = el.metric.body
            if el.metric.label == "Prediction" and result.t_metric is None:
                result.t_metric = time.perf_counter() - result.started
        elif what == "alert":
            result.alerts.append((ALERT_KINDS.get(el.alert.format, str(el.alert.format)), el.alert.body))
        elif what == "html":
            result.html.append(el.html.body)
        elif what == "exception":
            result.exceptions.append(f"{el.exception.type}: {el.exception.message}")
        elif what == "bidi_component" and "drawable_canvas" in el.bidi_component.component_name:
            self._saw_widget("canvas", el.bidi_component.id, fragment_id, result)
        elif what == "file_uploader":
            self._saw_widget("file_uploader", el.file_uploader.id, fragment_id, result)
        else:
            inner = getattr(el, what, None) if what else None
            wid = getattr(inner, "id", "") if inner is not None else ""
            if isinstance(wid, str) and wid.startswith("$$ID-"):
                self._saw_widget(wid.rsplit("-", 1)[-1], wid, fragment_id, result)

    def _saw_widget(self, name: str, wid: str, fragment_id: str, result: RunResult) -> None:
        result.widgets.append(name)
        self.widget_ids[name] = wid
        self.widget_fragments[name] = fragment_id

    # -------------------------------------------------------------------- actions
    def _widget(self, name: str) -> str:
        try:
            return self.widget_ids[name]
        except KeyError:
            raise ProtocolError(f"the page shows no {name} widget (seen: {sorted(self.widget_ids)})") from None

    async def draw(self, png: bytes | None = None, *, value: str | None = None) -> RunResult:
        """A stroke ends: the canvas sends this drawing (PNG bytes) or a raw JSON `value`."""
        w = WidgetState(id=self._widget("canvas"))
        w.json_value = value if value is not None else canvas_value(png)
        return await self.rerun([w], self.widget_fragments.get("canvas", ""))

    async def set_widget(self, key: str, **value) -> RunResult:
        """Change a widget by its key, e.g. set_widget("vote_k", double_array_value=[7])."""
        w = WidgetState(id=self._widget(key))
        (field_name, v), = value.items()
        if field_name.endswith("_array_value"):
            getattr(w, field_name).data.extend(v)
        else:
            setattr(w, field_name, v)
        return await self.rerun([w], self.widget_fragments.get(key, ""))

    async def press(self, key: str, wait: float | None = None) -> RunResult:
        """Click the button with this key (a trigger value, as the browser sends it)."""
        w = WidgetState(id=self._widget(key))
        w.trigger_value = True
        return await self.rerun([w], self.widget_fragments.get(key, ""), wait=wait)

    async def upload(self, data: bytes, name: str = "digit.png", mime: str = "image/png") -> RunResult:
        """Upload a file into the page's file uploader, the way the browser does."""
        uploader = self._widget("file_uploader")
        self._request_id += 1
        req = BackMsg()
        req.file_urls_request.request_id = str(self._request_id)
        req.file_urls_request.file_names.append(name)
        req.file_urls_request.session_id = self.session_id
        await self._send(req)
        while True:
            m = await self._recv()
            if m.WhichOneof("type") == "file_urls_response":
                break
        resp = m.file_urls_response
        if resp.error_msg or not resp.file_urls:
            raise ProtocolError(f"upload refused: {resp.error_msg or 'no URL'}")
        urls = resp.file_urls[0]
        await asyncio.to_thread(self._put, urls.upload_url, data, name, mime)
        w = WidgetState(id=uploader)
        info = w.file_uploader_state_value.uploaded_file_info.add()
        info.file_id, info.name, info.size = urls.file_id, name, len(data)
        info.file_urls.CopyFrom(urls)
        return await self.rerun([w], self.widget_fragments.get("file_uploader", ""))

    async def remove_upload(self) -> RunResult:
        """Remove the uploaded file, as the ✕ next to its name does."""
        w = WidgetState(id=self._widget("file_uploader"))
        w.file_uploader_state_value.SetInParent()
        return await self.rerun([w], self.widget_fragments.get("file_uploader", ""))

    def _put(self, url: str, data: bytes, name: str, mime: str) -> None:
        if url.startswith("/"):
            url = self.base_url + url
        if urllib.parse.urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ProtocolError(f"refusing to upload anywhere but this machine: {url}")
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                f"Content-Type: {mime}\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        if self.xsrf:
            headers |= {"X-Xsrftoken": self.xsrf}
        headers |= self._cookie_header()
        req = urllib.request.Request(url, data=body, method="PUT", headers=headers)
        with urllib.request.urlopen(req, timeout=self.timeout) as r:
            if r.status not in (200, 204):
                raise ProtocolError(f"upload PUT answered {r.status}")
