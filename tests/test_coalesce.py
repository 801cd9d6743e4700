"""A session's messages reach the event loop in batches (ui/coalesce.py): in order, all of them, fewer wake-ups."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from ui import coalesce


@pytest.fixture
def loop():
    """An event loop running in a thread of its own, as Streamlit's server runs it."""
    loop = asyncio.new_event_loop()
    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    t.join(5)
    loop.close()


def _counting_wake_ups(loop, monkeypatch) -> list:
    wake_ups = []
    original = loop.call_soon_threadsafe

    def call_soon_threadsafe(callback, *args):
        wake_ups.append(callback)
        return original(callback, *args)

    monkeypatch.setattr(loop, "call_soon_threadsafe", call_soon_threadsafe)
    return wake_ups


def _on_loop(loop, fn):
    done = threading.Event()
    loop.call_soon_threadsafe(lambda: (fn(), done.set()))
    assert done.wait(5)


def test_callbacks_run_in_order_and_those_waiting_share_one_wake_up(loop, monkeypatch):
    batch = coalesce.CallbackBatch(loop)
    busy, go_on = threading.Event(), threading.Event()
    loop.call_soon_threadsafe(lambda: (busy.set(), go_on.wait(5)))  # the loop busy with another session
    assert busy.wait(5)
    wake_ups = _counting_wake_ups(loop, monkeypatch)
    seen = []
    for i in range(100):
        batch.call_soon(lambda i=i: seen.append(i))
    assert len(wake_ups) == 1  # a hundred messages, one wake-up
    go_on.set()
    _on_loop(loop, lambda: None)
    assert seen == list(range(100))
    for i in range(100, 103):  # the loop idle again: each message wakes it, as before
        batch.call_soon(lambda i=i: seen.append(i))
        _on_loop(loop, lambda: None)
    ours = [w for w in wake_ups if getattr(w, "__name__", "") == "_run_waiting"]
    assert seen == list(range(103)) and len(ours) == 1 + 3


def test_many_threads_lose_nothing_and_keep_each_threads_order(loop):
    batch = coalesce.CallbackBatch(loop)
    seen: list = []

    def sender(name):
        for i in range(500):
            batch.call_soon(lambda i=i: seen.append((name, i)))

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    _on_loop(loop, lambda: None)
    for _ in range(50):  # what came while a batch ran is run right after it
        if len(seen) == 2000:
            break
        _on_loop(loop, lambda: None)
    assert len(seen) == 2000
    for n in range(4):
        assert [i for name, i in seen if name == n] == list(range(500))


def test_a_failing_callback_is_logged_and_the_others_still_run(loop, caplog):
    batch = coalesce.CallbackBatch(loop)
    seen = []
    busy, go_on = threading.Event(), threading.Event()
    loop.call_soon_threadsafe(lambda: (busy.set(), go_on.wait(5)))
    assert busy.wait(5)
    batch.call_soon(lambda: seen.append(1))
    batch.call_soon(lambda: 1 / 0)
    batch.call_soon(lambda: seen.append(3))
    with caplog.at_level(logging.ERROR, logger=coalesce.__name__):
        go_on.set()
        _on_loop(loop, lambda: None)
    assert seen == [1, 3]
    assert any("ZeroDivisionError" in (r.exc_text or "") for r in caplog.records)


def test_a_closed_loop_raises_as_call_soon_threadsafe_does_and_forgets_the_callback():
    loop = asyncio.new_event_loop()
    loop.close()
    batch = coalesce.CallbackBatch(loop)
    with pytest.raises(RuntimeError, match="closed"):
        batch.call_soon(lambda: None)
    assert not batch._waiting and not batch._scheduled


def test_the_hook_is_installed_on_streamlits_app_session():
    from streamlit.runtime.app_session import AppSession

    assert hasattr(AppSession, "_call_soon_on_event_loop")  # the private API it replaces is still there
    coalesce.install()
    coalesce.install()  # once, however often called
    hook = AppSession._call_soon_on_event_loop
    assert getattr(hook, "_knn_coalesced", False)

    class Session:  # the two attributes the hook uses
        def __init__(self, loop):
            self._event_loop = loop

    loop = asyncio.new_event_loop()
    try:
        seen = []
        session = Session(loop)
        hook(session, lambda: seen.append("a"))
        hook(session, lambda: seen.append("b"))
        loop.call_soon(loop.stop)
        loop.run_forever()
        assert seen == ["a", "b"]
    finally:
        loop.close()
    hook(session, lambda: seen.append("late"))  # a closed loop (shutdown): dropped, not raised
    assert seen == ["a", "b"]
