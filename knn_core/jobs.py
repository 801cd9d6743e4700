"""One bounded queue for heavy work (long neighbour searches), shared by every user of a process.

A server answers thirty students with one process; a search of minutes must
not be startable thirty times, nor outlive everyone who wanted it. So:

- a fixed number of worker threads (default one) run the jobs in order;
- a job is known by its key: asking again for the same key joins it;
- each owner (a browser session) has at most `per_owner` jobs queued or running;
- whoever waits for a job `touch`es it; a job nobody touched for
  `abandon_after` seconds (default 5: a page waiting touches it every 0.2 s)
  is cancelled, queued or running (its work function gets `JobCancelled`
  from its next progress call, between two chunks);
- the workers run in the background: each worker thread at the lowest CPU
  priority (nice 19, Linux) and with one OpenMP thread, so the heavy work
  takes what the interactive requests leave (`background=False` for neither);
  work given as a `knn_core.worker.Task` runs in the worker's own child
  process at idle priority (stopped with the queue).

Plain Python, no Streamlit: the pages keep one `JobQueue` per process in a
module global (not in a Streamlit cache, which any browser can clear).
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Optional

from .errors import KnnLabError
from .threads import lower_thread_priority, mark_background_thread, openmp_threads, pause_point, stop_check
from .worker import stop_thread_child

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
WORKERS_ENV = "KNN_LAB_SEARCH_WORKERS"
PER_OWNER_ENV = "KNN_LAB_SEARCHES_PER_SESSION"
ABANDON_AFTER = 5.0  # seconds without a touch: a closed page's search stops within a few seconds


class JobCancelled(Exception):
    """Raised inside a job's work (from its progress callback) once the job is cancelled."""


class QueueFull(KnnLabError):
    """An owner asked for more jobs than it may have queued or running at once."""


@dataclass(eq=False)
class Job:
    """One piece of heavy work: its state, progress and outcome, read by whoever waits for it."""

    key: Hashable
    owner: str
    work: Callable[[Callable[[int, int], None]], Any]  # called with a progress(done, total) callback
    estimate: float = 0.0  # seconds, for people
    state: str = QUEUED
    done: int = 0
    total: int = 0
    result: Any = None
    error: Optional[BaseException] = None
    submitted: float = field(default_factory=time.monotonic)
    started: Optional[float] = None
    finished: Optional[float] = None
    last_seen: float = field(default_factory=time.monotonic)
    abandon_after: float = float("inf")  # seconds without a touch after which the job is cancelled
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def progress(self, done: int, total: int) -> None:
        """The work's progress callback: records progress, and stops the work once cancelled."""
        self.done, self.total = done, total
        pause_point()  # stops if cancelled; between two chunks: the server's requests first (knn_core.threads)

    def stop_if_cancelled(self) -> None:
        """Raise JobCancelled once the job is cancelled or nobody has waited for it for abandon_after s.
        Called at every pause point of its work (knn_core.threads.stop_check), also deep inside work that
        reports no progress, such as a fit's preprocessing."""
        if time.monotonic() - self.last_seen > self.abandon_after:
            self._cancel.set()  # nobody waits for it any more
        if self._cancel.is_set():
            raise JobCancelled(f"job {self.key!r} was cancelled")

    def touch(self) -> None:
        """Someone is still waiting for this job."""
        self.last_seen = time.monotonic()

    @property
    def ended(self) -> bool:
        return self.state in (DONE, FAILED, CANCELLED)

    @property
    def fraction(self) -> float:
        return 1.0 if self.state == DONE else self.done / self.total if self.total else 0.0


class JobQueue:
    """Jobs run by `workers` threads in the order asked; see the module docstring."""

    def __init__(self, workers: int = 1, *, per_owner: int = 2, abandon_after: float = ABANDON_AFTER, keep: int = 24,
                 background: bool = True):
        if workers < 1 or per_owner < 1:
            raise KnnLabError(f"a job queue needs at least one worker and one job per owner; got {workers}, "
                              f"{per_owner}")
        self.workers = workers
        self.per_owner = per_owner
        self.abandon_after = abandon_after
        self.keep = keep  # finished jobs remembered (their results stay reachable by key)
        self.background = background
        self._jobs: dict[Hashable, Job] = {}
        self._queue: deque[Job] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._threads: list[threading.Thread] = []
        self._stopping = False

    # ------------------------------------------------------------------ asking
    def submit(self, key: Hashable, work: Callable, *, owner: str, estimate: float = 0.0) -> Job:
        """The job for `key`: the one already queued, running or done, else a new one for `owner`.

        Raises QueueFull when `owner` already has `per_owner` jobs queued or running.
        """
        with self._lock:
            self._reap_locked()
            job = self._jobs.get(key)
            if job is not None and job.state not in (FAILED, CANCELLED):
                job.touch()
                return job
            mine = sum(1 for j in self._jobs.values() if j.owner == owner and not j.ended)
            if mine >= self.per_owner:
                raise QueueFull(f"at most {self.per_owner} searches at a time per person; wait for one to finish")
            job = Job(key, owner, work, estimate, abandon_after=self.abandon_after)
            self._jobs[key] = job
            self._queue.append(job)
            self._forget_old_locked()
            self._start_workers_locked()
            self._wake.notify()
            return job

    def get(self, key: Hashable) -> Optional[Job]:
        with self._lock:
            self._reap_locked()
            return self._jobs.get(key)

    def position(self, job: Job) -> int:
        """How many jobs are ahead of this queued job (0 when it runs or ended)."""
        with self._lock:
            return self._queue.index(job) if job in self._queue else 0

    def cancel(self, key: Hashable) -> None:
        with self._lock:
            job = self._jobs.get(key)
            if job is not None:
                self._cancel_locked(job)

    def active(self) -> list[Job]:
        """Jobs queued or running, oldest first."""
        with self._lock:
            self._reap_locked()
            return sorted((j for j in self._jobs.values() if not j.ended), key=lambda j: j.submitted)

    def reap(self) -> None:
        """Cancel the jobs nobody waited for within abandon_after seconds."""
        with self._lock:
            self._reap_locked()

    def shutdown(self) -> None:
        """Cancel everything and stop the workers (tests; a server just exits)."""
        with self._lock:
            self._stopping = True
            for job in list(self._jobs.values()):
                self._cancel_locked(job)
            self._wake.notify_all()
        for t in self._threads:
            t.join(timeout=5)

    # ---------------------------------------------------------------- inside
    def _cancel_locked(self, job: Job) -> None:
        if job.ended:
            return
        job._cancel.set()
        if job in self._queue:
            self._queue.remove(job)
            job.state, job.finished = CANCELLED, time.monotonic()

    def _reap_locked(self) -> None:
        now = time.monotonic()
        for job in list(self._jobs.values()):
            if not job.ended and now - job.last_seen > self.abandon_after:
                self._cancel_locked(job)

    def _forget_old_locked(self) -> None:
        ended = sorted((j for j in self._jobs.values() if j.ended), key=lambda j: j.finished or 0.0)
        for job in ended[: max(0, len(ended) - self.keep)]:
            del self._jobs[job.key]

    def _start_workers_locked(self) -> None:
        self._threads = [t for t in self._threads if t.is_alive()]
        while len(self._threads) < self.workers:
            t = threading.Thread(target=self._work, name=f"knn-lab-job-worker-{len(self._threads)}", daemon=True)
            self._threads.append(t)
            t.start()

    def _work(self) -> None:
        if self.background:
            lower_thread_priority()
            mark_background_thread()
        while True:
            with self._lock:
                self._reap_locked()
                while not self._queue and not self._stopping:
                    self._wake.wait(timeout=1.0)
                    self._reap_locked()
                if self._stopping:
                    stop_thread_child()  # this worker's child process (knn_core.worker), if any
                    return
                job = self._queue.popleft()
                job.state, job.started = RUNNING, time.monotonic()
            try:
                with stop_check(job.stop_if_cancelled), (openmp_threads(1) if self.background else nullcontext()):
                    result = job.work(job.progress)
            except JobCancelled:
                state, result, error = CANCELLED, None, None
            except BaseException as exc:  # the waiting page shows it
                state, result, error = FAILED, None, exc
            else:
                state, error = DONE, None  # finished before it saw a cancellation: the result is good
            with self._lock:
                job.result, job.error = result, error
                job.state, job.finished = state, time.monotonic()


def queue_from_environment() -> JobQueue:
    """A JobQueue with the operator's settings: $KNN_LAB_SEARCH_WORKERS (default 1) workers and
    $KNN_LAB_SEARCHES_PER_SESSION (default 2) jobs per session."""
    def whole(name: str, default: int) -> int:
        text = os.environ.get(name, "")
        try:
            return max(1, int(text)) if text.strip() else default
        except ValueError:
            raise KnnLabError(f"${name} must be a whole number; got {text!r}") from None

    return JobQueue(whole(WORKERS_ENV, 1), per_owner=whole(PER_OWNER_ENV, 2), keep=8)
