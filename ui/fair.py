"""Strokes first: a script run that has used more than a stroke's worth of CPU steps aside for short ones.

One server process runs every session's script in its own thread, and Python runs one thread at a
time (the GIL): a student's stroke (~30 ms of script) that meets a long run (an analysis page built
from scratch, a big upload, a new classifier's first use) shares the interpreter with it and takes
twice as long, or longer with several.  Students draw, one curious student clicks everything: the
long runs are the ones that can wait.

So every script run starts as *short*.  Once it has used ``LONG_RUN_CPU_S`` of CPU it is *long*, and
at each checkpoint (every element it sends) it waits, without
holding the GIL, while short runs are under way: at most ``MAX_WAIT_S`` per checkpoint, so a long
run always moves on (a page is slower while the class draws, never stuck).  And while the class
draws (a short run under way or ended within ``CLASS_ACTIVE_S``), all long runs together get at most
``LONG_RUNS_CORES`` of one core: each checkpoint charges the CPU the run used since its last one to a
shared bucket that drains at that rate, and a run whose charge overflows the bucket sleeps until it
has drained (at most ``MAX_THROTTLE_S`` a time).  However many tabs one student opens, their
long runs share that one budget; the teacher's wall, which the class watches, is exempt from it
(:func:`exempt_from_budget`).  Nothing here knows who the user is: a class behind one school address
looks like one user, and a new browser tab is a new session.

A tab that keeps the server busy with many runs each shorter than a long one (uploads, forged canvas
values, links one after the other, no pause between them) would pass as a drawing student every
time.  So each session's script CPU goes into a bucket of its own that drains at ``SESSION_CORES``
(a student drawing a stroke every second uses a third of it); a session whose bucket holds more
than ``SESSION_BURST_S`` starts its runs as long.  A page's first load fits in the burst.

Short runs also take turns: at most ``SCRIPT_SLOTS`` of them execute at once (a run that turns long
gives its slot back), the others wait for a slot in the order they came, without the GIL.  With fifty
students on one process, a dozen strokes at once each took the GIL back after every message, query
and matrix product in a lottery with all the others and with the event loop that carries every
session's messages: each stroke's script took 90 ms (375 ms at p95) for 19 ms of CPU, and the
students waited on the event loop besides (loadtest/run_serve.py).  Taking turns costs a stroke its
place in the line and nothing else.

Background work (the job queues' searches and fits, knn_core/jobs.py) steps aside for every script
run: at each of its pause points (between chunks) it waits while any run is under way, at most
``BACKGROUND_WAIT_S`` a time.  Its threads run at the lowest CPU priority already, but in one Python
process a busy thread also makes every other wait for the interpreter each time it blocks on the
network (the event loop that delivers every student's prediction), which no CPU priority changes.
And while the class draws, background work together gets at most ``BACKGROUND_CORES`` of a core (a
bucket like the long runs'): on two cores, a search at the lowest priority still takes a whole core
that the class's requests, the event loop and the students' own traffic share otherwise.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

from knn_core.threads import set_pause_hook, work_cpu_time

LONG_RUN_CPU_S = 0.06  # a stroke on the Draw page: ~30 ms of its thread's CPU (loadtest/README.md)
MAX_WAIT_S = 0.25  # per checkpoint: a long run waits at most this for the short ones at a time
BACKGROUND_WAIT_S = 0.05  # per pause point of background work: it crawls, not stops, while the class draws
BACKGROUND_CORES = 0.25  # while the class draws: what background work together may use of one core
MAX_WAIT_PER_RUN_S = 3.0  # what a long run waits for short ones in all
LONG_RUNS_CORES = 0.25  # while the class draws: what all long runs together may use of one core
LONG_RUNS_BURST_S = 0.1  # CPU seconds long runs may use at once before the rate applies
CLASS_ACTIVE_S = 2.0  # "the class draws": a short run under way, or one ended this recently
SESSION_CORES = 0.1  # a session's own budget: what its runs may use on average and still start short
SESSION_BURST_S = 0.6  # CPU seconds a session may use at once (a page's first load) before that applies
SESSION_FORGET_S = 60.0  # sessions whose bucket drained this long ago are forgotten
SCRIPT_SLOTS = 2  # short script runs executing at once ($KNN_LAB_SCRIPT_SLOTS; 0: no limit)
SLOTS_ENV = "KNN_LAB_SCRIPT_SLOTS"
SLOT_WAIT_S = 10.0  # a run waits at most this for a slot, then goes ahead anyway (never stuck)
MAX_THROTTLE_S = 1.0  # the longest a long run sleeps at one checkpoint for the budget  # and at most this in all: a teacher's analysis page during a class is slower, not stuck


@dataclass
class Counters:
    """What the scheduler did since the process started (for tests and a look from a debugger)."""

    runs: int = 0
    long_runs: int = 0
    waits: int = 0
    waited_s: float = 0.0
    throttled_s: float = 0.0
    slot_waited_s: float = 0.0


_cond = threading.Condition()
_short_running = 0
_running = 0  # script runs under way, short or long
_waiting = 0  # of those, runs waiting for background work (`waiting_for_work`)
_bucket = [0.0, 0.0]  # long runs' CPU not yet drained (s), and when it was last drained (monotonic)
_short_ended = [float("-inf")]  # when the last short run ended (monotonic)
_background_bucket = [0.0, 0.0]  # background work's CPU not yet drained (s), and when last drained
_background = threading.local()  # per background thread: charged (its work's CPU at the last pause point)
_run = threading.local()  # per script thread: cpu0 (thread CPU at the start), short (still counted)
_sessions: dict = {}  # session id -> [its script CPU not yet drained (s), when last drained (monotonic)]
_slots: list = [None]  # the Semaphore of the short runs' turns (None: no limit), set by install()
counters = Counters()


def run_started(session: str | None = None) -> None:
    """A script run of `session` begins on this thread: it counts as short, unless the session has used
    more than its own budget lately.  (A rerun asked for during a run starts inside the run's own call:
    that one stops counting first.)"""
    global _short_running, _running
    nested = getattr(_run, "cpu0", None) is not None
    _stop_counting_as_short()
    _charge_session()
    _run.cpu0 = time.thread_time()
    _run.session = session
    _run.waited = 0.0
    _run.exempt = False
    with _cond:
        _run.short = not _session_is_busy(session)
        _run.long_by_session = not _run.short
        if _run.short:
            _short_running += 1
        else:
            _run.charged = _run.cpu0
            counters.long_runs += 1
        _running += 0 if nested else 1
        counters.runs += 1
    if _run.short:
        _take_slot()


def _session_is_busy(session: str | None) -> bool:
    """Whether this session's own bucket is past its burst (under _cond)."""
    if session is None or session not in _sessions:
        return False
    level, when = _sessions[session]
    return level - (time.monotonic() - when) * SESSION_CORES > SESSION_BURST_S


def _charge_session() -> None:
    """Charge the CPU of the run on this thread so far to its session's bucket."""
    session, cpu0 = getattr(_run, "session", None), getattr(_run, "cpu0", None)
    if session is None or cpu0 is None:
        return
    now_cpu, now = time.thread_time(), time.monotonic()
    with _cond:
        level, when = _sessions.get(session, (0.0, now))
        _sessions[session] = [max(0.0, level - (now - when) * SESSION_CORES) + now_cpu - cpu0, now]
        if len(_sessions) > 64:  # forget the sessions that have been quiet for a while
            for sid, (lv, t) in list(_sessions.items()):
                if lv - (now - t) * SESSION_CORES <= 0 and now - t > SESSION_FORGET_S:
                    del _sessions[sid]
    _run.cpu0 = now_cpu


def run_ended() -> None:
    """The run on this thread is over (finished, stopped or failed)."""
    global _running
    _stop_counting_as_short(finished=True)
    _charge_session()
    if getattr(_run, "cpu0", None) is not None:
        _run.cpu0 = None
        with _cond:
            _running -= 1
            _cond.notify_all()


def _take_slot() -> None:
    """Wait for a turn to execute (short runs only; at most SLOT_WAIT_S)."""
    slots = _slots[0]
    if slots is None or getattr(_run, "slot", None) is not None:
        return
    t0 = time.perf_counter()
    _run.slot = slots if slots.acquire(timeout=SLOT_WAIT_S) else None
    with _cond:
        counters.slot_waited_s += time.perf_counter() - t0


@contextmanager
def waiting_for_work():
    """A script run that waits for work done elsewhere (a fit, a search, a calibration in a job queue) gives
    its turn to the others meanwhile, and takes one again after.  Meanwhile it is neither a short run nor a
    run under way for the background work, which otherwise throttled the very work it waits for: a teacher
    alone changing k waited 50 s for a 9-s calibration."""
    global _short_running, _waiting
    had = getattr(_run, "slot", None) is not None
    _give_slot()
    in_run = getattr(_run, "cpu0", None) is not None
    was_short = in_run and getattr(_run, "short", False)
    with _cond:
        _short_running -= was_short
        _waiting += in_run
        _cond.notify_all()
    try:
        yield
    finally:
        with _cond:
            _short_running += was_short
            _waiting -= in_run
        if had:
            _take_slot()


def _give_slot() -> None:
    slot, _run.slot = getattr(_run, "slot", None), None
    if slot is not None:
        slot.release()


def _stop_counting_as_short(finished: bool = False) -> None:
    global _short_running
    _give_slot()
    if getattr(_run, "short", False):
        _run.short = False
        with _cond:
            _short_running -= 1
            if finished:  # a stroke answered (not a run turned long)
                _short_ended[0] = time.monotonic()
            _cond.notify_all()


def checkpoint() -> None:
    """Called between steps of a script run: a long run waits here while short runs are under way.
    Free outside script runs (background threads, tests) and for short runs."""
    cpu0 = getattr(_run, "cpu0", None)
    if cpu0 is None:
        return
    if _run.short:
        if time.thread_time() - cpu0 < LONG_RUN_CPU_S:
            return
        _stop_counting_as_short()
        _run.charged = cpu0
        with _cond:
            counters.long_runs += 1
    _throttle()
    budget = min(MAX_WAIT_S, MAX_WAIT_PER_RUN_S - _run.waited)
    if budget <= 0:
        return
    with _cond:
        if not _short_running:
            return
        t0 = time.perf_counter()
        _cond.wait_for(lambda: _short_running == 0, timeout=budget)
        waited = time.perf_counter() - t0
        counters.waits += 1
        counters.waited_s += waited
    _run.waited += waited


def exempt_from_budget() -> None:
    """This run is what the class watches (the teacher's wall): it still lets strokes go first once it
    is long, but neither the long runs' CPU budget nor its session's own slows it down."""
    global _short_running
    _run.exempt = True
    if getattr(_run, "long_by_session", False) and getattr(_run, "cpu0", None) is not None:
        _run.long_by_session = False  # started long for its session's CPU alone: short again
        _run.short = True
        with _cond:
            _short_running += 1
            counters.long_runs -= 1
        _take_slot()


def _throttle() -> None:
    """Charge this long run's CPU since its last checkpoint to the long runs' shared budget, and sleep
    while the budget is overdrawn and the class draws."""
    if getattr(_run, "exempt", False):
        return
    now_cpu = time.thread_time()
    used, _run.charged = now_cpu - _run.charged, now_cpu
    _charge(_bucket, used, LONG_RUNS_CORES)


def _charge(bucket: list, used: float, rate: float) -> None:
    """Charge `used` CPU seconds to a bucket draining at `rate`, and, if the class draws, sleep until it
    is back within LONG_RUNS_BURST_S (at most MAX_THROTTLE_S)."""
    with _cond:
        now = time.monotonic()
        level = max(0.0, bucket[0] - (now - bucket[1]) * rate) + used
        bucket[:] = [level, now]
        class_draws = _short_running > 0 or now - _short_ended[0] < CLASS_ACTIVE_S
    if class_draws and level > LONG_RUNS_BURST_S:
        pause = min(MAX_THROTTLE_S, (level - LONG_RUNS_BURST_S) / rate)
        time.sleep(pause)
        with _cond:
            counters.throttled_s += pause


def background_pause() -> None:
    """Background work's pause point (knn_core.threads.pause_point): wait while script runs are under
    way, at most BACKGROUND_WAIT_S; and while the class draws, sleep when background work has used more
    than its BACKGROUND_CORES."""
    now_cpu = work_cpu_time()  # a child process's too: a search in knn_core.worker's child is background work
    used, _background.charged = max(0.0, now_cpu - getattr(_background, "charged", now_cpu)), now_cpu
    _charge(_background_bucket, used, BACKGROUND_CORES)
    with _cond:
        if _running > _waiting:
            _cond.wait_for(lambda: _running <= _waiting, timeout=BACKGROUND_WAIT_S)


def running() -> int:
    """How many script runs are under way."""
    return _running


def short_running() -> int:
    """How many script runs count as short right now."""
    return _short_running


def script_slots() -> int:
    """How many short runs may execute at once ($KNN_LAB_SCRIPT_SLOTS, default SCRIPT_SLOTS; 0: any)."""
    try:
        value = int(os.environ.get(SLOTS_ENV, SCRIPT_SLOTS))
    except ValueError:
        return SCRIPT_SLOTS
    return value if 0 <= value <= 1000 else SCRIPT_SLOTS


@lru_cache(maxsize=1)
def install() -> None:
    """Hook the scheduler into Streamlit, once per process: each script run (full or fragment) is
    started and ended around ScriptRunner._run_script, and every element a script sends goes through
    a checkpoint (ScriptRunContext.enqueue).  Private Streamlit API, pinned in requirements.txt
    (tests/test_fair.py fails if the hooks are gone)."""
    from streamlit.runtime.scriptrunner import script_runner
    from streamlit.runtime.scriptrunner_utils import script_run_context

    slots = script_slots()
    _slots[0] = threading.Semaphore(slots) if slots else None
    runner, context = script_runner.ScriptRunner, script_run_context.ScriptRunContext
    run_script, enqueue = runner._run_script, context.enqueue

    def _run_script(self, rerun_data):
        run_started(getattr(self, "_session_id", None))
        try:
            return run_script(self, rerun_data)
        finally:
            run_ended()

    def _enqueue(self, msg):
        checkpoint()
        return enqueue(self, msg)

    runner._run_script, context.enqueue = _run_script, _enqueue
    set_pause_hook(background_pause)
