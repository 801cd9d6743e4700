"""knn_core.jobs: the one bounded queue for heavy work (no Streamlit)."""
from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from knn_core.jobs import CANCELLED, DONE, FAILED, QUEUED, RUNNING, JobQueue, QueueFull, queue_from_environment


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def chunked(steps: int, gate: threading.Event | None = None, log: list | None = None):
    """A job's work: `steps` chunks, reporting progress after each (and waiting for `gate` first)."""
    def work(progress):
        for i in range(steps):
            if gate is not None:
                gate.wait(5)
            if log is not None:
                log.append(i)
            progress(i + 1, steps)
        return f"{steps} steps"
    return work


@pytest.fixture
def queue():
    q = JobQueue(1, per_owner=2, abandon_after=30.0)
    yield q
    q.shutdown()


def test_a_job_runs_and_its_result_is_kept_by_key(queue):
    job = queue.submit("a", chunked(3), owner="s1")
    wait_for(lambda: job.ended)
    assert (job.state, job.result, job.done, job.total, job.fraction) == (DONE, "3 steps", 3, 3, 1.0)
    assert queue.get("a") is job


def test_the_same_key_joins_the_running_job_instead_of_starting_it_again(queue):
    gate = threading.Event()
    runs: list = []
    first = queue.submit("a", chunked(2, gate, runs), owner="s1")
    second = queue.submit("a", chunked(2, gate, runs), owner="s2")
    assert second is first
    gate.set()
    wait_for(lambda: first.ended)
    assert runs == [0, 1]  # ran once


def test_one_worker_runs_jobs_one_after_the_other_in_order(queue):
    gate = threading.Event()
    a = queue.submit("a", chunked(1, gate), owner="s1")
    b = queue.submit("b", chunked(1), owner="s2")
    wait_for(lambda: a.state == RUNNING)
    assert b.state == QUEUED and queue.position(b) == 0 and len(queue.active()) == 2
    gate.set()
    wait_for(lambda: b.ended)
    assert a.finished <= b.started


def test_an_owner_may_have_only_per_owner_jobs_at_once(queue):
    gate = threading.Event()
    queue.submit("a", chunked(1, gate), owner="s1")
    queue.submit("b", chunked(1, gate), owner="s1")
    with pytest.raises(QueueFull, match="at most 2"):
        queue.submit("c", chunked(1), owner="s1")
    queue.submit("c", chunked(1), owner="s2")  # another session is not affected
    gate.set()
    wait_for(lambda: all(j.ended for j in [queue.get("a"), queue.get("b"), queue.get("c")]))
    queue.submit("d", chunked(1), owner="s1")  # once they ended, s1 may ask again


def test_cancelling_a_running_job_stops_it_between_chunks(queue):
    gate = threading.Event()
    log: list = []
    job = queue.submit("a", chunked(100, gate, log), owner="s1")
    wait_for(lambda: job.state == RUNNING)
    queue.cancel("a")
    gate.set()
    wait_for(lambda: job.ended)
    assert job.state == CANCELLED and job.result is None
    assert len(log) == 1  # the chunk under way finished; no further chunk started


def test_a_job_nobody_waits_for_is_cancelled_queued_or_running():
    q = JobQueue(1, per_owner=5, abandon_after=0.2)
    try:
        gate = threading.Event()
        running = q.submit("a", chunked(1000, gate), owner="s1")
        queued = q.submit("b", chunked(1), owner="s1")
        wait_for(lambda: running.state == RUNNING)
        time.sleep(0.3)  # nobody touches either job for longer than abandon_after
        gate.set()
        wait_for(lambda: running.ended and queued.ended)
        assert (running.state, queued.state) == (CANCELLED, CANCELLED)
        assert running.done < 1000
    finally:
        q.shutdown()


def test_work_that_reports_no_progress_stops_at_its_pause_points_when_cancelled():
    """A fit reports no progress; its preprocessing's pause points (here a real deskew) stop it."""
    import numpy as np

    from knn_core.features import deskew

    q = JobQueue(1, per_owner=5, abandon_after=0.3)
    try:
        reached = []
        digits = np.random.default_rng(0).integers(0, 256, (200_000, 28, 28), dtype=np.uint8)

        def fit_like(progress):
            reached.append("started")
            deskew(digits)  # minutes of work, a pause point every 256 digits
            reached.append("finished")

        job = q.submit("fit", fit_like, owner="s1")
        wait_for(lambda: job.state == RUNNING)
        t0 = time.monotonic()
        wait_for(lambda: job.ended, timeout=30)  # nobody touches it: abandoned after 0.3 s
        assert job.state == CANCELLED and reached == ["started"]
        assert time.monotonic() - t0 < 10
    finally:
        q.shutdown()


def test_a_job_that_is_touched_is_not_abandoned():
    q = JobQueue(1, abandon_after=0.3)
    try:
        def slow(progress):
            for i in range(10):
                time.sleep(0.1)
                progress(i + 1, 10)
            return "done"

        job = q.submit("a", slow, owner="s1")
        while not job.ended:
            job.touch()
            time.sleep(0.05)
        assert job.state == DONE
    finally:
        q.shutdown()


def test_a_failed_job_keeps_its_error_and_may_be_asked_for_again(queue):
    def broken(progress):
        raise RuntimeError("disk full")

    job = queue.submit("a", broken, owner="s1")
    wait_for(lambda: job.ended)
    assert job.state == FAILED and str(job.error) == "disk full"
    again = queue.submit("a", chunked(1), owner="s1")
    assert again is not job
    wait_for(lambda: again.ended)
    assert again.state == DONE


def test_the_operator_sets_workers_and_jobs_per_session(monkeypatch):
    monkeypatch.setenv("KNN_LAB_SEARCH_WORKERS", "3")
    monkeypatch.setenv("KNN_LAB_SEARCHES_PER_SESSION", "1")
    q = queue_from_environment()
    assert (q.workers, q.per_owner) == (3, 1)
    monkeypatch.setenv("KNN_LAB_SEARCH_WORKERS", "many")
    with pytest.raises(Exception, match="KNN_LAB_SEARCH_WORKERS must be a whole number"):
        queue_from_environment()


def test_clearing_streamlits_caches_neither_forgets_nor_restarts_a_search():
    """The pages' queue is a module global: a browser's "clear cache" cannot start the same search again."""
    import streamlit as st

    import ui

    gate = threading.Event()
    runs: list = []
    key = ("test-only", "clear-cache", 1)
    first = ui.QUEUE.submit(key, chunked(2, gate, runs), owner="s1")
    try:
        st.cache_resource.clear()
        st.cache_data.clear()
        assert ui.QUEUE.submit(key, chunked(2, gate, runs), owner="s2") is first
    finally:
        gate.set()
        wait_for(lambda: first.ended)
    assert first.state == DONE and runs == [0, 1]


@pytest.mark.skipif(not hasattr(os, "setpriority") or sys.platform != "linux", reason="per-thread nice is Linux's")
def test_jobs_run_in_the_background_at_nice_19_on_one_openmp_thread_and_the_caller_keeps_its_priority():
    import sklearn.neighbors  # noqa: F401  (loads scikit-learn's OpenMP runtime)
    from threadpoolctl import threadpool_info

    q = queue_from_environment()
    try:
        def observe(progress):
            openmp = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"]
            return os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), openmp

        job = q.submit("a", observe, owner="s1")
        wait_for(lambda: job.ended)
        niceness, openmp = job.result
        assert niceness == 19 and openmp and all(n == 1 for n in openmp)
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < 19  # only the worker thread
        assert q.abandon_after == 5.0  # a closed page's search stops within seconds
    finally:
        q.shutdown()
