"""Heavy work in a child process at idle priority: it holds neither the server's interpreter nor its CPU.

A Streamlit server runs every session's script in threads of one Python
process. A search of minutes in one of those threads, even at the lowest
thread priority and pausing between chunks, makes each student's stroke wait
for the interpreter (the GIL) and shares the server's CPU weight with it. So
the job queues' searches and fits run as a :class:`Task` in a child process:

- its own interpreter (one BLAS and OpenMP thread), started once per job
  queue worker and reused; it exits by itself after ``IDLE_EXIT_S`` without
  work, so its memory (~0.3 GB while it searches) goes back too;
- its own session, hence its own scheduling group on Linux (the kernel's
  autogroup: without it a child at nice 19 still shares the server's group
  weight with the server), at nice 19 and SCHED_IDLE: it takes what the class
  leaves;
- stopped (SIGSTOP) while its job queue's thread pauses at a pause point, and its CPU counted as
  that thread's work (``knn_core.threads.work_in_child``): the server's background budget (ui/fair.py)
  holds it as it holds background threads. SCHED_IDLE alone is not enough: each time a student's
  request wakes up, it may wait for the running child's time slice to end, and a stroke wakes up
  dozens of times (measured: the analysis-page searches alone took the class's p95 from 98 to 146 ms);
- killed at once when its job is cancelled (the job queue's progress callback
  raises ``JobCancelled``; the child sends progress, and a heartbeat while a
  step runs, so this is noticed within ``HEARTBEAT_S``), and dying with the
  server (``PR_SET_PDEATHSIG``).

Arguments and results travel pickled between this program and its own child;
nothing a web user sent is ever unpickled (uploads are data inside them).
``KNN_LAB_WORKER_PROCESS=0`` runs tasks in the calling thread instead.
"""
from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

from .errors import KnnLabError
from .threads import work_in_child

ENV = "KNN_LAB_WORKER_PROCESS"
IDLE_EXIT_S = 30.0  # a child with no work for this long exits, its memory with it (the next task starts one)
HEARTBEAT_S = 0.5  # a busy child says so this often: a cancelled job's child is killed within it
_ONE_THREAD = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def in_child_processes() -> bool:
    """Whether tasks run in a child process ($KNN_LAB_WORKER_PROCESS, default yes)."""
    return os.environ.get(ENV, "1").strip() not in ("0", "no", "false", "off")


@dataclass(frozen=True)
class Task:
    """``fn(*args, progress=..., **kwargs)`` to run in the calling thread's child process.

    A job queue's work: call it with the queue's progress callback. `fn` must be
    importable by name (a module-level function) and its arguments picklable.
    """

    fn: Callable
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    def __call__(self, progress: Optional[Callable[[int, int], None]] = None) -> Any:
        if not in_child_processes():
            return self.fn(*self.args, progress=progress, **self.kwargs)
        return _thread_child().run(self, progress)


def task(fn: Callable, *args, **kwargs) -> Task:
    return Task(fn, args, kwargs)


_children = threading.local()  # .child: each thread's (each job queue worker's) own child process


def _thread_child() -> "ChildProcess":
    child = getattr(_children, "child", None)
    if child is None:
        child = _children.child = ChildProcess()
    return child


def stop_thread_child() -> None:
    """Stop the calling thread's child process, if it has one (a job queue worker that is leaving)."""
    child = getattr(_children, "child", None)
    if child is not None:
        child.stop()
        _children.child = None


class _ChildGone(Exception):
    def __init__(self, code: int, heard: bool):
        super().__init__(code)
        self.code, self.heard = code, heard


class ChildProcess:
    """One child Python process running tasks one at a time (see the module docstring)."""

    def __init__(self) -> None:
        self._proc: Optional[subprocess.Popen] = None

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def run(self, work: Task, progress: Optional[Callable[[int, int], None]] = None) -> Any:
        """The task's result (or its exception, raised here); progress(done, total) as it goes. An
        exception from `progress` (a cancellation) kills the child and propagates."""
        for attempt in (1, 2):  # a child that exited idle just as it was asked: once more, with a new one
            proc = self._start()
            requests = proc.stdin
            assert requests is not None  # a pipe (_start)
            try:
                try:
                    pickle.dump(("run", work), requests, protocol=pickle.HIGHEST_PROTOCOL)
                    requests.flush()
                except OSError:  # it has gone: its exit code says how
                    self._proc = None
                    raise _ChildGone(proc.wait(), False) from None
                return self._answer(proc, progress)
            except _ChildGone as gone:
                if attempt == 2 or gone.heard or gone.code != 0:
                    raise KnnLabError(f"the background process stopped unexpectedly (exit code {gone.code})") from None
        raise AssertionError("unreachable")

    def _answer(self, proc: subprocess.Popen, progress) -> Any:
        with work_in_child(lambda: _cpu_seconds(proc.pid)):
            return self._relay(proc, progress)

    def _relay(self, proc: subprocess.Popen, progress) -> Any:
        done = total = 0
        heard = False
        replies = proc.stdout
        assert replies is not None  # a pipe (_start)
        while True:
            try:
                message = pickle.load(replies)
            except (EOFError, pickle.UnpicklingError, OSError):
                self._proc = None
                raise _ChildGone(proc.wait(), heard) from None
            heard = True
            if message[0] == "done":
                return message[1]
            if message[0] == "failed":
                raise message[1]
            if message[0] == "progress":
                done, total = message[1:]
            if progress is not None:
                try:
                    with _stopped(proc):  # the progress callback may pause (the server's background budget)
                        progress(done, total)
                except BaseException:
                    self.stop()  # cancelled: the child's work is not wanted any more
                    raise

    def _start(self) -> subprocess.Popen:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        # the modules this process imports, importable there too (the app's folder, a test's)
        path = os.pathsep.join(p or os.getcwd() for p in sys.path)
        env = {**os.environ, **_ONE_THREAD, "PYTHONPATH": path}
        # freed big arrays go back to the system at once, as in the server (ui.resources.give_freed_memory_back)
        env.setdefault("MALLOC_MMAP_THRESHOLD_", "1048576")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "knn_core.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,  # its own session: its own scheduling group (see the module docstring)
        )
        return self._proc

    def stop(self) -> None:
        """Kill the child (a new one starts with the next task)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()


@contextmanager
def _stopped(proc: subprocess.Popen) -> Iterator[None]:
    """The child stopped (SIGSTOP) while inside, continued afterwards (POSIX; elsewhere it runs on)."""
    stop, cont = getattr(signal, "SIGSTOP", None), getattr(signal, "SIGCONT", None)
    if stop is None or cont is None or proc.poll() is not None:
        yield
        return
    try:
        os.kill(proc.pid, stop)
    except OSError:
        yield
        return
    try:
        yield
    finally:
        try:
            os.kill(proc.pid, cont)
        except OSError:  # it has gone meanwhile: reading its answer says how
            pass


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process `pid` (all its threads) has used so far (Linux's /proc; raises
    OSError where that cannot be read: the process has gone, or this is not Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()  # after the command name, which may hold anything
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """process_cpu_seconds, or 0 where it cannot be read (the budget then charges nothing for it)."""
    try:
        return process_cpu_seconds(pid)
    except (OSError, ValueError, IndexError):
        return 0.0


# ------------------------------------------------------------------------------------------------ the child
def _lowest_priority() -> None:
    """nice 19 for this process's scheduling group and itself, SCHED_IDLE; die with the parent (Linux)."""
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write("19")
    except OSError:
        pass
    try:
        os.nice(19)
    except OSError:
        pass
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except OSError:
            pass
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _serve(requests, replies) -> None:
    lock = threading.Lock()
    busy = threading.Event()

    def send(message) -> None:
        with lock:
            pickle.dump(message, replies, protocol=pickle.HIGHEST_PROTOCOL)
            replies.flush()

    def heartbeat() -> None:
        while True:
            time.sleep(HEARTBEAT_S)
            if busy.is_set():
                send(("alive",))

    threading.Thread(target=heartbeat, daemon=True).start()
    parent = os.getppid()

    def idle_exit() -> None:  # no request for IDLE_EXIT_S: leave (the parent starts another when needed)
        while True:
            time.sleep(1.0)
            if os.getppid() != parent or (not busy.is_set() and time.monotonic() - last[0] > IDLE_EXIT_S):
                os._exit(0)

    last = [time.monotonic()]
    threading.Thread(target=idle_exit, daemon=True).start()
    while True:
        try:
            _, work = pickle.load(requests)
        except EOFError:
            return
        except Exception as exc:  # noqa: BLE001 - e.g. a function this process cannot import
            send(("failed", KnnLabError(f"the background process could not read its task: {exc}")))
            return  # what is left of the request cannot be read: a new child takes the next one
        busy.set()
        try:
            result = work.fn(*work.args, progress=lambda d, t: send(("progress", d, t)), **work.kwargs)
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the page that waits
            try:
                pickle.dumps(exc)
            except Exception:  # noqa: BLE001 - an exception that does not pickle goes back as its text
                exc = KnnLabError(f"{type(exc).__name__}: {exc}")
            send(("failed", exc))
        else:
            send(("done", result))
        busy.clear()
        last[0] = time.monotonic()


def main() -> None:
    _lowest_priority()
    replies = os.fdopen(os.dup(1), "wb")  # the reply channel; print() and libraries' output go to stderr
    os.dup2(2, 1)
    _serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
