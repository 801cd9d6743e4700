"""knn_core.worker: heavy work in a child process at idle priority (no Streamlit, a real child process)."""
from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import pytest

from knn_core import worker
from knn_core.errors import DataError, KnnLabError
from knn_core.jobs import CANCELLED, DONE, FAILED, RUNNING, JobQueue
from knn_core.worker import ChildProcess, task

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="autogroups, SCHED_IDLE and /proc are Linux's")


# module-level: a task's function is pickled by name
def chunks(n: int, pause: float = 0.0, *, progress=None) -> list:
    for i in range(n):
        time.sleep(pause)
        if progress is not None:
            progress(i + 1, n)
    return [os.getpid(), n]


def where_am_i(*, progress=None) -> dict:
    with open("/proc/self/autogroup") as f:
        autogroup = f.read()
    return {
        "pid": os.getpid(),
        "sid": os.getsid(0),
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "idle": os.sched_getscheduler(0) == os.SCHED_IDLE,
        "autogroup_nice": int(autogroup.split("nice")[1]),
        "blas": os.environ.get("OPENBLAS_NUM_THREADS"),
    }


def column_sums(a: np.ndarray, *, progress=None) -> np.ndarray:
    return a.sum(axis=0)


def fails(*, progress=None):
    raise DataError("train-images.idx3-ubyte is truncated")


def fails_unpicklably(*, progress=None):
    class Local(Exception):
        pass

    raise Local("a local exception class")


def burns(seconds: float, *, progress=None) -> float:
    """CPU-bound work reporting progress every ~10 ms of CPU: returns the CPU seconds it used."""
    t0 = time.process_time()
    while time.process_time() - t0 < seconds:
        t1 = time.process_time()
        while time.process_time() - t1 < 0.01:
            pass
        if progress is not None:
            progress(1, 1)
    return time.process_time() - t0


def sleeps_silently(seconds: float, *, progress=None) -> str:
    time.sleep(seconds)  # no progress calls: only the heartbeat says it is alive
    return "woke"


@pytest.fixture
def child():
    c = ChildProcess()
    yield c
    c.stop()


def test_a_task_runs_in_another_process_and_brings_back_its_result_and_progress(child):
    seen: list = []
    pid, n = child.run(task(chunks, 3), lambda d, t: seen.append((d, t)))
    assert pid != os.getpid() and n == 3
    assert [s for s in seen if s != (0, 0)][:3] == [(1, 3), (2, 3), (3, 3)]
    a = np.arange(12_000_000, dtype=np.int32).reshape(-1, 4)  # 48 MB each way
    assert np.array_equal(child.run(task(column_sums, a)), a.sum(axis=0))
    assert child.run(task(chunks, 1))[0] == pid  # the same child serves the next task


@linux_only
def test_the_child_runs_in_its_own_scheduling_group_at_idle_priority_on_one_blas_thread(child):
    info = child.run(task(where_am_i))
    assert info["sid"] == info["pid"] != os.getsid(0)  # its own session: its own autogroup
    assert info["nice"] == 19 and info["autogroup_nice"] == 19 and info["idle"]
    assert info["blas"] == "1"
    assert os.getpriority(os.PRIO_PROCESS, 0) < 19  # the caller keeps its priority


def test_the_tasks_exception_is_raised_in_the_caller_and_the_child_goes_on(child):
    with pytest.raises(DataError, match="truncated"):
        child.run(task(fails))
    with pytest.raises(KnnLabError, match="Local: a local exception class"):
        child.run(task(fails_unpicklably))
    assert child.run(task(chunks, 1))[1] == 1


def test_an_exception_from_progress_cancels_kills_the_child_and_propagates(child):
    class Cancelled(Exception):
        pass

    def cancel(done, total):
        if done >= 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        child.run(task(chunks, 1000, 0.01), cancel)
    assert child.pid is None  # killed: its work is not wanted
    assert child.run(task(chunks, 2))[1] == 2  # the next task starts a new child


def test_a_silent_step_is_still_cancelled_within_a_heartbeat(child):
    t0 = time.monotonic()

    def cancel(done, total):
        raise KeyboardInterrupt  # any exception: here one that is not an Exception

    with pytest.raises(KeyboardInterrupt):
        child.run(task(sleeps_silently, 30.0), cancel)
    assert time.monotonic() - t0 < 10  # the child says "alive" every HEARTBEAT_S while it sleeps; not 30 s


def test_a_child_that_dies_mid_task_is_a_clear_error_and_the_next_task_gets_a_new_one(child):
    started = threading.Event()

    def kill_it(done, total):
        if not started.is_set():
            started.set()
            os.kill(child.pid, 9)

    with pytest.raises(KnnLabError, match="stopped unexpectedly"):
        child.run(task(chunks, 1000, 0.01), kill_it)
    assert child.run(task(chunks, 1))[1] == 1


def test_a_child_that_left_idle_is_replaced_without_the_caller_noticing(child):
    first = child.run(task(chunks, 1))[0]
    os.kill(first, 9)  # as if it had exited by itself, idle: the next task must still run
    time.sleep(0.2)
    assert child.run(task(chunks, 1))[0] != first


@linux_only
def test_the_child_is_stopped_while_its_thread_pauses_and_its_cpu_counts_as_that_threads_work(child):
    """The server's background budget holds a search in the child as it holds a background thread: its
    pause hook sees the child's CPU in threads.work_cpu_time(), and the child does not run while the hook
    sleeps (ui/fair.py sleeps there when background work has used its share of the CPU)."""
    from knn_core import threads

    seen: dict = {"calls": 0}

    def hook():
        seen["calls"] += 1
        if seen["calls"] == 20:  # ~0.2 s of the child's CPU in: a pause of 0.5 s
            seen["before"] = threads.work_cpu_time()
            time.sleep(0.5)
            seen["after"] = threads.work_cpu_time()

    def relay():
        threads.mark_background_thread()
        seen["thread_cpu_before"] = threads.work_cpu_time()
        seen["used"] = child.run(task(burns, 0.6), lambda done, total: threads.pause_point())
        seen["thread_cpu_after"] = threads.work_cpu_time()

    hooks = list(threads._pause_hook)
    threads.set_pause_hook(hook)
    try:
        t = threading.Thread(target=relay)
        t.start()
        t.join(60)
    finally:
        threads._pause_hook[:] = hooks
    assert seen["calls"] > 20 and seen["used"] >= 0.6
    assert seen["before"] >= 0.1  # the child's CPU counted: the relaying thread itself uses next to none
    assert seen["after"] - seen["before"] < 0.05  # stopped for the 0.5 s the hook slept
    assert seen["thread_cpu_after"] - seen["thread_cpu_before"] < 0.5 * seen["used"]  # outside the task: own CPU


def test_tasks_run_in_the_calling_thread_when_the_operator_says_so(monkeypatch):
    monkeypatch.setenv(worker.ENV, "0")
    assert task(chunks, 2)()[0] == os.getpid()


def test_a_job_queue_cancels_a_task_it_runs_in_a_child_process():
    q = JobQueue(1, per_owner=2, abandon_after=30.0)
    try:
        job = q.submit("slow", task(chunks, 10_000, 0.01), owner="s1")
        done = q.submit("quick", task(chunks, 3), owner="s2")
        deadline = time.monotonic() + 20
        while not (job.state == RUNNING and job.done > 0):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        q.cancel("slow")
        while not (job.ended and done.ended):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert job.state == CANCELLED and job.done < 10_000
        assert done.state == DONE and done.result[1] == 3  # the worker went on with a new child
        failed = q.submit("fails", task(fails), owner="s3")
        while not failed.ended:
            time.sleep(0.02)
        assert failed.state == FAILED and isinstance(failed.error, DataError)
        child = q.submit("pid", task(chunks, 1), owner="s4")
        while not child.ended:
            time.sleep(0.02)
    finally:
        q.shutdown()
    with pytest.raises(ProcessLookupError):  # the queue's worker stopped its child on the way out
        os.kill(child.result[0], 0)
