"""Strokes first (ui/fair.py): a long script run waits at its checkpoints while short runs are under way."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
from streamlit.testing.v1 import AppTest

from ui import fair


def _burn(seconds: float) -> None:
    t0 = time.thread_time()
    while time.thread_time() - t0 < seconds:
        sum(range(1000))


def _timed(fn) -> float:
    """Seconds fn() took."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


@contextlib.contextmanager
def class_drawing():
    """A short run (a stroke) under way in another thread while inside."""
    drawing, release = threading.Event(), threading.Event()

    def short_run():
        fair.run_started()
        drawing.set()
        release.wait(10)
        fair.run_ended()

    t = threading.Thread(target=short_run)
    t.start()
    drawing.wait(5)
    try:
        yield
    finally:
        release.set()
        t.join(5)


@pytest.fixture(autouse=True)
def clean_thread(monkeypatch):
    """Each test starts with nobody drawing recently and the long runs' budget full (and, but for the
    test of it, large enough never to apply)."""
    monkeypatch.setattr(fair, "LONG_RUNS_BURST_S", 1e9)
    monkeypatch.setattr(fair, "_slots", [None])  # no turns (the tests of them set their own)
    fair._short_ended[0] = float("-inf")
    fair._bucket[:] = [0.0, time.monotonic()]
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
    assert waited["short_done_first"] and 0.05 < waited["long"] <= fair.MAX_WAIT_S + 0.5
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
    assert fair.MAX_WAIT_S * 0.9 <= one <= fair.MAX_WAIT_S + 0.5
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


def test_background_work_waits_for_script_runs_only_on_background_threads(monkeypatch):
    """knn_core's pause points (between chunks of a job) wait while a script run is under way, at most
    BACKGROUND_WAIT_S a time; on other threads (a script run's own search) they cost nothing."""
    from knn_core import threads

    fair.install()
    monkeypatch.setattr(fair, "BACKGROUND_WAIT_S", 0.2)
    in_run, release = threading.Event(), threading.Event()

    def script_run():
        fair.run_started()
        in_run.set()
        release.wait(5)
        fair.run_ended()

    waited = {}

    def background(name, mark):
        if mark:
            threads.mark_background_thread()
        t0 = time.perf_counter()
        threads.pause_point()
        waited[name] = time.perf_counter() - t0

    s = threading.Thread(target=script_run)
    s.start()
    in_run.wait(5)
    for name, mark in (("background", True), ("foreground", False)):
        t = threading.Thread(target=background, args=(name, mark))
        t.start()
        t.join(5)
    release.set()
    s.join(5)
    assert 0.15 <= waited["background"] <= 1.0 and waited["foreground"] < 0.02
    assert fair.running() == 0

    # No script run under way: no wait.
    t = threading.Thread(target=background, args=("idle", True))
    t.start()
    t.join(5)
    assert waited["idle"] < 0.02


def test_a_job_queue_worker_pauses_between_chunks():
    """The job queue's workers are background threads: their progress calls are pause points."""
    from knn_core.jobs import JobQueue

    fair.install()
    calls = []
    q = JobQueue(1)
    try:
        from knn_core import threads

        real = threads._pause_hook[0]
        threads.set_pause_hook(lambda: calls.append(threading.current_thread().name))

        def work(progress):
            for i in range(3):
                progress(i + 1, 3)
            return "done"

        job = q.submit("k", work, owner="me")
        deadline = time.monotonic() + 5
        while not job.ended and time.monotonic() < deadline:
            job.touch()
            time.sleep(0.01)
        assert job.result == "done" and len(calls) == 3 and calls[0].startswith("knn-lab-job-worker")
    finally:
        threads.set_pause_hook(real)
        q.shutdown()


def test_long_runs_share_a_cpu_budget_while_the_class_draws(monkeypatch):
    """While a short run is under way (the class draws), a long run that used more than the burst sleeps
    until the shared budget has drained at LONG_RUNS_CORES; with nobody drawing it never sleeps."""
    monkeypatch.setattr(fair, "LONG_RUNS_CORES", 0.5)
    monkeypatch.setattr(fair, "LONG_RUNS_BURST_S", 0.05)
    monkeypatch.setattr(fair, "MAX_WAIT_S", 0.0)  # the throttle alone
    monkeypatch.setattr(fair, "_short_ended", [float("-inf")])

    def long_run_pause(exempt: bool = False) -> float:
        monkeypatch.setattr(fair, "_bucket", [0.0, time.monotonic()])
        fair.run_started()
        if exempt:
            fair.exempt_from_budget()
        _burn(0.2)
        t0 = time.perf_counter()
        fair.checkpoint()
        pause = time.perf_counter() - t0
        fair.run_ended()
        return pause

    assert long_run_pause() < 0.02  # nobody drawing

    with class_drawing():
        pause = long_run_pause()
        exempt = long_run_pause(exempt=True)  # the teacher's wall: what the class watches
    assert exempt < 0.02
    # 0.2 s charged (a little more: the burn overshoots), minus 0.05 of burst, at 0.5 s of CPU per s
    assert 0.25 <= pause <= 1.0


def test_background_work_shares_a_cpu_budget_while_the_class_draws(monkeypatch):
    """While the class draws, a background thread that used more than the burst since its last pause
    point sleeps until the background budget has drained at BACKGROUND_CORES; with nobody drawing, not."""
    from knn_core import threads

    fair.install()
    monkeypatch.setattr(fair, "BACKGROUND_CORES", 0.5)
    monkeypatch.setattr(fair, "LONG_RUNS_BURST_S", 0.05)
    monkeypatch.setattr(fair, "BACKGROUND_WAIT_S", 0.0)
    pauses = []

    def background():
        threads.mark_background_thread()
        threads.pause_point()  # the first pause point starts the count
        fair._background_bucket[:] = [0.0, time.monotonic()]
        _burn(0.2)
        pauses.append(_timed(threads.pause_point))

    def run_background():
        t = threading.Thread(target=background)
        t.start()
        t.join(10)

    run_background()  # nobody drawing
    with class_drawing():
        run_background()
    assert pauses[0] < 0.02 and 0.25 <= pauses[1] <= 1.0


def test_a_child_processs_cpu_is_charged_to_the_background_budget(monkeypatch):
    """A search relayed to knn_core.worker's child uses next to no CPU in its own thread: the child's
    CPU (threads.work_in_child) is what the budget charges, so the relaying thread pauses (and the
    worker stops the child meanwhile) as a background thread that did the work itself would."""
    from knn_core import threads

    fair.install()
    monkeypatch.setattr(fair, "BACKGROUND_CORES", 0.5)
    monkeypatch.setattr(fair, "LONG_RUNS_BURST_S", 0.05)
    monkeypatch.setattr(fair, "BACKGROUND_WAIT_S", 0.0)
    child_cpu = [5.0]  # a child that has already run a while
    pauses = []

    def relay():
        threads.mark_background_thread()
        with threads.work_in_child(lambda: child_cpu[0]):
            threads.pause_point()  # the first pause point starts the count
            fair._background_bucket[:] = [0.0, time.monotonic()]
            child_cpu[0] += 0.2  # the child worked; this thread did not
            pauses.append(_timed(threads.pause_point))
            child_cpu[0] = 0.1  # a new child (the old one exited): nothing to charge, no negative charge
            threads.pause_point()

    with class_drawing():
        t = threading.Thread(target=relay)
        t.start()
        t.join(10)
    assert 0.25 <= pauses[0] <= 1.0  # 0.2 s charged, minus 0.05 of burst, at 0.5 s of CPU per s
    assert fair._background_bucket[0] >= 0.0


def test_a_session_that_keeps_the_server_busy_starts_its_runs_long_and_a_drawing_student_never_does(monkeypatch):
    """Many runs, each under a long run's CPU, one after the other from one tab: once the tab has used
    more than SESSION_BURST_S beyond its own SESSION_CORES, its runs start long (they let strokes go
    first); a student drawing a stroke a second never gets there, nor does another session."""
    monkeypatch.setattr(fair, "_sessions", {})
    burst = fair.SESSION_BURST_S
    started_long = []
    for _ in range(int(burst / (fair.LONG_RUN_CPU_S * 0.7)) + 3):  # each run short by its own CPU
        fair.run_started("busy tab")
        started_long.append(not fair._run.short)
        _burn(fair.LONG_RUN_CPU_S * 0.7)
        fair.run_ended()
    assert not started_long[0] and started_long[-1]
    fair.run_started("student")
    assert fair._run.short  # another session: its own bucket
    fair.run_ended()
    with class_drawing():  # a long-from-the-start run waits for the strokes at its checkpoints
        fair.run_started("busy tab")
        t0 = time.perf_counter()
        fair.checkpoint()
        assert time.perf_counter() - t0 >= fair.MAX_WAIT_S * 0.9
        fair.run_ended()

    monkeypatch.setattr(fair, "_sessions", {})
    for _ in range(20):  # a stroke a second, ~30 ms each: drained faster than it fills
        fair.run_started("student")
        assert fair._run.short
        _burn(0.03)
        fair.run_ended()
        fair._sessions["student"][1] -= 1.0  # as if a second had passed
    assert fair._sessions["student"][0] < burst / 2


def _start_short_run(started: list, name: str, release: threading.Event) -> threading.Thread:
    """A short run in a thread of its own: it notes when it got its turn, then waits to be released."""

    def run():
        fair.run_started()
        started.append(name)
        release.wait(10)
        fair.run_ended()

    t = threading.Thread(target=run)
    t.start()
    return t


def _until(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_short_runs_take_turns_in_the_order_they_came(monkeypatch):
    monkeypatch.setattr(fair, "_slots", [threading.Semaphore(2)])
    started, releases = [], {name: threading.Event() for name in "abcd"}
    threads = {}
    for name in "abcd":
        threads[name] = _start_short_run(started, name, releases[name])
        if name in "ab":
            assert _until(lambda name=name: name in started)  # two turns: a and b go at once
        time.sleep(0.1)  # c and d queue, in this order
    assert started == ["a", "b"] and fair.short_running() == 4  # the waiting ones count as drawing
    releases["b"].set()
    assert _until(lambda: len(started) == 3) and started[2] == "c"  # the first in line
    time.sleep(0.1)
    assert started == ["a", "b", "c"]
    releases["a"].set()
    assert _until(lambda: len(started) == 4) and started[3] == "d"
    for name in "cd":
        releases[name].set()
    for t in threads.values():
        t.join(5)
    assert fair.short_running() == 0 and fair._slots[0]._value == 2  # every turn given back


def test_a_run_that_turns_long_gives_its_turn_to_the_short_ones(monkeypatch):
    monkeypatch.setattr(fair, "_slots", [threading.Semaphore(1)])
    monkeypatch.setattr(fair, "MAX_WAIT_S", 0.05)
    started, release = [], threading.Event()
    fair.run_started()  # this thread: a run with the only turn
    waiting = _start_short_run(started, "stroke", release)
    time.sleep(0.2)
    assert started == []  # no turn free
    _burn(fair.LONG_RUN_CPU_S * 1.5)
    fair.checkpoint()  # long now: its turn goes to the stroke
    assert _until(lambda: started == ["stroke"])
    release.set()
    waiting.join(5)
    fair.run_ended()
    assert fair._slots[0]._value == 1


def test_a_run_waiting_for_other_work_lets_others_take_its_turn(monkeypatch):
    monkeypatch.setattr(fair, "_slots", [threading.Semaphore(1)])
    started, release = [], threading.Event()
    fair.run_started()
    with fair.waiting_for_work():  # e.g. a page waiting for a fit in the job queue
        other = _start_short_run(started, "stroke", release)
        assert _until(lambda: started == ["stroke"])
        back = threading.Event()

        def release_soon():
            time.sleep(0.2)
            back.set()
            release.set()

        threading.Thread(target=release_soon).start()
    assert back.is_set()  # this run took its turn again only once the stroke had given it back
    other.join(5)
    fair.run_ended()
    assert fair._slots[0]._value == 1


def test_turns_are_configured_by_the_environment(monkeypatch):
    for value, slots in (("3", 3), ("0", 0), ("many", fair.SCRIPT_SLOTS), ("-1", fair.SCRIPT_SLOTS)):
        monkeypatch.setenv(fair.SLOTS_ENV, value)
        assert fair.script_slots() == slots


def test_background_work_is_not_held_back_by_the_run_waiting_for_it(monkeypatch):
    """A page waiting for its own fit or calibration is no class drawing: the job neither waits for that run
    nor keeps to the background budget because of it (a teacher alone waited 50 s for a 9-s calibration)."""
    monkeypatch.setattr(fair, "_short_ended", [float("-inf")])
    monkeypatch.setattr(fair, "_background_bucket", [0.0, 0.0])
    fair.run_started()  # a stroke: short
    assert fair.short_running() == 1
    with fair.waiting_for_work():
        assert fair.short_running() == 0
        t0 = time.perf_counter()
        for _ in range(10):
            _burn(0.03)  # 0.3 s of background work in all, beyond its burst
            fair.background_pause()
        spent = time.perf_counter() - t0
    assert fair.short_running() == 1  # a short run again, with its turn
    fair.run_ended()
    assert spent < 0.3 + 0.2  # neither 10 waits of BACKGROUND_WAIT_S nor sleeps for the budget (~0.8 s)
