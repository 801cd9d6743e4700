"""Shared test setup: a hermetic on-disk cache, markers, and the session-wide fixtures.

The cache: before anything is collected, $KNN_DIGIT_LAB_CACHE points at a fresh
folder for this session (removed at the end), so no test reads what an earlier
run left behind and none writes into the user's ~/.cache.  Subprocesses the tests
start (the Streamlit servers, CLI runs, load-test tools) inherit it.

Markers (registered in pyproject.toml, with --durations): ``slow`` (full-data
searches, real servers: over ~10 s each) and ``e2e`` (headless Chromium against a
real server).  ``pytest -m "not slow and not e2e"`` is the quick run.  Helpers used by several test files live in tests/helpers.py.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
for path in (str(ROOT), str(ROOT / "tests")):  # knn_core, ui, pages, loadtest; tests/helpers.py
    if path not in sys.path:
        sys.path.insert(0, path)

from knn_core.cache import CACHE_ENV  # noqa: E402  (after the path is set)

_session_cache: str | None = None
_session_data: str | None = None  # the class room's database folder ($KNN_LAB_DATA_DIR) for this session


def pytest_configure(config):
    global _session_cache, _session_data
    if _session_cache is None:
        _session_cache = tempfile.mkdtemp(prefix="knn-digit-lab-test-cache-")
        os.environ[CACHE_ENV] = _session_cache
    if _session_data is None:  # servers the tests start keep their class rooms here, not in ~/.local/share
        _session_data = tempfile.mkdtemp(prefix="knn-digit-lab-test-data-")
        os.environ["KNN_LAB_DATA_DIR"] = _session_data


def pytest_collection_modifyitems(config, items):
    """Browser tests last: quick failures first, and their server then finds the small searches that
    the app tests left in the session's cache (speed only: every test passes in any order)."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)


def pytest_unconfigure(config):
    global _session_cache, _session_data
    if _session_cache is not None:
        shutil.rmtree(_session_cache, ignore_errors=True)
        _session_cache = None
    if _session_data is not None:
        shutil.rmtree(_session_data, ignore_errors=True)
        _session_data = None


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def session_cache() -> Path:
    """This session's on-disk cache folder ($KNN_DIGIT_LAB_CACHE)."""
    return Path(os.environ[CACHE_ENV])


@pytest.fixture(scope="session")
def mnist():
    """The bundled MNIST (60,000 training, 10,000 test digits), read once per session."""
    from knn_core import load_mnist

    return load_mnist()


@pytest.fixture(scope="session")
def full_classifier(mnist):
    """knn_core's classifier with the app's defaults (k=5, euclidean) on all 60,000 training digits.

    Shared: use it through kneighbors/predict with explicit arguments, never set_params.
    """
    from knn_core import KNNClassifier

    return KNNClassifier(n_neighbors=5).fit(mnist.train_images, mnist.train_labels)


@pytest.fixture(scope="session")
def full_test_lists(mnist):
    """The 50 nearest of all 60,000 training digits for each of the 10,000 test digits (euclidean),
    searched once per session and never read from the disk cache: a reference for the pages and
    the figures built on the full data set (k=5: accuracy 0.9688)."""
    from knn_core import neighbor_lists

    return neighbor_lists(mnist, "euclidean", "test", k_max=50, use_cache=False)


@pytest.fixture(scope="module")
def one_blas_thread():
    """One BLAS thread for a module's fits (correctness does not depend on it; speed does).

    ExactSearch.fit runs np.linalg.eigh on a 784x784 matrix; with 2 OpenBLAS threads on a
    busy 2-core machine it takes 0.4-6 s instead of 0.15 s, which made the suite 5x slower.
    test_search.py::test_blas_threads_do_not_change_results covers multi-threaded BLAS.
    Use it per module: ``pytestmark = pytest.mark.usefixtures("one_blas_thread")``.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture
def fresh_queue(monkeypatch):
    """A job queue of its own for one test, as in a new server process (ui.QUEUE keeps finished
    searches reachable by key; this test's searches must neither find nor leave any)."""
    import ui
    from knn_core.jobs import queue_from_environment

    queue = queue_from_environment()
    monkeypatch.setattr(ui.jobs, "QUEUE", queue)
    monkeypatch.setattr(ui, "QUEUE", queue)
    yield queue
    queue.shutdown()


@pytest.fixture
def empty_cache(tmp_path, monkeypatch, fresh_queue) -> Path:
    """An empty on-disk cache for one test, and no search in the app's memory or job queue."""
    import ui

    folder = tmp_path / "empty-cache"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    ui.forget_loaded()
    yield folder
    ui.forget_loaded()  # what this test searched is not in the session's cache: forget it


@pytest.fixture
def no_cache_warnings(monkeypatch):
    """knn_core.cache keeps the warnings it has seen per process; pages show them."""
    from knn_core import cache

    monkeypatch.setattr(cache, "_warned", set())
    monkeypatch.setattr(cache, "warnings_seen", [])


@pytest.fixture
def navigation_mode(monkeypatch):
    """Run app.py the way a server does after its first run.

    With a pages/ folder next to app.py, Streamlit starts in its legacy
    multipage mode and leaves it for good at the first st.navigation call.
    AppTest resets that flag before every run, so from the second run on it
    would run pages/draw.py without app.py (the page then renders the sidebar
    itself, see ui.current_settings).  Keep the flag off, as on a server.
    """
    from streamlit.runtime import pages_manager

    original = pages_manager.PagesManager.__init__

    def init(self, *args, **kwargs):
        pages_manager.PagesManager.uses_pages_directory = False
        original(self, *args, **kwargs)

    monkeypatch.setattr(pages_manager.PagesManager, "__init__", init)


@pytest.fixture
def served_files(monkeypatch):
    """Read back what AppTest runs served as files (downloads): ``served_files(url) -> bytes``.

    AppTest keeps them in an in-memory media store it drops after each run; this keeps a
    reference to every store so a test can read the bytes behind a download button's URL.
    """
    from streamlit.runtime.media_file_storage import MediaFileStorageError
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    from streamlit.testing.v1 import app_test

    stores = []

    class Kept(MemoryMediaFileStorage):
        def __init__(self, endpoint):
            super().__init__(endpoint)
            stores.append(self)

    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", Kept)

    def read(url: str) -> bytes:
        name = url.rsplit("/", 1)[-1]
        for store in reversed(stores):
            try:
                return bytes(store.get_file(name).content)
            except MediaFileStorageError:
                continue
        raise KeyError(f"no served file at {url}")

    return read


@pytest.fixture(scope="session")
def server_url(tmp_path_factory):
    """One `streamlit run app.py` server on a free local port for the whole session (its URL).

    It reads and writes the session's cache ($KNN_DIGIT_LAB_CACHE is inherited).  Tests that
    need a server with no history (a first request) start their own loadtest.server.Server.
    """
    from loadtest.server import Server

    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    with Server("app.py", log_path=str(log)) as srv:
        yield srv.url
    text = log.read_text(errors="replace")
    if "Traceback" in text:
        print(f"streamlit server log:\n{text}")
