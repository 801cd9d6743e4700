"""Strokes first (ui/fair.py): a long script run waits at its checkpoints while short runs are under way."""

from __future__ import annotations

import threading
import time

import pytest
from streamlit.testing.v1 import AppTest

from ui import fair


def _burn(seconds: float) -> None:
    t0 = time.thread_time()
    while time.thread_time() - t0 < seconds:
        sum(range(1000))


@pytest.fixture(autouse=True)
def clean_thread():
    yield
    fair.run_ended()


def test_a_long_run_waits_for_a_short_one_and_a_short_one_never_waits():
    long_started, short_started, short_done = threading.Event(), threading.Event(), threading.Event()
    waited = {}

    def long_run():
        fair.run_started()
        _burn(fair.LONG_RUN_CPU_S * 1.5)  # past a stroke's worth: long from its next checkpoint on
        long_started.set()
        short_started.wait(5)
        t0 = time.perf_counter()
        fair.checkpoint()
        waited["long"] = time.perf_counter() - t0
        waited["short_done_first"] = short_done.is_set()
        fair.run_ended()

    def short_run():
        fair.run_started()
        short_started.set()
        t0 = time.perf_counter()
        fair.checkpoint()  # a short run goes straight on
        waited["short"] = time.perf_counter() - t0
        time.sleep(0.1)  # the stroke's work
        short_done.set()
        fair.run_ended()

    a = threading.Thread(target=long_run)
    a.start()
    assert long_started.wait(5)
    b = threading.Thread(target=short_run)
    b.start()
    a.join(5), b.join(5)
    assert waited["short"] < 0.02
    assert waited["short_done_first"] and 0.05 < waited["long"] <= fair.MAX_WAIT_S + 0.1
    assert fair.short_running() == 0


def test_a_long_run_alone_never_waits_and_waits_are_bounded():
    fair.run_started()
    _burn(fair.LONG_RUN_CPU_S * 1.5)
    t0 = time.perf_counter()
    for _ in range(20):
        fair.checkpoint()
    assert time.perf_counter() - t0 < 0.05  # no short run under way
    fair.run_ended()

    # A short run that never ends (a stuck stroke) holds a long run up MAX_WAIT_S per checkpoint,
    # MAX_WAIT_PER_RUN_S in all.
    stuck, release = threading.Event(), threading.Event()

    def stuck_short():
        fair.run_started()
        stuck.set()
        release.wait(30)
        fair.run_ended()

    t = threading.Thread(target=stuck_short)
    t.start()
    stuck.wait(5)
    try:
        fair.run_started()
        _burn(fair.LONG_RUN_CPU_S * 1.5)
        t0 = time.perf_counter()
        fair.checkpoint()
        one = time.perf_counter() - t0
        while time.perf_counter() - t0 < fair.MAX_WAIT_PER_RUN_S + 1:
            t1 = time.perf_counter()
            fair.checkpoint()
            if time.perf_counter() - t1 < 0.01:
                break
        total = time.perf_counter() - t0
        fair.run_ended()
    finally:
        release.set()
        t.join(5)
    assert fair.MAX_WAIT_S * 0.9 <= one <= fair.MAX_WAIT_S + 0.1
    assert fair.MAX_WAIT_PER_RUN_S * 0.9 <= total <= fair.MAX_WAIT_PER_RUN_S + 0.5
    assert fair.short_running() == 0


def test_nested_starts_are_counted_once():
    """A rerun asked for during a run starts inside the run's call (ScriptRunner recursion)."""
    fair.run_started()
    fair.run_started()
    assert fair.short_running() == 1
    fair.run_ended()
    fair.run_ended()
    assert fair.short_running() == 0


def _script():
    import streamlit as st

    from ui import fair

    st.session_state["seen"] = (fair.short_running(), fair._run.cpu0 is not None)
    st.write("hello")


def test_installed_hooks_count_every_streamlit_run():
    """The hooks are in Streamlit's ScriptRunner (the app's and AppTest's): a run counts as short while
    it runs, and stops counting when it ends; every element passes a checkpoint."""
    fair.install()
    before = fair.counters.runs
    at = AppTest.from_function(_script)
    at.run()
    assert not at.exception
    assert at.session_state["seen"] == (1, True)
    assert fair.counters.runs == before + 1 and fair.short_running() == 0
