"""loadtest/run_room on a small class: every acknowledged drawing is in the database, also after the server
was killed with SIGKILL mid-run and restarted (behaviour only: the timings are the load test's business)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow


def test_a_server_killed_mid_class_loses_no_acknowledged_drawing(tmp_path):
    from loadtest.run_room import main

    out = tmp_path / "room.json"
    assert main(["--students", "3", "--seconds", "25", "--every", "3", "--kill-at", "10", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["restart"] is not None and r["restart"][0] >= 10  # it was killed, and came back
    assert r["acknowledged"] > 0 and r["acknowledged_missing_from_db"] == 0
    assert r["rows"] >= r["acknowledged"]  # a send cut off by the kill may be stored without its acknowledgement
    assert r["errors"] == 0 and r["server_tracebacks"] == 0  # errors only while the server was down
    assert r["errors_during_restart"] > 0  # the students did notice the outage
    assert r["acknowledged_not_in_wall_data"] == 0  # what the wall reads from the store: all of them
    assert r["never_on_wall"] == 0  # a small class: the wall, reconnected, showed every one on the screen
