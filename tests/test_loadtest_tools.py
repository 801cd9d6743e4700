"""The load test's tools: its measuring helpers (loadtest/server.py), its round plan, and a small run."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loadtest.server import cpu_seconds, descendants_cpu_seconds

ROOT = Path(__file__).resolve().parents[1]

# A parent that starts two children, each burning ~0.3 s of CPU and then sleeping; the parent
# prints their pids and sleeps too, so the CPU figures stop moving once both are asleep.
FAMILY = r"""
import subprocess, sys
BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\nprint('done', flush=True)\ntime.sleep(60)"
kids = [subprocess.Popen([sys.executable, "-c", BURN], stdout=subprocess.PIPE, text=True) for _ in range(2)]
for k in kids:
    k.stdout.readline()
print(*[k.pid for k in kids], flush=True)
import time; time.sleep(60)
"""


def wait_until_still(read, step: float = 0.05, timeout: float = 30.0) -> None:
    """Poll read() until two readings `step` seconds apart agree (the processes are asleep)."""
    deadline = time.monotonic() + timeout
    last = read()
    while time.monotonic() < deadline:
        time.sleep(step)
        now = read()
        if now == last:
            return
        last = now
    raise AssertionError(f"still moving after {timeout} s")


def test_descendants_cpu_seconds_counts_children_and_leaves_out_the_excluded():
    parent = subprocess.Popen([sys.executable, "-c", FAMILY], stdout=subprocess.PIPE, text=True)
    first = second = None
    try:
        first, second = map(int, parent.stdout.readline().split())
        wait_until_still(lambda: descendants_cpu_seconds(parent.pid))  # everyone asleep now
        everything = descendants_cpu_seconds(parent.pid)
        without_first = descendants_cpu_seconds(parent.pid, exclude=(first,))
        assert everything >= 0.55  # both children's burn (the parent's own CPU is not counted)
        assert abs((everything - without_first) - cpu_seconds(first)) < 1e-9
        assert cpu_seconds(first) >= 0.28 and cpu_seconds(second) >= 0.28
        assert abs(descendants_cpu_seconds(parent.pid, exclude=(first, second))) < 1e-9
    finally:
        for child in (first, second):
            if child is not None:
                os.kill(child, signal.SIGKILL)
        parent.kill()
        parent.wait()


def test_mixed_rounds_time_both_kinds_at_once_and_every_page_draws_on_both():
    from loadtest.run_browsers import round_plan

    for pages in (2, 5, 6):
        first, second = round_plan("mixed", pages)
        assert len(first) == len(second) == pages
        assert {first.count("app") - first.count("bare"), second.count("app") - second.count("bare")} <= {-1, 0, 1}
        assert "app" in first and "bare" in first  # both kinds under the same load, in every phase
        assert all({a, b} == {"app", "bare"} for a, b in zip(first, second))  # each page draws on each kind
    assert round_plan("phases", 3) == [["bare"] * 3, ["app"] * 3]


@pytest.mark.slow
def test_load_test_smoke(server_url, tmp_path):
    """The protocol-level load test, small, against the session's server: 3 students, a teacher and the
    garbage session for a few seconds; every stroke answered, every garbage request answered with a message.
    (Its targets, --check, are for real runs: timings are not a test's business.)"""
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "-m", "loadtest.run_protocol", "--url", server_url, "--sessions", "3", "--duration", "6",
         "--solo", "2", "--ramp", "1", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["errors"] == 0, result["error_samples"]
    assert result["strokes"] > 0 and result["correct_fraction"] > 0.5
    assert result["garbage_checks"] > 0 and result["garbage_answered"] == result["garbage_checks"], \
        result["garbage_failures"]
