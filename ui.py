"""Streamlit helpers shared by the pages of kNN Digit Lab.

- **Settings** (the sidebar): every setting is declared once in ``SETTINGS``
  (label, default, allowed values, query-parameter name).  ``app.py`` renders
  them on every run (``with shared_sidebar(): page.run()``); a page reads them
  with ``settings = current_settings()``, which renders the sidebar itself when
  the page runs without app.py (tests, or Streamlit running a ``pages/`` script
  directly).  Values live in ``st.session_state`` (so they
  survive page switches) and are mirrored into the URL query string (so a
  link reproduces a view).  A bad value in the URL gives an ``st.warning``
  naming the parameter and the default is used instead.

  To add a setting: append a :class:`SettingSpec` to ``SETTINGS`` and a field
  of the same name to :class:`Settings`.  Parsing and validation
  (:meth:`SettingSpec.parse`, :func:`settings_from_query`) are plain Python,
  unit-tested without Streamlit.

- **Cached resources**: :func:`get_dataset`, :func:`get_fitted` (one fitted
  classifier per (metric, training size) per server process, shared by every
  session) and :func:`classifier` (a cheap copy carrying this view's vote
  parameters; the shared object is never mutated).  :func:`one_blas_thread_per_run`
  (app.py, once per process): the sessions are the parallelism, not BLAS threads.

- **Digit pictures**: :func:`enlarge` (nearest-neighbour upscaling, so pixels
  stay crisp), :func:`digit_tile` (optionally with a coloured frame) and
  :func:`digit_grid` (many digits with captions in one inline-HTML element).
"""
from __future__ import annotations

import base64
import copy
import dataclasses
import html
import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

import cv2
import numpy as np
import streamlit as st
from threadpoolctl import threadpool_limits

from knn_core import KNNClassifier, load_mnist
from knn_core.classifier import TIE_BREAKS, WEIGHTS
from knn_core.evaluate import stratified_subset
from knn_core.preprocess import MNIST_STROKE, Stages, canvas_to_mnist_stages
from knn_core.methods import PRESETS, MethodClassifier, estimate_recipe_seconds, recipe_cached, recipe_neighbors
from knn_core.search import METRICS

# ----------------------------------------------------------------------------- settings

MINKOWSKI_P = 3
TRAIN_SIZES = (500, 1000, 2000, 5000, 10000, 20000, 60000)
K_MIN, K_MAX = 1, 50


@dataclass(frozen=True)
class SettingSpec:
    """One sidebar setting: how it is shown, its allowed values, and its URL name.

    kind: "int" (a slider over [lo, hi]), "choice" (a select box over
    ``choices``) or "int_choice" (a select slider over integer ``choices``).
    """

    key: str  # field of Settings, session-state key and query-parameter name
    label: str
    default: Any
    kind: str
    lo: int | None = None
    hi: int | None = None
    choices: tuple = ()
    help: str = ""
    format_func: Callable[[Any], str] = str

    def parse(self, raw: str) -> Any:
        """A query-string value -> the setting's value; ValueError naming the problem."""
        text = str(raw).strip()
        if self.kind == "int":
            value = _parse_int(text)
            if value is None:
                raise ValueError(f"{self.key}={raw!r} is not a whole number")
            if not self.lo <= value <= self.hi:
                raise ValueError(f"{self.key}={raw} is outside {self.lo}..{self.hi}")
            return value
        if self.kind == "int_choice":
            value = _parse_int(text)
            if value is None or value not in self.choices:
                allowed = ", ".join(str(c) for c in self.choices)
                raise ValueError(f"{self.key}={raw!r} is not one of {allowed}")
            return value
        if self.kind == "choice":
            for c in self.choices:
                if text.lower() == str(c).lower():
                    return c
            raise ValueError(f"{self.key}={raw!r} is not one of {', '.join(map(str, self.choices))}")
        raise AssertionError(f"unknown setting kind {self.kind!r}")

    def to_query(self, value: Any) -> str:
        return str(value)


def _parse_int(text: str) -> int | None:
    try:
        return int(text, 10)
    except ValueError:
        return None


_METRIC_LABELS = {"minkowski": f"minkowski (p={MINKOWSKI_P})"}
CLASSIC = "classic"  # the method setting's value for plain kNN with the Distance setting
METHODS = (CLASSIC,) + tuple(name for name in PRESETS if name != "plain")  # "plain" is classic euclidean
METHOD_PREFIX = "method:"  # a search key naming a method preset instead of a metric (see Settings.search)


def _method_label(method: str) -> str:
    return "classic kNN (pixels, the Distance below)" if method == CLASSIC else PRESETS[method].label

SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("k", "k (neighbours)", 5, "int", lo=K_MIN, hi=K_MAX,
                help="How many nearest training digits vote."),
    SettingSpec("method", "Method", CLASSIC, "choice", choices=METHODS,
                help="Classic kNN compares the raw pixels with the Distance below. The other methods "
                     "go beyond it (LeCun's MNIST page; Keysers et al. 2007): they deskew and blur the "
                     "digits, measure L3, let the training digits shift by 1-2 pixels, or let every pixel "
                     "move a little (IDM), each with its own distance. They are slower; the first use "
                     "prepares the training digits (seconds to a minute).",
                format_func=_method_label),
    SettingSpec("metric", "Distance", "euclidean", "choice", choices=tuple(METRICS),
                help="How the distance between two 28x28 digits is measured.",
                format_func=lambda m: _METRIC_LABELS.get(m, m)),
    SettingSpec("weights", "Vote weights", "uniform", "choice", choices=tuple(WEIGHTS),
                help="uniform: one vote per neighbour; distance: each vote weighs 1/distance."),
    SettingSpec("tie", "Tie rule", "smallest", "choice", choices=tuple(TIE_BREAKS),
                help="smallest: the lowest digit wins a tie; nearest: the class of the nearest "
                     "tied neighbour; random: a seeded random draw."),
    SettingSpec("size", "Training digits", 60000, "int_choice", choices=TRAIN_SIZES,
                help="A class-balanced subset of the 60,000 MNIST training digits.",
                format_func=lambda n: f"{n:,}"),
)
SPECS: dict[str, SettingSpec] = {s.key: s for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """The current view's settings (one field per entry of SETTINGS)."""

    k: int = 5
    method: str = CLASSIC
    metric: str = "euclidean"
    weights: str = "uniform"
    tie: str = "smallest"
    size: int = 60000

    def as_query(self) -> dict[str, str]:
        return {s.key: s.to_query(getattr(self, s.key)) for s in SETTINGS}

    @property
    def search(self) -> str:
        """What finds the neighbours: a metric name (classic kNN) or "method:<preset>".

        The first part of every neighbour-list request and cache key of the pages."""
        return self.metric if self.method == CLASSIC else METHOD_PREFIX + self.method

    @property
    def distance_label(self) -> str:
        """The distance the neighbours are ranked by, for captions."""
        return search_label(self.search)


def with_search(settings: Settings, search: str, **changes) -> Settings:
    """These settings with the neighbours found by `search` (a metric, or "method:<preset>") instead."""
    if search.startswith(METHOD_PREFIX):
        return dataclasses.replace(settings, method=search[len(METHOD_PREFIX):], **changes)
    return dataclasses.replace(settings, method=CLASSIC, metric=search, **changes)


def search_label(search: str) -> str:
    """A search key (Settings.search) in words: 'euclidean', or 'deskew + blur, L3 (L3 distance)'."""
    if search.startswith(METHOD_PREFIX):
        preset = PRESETS[search[len(METHOD_PREFIX):]]
        return f"{preset.label} ({preset.recipe.distance_name})"
    return _METRIC_LABELS.get(search, search)


if [f.name for f in dataclasses.fields(Settings)] != [s.key for s in SETTINGS]:
    raise TypeError("Settings fields and SETTINGS must list the same keys in the same order")
if any(getattr(Settings(), s.key) != s.default for s in SETTINGS):
    raise TypeError("Settings defaults must equal the SettingSpec defaults")


def settings_from_query(params: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Query parameters -> (values for the keys present and valid, warnings for the invalid ones).

    Unknown parameters are ignored (other pages may use them).  A list value
    (a parameter given twice) counts by its last entry, as st.query_params does.
    """
    values: dict[str, Any] = {}
    warnings: list[str] = []
    for spec in SETTINGS:
        if spec.key not in params:
            continue
        raw = params[spec.key]
        if isinstance(raw, (list, tuple)):
            if not raw:
                continue
            raw = raw[-1]
        try:
            values[spec.key] = spec.parse(raw)
        except ValueError as exc:
            warnings.append(
                f"Ignoring URL parameter **{spec.key}**: {exc}; "
                f"using the default {spec.key}={spec.format_func(spec.default)}."
            )
    return values, warnings


_STATE = "_settings"  # session key: the settings' current values (a dict)
_URL_STATE = "_settings_url"  # session key: the query values this session last wrote
_CURRENT = "_settings_current"  # session key: the Settings of this run
_RENDERED = "_settings_rendered"  # session key: True while app.py runs a page under the sidebar


def _widget_key(key: str) -> str:
    return f"setting_{key}"


def sidebar_settings() -> Settings:
    """Render the shared sidebar settings and return them (once per run: see shared_sidebar).

    The URL wins when it carries a value this session did not write itself (a
    shared link, the first load of a session); otherwise the widgets do, and
    the URL is updated to match.
    """
    state = st.session_state
    stored = state.get(_STATE, {})
    # Defaults first, so a setting added while a session is open gets its default.
    values: dict[str, Any] = {s.key: stored.get(s.key, s.default) for s in SETTINGS}
    written: dict[str, str] = state.get(_URL_STATE, {})
    fresh = _STATE not in state

    incoming = {k: st.query_params[k] for k in st.query_params.keys() if k in SPECS}
    changed = {k: v for k, v in incoming.items() if fresh or written.get(k) != v}
    parsed, warnings = settings_from_query(changed)
    for key in changed:
        values[key] = parsed.get(key, SPECS[key].default)
    for w in warnings:
        st.warning(w, icon="⚠️")

    with st.sidebar:
        st.header("Settings")
        for spec in SETTINGS:
            wkey = _widget_key(spec.key)
            if spec.key in changed or wkey not in state:
                state[wkey] = values[spec.key]
            # A method brings its own distance: the Distance setting then has no say.
            disabled = spec.key == "metric" and values["method"] != CLASSIC
            if spec.kind == "int":
                st.slider(spec.label, spec.lo, spec.hi, key=wkey, help=spec.help)
            elif spec.kind == "int_choice":
                st.select_slider(spec.label, options=list(spec.choices), key=wkey, help=spec.help,
                                 format_func=spec.format_func)
            else:
                st.selectbox(spec.label, options=list(spec.choices), key=wkey, format_func=spec.format_func,
                             disabled=disabled,
                             help=f"Set by the method ({_method_label(values['method'])})." if disabled
                             else spec.help)
            values[spec.key] = state[wkey]
        _offer_the_methods_vote(values)

    settings = Settings(**values)
    state[_STATE] = dict(values)
    state[_CURRENT] = settings
    query = settings.as_query()
    if any(st.query_params.get(k) != v for k, v in query.items()):
        st.query_params.update(query)
    state[_URL_STATE] = query
    return settings


def _offer_the_methods_vote(values: dict) -> None:
    """With a method whose validated vote (k, weights) is not the current one: a button to use it."""
    if values["method"] == CLASSIC:
        return
    preset = PRESETS[values["method"]]
    if (values["k"], values["weights"]) == (preset.k, preset.weights):
        st.caption(f"k={preset.k} with {preset.weights} weights: this method's vote chosen on validation.")
        return

    def use_it():
        st.session_state[_widget_key("k")] = preset.k
        st.session_state[_widget_key("weights")] = preset.weights

    st.button(f"Use this method's vote: k={preset.k}, {preset.weights} weights", on_click=use_it,
              key="use_method_vote", help="The k and vote weights chosen for this method on the validation "
                                          "split (the last 10,000 training digits), as in the README's table.")


@contextmanager
def shared_sidebar() -> Iterator[Settings]:
    """For app.py: render the sidebar settings, then run the page inside this block.

    Pages inside the block get these settings from current_settings() without
    rendering the widgets a second time.  The mark is cleared however the run
    ends (st.rerun and st.stop raise through here).
    """
    settings = sidebar_settings()
    st.session_state[_RENDERED] = True
    try:
        yield settings
    finally:
        st.session_state[_RENDERED] = False


def current_settings() -> Settings:
    """The settings of this run, for pages: ``settings = ui.current_settings()``.

    Under app.py's shared_sidebar() they were rendered already; a page run on
    its own renders the sidebar here.
    """
    state = st.session_state
    if state.get(_RENDERED) and _CURRENT in state:
        return state[_CURRENT]
    _leave_legacy_pages_mode()
    return sidebar_settings()


def _leave_legacy_pages_mode() -> None:
    """Run app.py even when a link to a page is the first request a server sees.

    With a folder named pages/ beside app.py, Streamlit starts in its legacy
    multipage mode (each page runs on its own, with an automatic menu) and
    leaves it only when app.py first calls st.navigation. A page that finds
    itself run that way switches the mode off and reruns: app.py then runs
    and st.navigation opens the page the URL names.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


# ------------------------------------------------------------------------ cached resources

SERVER_BLAS_THREADS = 1


@st.cache_resource(show_spinner=False)
def one_blas_thread_per_run() -> None:
    """Once per server process (app.py): numpy's BLAS runs one thread per script run.

    One server process answers every session; the sessions are the parallelism.
    With its default two threads, OpenBLAS's second thread spins waiting for work
    after each small product: ~45 of a stroke's ~70 ms of server CPU, for no
    gain in latency (loadtest/README.md). Batch searches keep their own
    one-BLAS-thread-per-worker pool (knn_core.search).
    """
    threadpool_limits(limits=SERVER_BLAS_THREADS, user_api="blas")


@st.cache_resource(show_spinner="Loading MNIST…")
def get_dataset():
    """The bundled MNIST, loaded once per server process."""
    return load_mnist()


@st.cache_resource(show_spinner=False)
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


@st.cache_resource(show_spinner="Fitting the classifier (once per distance and size)…")
def get_fitted(metric: str, train_size: int) -> KNNClassifier:
    """A KNNClassifier fitted on `train_size` digits with `metric`, shared by every session.

    Never mutate it: use :func:`classifier` for per-view vote parameters.
    """
    return KNNClassifier(metric=metric, p=MINKOWSKI_P, random_state=0).fit(*_training_digits(train_size))


@st.cache_resource(show_spinner="Preparing the training digits for this method (once per method and size)…")
def get_fitted_method(method: str, train_size: int) -> MethodClassifier:
    """A MethodClassifier with preset `method` fitted on `train_size` digits, shared by every session."""
    return MethodClassifier(PRESETS[method].recipe, random_state=0).fit(*_training_digits(train_size))


def classifier(settings: Settings) -> KNNClassifier | MethodClassifier:
    """The shared fitted classifier of this view's method (or metric), with its k, weights and tie rule.

    A shallow copy: it shares the fitted search (no refit, no extra memory),
    and set_params on it leaves the cached object untouched.
    """
    if settings.method != CLASSIC:
        fitted = get_fitted_method(settings.method, settings.size)
    else:
        fitted = get_fitted(settings.metric, settings.size)
    return copy.copy(fitted).set_params(
        n_neighbors=settings.k, weights=settings.weights, tie_break=settings.tie
    )


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


def shift_arrows(dy: int, dx: int) -> str:
    """A shift in arrows, e.g. (1, -2) -> '←2 ↓1' (dx first)."""
    parts = [("→" if dx > 0 else "←") + str(abs(dx))] if dx else []
    parts += [("↓" if dy > 0 else "↑") + str(abs(dy))] if dy else []
    return " ".join(parts)


def nearest(clf, digit: np.ndarray, settings: Settings, n: int | None = None) -> Neighbours:
    """The n (default k) nearest training digits of one 28x28 digit under this view's settings.

    With a method, the pictures are what the method compared: the query and the
    training digits deskewed / blurred, each neighbour at the shift that matched.
    """
    ds = get_dataset()
    n = settings.k if n is None else n
    if isinstance(clf, MethodClassifier):
        nb = clf.kneighbors_detail(digit[None], n)
        dist, ind, shifts = nb.distances[0], nb.indices[0], nb.shifts[0]
        images = np.stack([clf.training_image(int(i), s) for i, s in zip(ind, shifts)])
        query = clf.transform(digit[None])[0]
        name = clf.distance_name
    else:
        d, i = clf.kneighbors(digit[None], n)
        dist, ind, shifts, query = d[0], i[0], None, digit
        name = f"{settings.distance_label} distance"
    rows = get_subset(settings.size)[ind]
    if shifts is None:
        images = ds.train_images[rows]
    elif not np.any(shifts):
        shifts = None  # a method without shifts: no need to say "shifted by (0, 0)"
    return Neighbours(dist, ind, rows, ds.train_labels[rows], images, query, shifts, name)


# Drawings: strokes thinner than MNIST's (a thin pen on a big digit) are thickened to MNIST's typical
# width first. On 2,000 redrawn test digits this took a thin pen from 91.3% to 97.1% and a normal one
# from 96.6% to 97.5% (README, "Drawings, robustness and latency"); MNIST-thick strokes are untouched.
DRAWING_MIN_STROKE = MNIST_STROKE


def drawing_stages(image) -> Stages:
    """A canvas drawing -> the MNIST-style stages the pages classify (see DRAWING_MIN_STROKE)."""
    return canvas_to_mnist_stages(image, min_stroke=DRAWING_MIN_STROKE)


def drawing_to_mnist(image) -> np.ndarray:
    """A canvas drawing -> the 28x28 digit the pages classify."""
    return drawing_stages(image).centred


# ---------------------------------------------------------------------------- digit images

GREEN = (46, 204, 64)
GREY = (90, 90, 90)


def enlarge(image: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling (each pixel becomes a scale x scale block); keeps the dtype."""
    a = np.asarray(image)
    return np.repeat(np.repeat(a, scale, axis=0), scale, axis=1)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """uint8 stays; floats in [0, 1] are scaled to 0..255."""
    a = np.asarray(image)
    if a.dtype == np.uint8:
        return a
    return np.clip(np.rint(a.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)


def digit_tile(image: np.ndarray, scale: int = 4, border: tuple | None = None, width: int = 3) -> np.ndarray:
    """A digit as an enlarged RGB tile, with a `width`-px frame of colour `border` if given."""
    g = enlarge(to_uint8(image), scale)
    rgb = np.repeat(g[:, :, None], 3, axis=2)
    if border is not None:
        rgb = np.pad(rgb, ((width, width), (width, width), (0, 0)))
        rgb[:width], rgb[-width:], rgb[:, :width], rgb[:, -width:] = border, border, border, border
    return rgb


def png_data_uri(image: np.ndarray) -> str:
    """A grey (H, W) or RGB (H, W, 3) image as an inline PNG data URI."""
    a = to_uint8(image)
    if a.ndim == 3:
        a = np.ascontiguousarray(a[:, :, ::-1])  # OpenCV writes BGR
    ok, buf = cv2.imencode(".png", a, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError(f"cannot encode an image of shape {a.shape} as PNG")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _rgb_css(colour: tuple) -> str:
    return "rgb({}, {}, {})".format(*colour)


def _caption_html(text: str) -> str:
    """Plain text, with **bold** and line breaks (\n), as safe HTML."""
    out = html.escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    return out.replace("\n", "<br>")


def digit_grid_html(images: Sequence[np.ndarray], captions: Sequence[str] | None = None,
                    scale: int = 3, borders: Sequence[tuple | None] | None = None,
                    alts: Sequence[str] | None = None) -> str:
    """The HTML of a wrapping row of digits with captions (see digit_grid)."""
    n = len(images)
    captions = list(captions) if captions is not None else [""] * n
    borders = list(borders) if borders is not None else [None] * n
    alts = list(alts) if alts is not None else [c.replace("**", "") for c in captions]
    framed = any(b is not None for b in borders)
    figures = []
    for img, cap, border, alt in zip(images, captions, borders, alts):
        small = to_uint8(img)  # sent at its own size; the browser enlarges it, crisp (pixelated)
        h, w = small.shape[0] * scale, small.shape[1] * scale
        frame = f"border:3px solid {_rgb_css(border if border is not None else GREY)};" if framed else ""
        figures.append(
            f'<figure class="digit" style="margin:0;width:{w + (6 if framed else 0)}px">'
            f'<img src="{png_data_uri(small)}" alt="{html.escape(alt)}" width="{w}" height="{h}" '
            f'style="display:block;width:{w}px;height:{h}px;image-rendering:pixelated;{frame}">'
            + (f'<figcaption style="font-size:0.75rem;line-height:1.25;text-align:center;'
               f'opacity:0.75;margin-top:3px">{_caption_html(cap)}</figcaption>' if cap else "")
            + "</figure>"
        )
    return ('<div class="digit-grid" style="display:flex;flex-wrap:wrap;gap:10px 8px;'
            'align-items:flex-start">' + "".join(figures) + "</div>")


def digit_grid(images: Sequence[np.ndarray], captions: Sequence[str] | None = None,
               scale: int = 3, borders: Sequence[tuple | None] | None = None,
               alts: Sequence[str] | None = None) -> None:
    """Show digits (or any small pictures) in a wrapping row with captions.

    Each picture is shown enlarged by whole pixels (``scale``; crisp, no
    smoothing: the browser scales it with ``image-rendering: pixelated``) and
    sent inline at its own size as a tiny PNG inside one st.html element: no media files
    for the browser to fetch, so the grid appears together with the rest of
    the page.  captions: plain text, ``**bold**`` and ``\n`` allowed.
    borders: a frame colour (RGB tuple) or None per picture; when any picture
    has a frame, the others get a grey one so the tiles line up.  alts: the
    pictures' alt texts (default: the captions).
    """
    if len(images) == 0:
        return
    st.html(digit_grid_html(images, captions, scale, borders, alts))


# ---------------------------------------------------------------------- the drawing canvas
# Shared by the pages that draw (lifted from pages/draw.py).

CANVAS_SIZE = 280
PEN_DEFAULT = 18
MAX_DRAWING_PIXELS = 4_000_000  # a canvas sends 280 x 280; anything near this is not a drawing

# Two small fixes to the canvas component, from the page (its code is in a shadow root):
# 1. With update_streamlit=True it shows its toolbar (undo, redo, clear) only while the
#    pointer is over it; one CSS rule in its shadow root keeps the toolbar visible.
# 2. It sends a finished stroke to Python only after a 200 ms debounce.  When a stroke
#    ends (pointer up after a pointer down on the drawing surface) we press the
#    toolbar's own "Update the app with this drawing" button, which sends the same
#    drawing at once and cancels the pending send.
# Both degrade gracefully: if the component changes, nothing matches, the toolbar
# still shows on hover and strokes still arrive after the debounce.  They apply to
# every canvas inside a container whose key ends in "canvas_box" (see drawing_canvas).
_CANVAS_TWEAKS = """<script>
(function () {
  if (window.__knnCanvasTweaks) return;
  window.__knnCanvasTweaks = true;
  const HOSTS = '[class*="st-key-"][class*="canvas_box"] [data-testid="stBidiComponentIsolated"]';
  const CSS = ".dc-toolbar{opacity:1 !important;top:-2.65rem !important}";
  function pin() {
    document.querySelectorAll(HOSTS).forEach(function (host) {
      const root = host.shadowRoot;
      if (root && !root.querySelector("style[data-knn-pin]")) {
        const s = document.createElement("style");
        s.setAttribute("data-knn-pin", "1");
        s.textContent = CSS;
        root.appendChild(s);
      }
    });
  }
  pin();
  setInterval(pin, 400);
  let stroke = null;
  document.addEventListener("pointerdown", function (ev) {
    stroke = null;
    const path = ev.composedPath();
    const surface = path.find(function (el) {
      return el.classList && el.classList.contains("upper-canvas");
    });
    if (!surface) return;
    const host = path.find(function (el) { return el.matches && el.matches(HOSTS); });
    if (host) stroke = host;
  }, true);
  window.addEventListener("pointerup", function () {
    const host = stroke;
    stroke = null;
    if (!host || !host.shadowRoot) return;
    setTimeout(function () {  // after the canvas has added the stroke
      const send = host.shadowRoot.querySelector(
        'button[aria-label="Update the app with this drawing"]');
      if (send && !send.disabled) send.click();
    }, 0);
  });
})();
</script>"""


class DrawingError(ValueError):
    """What the browser sent as the canvas' drawing is not a usable picture."""


def drawing_canvas(key: str = "canvas", pen_width: int = PEN_DEFAULT) -> np.ndarray | None:
    """The black 280 x 280 drawing canvas, in a container keyed ``f"{key}_box"``.

    Returns the drawing as a (280, 280, 4) uint8 RGBA array (white ink on
    black), or None before the first stroke.  Whatever a client sends as the
    canvas' value (not a PNG, an enormous picture, a malformed drawing)
    becomes an ``st.error`` and None, never an exception.
    """
    from streamlit_drawable_canvas import st_canvas  # needs a running Streamlit

    with st.container(key=f"{key}_box"):
        st.html(_CANVAS_TWEAKS, unsafe_allow_javascript=True)
        try:
            result = st_canvas(
                fill_color="rgba(0, 0, 0, 0)",
                stroke_width=int(pen_width),
                stroke_color="#FFFFFF",
                background_color="#000000",
                height=CANVAS_SIZE,
                width=CANVAS_SIZE,
                drawing_mode="freedraw",
                update_streamlit=True,
                return_image_data=True,
                key=key,
            )
            return drawing_from_bytes(result.image_bytes)
        except (DrawingError, AttributeError, TypeError, KeyError, ValueError) as exc:
            reason = exc if isinstance(exc, DrawingError) else "it is not a drawing from this canvas"
            st.error(f"Can't read this drawing: {reason}. Clear the canvas (🗑 in its toolbar) "
                     "and draw again.", icon="🚫")
            return None


def drawing_from_bytes(data: bytes | None, max_pixels: int = MAX_DRAWING_PIXELS) -> np.ndarray | None:
    """The canvas' PNG -> an array; DrawingError for anything that is not a reasonably sized picture.

    The size is read from the header before anything is decoded, so an
    enormous picture costs nothing.
    """
    if data is None:
        return None
    import io
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # the size is checked below, before decoding
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise DrawingError("it is not a PNG picture") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise DrawingError(f"the picture is damaged ({type(exc).__name__})") from exc
    with img:
        w, h = img.size
        if w * h > max_pixels:
            raise DrawingError(f"it is {w:,}x{h:,} pixels, the canvas sends {CANVAS_SIZE}x{CANVAS_SIZE}")
        try:
            img.load()
            return np.asarray(img)
        except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt pixel data
            raise DrawingError(f"the picture is damaged ({type(exc).__name__})") from exc


# --------------------------------------------------------------------- on-disk cache problems


def show_cache_warnings() -> None:
    """Show each problem of the on-disk cache (knn_core.cache.warnings_seen) once per session.

    The cache logs each problem once per process; a page that relies on
    cached results calls this so the person in front of it learns why it was
    slow (e.g. a read-only or corrupt cache folder), once.
    """
    from knn_core import cache

    shown = st.session_state.setdefault("_cache_warnings_shown", [])
    for message in list(cache.warnings_seen):
        if message not in shown:
            shown.append(message)
            st.warning(f"On-disk cache: {message}.", icon="💾")


# ------------------------------------------- long searches, neighbours and votes (analysis pages)
# Imports of this section are kept here so it stays one block.
import threading  # noqa: E402
import time  # noqa: E402

from knn_core.evaluate import K_MAX as SEARCH_K  # noqa: E402
from knn_core.evaluate import estimate_search_seconds, neighbors_cached, split_neighbors  # noqa: E402

CONFIRM_SECONDS = 60.0  # a search estimated to take longer waits for a button press
KEEP_SEARCHES = 24  # finished neighbour lists kept in memory; older ones reload from the disk cache


def fmt_seconds(seconds: float) -> str:
    """A duration for people: '5 s', '3 min', '1.2 h'."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


@dataclass(eq=False)
class _Search:
    """One split_neighbors call, run in a background thread of this server process."""

    request: tuple  # (split, search: a metric or "method:<preset>" (Settings.search), training size)
    estimate: float  # seconds; 0 when it is read from the disk cache
    started: float = dataclasses.field(default_factory=time.monotonic)
    done: int = 0
    total: int = 0
    finished: float | None = None
    result: Any = None
    error: BaseException | None = None
    used: float = 0.0

    def progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    @property
    def fraction(self) -> float:
        return 1.0 if self.finished else self.done / self.total if self.total else 0.0


@st.cache_resource(show_spinner=False)
def _searches() -> tuple[dict, threading.Lock]:
    """Process-wide: (request -> _Search, its lock). Shared by every session."""
    return {}, threading.Lock()


def _preset_of(search: str):
    """The method preset a search key names, or None for a metric."""
    return PRESETS[search[len(METHOD_PREFIX):]] if search.startswith(METHOD_PREFIX) else None


def _search_lists(ds, split: str, search: str, size: int, progress=None):
    """The neighbour lists of one request: knn_core's split_neighbors or methods.recipe_neighbors."""
    preset = _preset_of(search)
    if preset is not None:
        return recipe_neighbors(ds, preset.recipe, split, train_size=size, k_max=SEARCH_K, progress=progress)
    return split_neighbors(ds, split, metric=search, p=MINKOWSKI_P, train_size=size, k_max=SEARCH_K,
                           progress=progress)


def _is_cached(ds, split: str, search: str, size: int) -> bool:
    preset = _preset_of(search)
    if preset is not None:
        return recipe_cached(ds, preset.recipe, split, train_size=size, k_max=SEARCH_K)
    return neighbors_cached(ds, split, metric=search, p=MINKOWSKI_P, train_size=size)


def _estimate(ds, split: str, search: str, size: int) -> float:
    preset = _preset_of(search)
    if preset is not None:
        return estimate_recipe_seconds(ds, preset.recipe, split, size)
    return estimate_search_seconds(ds, split, search, size)


def _start_search(ds, request: tuple, estimate: float) -> _Search:
    split, search, size = request
    job = _Search(request, estimate)

    def run():
        try:
            job.result = _search_lists(ds, split, search, size, progress=job.progress)
        except BaseException as exc:  # shown by the page that waits for it
            job.error = exc
        finally:
            job.finished = time.monotonic()

    threading.Thread(target=run, name=f"knn-search-{split}-{search}-{size}", daemon=True).start()
    return job


def describe_search(ds, request: tuple) -> str:
    split, search, size = request
    name = search_label(search)
    if split == "test":
        return f"{len(ds.test_labels):,} test digits vs {min(size, len(ds.train_labels)):,} training digits, {name}"
    if split == "val":
        return (f"{len(ds.val_labels):,} validation digits vs {min(size, len(ds.fit_labels)):,} "
                f"training digits, {name}")
    return f"leave-one-out on {min(size, len(ds.train_labels)):,} training digits, {name}"


def neighbor_lists(requests: Sequence[tuple], *, key: str) -> list | None:
    """knn_core neighbour lists (SEARCH_K neighbours) for each (split, search, training size);
    search: a metric or a method (Settings.search).

    From memory after the first time (one copy per server process), else from
    the disk cache, else searched in a background thread while this shows the
    progress and the time estimate (st.status).  A search estimated to take
    longer than CONFIRM_SECONDS starts only after a press of the button shown
    here (key: its widget key).  Returns None while waiting for that press or
    after a failed search (shown as st.error): draw nothing that needs them.
    A started search goes on when the page reruns or the user leaves it.
    """
    ds = get_dataset()
    table, lock = _searches()
    requests = [(split, search, int(size)) for split, search, size in requests]
    with lock:
        missing = [r for r in dict.fromkeys(requests) if r not in table]
    if missing:
        estimates = {r: 0.0 if _is_cached(ds, *r) else _estimate(ds, *r) for r in missing}
        total = sum(estimates.values())
        if total > CONFIRM_SECONDS:
            slow = "; ".join(describe_search(ds, r) for r, s in estimates.items() if s)
            st.warning(f"**This takes about {fmt_seconds(total)}** on this machine ({slow}). The search runs "
                       "in the background: you can use other pages meanwhile, and the result is kept "
                       "on disk for next time.", icon="⏳")
            if not st.button(f"Start the search (about {fmt_seconds(total)})", key=key, type="primary"):
                return None
        with lock:
            for r in missing:
                if r not in table:
                    table[r] = _start_search(ds, r, estimates[r])
            kept = sorted((j for j in table.values() if j.finished and not j.error), key=lambda j: j.used)
            for j in kept[: max(0, len(kept) - KEEP_SEARCHES)]:
                if j.request not in requests:
                    del table[j.request]
    jobs = [table[r] if r in table else None for r in requests]
    jobs = [j if j is not None else _start_search(ds, r, 0.0) for j, r in zip(jobs, requests)]
    if any(j.finished is None for j in jobs):
        _wait(ds, jobs)
    failed = [j for j in jobs if j.error is not None]
    for j in failed:
        st.error(f"The search ({describe_search(ds, j.request)}) failed: {j.error}", icon="🚫")
        with lock:
            table.pop(j.request, None)  # the next run tries again
    if failed:
        return None
    now = time.monotonic()
    for j in jobs:
        j.used = now
    return [j.result for j in jobs]


def _wait(ds, jobs: list) -> None:
    """Show the progress of running searches until they end (from this script's thread)."""
    searching = [j for j in jobs if j.finished is None and j.estimate > 0]
    if searching:
        est = sum(j.estimate for j in searching)
        label = f"Searching ({fmt_seconds(est)} estimated): " + "; ".join(describe_search(ds, j.request)
                                                                          for j in searching)
    else:
        label = "Loading neighbour lists from the disk cache…"
    t0 = min([j.started for j in jobs if j.finished is None], default=time.monotonic())
    weight = [max(j.estimate, 0.5) for j in jobs]
    with st.status(label, expanded=bool(searching)) as status:
        bar = st.progress(0.0)
        while True:
            running = [j for j in jobs if j.finished is None]
            frac = sum(w * j.fraction for w, j in zip(weight, jobs)) / sum(weight)
            now = running[0] if running else None
            text = (f"{describe_search(ds, now.request)}: {now.done:,} of {now.total or '…'} digits"
                    if now else "done")
            bar.progress(min(frac, 1.0), text=f"{text} · {time.monotonic() - t0:.0f} s")
            if not running:
                break
            time.sleep(0.2)
        bad = any(j.error is not None for j in jobs)
        what = "Failed" if bad else "Searched" if searching else "Loaded from the disk cache"
        status.update(label=f"{what} in {time.monotonic() - t0:.1f} s", state="error" if bad else "complete",
                      expanded=False)


WINNER_COLOUR, TIED_COLOUR, OTHER_COLOUR = "#2E7D32", "#F39C12", "#B0BEC5"
WRONG_COLOUR, TRUE_COLOUR = "#C62828", "#1565C0"
RED = (198, 40, 40)


def neighbour_captions(labels, distances, winner, shifts=None) -> tuple[list[str], list[tuple | None], list[str]]:
    """Captions, frames and alt texts for neighbours listed nearest first: rank, **label**,
    distance (and the shift that matched, when given); a ✓ and a green frame for those whose
    label is the winner's (they voted for it)."""
    labels, distances = np.asarray(labels).tolist(), np.asarray(distances).tolist()
    moved = [None] * len(labels) if shifts is None else [tuple(s) for s in np.asarray(shifts).tolist()]
    voted = [lab == winner for lab in labels]
    rows = list(enumerate(zip(labels, distances, voted, moved), start=1))
    captions = [f"#{r} {'✓ ' if v else ''}**{lab}**\nd={d:.4g}"
                + (f"\nmoved {shift_arrows(*m)}" if m and any(m) else "") for r, (lab, d, v, m) in rows]
    alts = [f"rank {r}: a training {lab} at distance {d:.4g}{', voted for the winner' if v else ''}"
            for r, (lab, d, v, _) in rows]
    return captions, [GREEN if v else None for v in voted], alts


def neighbour_grid(images, labels, distances, winner, scale: int = 3) -> None:
    """A digit's nearest training digits, nearest first, captioned by neighbour_captions."""
    captions, borders, alts = neighbour_captions(labels, distances, winner)
    digit_grid(images, captions, scale=scale, borders=borders, alts=alts)


def digits_beside_neighbours_html(images, captions, nb_images, nb_captions, nb_borders, nb_alts=None, *,
                                  frame: tuple | None = None, scale: int = 3, nb_scale: int = 3) -> str:
    """One row: a digit (or a few views of it, framed in `frame`), a rule, and its neighbours."""
    return ('<div class="digit-with-neighbours" style="display:flex;gap:12px;align-items:flex-start">'
            + digit_grid_html(images, captions, scale, [frame] * len(images) if frame else None)
            + '<div class="neighbour-digits" style="border-left:2px solid rgba(128,128,128,0.3);padding-left:12px">'
            + digit_grid_html(nb_images, nb_captions, nb_scale, nb_borders, nb_alts) + "</div></div>")


def digit_with_neighbours(image, caption: str, nb_images, nb_labels, nb_distances, winner,
                          frame: tuple | None = None, scale: int = 3) -> None:
    """A digit (framed in `frame`), and beside it its nearest training digits captioned by
    neighbour_captions: one row, one st.html element."""
    captions, borders, alts = neighbour_captions(nb_labels, nb_distances, winner)
    st.html(digits_beside_neighbours_html([image], [caption], nb_images, captions, borders, alts,
                                          frame=frame, scale=scale + 1, nb_scale=scale))


# The vote chart is redrawn from scratch in every browser on every stroke of the Draw page (a new
# vote is a new chart to Streamlit), so it is kept cheap to draw (loadtest/README.md): a static
# plot (no hover or zoom layers), no Streamlit theme to merge in (theme=None, the "none" template
# and the few colours below), fixed axis ranges, no axis titles (the title says what the bars are).
VOTE_CHART_CONFIG = {"displayModeBar": False, "staticPlot": True}
_CHART_FONT = {"family": '"Source Sans", "Source Sans Pro", sans-serif', "size": 12, "color": "#1B1F1C"}


def vote_figure(scores, classes, winner, *, tied=(), weights: str = "uniform", true_label=None,
                height: int = 230) -> dict:
    """One vote as a bar chart per class (a plain plotly dict): the winner green (red when
    true_label is given and differs), tied classes orange, the true class blue, each bar
    labelled with its vote. Show it with :func:`vote_chart`."""
    classes = np.asarray(classes).tolist()
    scores = np.asarray(scores, dtype=float).tolist()
    wrong = true_label is not None and winner != true_label
    colours = [(WRONG_COLOUR if wrong else WINNER_COLOUR) if c == winner else TRUE_COLOUR if c == true_label
               else TIED_COLOUR if c in tied else OTHER_COLOUR for c in classes]
    weighted = weights == "distance"
    top = max(scores, default=0.0)
    return {
        "data": [{
            "type": "bar", "x": [str(c) for c in classes], "y": scores, "marker": {"color": colours},
            "text": [f"{s:.3g}" if s else "" for s in scores], "textposition": "outside", "cliponaxis": False,
            "hoverinfo": "skip",
        }],
        "layout": {
            "template": "none", "font": _CHART_FONT,
            "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
            "title": {"text": "Vote per class (sum of 1/distance)" if weighted else "Votes per class",
                      "font": {"size": 14}, "x": 0, "xref": "paper"},
            "height": height, "margin": {"l": 36, "r": 8, "t": 32, "b": 24},
            "xaxis": {"type": "category", "fixedrange": True, "showgrid": False, "ticks": ""},
            "yaxis": {"range": [0, 1.2 * top if top > 0 else 1.0], "fixedrange": True, "gridcolor": "#E3E8E4",
                      "zeroline": False, "ticks": "", **({} if weighted else {"dtick": max(1, round(top / 4))})},
            "showlegend": False, "hovermode": False, "dragmode": False,
        },
    }


def vote_chart(scores, classes, winner, *, key: str, tied=(), weights: str = "uniform", true_label=None,
               height: int = 230) -> None:
    """Show :func:`vote_figure` the cheap way (see VOTE_CHART_CONFIG)."""
    st.plotly_chart(vote_figure(scores, classes, winner, tied=tied, weights=weights, true_label=true_label,
                                height=height),
                    key=key, config=VOTE_CHART_CONFIG, theme=None)


def cli_command(command: str, settings: Settings, *, k: bool = True, vote: bool = True, **options) -> str:
    """The `python -m knn_core` line that prints the numbers of a view with these settings."""
    parts = ["python -m knn_core", command]
    if k:
        parts += ["--k", str(settings.k)]
    if settings.method != CLASSIC:
        parts += ["--method", settings.method]
    elif settings.metric != "euclidean":
        parts += ["--metric", settings.metric]
    if settings.size != max(TRAIN_SIZES):
        parts += ["--train-size", str(settings.size)]
    if vote and (settings.weights != "uniform" or settings.method != CLASSIC):  # a method has its own default
        parts += ["--weights", settings.weights]
    if vote and settings.tie != "smallest":
        parts += ["--tie-break", settings.tie]
    for name, value in options.items():
        parts += [f"--{name.replace('_', '-')}", str(value)]
    return " ".join(parts)


def settings_caption(settings: Settings) -> str:
    """The settings a view was computed with, in one line."""
    return (f"k={settings.k}, {settings.distance_label}, {settings.weights} votes, "
            f"tie rule {settings.tie}, {settings.size:,} training digits")
