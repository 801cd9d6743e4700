"""What every session shares, built once per server process.

:func:`get_dataset` (the bundled MNIST), :func:`get_subset` (the class-balanced
training subset of a size), :func:`get_fitted` (one fitted classifier per
(method, training size), shared by every session), :func:`classifier` (a cheap
copy carrying this view's vote parameters; the shared object is never mutated)
and :func:`nearest` (one digit's neighbours as the pages show them).
:func:`start_server` (app.py, once per process): the sessions are the
parallelism, not BLAS or OpenCV threads, and the default classifier is fitted
before the first student draws.

One student cycling through links must not make the server fit classifier
after classifier at the students' expense, nor pin gigabytes: fits go through
their own job queue (one at a time, in a background thread at low priority, at
most one waiting per session), and at most FITTED_MAX classifiers holding at
most FITTED_MAX_BYTES are kept, the least recently used dropped first, before
a new fit starts.

These are plain process-wide objects, not Streamlit caches: a browser can
clear Streamlit's caches, and a fit must not be repeated because of that.
"""
from __future__ import annotations

import copy
import ctypes
import os
import sys
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from knn_core import KNNClassifier, Method, load_mnist, stratified_subset
from knn_core.errors import KnnLabError
from knn_core.jobs import DONE, JobQueue, QueueFull
from knn_core.threads import limit_blas_threads

from . import coalesce, fair
from .settings import Settings

SERVER_BLAS_THREADS = 1
SERVER_SEARCH_THREADS = 1  # a stroke's search on one core: the sessions are the parallelism
FITTED_MAX = 3  # fitted classifiers kept: the default, and two more, the one being fitted included
FITTED_MAX_BYTES = 600e6  # what they may hold together beyond the dataset (a recipe's: 70-90 MB at 60,000)
MMAP_THRESHOLD = 1 << 20  # bytes: glibc gives larger blocks back to the system when they are freed
GIL_SWITCH_MS = 1.0  # how long a thread running Python keeps the GIL from one that waits (Python's default: 5)
GIL_SWITCH_ENV = "KNN_LAB_GIL_SWITCH_MS"  # the operator's value, e.g. 5 for Python's default
FAIR_ENV = "KNN_LAB_STROKES_FIRST"  # 0: no scheduling of script runs (for an A/B in the load tests)
COALESCE_ENV = "KNN_LAB_COALESCE"  # 0: one event-loop wake-up per message, as Streamlit does (A/B)
DEFAULT_SEARCH = Settings().search


@lru_cache(maxsize=1)
def start_server() -> None:
    """Once per server process (app.py): one BLAS and one OpenCV thread per script run, freed memory
    given back, and the default classifier fitted in the background, so the first drawing is answered
    at once.

    One server process answers every session; the sessions are the parallelism.
    With its default two threads, OpenBLAS's second thread spins waiting for work
    after each small product: ~45 of a stroke's ~70 ms of server CPU, for no
    gain in latency (loadtest/README.md). Batch searches keep their own
    one-BLAS-thread-per-worker pool (knn_core.search).
    """
    import cv2

    limit_blas_threads(SERVER_BLAS_THREADS)
    cv2.setNumThreads(1)
    give_freed_memory_back()
    read_theme_once()
    sys.setswitchinterval(gil_switch_ms() / 1000)
    if os.environ.get(FAIR_ENV, "1") != "0":
        fair.install()  # strokes first: long script runs step aside for short ones (ui/fair.py)
    if os.environ.get(COALESCE_ENV, "1") != "0":
        coalesce.install()  # a session's messages reach the event loop in batches (ui/coalesce.py)
    threading.Thread(target=warm_up, name="knn-lab-warm-up", daemon=True).start()


def warm_up() -> None:
    """The default classifier fitted (a load from the disk cache after the first time) and asked once,
    and its non-digit refusal calibrated.
    At normal priority: it is every student's, and the first drawing waits for it. scripts/run_app.sh
    also runs it beside the starting server, so even a first start finds the fit in the disk cache."""
    # knn_core imports scikit-learn's neighbours (and with them its model selection and metrics) only
    # where it needs them, so that the command line starts fast; the server would otherwise import
    # them in the first session that opens an analysis page or a manhattan link: 0.4 s holding the
    # interpreter, every other session's stroke waiting. Before anyone connects, nobody waits.
    import sklearn.neighbors  # noqa: F401

    clf = get_fitted(DEFAULT_SEARCH, Settings().size, background=False)
    clf.kneighbors(get_dataset().test_images[:1], 1)
    from .explain import rule  # the non-digit refusal's calibration (~1 s), also before the first drawing

    rule(Settings(), spinner=False)


def give_freed_memory_back() -> None:
    """glibc's malloc keeps freed memory in its heaps for reuse, and by default it raises the size
    from which blocks are mmapped as big arrays come and go: a server's temporary arrays (a decoded
    upload, a search's chunk) then stay in its RSS after they are freed (100-235 MB under the load
    test's attacker). A fixed threshold of 1 MB (the same as $MALLOC_MMAP_THRESHOLD_=1048576, which
    takes precedence when set) makes every big block its own mapping, returned on free."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, MMAP_THRESHOLD)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc: its allocator does its own thing
        pass


def gil_switch_ms() -> float:
    """The server's GIL switch interval in ms ($KNN_LAB_GIL_SWITCH_MS, default GIL_SWITCH_MS).

    A student's stroke lets go of the GIL many times (the search's matrix product, the PNG decode, each
    message the event loop writes) and must get it back each time; while another session runs pure Python
    (a heavy page, a queued job), each of those waits up to the switch interval, 5 ms by default (the
    "convoy effect"). 1 ms bounds that wait at the cost of more thread switches."""
    try:
        value = float(os.environ.get(GIL_SWITCH_ENV, GIL_SWITCH_MS))
    except ValueError:
        return GIL_SWITCH_MS
    return value if 0.05 <= value <= 100 else GIL_SWITCH_MS


def read_theme_once() -> None:
    """Streamlit rebuilds the page theme from its config at the start of every script run: six theme
    sections, each a scan of all ~370 options (~3 ms on this machine, on the server's event loop and under
    the GIL). Every stroke of every student pays it; under the load test's attacker it was 11% of the time
    the server's Python held the GIL (py-spy --gil). The config cannot change while the server runs (a
    new config file needs a restart), so each theme section is read once; other sections are read as
    before."""
    from streamlit import config

    read = config.get_options_for_section
    if getattr(read, "reads_theme_once", False):
        return
    theme: dict[str, dict] = {}

    def get_options_for_section(section: str) -> dict:
        if not section.startswith("theme"):
            return read(section)
        if section not in theme:
            theme[section] = read(section)
        return dict(theme[section])

    get_options_for_section.reads_theme_once = True  # type: ignore[attr-defined]
    config.get_options_for_section = get_options_for_section


@lru_cache(maxsize=1)
def get_dataset():
    """The bundled MNIST, loaded once per server process."""
    return load_mnist()


@lru_cache(maxsize=16)
def get_subset(train_size: int) -> np.ndarray:
    """Indices into the training set of the class-balanced subset of this size (read-only)."""
    idx = stratified_subset(get_dataset().train_labels, train_size, random_state=0)
    idx.setflags(write=False)
    return idx


def _training_digits(train_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of the training subset of this size (the full set without a copy)."""
    ds = get_dataset()
    idx = get_subset(train_size)
    X = ds.train_images if len(idx) == len(ds.train_images) else ds.train_images[idx]
    return X, ds.train_labels[idx]


def held_bytes(obj, skip: tuple = ()) -> int:
    """Bytes of the numpy arrays an object holds (in its attributes, to a few levels), each buffer
    counted once, leaving out the buffers of the arrays in `skip` (e.g. the dataset's own images)."""
    seen = {id(_buffer(a)) for a in skip}
    total = 0

    def walk(x, depth):
        nonlocal total
        if isinstance(x, np.ndarray):
            root = _buffer(x)
            if id(root) not in seen:
                seen.add(id(root))
                total += root.nbytes
        elif depth < 4 and isinstance(x, (list, tuple)):
            for v in x:
                walk(v, depth + 1)
        elif depth < 4 and isinstance(x, dict):
            for v in x.values():
                walk(v, depth + 1)
        elif depth < 4 and hasattr(x, "__dict__") and not isinstance(x, type):
            for v in vars(x).values():
                walk(v, depth + 1)

    walk(obj, 0)
    return total


def _buffer(a: np.ndarray) -> np.ndarray:
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


class _FittedClassifiers:
    """At most `size` fitted classifiers holding at most `max_bytes`, least recently used dropped first.

    Fits go through `queue` (one worker: one fit at a time, at low priority, in the background; the
    same key asked twice is fitted once; at most `per_owner` waiting per session), and room is made
    before a fit starts, so at most `size` are in memory, the one being fitted included.
    """

    def __init__(self, size: int, max_bytes: float = FITTED_MAX_BYTES):
        self.size = size
        self.max_bytes = max_bytes
        self.queue = JobQueue(1, per_owner=1, keep=0)  # what sessions ask for: in the background
        self.startup = JobQueue(1, per_owner=1, keep=0, background=False)  # the default, at start: at once
        self._done: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, search: Method, train_size: int, owner: str | None = None, *,
            background: bool = True) -> KNNClassifier:
        """The fitted classifier, fitting it first if needed (waiting for it). Raises QueueFull when
        `owner` (a session; by default the calling thread) already waits for another fit, and
        whatever the fit raised. `background=False` (the server's warm-up): fitted at normal priority,
        and whoever asks for it meanwhile waits for that fit."""
        key = (search, train_size)
        with self._lock:
            if key in self._done:
                self._done.move_to_end(key)
                return self._done[key]
        job = self.startup.get(key)
        if job is None or job.ended:
            queue = self.queue if background else self.startup
            job = queue.submit(key, lambda progress: self._fit(key), owner=owner or f"thread {threading.get_ident()}")
        result = wait_for_job(job, "preparing this method")
        self._keep(key, result)
        return result

    def _fit(self, key) -> KNNClassifier:
        search, train_size = key
        with self._lock:  # room first: a fit can take as much as what it replaces
            while len(self._done) >= self.size:
                self._done.popitem(last=False)
        X, y = _training_digits(train_size)
        return KNNClassifier(method=search, random_state=0, n_jobs=SERVER_SEARCH_THREADS).fit(X, y)

    def _keep(self, key, clf: KNNClassifier) -> None:
        with self._lock:
            self._done[key] = clf
            self._done.move_to_end(key)
            while len(self._done) > self.size:
                self._done.popitem(last=False)
            images = (get_dataset().train_images,)
            while len(self._done) > 1 and sum(held_bytes(c, images) for c in self._done.values()) > self.max_bytes:
                self._done.popitem(last=False)

    def keys(self) -> list:
        with self._lock:
            return list(self._done)


_FITTED = _FittedClassifiers(FITTED_MAX)


def get_fitted(search: Method, train_size: int, owner: str | None = None, *, background: bool = True) -> KNNClassifier:
    """A KNNClassifier of this method fitted on `train_size` digits, shared by every session.

    Never mutate it: use :func:`classifier` for per-view vote parameters.
    """
    return _FITTED.get(search, train_size, owner, background=background)


def is_fitted(search: Method, train_size: int) -> bool:
    """Whether get_fitted would answer at once (for a spinner while it fits)."""
    return (search, train_size) in _FITTED.keys()


def wait_for_job(job, what: str):
    """The result of a background job this script run waits for (touching it, without holding its turn),
    or its error. Raises KnnLabError when it was cancelled, or when the page closed meanwhile (nobody waits:
    the job is cancelled in a few seconds). `what`: for those messages, e.g. "preparing this method"."""
    with fair.waiting_for_work():
        while not job.ended and browser_connected():
            job.touch()  # someone still waits for it
            time.sleep(0.05)
    if not job.ended:
        raise KnnLabError(f"the page was closed while {what}")
    if job.state != DONE:
        raise job.error if job.error is not None else KnnLabError(f"{what} was cancelled; try again")
    return job.result


def browser_connected() -> bool:
    """Whether the browser of this script run is still connected (True outside a script run).

    A script that waits for a job touches it to say someone waits (knn_core.jobs); a closed tab's
    script would wait on, touching it, and keep the server busy for nobody."""
    from streamlit import runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)
    if ctx is None or not runtime.exists():
        return True
    return runtime.get_instance().is_active_session(ctx.session_id)


def session_owner() -> str:
    """This browser session, for the per-session limits of the job queues."""
    import streamlit as st

    return st.session_state.setdefault("_search_owner", uuid.uuid4().hex)


def classifier(settings: Settings) -> KNNClassifier:
    """The shared fitted classifier of this view's method, with its k, weights and tie rule.

    A shallow copy: it shares the fitted search (no refit, no extra memory),
    and set_params on it leaves the cached object untouched.
    """
    if is_fitted(settings.search, settings.size):
        fitted = get_fitted(settings.search, settings.size)
    else:
        import streamlit as st

        try:
            with st.spinner("Preparing the training digits for this method (once per method and size)…"):
                fitted = get_fitted(settings.search, settings.size, session_owner())
        except QueueFull:
            st.info("Another method is still being prepared for you: this one follows once it is ready. "
                    "Draw again in a moment.", icon="⏳")
            st.stop()
    return copy.copy(fitted).set_params(n_neighbors=settings.k, weights=settings.weights, tie_break=settings.tie)


@dataclass(frozen=True)
class Neighbours:
    """One digit's nearest training digits as a page shows them, whatever found them."""

    distances: np.ndarray
    indices: np.ndarray  # into the classifier's training digits (the votes)
    rows: np.ndarray  # into get_dataset().train_images
    labels: np.ndarray
    images: np.ndarray  # the training digits as they were compared (a method's: prepared, shifted)
    query: np.ndarray  # the digit as it was compared
    shifts: np.ndarray | None  # (n, 2) (dy, dx) of the matched shifted copies, or None
    distance_name: str  # e.g. "euclidean distance", "IDM distance"


def nearest(clf, digit: np.ndarray, settings: Settings, n: int | None = None) -> Neighbours:
    """The n (default k) nearest training digits of one 28x28 digit under this view's settings.

    With a method, the pictures are what the method compared: the query and the
    training digits deskewed / blurred, each neighbour at the shift that matched.
    """
    ds = get_dataset()
    n = settings.k if n is None else n
    nb = clf.kneighbors_detail(digit[None], n)
    dist, ind = nb.distances[0], nb.indices[0]
    shifts = None if nb.shifts is None or not np.any(nb.shifts[0]) else nb.shifts[0]  # no "moved by (0, 0)"
    moves = shifts if shifts is not None else np.zeros((len(ind), 2), int)
    images = np.stack([clf.training_image(int(i), s) for i, s in zip(ind, moves)])
    query = clf.transform(digit[None])[0]
    rows = get_subset(settings.size)[ind]
    return Neighbours(dist, ind, rows, ds.train_labels[rows], images, query, shifts, clf.distance_name)
