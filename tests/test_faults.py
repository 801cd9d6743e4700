"""The app under a broken on-disk cache: missing, read-only, corrupt, or left half-written by a killed writer.

knn_core/cache.py's own tests (tests/test_cache.py) cover the cache alone; these
run the app (AppTest) with $KNN_DIGIT_LAB_CACHE pointing at the broken folder.
What the app keeps there is the map of the Neighbour vote page when the
shipped t-SNE map cannot be used, so the shipped file is pointed at a missing
path here: the page then computes a PCA map and caches it.  Each case must
show the page working, with a warning about the cache at most once per session.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import TIMEOUT, on_canvas, texts, vote_script
from streamlit.testing.v1 import AppTest

from knn_core import cache, embedding

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def drawing(mnist):
    return on_canvas(mnist.test_images[0])  # a 7


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """No shipped map, no warnings seen yet, no map in Streamlit's memory: the next run uses the disk cache."""
    monkeypatch.setattr(embedding, "SHIPPED", tmp_path / "no-shipped-map.npz")
    monkeypatch.setattr(cache, "_warned", set())
    monkeypatch.setattr(cache, "warnings_seen", [])
    from pages import neighbour_vote

    for f in (neighbour_vote.get_map, neighbour_vote.get_map_search, neighbour_vote._map_base):
        f.clear()
    yield
    for f in (neighbour_vote.get_map, neighbour_vote.get_map_search, neighbour_vote._map_base):
        f.clear()  # later tests get the shipped map again


def use_cache(monkeypatch, folder: Path) -> Path:
    monkeypatch.setenv(cache.CACHE_ENV, str(folder))
    return folder


def run_page(image) -> AppTest:
    at = AppTest.from_function(vote_script, default_timeout=TIMEOUT, kwargs={"image": image})
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert int(at.metric[0].value) == 7  # the page works
    assert any(c.startswith("A PCA map of 5,000") for c in texts(at.caption))
    return at


def cache_warnings(at: AppTest) -> list[str]:
    return [w for w in texts(at.warning) if w.startswith("On-disk cache")]


def map_entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("map-*.npz"))


# --------------------------------------------------------------------------------------- cases


def test_missing_cache_folder_is_created(fresh, monkeypatch, tmp_path, drawing):
    folder = use_cache(monkeypatch, tmp_path / "not" / "there" / "yet")
    at = run_page(drawing)
    assert cache_warnings(at) == []
    assert len(map_entries(folder)) == 1  # created and filled
    assert any("is missing: showing a PCA map" in w for w in texts(at.warning))  # says why it is PCA


def test_cache_folder_that_cannot_be_created_warns_once(fresh, monkeypatch, tmp_path, drawing):
    """A cache path under a regular file: mkdir fails even for root."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    use_cache(monkeypatch, blocker / "cache")
    at = run_page(drawing)
    warned = cache_warnings(at)
    assert len(warned) == 1 and "cannot be cached" in warned[0], texts(at.warning)
    at.run()  # the next stroke: no second warning
    assert not at.exception and cache_warnings(at) == []
    assert int(at.metric[0].value) == 7
    other = run_page(drawing)  # another session learns it once too, and the map is not recomputed
    assert len(cache_warnings(other)) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="running as root: chmod 0o500 does not stop root writing "
                    "(test_cache_folder_that_cannot_be_created_warns_once covers an unwritable cache)")
def test_read_only_cache_folder_warns_once(fresh, monkeypatch, tmp_path, drawing):
    folder = use_cache(monkeypatch, tmp_path / "ro")
    folder.mkdir()
    folder.chmod(0o500)
    try:
        at = run_page(drawing)
        warned = cache_warnings(at)
        assert len(warned) == 1 and "cannot be cached" in warned[0]
        at.run()
        assert cache_warnings(at) == []
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_entry_is_recomputed_with_one_warning(fresh, monkeypatch, tmp_path, drawing, damage):
    folder = use_cache(monkeypatch, tmp_path / "cache")
    run_page(drawing)  # writes the entry
    (entry,) = map_entries(folder)
    good = entry.read_bytes()
    entry.write_bytes({"garbage": b"PK\x03\x04" + os.urandom(500), "truncated": good[: len(good) // 2],
                       "empty": b""}[damage])
    from pages import neighbour_vote

    neighbour_vote.get_map.clear()  # as after a server restart
    at = run_page(drawing)
    warned = cache_warnings(at)
    assert len(warned) == 1 and "unreadable" in warned[0] and "recomputing" in warned[0], warned
    at.run()
    assert cache_warnings(at) == []
    # the entry was rewritten and reads back as valid
    with np.load(map_entries(folder)[0], allow_pickle=False) as f:
        assert f["coords"].shape == (5000, 2)


# A child process that computes the map for the app and is killed half-way through writing it.
CHILD = textwrap.dedent(
    """
    import io, sys, time
    sys.path.insert(0, {root!r})
    import numpy as np
    from knn_core import embedding, load_mnist

    real_savez = np.savez

    def slow_savez(f, **arrays):  # half the bytes, then hang until killed
        buf = io.BytesIO()
        real_savez(buf, **arrays)
        data = buf.getvalue()
        f.write(data[: len(data) // 2])
        f.flush()
        print("writing", flush=True)
        time.sleep(300)

    np.savez = slow_savez
    ds = load_mnist()
    embedding.load_map(ds.train_images, ds.train_labels, shipped={shipped!r})
    print("finished", flush=True)
    """
)


def test_writer_killed_mid_write_leaves_no_valid_entry(fresh, monkeypatch, tmp_path, drawing):
    folder = use_cache(monkeypatch, tmp_path / "cache")
    code = CHILD.format(root=str(ROOT), shipped=str(tmp_path / "no-shipped-map.npz"))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, cache.CACHE_ENV: str(folder)})
    watchdog = threading.Timer(180, proc.kill)  # never hang the test run
    watchdog.start()
    try:
        line = proc.stdout.readline()
        assert line == "writing\n", proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        watchdog.cancel()
        proc.kill()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert map_entries(folder) == []  # only the half-written temporary file is there
    (leftover,) = list(folder.iterdir())
    assert leftover.stat().st_size > 0 and not leftover.name.endswith(".npz")

    at = run_page(drawing)  # the app recomputes; nothing looked corrupt, so nothing to warn about
    assert cache_warnings(at) == []
    assert len(map_entries(folder)) == 1


def test_the_whole_app_starts_with_an_unusable_cache(fresh, monkeypatch, tmp_path, navigation_mode, request):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    use_cache(monkeypatch, blocker / "cache")
    # Run by app.py, the page is a script (module __main__), whose cached map is not the one the
    # `fresh` fixture cleared: clear every cached resource (the dataset and classifiers too).
    import streamlit as st

    st.cache_resource.clear()
    request.addfinalizer(st.cache_resource.clear)  # and leave no PCA map behind for later tests
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["✏️ Draw a digit"]
    at.switch_page("pages/neighbour_vote.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(cache_warnings(at)) == 1
