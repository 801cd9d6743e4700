"""The load test's attacking browser (loadtest/attack_browser.py, issue #16) for a few seconds against a
server of its own: its tabs get answers, never an exception, and the students beside it draw on."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_a_short_browser_attack_is_answered_without_exceptions(chromium_path, tmp_path):
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "-m", "loadtest.run_browsers", "--design", "attacker", "--pages", "2", "--seconds", "20",
         "--rounds", "1", "--idle", "5", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = json.loads(out.read_text())
    a = r["attacker"]
    assert a["checks"] > 0 and a["failures"] == 0 and a["session_errors"] == [], \
        a["failure_samples"] + a["session_errors"]
    assert any(case.startswith("files: upload 3000x3000") for case in a["cases"])  # refused with a message
    assert r["quiet"]["errors"] == 0 and r["attacked"]["errors"] == 0, r["quiet"]["error_samples"] + r["attacked"]["error_samples"]
    assert r["quiet"]["strokes"] > 0 and r["attacked"]["strokes"] > 0  # the student drew beside the attacker
    assert r["server_tracebacks"] == 0
    assert len(r["idle"]) == 1 and r["peak_rss_mb"] > 0
