"""Several Streamlit processes behind nginx on one machine: ``scripts/serve.sh --workers N``.

    python -m deploy.serve --workers 2 --port 8620 [--database-url URL] [--upstream HOST:PORT ...]

One Streamlit process runs Python on one core; a school with several classes drawing at once
outgrows it.  This starts N processes of ``streamlit run app.py`` on ports P+1..P+N (127.0.0.1,
headless, the repository's .streamlit config, one shared cookie secret) and nginx on port P with
deploy/nginx.conf.template rendered into a run folder (WebSocket upgrade, sticky sessions by a
route cookie, the upload limit, passive health checks).  Each process holds its own copy of the
dataset and fitted classifiers; they share the disk cache ($KNN_DIGIT_LAB_CACHE) and, with
--database-url, the class room database ($KNN_LAB_DATABASE_URL).

A supervisor thread checks every process's /_stcore/health every second, answers nginx's
/healthz with what it saw, and restarts a process that died.  Ctrl-C or SIGTERM stops them all.

--upstream adds processes that run elsewhere (other machines started with
``scripts/serve.sh --workers N --listen 0.0.0.0`` or plain ``streamlit run``): nginx then
balances over the local and the remote ones alike; see the README, "Running it for a school".
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import secrets
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from knn_core.room.config import DATABASE_URL_ENV as DATABASE_ENV  # the class room store reads it

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).resolve().parent / "nginx.conf.template"

NGINX = os.environ.get("NGINX", "nginx")
CHECK_EVERY_S = 1.0
RESTART_AFTER_S = 2.0  # a dead process is restarted after this long (not in a tight loop)


@dataclass
class Worker:
    """One Streamlit process (local: we start it; remote: someone else does, we only check it)."""

    address: str  # host:port
    group: str  # its nginx upstream group and route-cookie value: w1, w2, ...
    local: bool = True
    proc: subprocess.Popen | None = None
    healthy: bool = False
    restarts: int = 0
    died_at: float | None = None
    log_path: Path | None = None
    down: bool = False  # out of nginx's lists: it died, and is not back and warm yet

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None


def render_nginx_conf(workers: list[Worker], listen: str, run_dir: Path) -> str:
    """deploy/nginx.conf.template with this run's processes, port and folder filled in."""
    upstreams, split, known, served = [], [], [], []
    for i, w in enumerate(workers):
        others = [o for o in workers if o is not w]
        lines = [f"    upstream {w.group} {{", f"        server {w.address} {_peer(w)};"]
        # backups in a different order per group, so one dead process's sessions spread out
        for o in others[i:] + others[:i]:
            lines.append(f"        server {o.address} backup {_peer(o)};")
        upstreams.append("\n".join(lines + ["    }"]))
        share = "*" if i == len(workers) - 1 else f"{100 / len(workers):.2f}%"
        split.append(f"        {share} {w.group};")
        known.append(f"        {w.group} {w.group};")
        served.append(f'        "~(^|[ ,:]){_regex(w.address)}$" {w.group};')
    user = "user root;" if os.geteuid() == 0 else "# (not root: runs as the current user)"
    text = TEMPLATE.read_text()
    for name, value in {
        "@UPSTREAMS@": "\n".join(upstreams),
        "@SPLIT@": "\n".join(split),
        "@KNOWN_ROUTES@": "\n".join(known),
        "@SERVED@": "\n".join(served),
        "@LISTEN@": listen,
        "@USER@": user,
        "@RUN_DIR@": str(run_dir),
    }.items():
        text = text.replace(name, value)
    return text


def _peer(w: Worker) -> str:
    return "down" if w.down else "max_fails=1 fail_timeout=5s"


def _regex(address: str) -> str:
    return address.replace(".", r"\.")


def healthy(address: str, timeout: float = 2.0) -> bool:
    """Does the Streamlit process at host:port answer /_stcore/health with 200?"""
    try:
        with urllib.request.urlopen(f"http://{address}/_stcore/health", timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


def warm_up(address: str, timeout: float = 180.0) -> float:
    """Open the Draw page on this process and have one digit classified; the seconds it took.

    A process loads the dataset and fits the default classifier on its first session
    (ui.start_server): done here, before nginx sends it students, so nobody waits ~10 s for
    their first stroke, not even the students of a process that died.
    """
    import asyncio

    import numpy as np

    from loadtest.payloads import canvas_png
    from loadtest.protocol import Session

    bar = np.zeros((28, 28), np.uint8)
    bar[4:24, 13:16] = 255  # a "1"

    async def go() -> None:
        async with Session(f"http://{address}", timeout=timeout) as s:
            r = await s.draw(canvas_png(bar))
            if r.prediction is None:
                raise RuntimeError(f"warm-up of {address}: no prediction ({r.exceptions or r.alerts})")

    t0 = time.monotonic()
    asyncio.run(go())
    return time.monotonic() - t0


def nginx_path() -> str | None:
    return shutil.which(NGINX) or next((p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.path.exists(p)), None)


class _HealthServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@dataclass
class Stack:
    """N local Streamlit processes (+ remote ones) behind nginx, as a context manager.

    ``with Stack(workers_n=2, port=8620) as s: s.url, s.workers[0].pid, s.health()``
    """

    workers_n: int = 2
    port: int = 8620
    listen_host: str = "127.0.0.1"
    worker_host: str = "127.0.0.1"
    worker_ports: list[int] | None = None  # default: port+1 .. port+N
    upstreams: list[str] = field(default_factory=list)  # host:port of remote processes
    database_url: str | None = None
    run_dir: Path | None = None
    restart: bool = True
    proxy: bool = True  # False: only the processes (another machine's nginx lists them)
    env: dict | None = None
    start_timeout: float = 120.0
    workers: list[Worker] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        ports = self.worker_ports or [self.port + i for i in range(1, self.workers_n + 1)]
        if len(ports) != self.workers_n:
            raise ValueError(f"{self.workers_n} workers but {len(ports)} worker ports")
        addresses = [(f"127.0.0.1:{p}", True) for p in ports] + [(a, False) for a in self.upstreams]
        if not addresses:
            raise ValueError("nothing to serve: give --workers N (N >= 1) or --upstream HOST:PORT")
        self.workers = [Worker(a, f"w{i + 1}", local) for i, (a, local) in enumerate(addresses)]
        # one for all (set the same STREAMLIT_SERVER_COOKIE_SECRET on every machine): any process accepts any cookie
        self.cookie_secret = os.environ.get("STREAMLIT_SERVER_COOKIE_SECRET") or secrets.token_urlsafe(32)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._nginx: subprocess.Popen | None = None
        self._health_server: _HealthServer | None = None
        self._own_run_dir = self.run_dir is None

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.listen_host in ("0.0.0.0", "::") else self.listen_host
        return f"http://{host}:{self.port}"

    def __enter__(self) -> "Stack":
        nginx = nginx_path()
        if nginx is None and self.proxy:
            raise RuntimeError("nginx not found (Debian: apt-get install nginx)")
        if self.run_dir is None:
            self.run_dir = Path(tempfile.mkdtemp(prefix="knn-serve-"))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            for w in self.workers:
                if w.local:
                    self._start_worker(w)
            self._wait_healthy()
            self._warm_up([w for w in self.workers if w.local])
            if self.proxy:
                self._start_proxy(nginx)
            threading.Thread(target=self._supervise, name="knn-serve-supervisor", daemon=True).start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start_proxy(self, nginx: str) -> None:
        """The /healthz answerer, then nginx with the rendered configuration."""
        self._start_health_server()
        conf = self._write_nginx_conf()
        with open(self.run_dir / "nginx.out", "wb") as out:
            self._nginx = subprocess.Popen(
                [
                    nginx,
                    "-p",
                    str(self.run_dir),
                    "-c",
                    str(conf),
                    "-e",
                    str(self.run_dir / "error.log"),
                    "-g",
                    "daemon off;",
                ],
                stdout=subprocess.DEVNULL,
                stderr=out,
                start_new_session=True,
            )
        self._wait_nginx()

    def _write_nginx_conf(self) -> Path:
        conf = self.run_dir / "nginx.conf"
        conf.write_text(render_nginx_conf(self.workers, f"{self.listen_host}:{self.port}", self.run_dir))
        return conf

    def _reload_nginx(self) -> None:
        """The processes' list changed: nginx rereads it (SIGHUP: open WebSockets stay where they are)."""
        if self._nginx is not None and self._nginx.poll() is None and not self._stop.is_set():
            self._write_nginx_conf()
            self._nginx.send_signal(signal.SIGHUP)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._nginx is not None and self._nginx.poll() is None:
            self._nginx.terminate()  # nginx's fast shutdown (open WebSockets would hold a graceful one)
            try:
                self._nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._nginx.pid, signal.SIGKILL)  # the master and its worker
                self._nginx.wait()
        if self._health_server is not None:
            self._health_server.shutdown()
            self._health_server.server_close()
        for w in self.workers:
            self._stop_worker(w)
        if self._own_run_dir and self.run_dir is not None and not os.environ.get("KNN_SERVE_KEEP_RUN_DIR"):
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def _start_worker(self, w: Worker) -> None:
        cmd = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "app.py"),
            "--server.headless",
            "true",
            "--server.address",
            self.worker_host,
            "--server.port",
            str(w.port),
            "--browser.gatherUsageStats",
            "false",
            "--server.fileWatcherType",
            "none",
        ]
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "STREAMLIT_SERVER_COOKIE_SECRET": self.cookie_secret,
            **(self.env or {}),
        }
        if self.database_url:
            env[DATABASE_ENV] = self.database_url
        w.log_path = self.run_dir / f"{w.group}.log"
        with open(w.log_path, "ab") as log:
            w.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        w.died_at = None

    def _stop_worker(self, w: Worker) -> None:
        if w.proc is None or w.proc.poll() is not None:
            return
        try:
            os.killpg(w.proc.pid, signal.SIGTERM)
            w.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(w.proc.pid, signal.SIGKILL)
            w.proc.wait()
        except ProcessLookupError:
            pass

    def _wait_healthy(self, workers: list[Worker] | None = None) -> None:
        deadline = time.monotonic() + self.start_timeout
        pending = list(self.workers if workers is None else workers)
        while pending:
            for w in list(pending):
                if w.proc is not None and w.proc.poll() is not None:
                    raise RuntimeError(f"streamlit {w.group} exited with {w.proc.returncode}: see {w.log_path}")
                if healthy(w.address):
                    w.healthy = True
                    pending.remove(w)
            if pending and time.monotonic() > deadline:
                names = ", ".join(f"{w.group} ({w.address})" for w in pending)
                raise RuntimeError(f"not healthy after {self.start_timeout:.0f} s: {names}")
            time.sleep(0.25)

    def _warm_up(self, workers: list[Worker]) -> None:
        """warm_up() the processes side by side."""
        errors: list[BaseException] = []

        def one(w: Worker) -> None:
            try:
                warm_up(w.address, timeout=self.start_timeout)
            except BaseException as exc:  # reported below, with the process's name
                errors.append(RuntimeError(f"{w.group} ({w.address}): {exc}; see {w.log_path}"))

        threads = [threading.Thread(target=one, args=(w,), daemon=True) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    def _wait_nginx(self) -> None:
        deadline = time.monotonic() + 20
        while True:
            if self._nginx.poll() is not None:
                err = (self.run_dir / "nginx.out").read_text(errors="replace")
                err += (
                    (self.run_dir / "error.log").read_text(errors="replace")
                    if (self.run_dir / "error.log").exists()
                    else ""
                )
                raise RuntimeError(f"nginx exited with {self._nginx.returncode}: {err.strip()[-2000:]}")
            if self.health(timeout=1)["status"] != "down":
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx not answering on {self.url}/healthz: see {self.run_dir}/error.log")
            time.sleep(0.1)

    # ------------------------------------------------------------------ health
    def _supervise(self) -> None:
        """Check every process each second; restart a local one that died (after RESTART_AFTER_S)."""
        while not self._stop.wait(CHECK_EVERY_S):
            for w in self.workers:
                exited = w.local and w.proc is not None and w.proc.poll() is not None
                w.healthy = not exited and healthy(w.address, timeout=CHECK_EVERY_S)
                if exited and self.restart and not self._stop.is_set():
                    with self._lock:
                        if w.died_at is None:
                            w.died_at = time.monotonic()
                            w.down = True  # its browsers go to the others until it is back and warm
                            self._reload_nginx()
                            print(
                                f"knn-serve: {w.group} ({w.address}) exited with {w.proc.returncode}; "
                                f"restarting in {RESTART_AFTER_S:.0f} s",
                                file=sys.stderr,
                                flush=True,
                            )
                        elif time.monotonic() - w.died_at >= RESTART_AFTER_S:
                            w.restarts += 1
                            self._start_worker(w)
                            threading.Thread(target=self._warm_restarted, args=(w,), daemon=True).start()

    def _warm_restarted(self, w: Worker) -> None:
        try:
            self._wait_healthy([w])
            self._warm_up([w])
            w.down = False
            self._reload_nginx()
        except RuntimeError as exc:  # it died again: the supervisor sees that and tries again
            if not self._stop.is_set():  # (or we are stopping)
                print(f"knn-serve: {w.group} did not come back: {exc}", file=sys.stderr, flush=True)

    def status(self) -> dict:
        """What the supervisor last saw: {"status": "ok"|"degraded"|"down", "workers": {...}}."""
        workers = {
            w.group: {"address": w.address, "healthy": w.healthy, "pid": w.pid, "restarts": w.restarts}
            for w in self.workers
        }
        n = sum(w.healthy for w in self.workers)
        state = "ok" if n == len(self.workers) else ("degraded" if n else "down")
        return {"status": state, "healthy": n, "total": len(self.workers), "workers": workers}

    def _start_health_server(self) -> None:
        stack = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                body = stack.status()
                data = json.dumps(body).encode()
                self.send_response(503 if body["status"] == "down" else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

            def address_string(self) -> str:
                return "nginx"

        sock = self.run_dir / "health.sock"
        sock.unlink(missing_ok=True)
        self._health_server = _HealthServer(str(sock), Handler)
        os.chmod(sock, 0o666)  # nginx's worker may run as another user
        threading.Thread(target=self._health_server.serve_forever, daemon=True).start()

    def health(self, timeout: float = 5.0) -> dict:
        """GET /healthz through nginx (the supervisor's view), as a dict; status "down" if unreachable."""
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=timeout) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as exc:
            try:
                return json.loads(exc.read())
            except ValueError:
                return {"status": "down", "error": f"HTTP {exc.code}"}
        except (OSError, ValueError) as exc:
            return {"status": "down", "error": str(exc)}

    def worker(self, group: str) -> Worker:
        """The process behind a route cookie's value (w1, w2, ...)."""
        for w in self.workers:
            if w.group == group:
                return w
        raise KeyError(f"no worker {group!r} (have {[w.group for w in self.workers]})")

    def wait_status(self, status: str, timeout: float = 120.0) -> dict:
        """Wait until /healthz reports this status ("ok" after a restart, say); the report."""
        deadline = time.monotonic() + timeout
        while True:
            report = self.health()
            if report["status"] == status or time.monotonic() > deadline:
                return report
            time.sleep(0.25)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/serve.sh", description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=2, help="Streamlit processes on this machine (default 2)")
    p.add_argument("--port", type=int, default=8620, help="nginx's port; the processes use the next N")
    p.add_argument(
        "--listen",
        default="127.0.0.1",
        help="address nginx listens on (0.0.0.0: the whole network; default this machine only)",
    )
    p.add_argument(
        "--worker-host",
        default="127.0.0.1",
        help="address the processes listen on (0.0.0.0 when another machine's nginx reaches them)",
    )
    p.add_argument(
        "--upstream",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="a Streamlit process on another machine to balance over too (repeat)",
    )
    p.add_argument(
        "--database-url",
        default=os.environ.get(DATABASE_ENV),
        help=f"class room database for all processes (default ${DATABASE_ENV}, else SQLite)",
    )
    p.add_argument(
        "--no-nginx",
        action="store_true",
        help="start only the processes (for a machine behind another machine's nginx)",
    )
    args = p.parse_args(argv)
    if args.workers < 0 or (args.workers == 0 and not args.upstream):
        p.error("--workers must be >= 1 (or 0 with --upstream)")
    stack = Stack(
        workers_n=args.workers,
        port=args.port,
        listen_host=args.listen,
        worker_host=args.worker_host,
        upstreams=args.upstream,
        database_url=args.database_url,
        proxy=not args.no_nginx,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with stack:
        where = (
            f"{stack.url} (health: {stack.url}/healthz)"
            if stack.proxy
            else "processes at " + " ".join(w.address for w in stack.workers)
        )
        print(
            f"kNN Digit Lab: {where}; {len(stack.workers)} processes, logs in {stack.run_dir}; Ctrl-C stops", flush=True
        )
        stop.wait()
        print("stopping...", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
