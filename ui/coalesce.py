"""A session's messages to the browser handed to the event loop in batches, not one wake-up each.

Streamlit's script thread hands every element it sends to the server's event loop with its own
``call_soon_threadsafe``: a write to the loop's wake-up pipe, which lets go of the GIL and must take it
back, and a wake-up of the loop's thread, which needs the GIL too.  A stroke sends a dozen elements,
so with thirty students per process most of a script thread's waiting was at that pipe
(py-spy under loadtest/run_serve.py).  Here the callbacks of one session queue up in order and one
wake-up runs all that are waiting; when the loop keeps up, that is still one wake-up per element.

Private Streamlit API (``AppSession._call_soon_on_event_loop``), pinned in requirements.txt;
tests/test_coalesce.py fails if the hook is gone.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

_LOGGER = logging.getLogger(__name__)


class CallbackBatch:
    """Callbacks for one event loop, run there in the order given, any number per wake-up."""

    def __init__(self, loop) -> None:
        self._loop = loop
        self._waiting: deque = deque()
        self._lock = threading.Lock()
        self._scheduled = False

    def call_soon(self, callback) -> None:
        """Like ``loop.call_soon_threadsafe(callback)`` (RuntimeError once the loop is closed)."""
        with self._lock:
            self._waiting.append(callback)
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._run_waiting)
        except RuntimeError:
            with self._lock:
                self._scheduled = False
                self._waiting.clear()
            raise

    def _run_waiting(self) -> None:
        with self._lock:
            batch = list(self._waiting)
            self._waiting.clear()
        for callback in batch:
            try:
                callback()
            except Exception:  # as the event loop does with a failing callback: log it, go on
                _LOGGER.exception("Exception in a callback on the event loop")
        with self._lock:
            if not self._waiting:
                self._scheduled = False
                return
        self._loop.call_soon(self._run_waiting)  # more came meanwhile: after the loop's other work (no pipe)


_BATCHES_LOCK = threading.Lock()


def install() -> None:
    """Route every AppSession's script-runner events through a CallbackBatch, once per process."""
    from streamlit.runtime.app_session import AppSession

    original = AppSession._call_soon_on_event_loop
    if getattr(original, "_knn_coalesced", False):
        return

    def _call_soon_on_event_loop(self, callback) -> None:
        with _BATCHES_LOCK:
            batch = self.__dict__.get("_knn_batch")
            if batch is None or batch._loop is not self._event_loop:
                batch = self.__dict__["_knn_batch"] = CallbackBatch(self._event_loop)
        try:
            batch.call_soon(callback)
        except RuntimeError:
            if not self._event_loop.is_closed():
                raise
            _LOGGER.debug("Dropped event-loop callback", exc_info=True)

    _call_soon_on_event_loop._knn_coalesced = True  # type: ignore[attr-defined]
    AppSession._call_soon_on_event_loop = _call_soon_on_event_loop
