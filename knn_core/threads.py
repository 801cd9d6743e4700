"""Threads: the one place knn_core limits BLAS and OpenMP threads and lowers a thread's priority.

On these 2-core machines the parallelism is ours (two search workers, or the
sessions of a server), not BLAS's: OpenBLAS's extra threads spin waiting for
work after each small product and, when the cores are shared, make skinny
products many times slower (a PCA fit took 45 s instead of 2.6 s; logistic
regression 4.7 instead of 0.3 CPU-s). The limit is process-wide while it holds.
"""
from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from typing import Callable, ContextManager, Iterator

_controller: list = []
_lock = threading.Lock()
_background = threading.local()  # .on: background work (a job queue's worker); .child_cpu: see work_cpu_time
_pause_hook: list = []  # [fn]: what background work calls between two steps (set by the server)


def _blas_controller():
    """threadpoolctl's controller, built once (building it costs ~0.1 s)."""
    from threadpoolctl import ThreadpoolController

    with _lock:
        if not _controller:
            _controller.append(ThreadpoolController())
    return _controller[0]


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """numpy's BLAS on one thread while inside (process-wide), restored afterwards."""
    with _blas_controller().limit(limits=1, user_api="blas"):
        yield


def limit_blas_threads(n: int = 1) -> None:
    """numpy's BLAS on n threads from now on, for the whole process (a server: its sessions are the parallelism)."""
    _blas_controller().limit(limits=n, user_api="blas")


@contextmanager
def openmp_threads(n: int) -> Iterator[None]:
    """OpenMP (scikit-learn's brute-force kernels) on at most n threads for the calling thread while inside.

    With GNU OpenMP the thread count is a per-thread setting: one search can be
    kept to one core without slowing anyone else's.
    """
    with _blas_controller().limit(limits=max(1, int(n)), user_api="openmp"):
        yield


def lower_thread_priority(niceness: int = 19) -> bool:
    """Give the calling thread (not the process) the lowest CPU priority: background work yields to
    the students' strokes.  Linux gives each thread its own nice value; elsewhere this does nothing.
    Returns whether it took effect."""
    get_id = getattr(threading, "get_native_id", None)
    if get_id is None or not hasattr(os, "setpriority"):
        return False
    try:
        os.setpriority(os.PRIO_PROCESS, get_id(), niceness)
    except OSError:
        return False
    return True


def mark_background_thread() -> None:
    """The calling thread does background work: its :func:`pause_point` calls reach the pause hook."""
    _background.on = True


def set_pause_hook(hook) -> None:
    """What background threads call between two steps of their work (None: nothing).  The server sets
    one that waits while students' requests run (ui/fair.py): in one Python process a busy background
    thread makes every request wait for the interpreter, however low its CPU priority."""
    _pause_hook[:] = [hook] if hook is not None else []


@contextmanager
def _for_this_thread(name: str, value) -> Iterator[None]:
    """Attribute `name` of this thread's background state set to `value` while inside."""
    before = getattr(_background, name, None)
    setattr(_background, name, value)
    try:
        yield
    finally:
        setattr(_background, name, before)


def work_in_child(cpu_seconds: Callable[[], float]) -> ContextManager[None]:
    """While inside, this thread's work runs in a child process whose CPU seconds so far `cpu_seconds()`
    says (knn_core.worker): :func:`work_cpu_time` counts them, so the server's background budget does."""
    return _for_this_thread("child_cpu", cpu_seconds)


def work_cpu_time() -> float:
    """CPU seconds of the calling thread's work: its own, plus its child process's (:func:`work_in_child`).
    A search relayed to a child uses next to no CPU in the relaying thread itself."""
    child = getattr(_background, "child_cpu", None)
    return time.thread_time() + (child() if child is not None else 0.0)


def stop_check(check) -> ContextManager[None]:
    """While inside, every :func:`pause_point` on this thread calls `check` first, which may raise to
    stop the work (a job queue's job nobody waits for any more: knn_core.jobs)."""
    return _for_this_thread("check", check)


def pause_point() -> None:
    """Between two steps of long work: stop here if this thread's work was cancelled (:func:`stop_check`);
    on a background thread, let the server's requests go first."""
    check = getattr(_background, "check", None)
    if check is not None:
        check()
    if _pause_hook and getattr(_background, "on", False):
        _pause_hook[0]()
