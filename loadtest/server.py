"""Start and stop a local `streamlit run` server, and watch its memory.

Only ever binds and talks to 127.0.0.1.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from knn_core.worker import process_cpu_seconds as cpu_seconds  # noqa: F401  (one process's CPU seconds, re-exported)

ROOT = Path(__file__).resolve().parent.parent


PORTS_ENV = "KNN_PORTS"  # e.g. "8620-8629": servers started here take free ports from this range only


def free_port() -> int:
    """A free local port: any, or the first free one of $KNN_PORTS (a shared machine's allotted range)."""
    span = os.environ.get(PORTS_ENV, "").strip()
    if span:
        lo, _, hi = span.partition("-")
        for port in range(int(lo), int(hi or lo) + 1):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
        raise RuntimeError(f"no free port in {PORTS_ENV}={span}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`streamlit run SCRIPT` on 127.0.0.1:port, as a context manager.

    ``with Server("app.py") as srv: srv.url, srv.pid, srv.memory()``
    """

    def __init__(self, script: str = "app.py", port: int | None = None, log_path: str | None = None,
                 env: dict | None = None, start_timeout: float = 90):
        self.script = script
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path) if log_path else Path(f"/tmp/knn-loadtest-{self.port}.log")
        self.env = env
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Server":
        cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / self.script),
               "--server.headless", "true", "--server.port", str(self.port),
               "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none"]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1", **(self.env or {})})
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}: see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"streamlit not healthy after {self.start_timeout} s: see {self.log_path}")
            time.sleep(0.25)

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def memory(self) -> dict:
        """VmRSS and VmHWM (peak RSS) of the server process, in MB."""
        return read_memory(self.pid)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def read_memory(pid: int) -> dict:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value, _unit = line.split()
                out[key[:-1]] = int(value) / 1024
    return out


def _stat_fields(pid) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (fields[1] is the parent's pid)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def _cpu_of(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process with its children, living or ended: the server with the worker
    processes it runs its searches in (knn_core.worker).  Ended children count once waited for."""
    fields = _stat_fields(pid)
    ended_children = (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    return _cpu_of(fields) + ended_children + descendants_cpu_seconds(pid)


def tree_rss_mb(pid: int) -> float:
    """RSS of a process and its living descendants together, in MB (the server and its workers)."""
    total = read_memory(pid)["VmRSS"]
    for child in _descendants(pid):
        try:
            total += read_memory(child).get("VmRSS", 0.0)
        except OSError:
            pass
    return total


def _descendants(root: int, exclude: tuple[int, ...] = ()) -> dict[int, list[str]]:
    """The living descendants of process `root` with their /proc stat fields, leaving out the processes
    in `exclude` and their descendants."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stats[int(entry)] = _stat_fields(entry)
            except OSError:
                continue
    parent = {pid: int(fields[1]) for pid, fields in stats.items()}
    out = {}
    for pid, fields in stats.items():
        p = pid
        while p in parent and p != root and p not in exclude and p > 1:
            p = parent[p]
        if p == root and pid != root:
            out[pid] = fields
    return out


def descendants_cpu_seconds(root: int, exclude: tuple[int, ...] = ()) -> float:
    """CPU seconds used so far by all living descendants of process `root` (e.g. the browsers we
    started), leaving out the processes in `exclude` and their descendants (e.g. our servers)."""
    return sum(_cpu_of(fields) for fields in _descendants(root, exclude).values())


class MemoryWatch:
    """Polls the RSS of a process and its descendants every `interval` s in a thread; .peak_mb, .samples."""

    def __init__(self, pid: int, interval: float = 0.5):
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic() - t0, tree_rss_mb(self.pid)))
            except (OSError, KeyError):
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> "MemoryWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return max((mb for _, mb in self.samples), default=float("nan"))
