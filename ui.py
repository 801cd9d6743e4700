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
  parameters; the shared object is never mutated).

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

from knn_core import KNNClassifier, load_mnist
from knn_core.classifier import TIE_BREAKS, WEIGHTS
from knn_core.evaluate import stratified_subset
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

SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("k", "k (neighbours)", 5, "int", lo=K_MIN, hi=K_MAX,
                help="How many nearest training digits vote."),
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
    metric: str = "euclidean"
    weights: str = "uniform"
    tie: str = "smallest"
    size: int = 60000

    def as_query(self) -> dict[str, str]:
        return {s.key: s.to_query(getattr(self, s.key)) for s in SETTINGS}


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
    values: dict[str, Any] = state.get(_STATE) or {s.key: s.default for s in SETTINGS}
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
            if spec.kind == "int":
                st.slider(spec.label, spec.lo, spec.hi, key=wkey, help=spec.help)
            elif spec.kind == "int_choice":
                st.select_slider(spec.label, options=list(spec.choices), key=wkey, help=spec.help,
                                 format_func=spec.format_func)
            else:
                st.selectbox(spec.label, options=list(spec.choices), key=wkey, help=spec.help,
                             format_func=spec.format_func)
            values[spec.key] = state[wkey]

    settings = Settings(**values)
    state[_STATE] = dict(values)
    state[_CURRENT] = settings
    query = settings.as_query()
    if any(st.query_params.get(k) != v for k, v in query.items()):
        st.query_params.update(query)
    state[_URL_STATE] = query
    return settings


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
    return sidebar_settings()


# ------------------------------------------------------------------------ cached resources


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


@st.cache_resource(show_spinner="Fitting the classifier (once per distance and size)…")
def get_fitted(metric: str, train_size: int) -> KNNClassifier:
    """A KNNClassifier fitted on `train_size` digits with `metric`, shared by every session.

    Never mutate it: use :func:`classifier` for per-view vote parameters.
    """
    ds = get_dataset()
    idx = get_subset(train_size)
    X = ds.train_images if len(idx) == len(ds.train_images) else ds.train_images[idx]
    y = ds.train_labels[idx]
    return KNNClassifier(metric=metric, p=MINKOWSKI_P, random_state=0).fit(X, y)


def classifier(settings: Settings) -> KNNClassifier:
    """The shared fitted classifier with this view's k, weights and tie rule.

    A shallow copy: it shares the fitted search (no refit, no extra memory),
    and set_params on it leaves the cached object untouched.
    """
    fitted = get_fitted(settings.metric, settings.size)
    return copy.copy(fitted).set_params(
        n_neighbors=settings.k, weights=settings.weights, tie_break=settings.tie
    )


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
        big = enlarge(to_uint8(img), scale)
        h, w = big.shape[:2]
        frame = f"border:3px solid {_rgb_css(border if border is not None else GREY)};" if framed else ""
        figures.append(
            f'<figure class="digit" style="margin:0;width:{w + (6 if framed else 0)}px">'
            f'<img src="{png_data_uri(big)}" alt="{html.escape(alt)}" width="{w}" height="{h}" '
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

    Each picture is enlarged by whole pixels (``scale``; crisp, no smoothing)
    and sent inline as a tiny PNG inside one st.html element: no media files
    for the browser to fetch, so the grid appears together with the rest of
    the page.  captions: plain text, ``**bold**`` and ``\n`` allowed.
    borders: a frame colour (RGB tuple) or None per picture; when any picture
    has a frame, the others get a grey one so the tiles line up.  alts: the
    pictures' alt texts (default: the captions).
    """
    if len(images) == 0:
        return
    st.html(digit_grid_html(images, captions, scale, borders, alts))
