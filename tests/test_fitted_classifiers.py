"""ui.resources: the server's fitted classifiers (bounded in number and bytes, fitted through their own
background queue, at most one waiting per session) and the fit's disk cache (knn_core.search)."""
from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import pytest

import knn_core.search as search_module
from knn_core import KNNClassifier, Method
from knn_core.jobs import QueueFull
from knn_core.search import ExactSearch
from ui import resources
from ui.resources import _FittedClassifiers, held_bytes

EUCLIDEAN, MANHATTAN, COSINE = (Method.classic(m) for m in ("euclidean", "manhattan", "cosine"))


@pytest.fixture
def fits(monkeypatch):
    """Each fit records what was in memory when it started, and who ran it at what priority."""
    log: list = []
    fit = KNNClassifier.fit

    def recording_fit(self, X, y):
        log.append((threading.get_ident(), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
        return fit(self, X, y)

    monkeypatch.setattr(KNNClassifier, "fit", recording_fit)
    return log


def test_room_is_made_before_a_fit_so_the_one_being_fitted_counts(fits):
    fitted = _FittedClassifiers(2)
    seen = []
    for search in (EUCLIDEAN, MANHATTAN, COSINE):
        fitted.get(search, 500)
        seen.append(fitted.keys())
    assert seen[-1] == [(MANHATTAN, 500), (COSINE, 500)]
    assert len(fits) == 3
    fitted.get(MANHATTAN, 500)  # kept: no fit
    assert len(fits) == 3
    fitted.queue.shutdown()


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice is Linux's")
def test_fits_run_in_the_fit_queues_worker_at_low_priority(fits):
    fitted = _FittedClassifiers(2)
    clf = fitted.get(EUCLIDEAN, 500)
    assert clf.n_samples_fit_ == 500 and clf.n_jobs == resources.SERVER_SEARCH_THREADS
    (thread, niceness), = fits
    assert thread != threading.get_ident() and niceness == 19
    fitted.queue.shutdown()


def test_the_classifiers_kept_are_bounded_by_bytes_too():
    fitted = _FittedClassifiers(3, max_bytes=1.0)  # room for none but the newest
    fitted.get(MANHATTAN, 500)
    fitted.get(COSINE, 500)
    assert fitted.keys() == [(COSINE, 500)]
    fitted.queue.shutdown()


def test_held_bytes_counts_a_subset_copy_but_not_the_datasets_own_images():
    images = resources.get_dataset().train_images
    full = KNNClassifier(metric="manhattan").fit(*resources._training_digits(len(images)))
    subset = KNNClassifier(metric="manhattan").fit(*resources._training_digits(1000))
    # the labels (0.5 MB) and a drawing's sparse sums (a 256x256 table and one sum per row: 1 MB); the
    # images (47 MB) are the dataset's
    assert held_bytes(full, (images,)) < 2e6
    assert held_bytes(subset, (images,)) >= 1000 * 784


def test_a_session_waits_for_one_fit_at_a_time_others_are_not_held_up(monkeypatch):
    gate = threading.Event()
    fit = KNNClassifier.fit

    def slow_fit(self, X, y):
        gate.wait(10)
        return fit(self, X, y)

    monkeypatch.setattr(KNNClassifier, "fit", slow_fit)
    fitted = _FittedClassifiers(3)
    first = threading.Thread(target=fitted.get, args=(EUCLIDEAN, 500, "s1"))
    first.start()
    deadline = time.monotonic() + 10
    while not fitted.queue.active() and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(QueueFull):
        fitted.get(MANHATTAN, 500, "s1")
    other = threading.Thread(target=fitted.get, args=(MANHATTAN, 500, "s2"))
    other.start()
    gate.set()
    first.join(10)
    other.join(10)
    assert sorted(k[0].metric for k in fitted.keys()) == ["euclidean", "manhattan"]
    fitted.queue.shutdown()


def test_a_closed_page_stops_waiting_for_its_fit_and_the_fit_is_cancelled(monkeypatch):
    """A script whose browser went away stops touching the fit (ui.resources.browser_connected), and
    the fit stops at its next pause point once abandoned, instead of running on for nobody."""
    from knn_core.jobs import CANCELLED
    from knn_core.threads import pause_point

    fit_started = threading.Event()

    def endless_fit(self, X, y):
        fit_started.set()
        while True:
            pause_point()
            time.sleep(0.01)

    monkeypatch.setattr(KNNClassifier, "fit", endless_fit)
    fitted = _FittedClassifiers(3)
    fitted.queue.abandon_after = 0.3
    connected = [True]
    monkeypatch.setattr(resources, "browser_connected", lambda: connected[0])
    errors = []

    def page():
        try:
            fitted.get(EUCLIDEAN, 500, "s1")
        except Exception as exc:  # noqa: BLE001 (what the page's script would see)
            errors.append(exc)

    waiting = threading.Thread(target=page)
    waiting.start()
    assert fit_started.wait(10)
    time.sleep(0.5)
    job = fitted.queue.get((EUCLIDEAN, 500))
    assert not job.ended  # touched while the page waits: longer than abandon_after, not cancelled
    connected[0] = False  # the tab is closed
    waiting.join(5)
    assert not waiting.is_alive() and "page was closed" in str(errors[0])
    deadline = time.monotonic() + 10
    while not job.ended and time.monotonic() < deadline:
        time.sleep(0.01)
    assert job.state == CANCELLED and fitted.keys() == []
    fitted.queue.shutdown()


def test_a_failed_fit_raises_its_error_to_whoever_waits(monkeypatch):
    def broken(self, X, y):
        raise MemoryError("no room")

    monkeypatch.setattr(KNNClassifier, "fit", broken)
    fitted = _FittedClassifiers(3)
    with pytest.raises(MemoryError, match="no room"):
        fitted.get(EUCLIDEAN, 500)
    assert fitted.keys() == []
    fitted.queue.shutdown()


# --------------------------------------------------------------------------- the fit's disk cache


def test_a_big_fit_is_read_back_from_the_disk_cache_with_the_same_neighbours(empty_cache, monkeypatch):
    rng = np.random.default_rng(3)
    X = rng.integers(0, 256, (search_module._CACHED_FIT_ROWS[0], 12), dtype=np.uint8)
    Q = rng.integers(0, 256, (40, 12), dtype=np.uint8)
    first = ExactSearch().fit(X).kneighbors(Q, 5)
    assert len(list(empty_cache.glob("exact-search-fit-*.npz"))) == 1

    def no_fit(self):
        raise AssertionError("fitted again instead of reading the disk cache")

    monkeypatch.setattr(ExactSearch, "_bound_arrays", no_fit)
    again = ExactSearch().fit(X).kneighbors(Q, 5)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    with pytest.raises(AssertionError, match="fitted again"):
        ExactSearch("cosine").fit(X)  # another metric: another entry


def test_small_fits_are_not_written_to_the_disk_cache(empty_cache):
    X = np.random.default_rng(4).integers(0, 256, (search_module._CACHED_FIT_ROWS[0] - 1, 12), dtype=np.uint8)
    ExactSearch().fit(X)
    assert not list(empty_cache.glob("exact-search-fit-*.npz"))


def test_the_warm_up_fit_runs_at_normal_priority_and_others_asking_meanwhile_wait_for_it(monkeypatch):
    gate, log = threading.Event(), []
    fit = KNNClassifier.fit

    def slow_fit(self, X, y):
        log.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        gate.wait(10)
        return fit(self, X, y)

    monkeypatch.setattr(KNNClassifier, "fit", slow_fit)
    fitted = _FittedClassifiers(3)
    warm = threading.Thread(target=fitted.get, args=(EUCLIDEAN, 500), kwargs={"background": False})
    warm.start()
    deadline = time.monotonic() + 10
    while not log and time.monotonic() < deadline:
        time.sleep(0.01)
    student = threading.Thread(target=fitted.get, args=(EUCLIDEAN, 500, "s1"))
    student.start()
    gate.set()
    warm.join(10)
    student.join(10)
    assert len(log) == 1 and log[0] < 19  # one fit, not at nice 19
    assert fitted.keys() == [(EUCLIDEAN, 500)]
    fitted.queue.shutdown()
    fitted.startup.shutdown()
