"""The load test's attacker (loadtest/attacker.py, issue #16): what it sends is what it claims to send,
and a short attack against a real server is answered with messages, never an exception."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from PIL import Image

from knn_core import ImageError
from knn_core.photo import canvas_from_png, photo_to_mnist_stages
from knn_core.search import METRICS
from loadtest import attacker
from loadtest.protocol import RunResult
from ui.settings import CLASSIC, METHODS, TRAIN_SIZES, settings_from_query

ROOT = Path(__file__).resolve().parents[1]


def _query(link: str) -> dict:
    return dict(urllib.parse.parse_qsl(link))


def test_the_links_cover_every_method_and_metric_at_every_size_and_are_all_valid():
    links = attacker.all_settings()
    seen = set()
    for link in links:
        values, warnings = settings_from_query(_query(link))
        assert warnings == [], link
        seen.add((values["method"], values["metric"] if values["method"] == CLASSIC else None, values["size"]))
    expected = {(CLASSIC, m, n) for m in METRICS for n in TRAIN_SIZES}
    expected |= {(m, None, n) for m in METHODS if m != CLASSIC for n in TRAIN_SIZES}
    assert seen == expected
    assert len(links) == len(expected)  # each once: 7 sizes x (4 metrics + every preset)
    assert _query(links[0])["size"] == "60000"  # the biggest classifiers first


def test_the_search_targets_are_app_pages_with_valid_slow_settings():
    targets = attacker.search_targets()
    pages = {p for p, _ in targets}
    assert pages == set(attacker.ANALYSIS_PAGES) | {"baselines"}
    app = (ROOT / "app.py").read_text()
    for page in pages:
        assert f'"pages/{page}.py"' in app
    for _, query in targets:
        values, warnings = settings_from_query(_query(query))
        assert warnings == [], query
        assert "size" in values


def _size(png: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(png)) as img:
        return img.size


def test_the_hostile_files_are_what_they_are_named_and_refused_or_accepted_as_the_attacker_expects():
    rounds = attacker.file_rounds(2)
    assert rounds[0]["canvas 1000x1000 frame"] != rounds[1]["canvas 1000x1000 frame"]  # no two rounds alike
    files = rounds[0]
    assert _size(files["upload 3000x3000 alpha frame"]) == (3000, 3000)
    assert _size(files["upload 2000x2000 alpha frame"]) == (2000, 2000)
    assert _size(files["canvas 1400x1400"]) == (1400, 1400)
    assert _size(files["canvas 400x10000 strip"]) == (400, 10_000)
    assert _size(files["canvas 1000x1000 frame"]) == (1000, 1000)
    with Image.open(io.BytesIO(files["upload 2000x2000 alpha frame"])) as img:
        assert img.mode == "RGBA" and img.getchannel("A").getextrema() == (0, 255)  # the frame is in the alpha
    with pytest.raises(ImageError):
        photo_to_mnist_stages(files["upload 3000x3000 alpha frame"])
    assert photo_to_mnist_stages(files["upload 2000x2000 alpha frame"]).centred.shape == (28, 28)
    for case in ("canvas 1400x1400", "canvas 400x10000 strip"):
        with pytest.raises(ImageError):
            canvas_from_png(files[case])
    assert canvas_from_png(files["canvas 1000x1000 frame"]).shape == (1000, 1000, 4)


def test_answers_are_judged_by_what_the_page_shows():
    refused = RunResult(started=0.0, alerts=[("error", "Can't read this drawing: it is 1,400x1,400 pixels")])
    assert attacker.answered_by_message(refused) == (True, "Can't read this drawing: it is 1,400x1,400 pixels")
    crashed = RunResult(started=0.0, alerts=[("error", "x")], exceptions=["ValueError: boom"])
    assert attacker.answered_by_message(crashed)[0] is False
    assert attacker.answered(crashed)[0] is False
    assert attacker.no_exception(crashed)[0] is False
    silent = RunResult(started=0.0)
    assert attacker.answered_by_message(silent)[0] is False
    assert attacker.answered(silent) == (False, "neither a prediction nor a message")
    predicted = RunResult(started=0.0, metrics={"Prediction": "7"})
    assert attacker.answered(predicted) == (True, "prediction 7")
    assert attacker.answered_by_message(predicted)[0] is False  # refused input must say so
    assert attacker.no_exception(RunResult(started=0.0, n_messages=3)) == (True, "3 messages, still running")


@pytest.mark.slow
def test_a_short_attack_on_a_server_of_its_own_is_answered_without_exceptions(tmp_path):
    """The attacker's three tabs for a few seconds, with two students, against a server of its own (the
    attack fits classifiers and queues searches: not on the session's shared server)."""
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "-m", "loadtest.run_protocol", "--attacker", "--sessions", "2", "--teachers", "0",
         "--no-garbage", "--duration", "15", "--solo", "1", "--ramp", "1", "--press-wait", "1", "--idle", "0",
         "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    a = result["attacker"]
    assert result["errors"] == 0, result["error_samples"]
    assert a["checks"] > 0 and a["failures"] == 0 and a["session_errors"] == [], \
        a["failure_samples"] + a["session_errors"]
    streams = {case.split(":")[0] for case in a["cases"]}
    assert streams == set(attacker.STREAMS)
    assert result["server_log_tracebacks"] == 0


def test_the_load_generator_builds_its_payloads_once_before_anything_is_timed():
    """Built as a phase started, the attacker's files (2.5 s) and the garbage session's huge PNG (0.9 s)
    stalled the load generator's event loop, and every stroke it was timing then looked that much slower."""
    from loadtest import run_protocol

    attacker.prepare()
    assert attacker.file_rounds() is attacker.file_rounds()
    assert attacker.all_settings() is attacker.all_settings()
    assert attacker.search_targets() is attacker.search_targets()
    assert run_protocol.huge_png() is run_protocol.huge_png()
    assert isinstance(attacker.file_rounds(), tuple)  # shared: nobody may change them
