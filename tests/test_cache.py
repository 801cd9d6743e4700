"""knn_core.cache: entries keyed by their inputs, atomic writes, and never a crash for a bad cache."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from knn_core import cache
from knn_core.cache import CACHE_ENV, cache_dir, cache_key, cached_arrays, fingerprint
from knn_core.lists import find_neighbors
from knn_core.methods import Method
from knn_core.search import ExactSearch

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def cdir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(d))
    return d


class Compute:
    """A compute function that counts its calls."""

    def __init__(self, **arrays):
        self.arrays = arrays or {"a": np.arange(12, dtype=np.int64).reshape(3, 4), "b": np.linspace(0, 1, 5)}
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return {k: v.copy() for k, v in self.arrays.items()}


def assert_arrays_equal(got, expected):
    assert set(got) == set(expected)
    for k in expected:
        np.testing.assert_array_equal(got[k], expected[k])
        assert got[k].dtype == expected[k].dtype


def entry_path(name, parts):
    return cache_dir() / f"{name}-{cache_key(name=name, **parts)}.npz"


def warnings_in(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "knn_core.cache" and r.levelno == logging.WARNING]


# --------------------------------------------------------------------------- hits and misses


def test_cache_dir_follows_the_environment(cdir, monkeypatch, tmp_path):
    assert cache_dir() == cdir
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "knn-digit-lab"


def test_the_suite_has_a_cache_of_its_own(session_cache, monkeypatch):
    """tests/conftest.py: every test session starts on an empty folder of its own, never ~/.cache."""
    monkeypatch.undo()  # this module's autouse fixture points each test at a temporary folder: not now
    assert cache_dir() == session_cache
    assert session_cache.name.startswith("knn-digit-lab-test-cache-")
    assert Path.home() / ".cache" not in session_cache.parents


def test_second_call_reads_the_entry(cdir):
    compute = Compute()
    first = cached_arrays("thing", {"x": 1}, compute)
    second = cached_arrays("thing", {"x": 1}, compute)
    assert compute.calls == 1
    assert_arrays_equal(first, compute.arrays)
    assert_arrays_equal(second, compute.arrays)  # same values and dtypes, no "__key__" leaking out
    assert [p.name for p in cdir.iterdir()] == [entry_path("thing", {"x": 1}).name]


def test_different_parts_are_different_entries(cdir):
    c1, c2, c3 = Compute(v=np.array([1])), Compute(v=np.array([2])), Compute(v=np.array([3]))
    assert cached_arrays("thing", {"x": 1, "y": "a"}, c1)["v"].tolist() == [1]
    assert cached_arrays("thing", {"x": 2, "y": "a"}, c2)["v"].tolist() == [2]
    assert cached_arrays("other", {"x": 1, "y": "a"}, c3)["v"].tolist() == [3]
    assert len(list(cdir.glob("*.npz"))) == 3
    # the order the parts are given in does not matter; their values do
    assert cached_arrays("thing", {"y": "a", "x": 1}, c2)["v"].tolist() == [1]
    assert cached_arrays("thing", {"x": 2, "y": "a"}, c1)["v"].tolist() == [2]
    assert (c1.calls, c2.calls, c3.calls) == (1, 1, 1)


def test_use_cache_false_always_computes_and_writes_nothing(cdir):
    compute = Compute()
    for _ in range(3):
        assert_arrays_equal(cached_arrays("thing", {}, compute, use_cache=False), compute.arrays)
    assert compute.calls == 3
    assert not cdir.exists()


def test_fingerprint():
    a = np.arange(24, dtype=np.int32).reshape(4, 6)
    assert fingerprint(a) == fingerprint(a.copy())
    assert fingerprint(a) != fingerprint(a.reshape(6, 4))  # same bytes, other shape
    assert fingerprint(a) != fingerprint(a.view(np.float32))  # same bytes, other dtype
    b = a.copy()
    b[3, 5] += 1
    assert fingerprint(a) != fingerprint(b)
    assert fingerprint(a[:, ::2]) == fingerprint(np.ascontiguousarray(a[:, ::2]))  # views are fine
    assert fingerprint(a, b) != fingerprint(b, a)


def test_find_neighbors_searches_once(monkeypatch, cdir):
    calls = []
    real = ExactSearch.kneighbors

    def counting(self, *args, **kw):
        calls.append(self.metric)
        return real(self, *args, **kw)

    monkeypatch.setattr(ExactSearch, "kneighbors", counting)
    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (200, 16), dtype=np.uint8), rng.integers(0, 10, 200)
    Q, qy = rng.integers(0, 256, (30, 16), dtype=np.uint8), rng.integers(0, 10, 30)
    a = find_neighbors(X, y, Q, qy, k_max=10)
    b = find_neighbors(X, y, Q, qy, k_max=10)
    assert calls == ["euclidean"]
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.distances, b.distances)
    find_neighbors(X, y, Q, qy, k_max=10, method=Method.classic("manhattan"))  # another metric
    find_neighbors(X, y, Q[:29], qy[:29], k_max=10)  # other queries
    y2 = y.copy()
    y2[0] = (y2[0] + 1) % 10
    relabelled = find_neighbors(X, y2, Q, qy, k_max=10)  # the labels are part of the key too
    find_neighbors(X, y, k_max=10)  # leave-one-out
    assert calls == ["euclidean", "manhattan", "euclidean", "euclidean", "euclidean"]
    assert relabelled.train_labels[0] == y2[0]
    assert len(list(cdir.glob("neighbors-*.npz"))) == 5
    find_neighbors(X, y, Q, qy, k_max=10, use_cache=False)
    assert len(calls) == 6
    # The key is the Method, however it was spelt: a name, Method.classic, p that only minkowski uses.
    find_neighbors(X, y, Q, qy, k_max=10, method="manhattan")
    find_neighbors(X, y, Q, qy, k_max=10, method=Method.classic("euclidean", p=7))
    assert len(calls) == 6
    find_neighbors(X, y, Q, qy, k_max=10, method=Method.classic("minkowski", p=3))
    find_neighbors(X, y, Q, qy, k_max=10, method=Method.classic("minkowski", p=4))  # p matters there
    assert calls[6:] == ["minkowski", "minkowski"]
    assert len(list(cdir.glob("neighbors-*.npz"))) == 7


def test_a_code_version_bump_recomputes_instead_of_reading(monkeypatch, cdir):
    """cache.CODE_VERSION is part of every key: after a bump, old entries are never read again."""
    compute = Compute()
    cached_arrays("thing", {"x": 1}, compute)
    monkeypatch.setattr(cache, "CODE_VERSION", cache.CODE_VERSION + "-bumped")
    stale = Compute(a=np.array([-1]))  # what the new code computes
    assert cached_arrays("thing", {"x": 1}, stale)["a"].tolist() == [-1]
    assert (compute.calls, stale.calls) == (1, 1)
    assert cached_arrays("thing", {"x": 1}, stale)["a"].tolist() == [-1] and stale.calls == 1  # its own entry
    assert len(list(cdir.glob("thing-*.npz"))) == 2


def test_a_code_version_bump_invalidates_neighbour_lists(monkeypatch, cdir):
    from knn_core.data import Dataset
    from knn_core.lists import is_cached, neighbor_lists
    from knn_core.methods import MethodSearch

    rng = np.random.default_rng(1)
    ds = Dataset(rng.integers(0, 256, (60, 28, 28), dtype=np.uint8), rng.integers(0, 3, 60),
                 rng.integers(0, 256, (12, 28, 28), dtype=np.uint8), rng.integers(0, 3, 12), n_val=10)
    neighbor_lists(ds, "euclidean", "test", k_max=5)
    neighbor_lists(ds, "deskew", "test", k_max=5)
    assert is_cached(ds, "euclidean", "test", k_max=5) and is_cached(ds, "deskew", "test", k_max=5)
    monkeypatch.setattr(cache, "CODE_VERSION", cache.CODE_VERSION + "-bumped")
    assert not is_cached(ds, "euclidean", "test", k_max=5) and not is_cached(ds, "deskew", "test", k_max=5)
    searches = []
    real_search, real_recipe = ExactSearch.kneighbors, MethodSearch.kneighbors

    def counting(real):
        def search(self, *args, **kw):
            searches.append(type(self).__name__)
            return real(self, *args, **kw)
        return search

    monkeypatch.setattr(ExactSearch, "kneighbors", counting(real_search))
    monkeypatch.setattr(MethodSearch, "kneighbors", counting(real_recipe))
    neighbor_lists(ds, "euclidean", "test", k_max=5)
    neighbor_lists(ds, "deskew", "test", k_max=5)
    assert "ExactSearch" in searches and "MethodSearch" in searches  # searched again, not read
    assert is_cached(ds, "euclidean", "test", k_max=5) and is_cached(ds, "deskew", "test", k_max=5)


# --------------------------------------------------------------------------- bad entries


def test_garbage_entry_is_recomputed_and_overwritten(caplog):
    compute = Compute()
    path = entry_path("thing", {"x": 1})
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a zip file at all \x00\xff" * 10)
    with caplog.at_level(logging.WARNING, logger="knn_core.cache"):
        got = cached_arrays("thing", {"x": 1}, compute)
    assert_arrays_equal(got, compute.arrays)
    assert compute.calls == 1
    assert any("unreadable" in m and str(path) in m for m in warnings_in(caplog))
    assert_arrays_equal(cached_arrays("thing", {"x": 1}, compute), compute.arrays)
    assert compute.calls == 1  # the entry was overwritten with a valid one


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.0])
def test_truncated_entry_is_recomputed(caplog, keep):
    compute = Compute(big=np.arange(50_000, dtype=np.float64))
    cached_arrays("thing", {"x": 1}, compute)
    path = entry_path("thing", {"x": 1})
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with caplog.at_level(logging.WARNING, logger="knn_core.cache"):
        got = cached_arrays("thing", {"x": 1}, compute)
    assert compute.calls == 2
    assert_arrays_equal(got, compute.arrays)
    assert any("recomputing" in m for m in warnings_in(caplog))
    cached_arrays("thing", {"x": 1}, compute)
    assert compute.calls == 2  # rewritten whole: the next call reads it


def test_entry_of_another_key_is_not_trusted(caplog):
    """A file holding another key's arrays (copied, renamed) is recomputed, not returned."""
    cached_arrays("thing", {"x": 1}, Compute(v=np.array([1])))
    wrong = entry_path("thing", {"x": 2})
    wrong.write_bytes(entry_path("thing", {"x": 1}).read_bytes())
    compute = Compute(v=np.array([2]))
    with caplog.at_level(logging.WARNING, logger="knn_core.cache"):
        assert cached_arrays("thing", {"x": 2}, compute)["v"].tolist() == [2]
    assert compute.calls == 1
    assert any("does not match its key" in m for m in warnings_in(caplog))


def test_entry_without_key_is_not_trusted():
    path = entry_path("thing", {"x": 1})
    path.parent.mkdir(parents=True)
    np.savez(path, v=np.array([99]))
    compute = Compute(v=np.array([1]))
    assert cached_arrays("thing", {"x": 1}, compute)["v"].tolist() == [1]
    assert compute.calls == 1


class _Touch:
    """Unpickling this creates a file: proof that a pickle in the cache ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickled_arrays_in_an_entry_are_never_unpickled(tmp_path, caplog):
    name, parts = "thing", {"x": 1}
    marker = tmp_path / "pickle-ran"
    path = entry_path(name, parts)
    path.parent.mkdir(parents=True)
    evil = np.empty(1, dtype=object)
    evil[0] = _Touch(marker)
    with open(path, "wb") as f:
        np.savez(f, v=evil, __key__=np.array(cache_key(name=name, **parts)))
    compute = Compute(v=np.array([1]))
    with caplog.at_level(logging.WARNING, logger="knn_core.cache"):
        assert cached_arrays(name, parts, compute)["v"].tolist() == [1]
    assert not marker.exists()
    assert compute.calls == 1
    assert any("unreadable" in m for m in warnings_in(caplog))


# --------------------------------------------------------------------------- folders that cannot be written


def test_cache_folder_under_a_regular_file(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "cache"))
    compute = Compute()
    with caplog.at_level(logging.WARNING, logger="knn_core.cache"):
        assert_arrays_equal(cached_arrays("thing", {"x": 1}, compute), compute.arrays)
        assert_arrays_equal(cached_arrays("thing", {"x": 1}, compute), compute.arrays)
    assert compute.calls == 2  # nothing could be stored, so it is computed each time
    assert any("cannot be cached" in m for m in warnings_in(caplog))
    assert blocker.read_text() == "not a folder"


def test_cache_folder_is_a_file(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv(CACHE_ENV, str(blocker))
    compute = Compute()
    assert_arrays_equal(cached_arrays("thing", {}, compute), compute.arrays)


def test_entry_path_taken_by_a_folder(caplog):
    path = entry_path("thing", {"x": 1})
    path.mkdir(parents=True)
    compute = Compute()
    with caplog.at_level(logging.WARNING, logger="knn_core.cache"):
        for _ in range(2):
            assert_arrays_equal(cached_arrays("thing", {"x": 1}, compute), compute.arrays)
    assert compute.calls == 2
    assert path.is_dir()
    assert [p for p in path.parent.iterdir() if p != path] == []  # no temp file left behind


def test_permission_denied_is_a_warning(cdir, monkeypatch, caplog):
    """A folder we may not write to (simulated: root may write anywhere)."""
    def denied(*args, **kw):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cache.tempfile, "mkstemp", denied)
    compute = Compute()
    with caplog.at_level(logging.WARNING, logger="knn_core.cache"):
        assert_arrays_equal(cached_arrays("thing", {}, compute), compute.arrays)
    assert any("cannot be cached" in m and "Permission denied" in m for m in warnings_in(caplog))
    assert list(cdir.iterdir()) == []


def test_disk_full_mid_write_leaves_nothing_behind(cdir, monkeypatch, caplog):
    real_savez = np.savez

    def full(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    compute = Compute()
    with caplog.at_level(logging.WARNING, logger="knn_core.cache"):
        assert_arrays_equal(cached_arrays("thing", {}, compute), compute.arrays)
    assert any("No space left on device" in m for m in warnings_in(caplog))
    assert list(cdir.iterdir()) == []  # the temp file was removed
    monkeypatch.setattr(np, "savez", real_savez)
    cached_arrays("thing", {}, compute)
    cached_arrays("thing", {}, compute)
    assert compute.calls == 2  # once the disk has room again, the entry is written and used


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_read_only_cache_folder(cdir):
    cdir.mkdir()
    cdir.chmod(0o555)
    try:
        compute = Compute()
        assert_arrays_equal(cached_arrays("thing", {}, compute), compute.arrays)
        assert list(cdir.iterdir()) == []
    finally:
        cdir.chmod(0o755)


# --------------------------------------------------------------------------- a writer killed mid-write

CHILD = textwrap.dedent(
    """
    import io, sys, time
    sys.path.insert(0, {root!r})
    import numpy as np
    from knn_core import cache

    real_savez = np.savez

    def slow_savez(f, **arrays):  # half the bytes, then hang until killed
        buf = io.BytesIO()
        real_savez(buf, **arrays)
        data = buf.getvalue()
        f.write(data[: len(data) // 2])
        f.flush()
        print("writing", flush=True)
        time.sleep(300)
        f.write(data[len(data) // 2 :])

    np.savez = slow_savez
    {call}
    print("finished", flush=True)
    """
)


def run_and_kill(call, cdir):
    """Run `call` in a child whose np.savez hangs half-way; SIGKILL it there."""
    env = {**os.environ, CACHE_ENV: str(cdir)}
    proc = subprocess.Popen([sys.executable, "-c", CHILD.format(root=str(ROOT), call=call)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    watchdog = threading.Timer(120, proc.kill)  # never hang the test run
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


BIG = "{'a': np.arange(3_000_000, dtype=np.int64)}"


def test_killed_writer_leaves_no_valid_entry(cdir, caplog):
    run_and_kill(f"cache.cached_arrays('big', {{'n': 1}}, lambda: {BIG})", cdir)
    entry = entry_path("big", {"n": 1})
    assert not entry.exists()
    leftovers = list(cdir.iterdir())
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > 1_000_000  # the half-written temp file
    assert not leftovers[0].name.endswith(".npz")
    compute = Compute(a=np.arange(3_000_000, dtype=np.int64))
    with caplog.at_level(logging.WARNING, logger="knn_core.cache"):
        got = cached_arrays("big", {"n": 1}, compute)
    assert compute.calls == 1  # recomputed: the temp file was not taken for an entry
    assert_arrays_equal(got, compute.arrays)
    assert warnings_in(caplog) == []  # nothing looked like a corrupt entry
    assert_arrays_equal(cached_arrays("big", {"n": 1}, compute), compute.arrays)
    assert compute.calls == 1
    assert sorted(p.name for p in cdir.glob("*.npz")) == [entry.name]


def test_killed_overwrite_keeps_the_old_entry(cdir):
    """Replacing an entry is atomic: a writer killed half-way leaves the old one intact and valid."""
    old = Compute(a=np.arange(10, dtype=np.int64))
    cached_arrays("big", {"n": 1}, old)
    entry = entry_path("big", {"n": 1})
    before = entry.read_bytes()
    key = cache_key(name="big", n=1)
    run_and_kill(f"cache._write_atomic(__import__('pathlib').Path({str(entry)!r}), "
                 f"{{**{BIG}, '__key__': np.array({key!r})}})", cdir)
    assert entry.read_bytes() == before
    assert_arrays_equal(cached_arrays("big", {"n": 1}, old), old.arrays)
    assert old.calls == 1
