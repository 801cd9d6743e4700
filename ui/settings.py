"""The shared settings: declared once, shown in the sidebar, mirrored into the URL.

Every setting is declared once in ``SETTINGS`` (label, default, allowed values,
query-parameter name).  ``app.py`` renders them on every run (``with
shared_sidebar(): page.run()``); a page reads them with ``settings =
current_settings()``, which renders the sidebar itself when the page runs
without app.py (AppTest calls a page function on its own).  Values live in
``st.session_state`` (so they survive page switches) and are mirrored into the
URL query string (so a link reproduces a view).  A bad value in the URL gives
an ``st.warning`` naming the parameter and the default is used instead.

To add a setting: append a :class:`SettingSpec` to ``SETTINGS`` and a field of
the same name to :class:`Settings`.  Parsing and validation
(:meth:`SettingSpec.parse`, :func:`settings_from_query`) are plain Python,
unit-tested without Streamlit.
"""
from __future__ import annotations

import dataclasses
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

import streamlit as st

from knn_core.methods import CLASSIC_P, PRESETS, Method
from knn_core.search import METRICS
from knn_core.vote import TIE_BREAKS, WEIGHTS

from .safe import md_escape

MINKOWSKI_P = CLASSIC_P  # the app's minkowski is L3, as the command line's default
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


CLASSIC = "classic"  # the method setting's value for plain kNN with the Distance setting
METHODS = (CLASSIC,) + tuple(name for name in PRESETS if name != "plain")  # "plain" is classic euclidean


def _method_label(method: str) -> str:
    return "classic kNN (raw pixels)" if method == CLASSIC else PRESETS[method].label

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
                format_func=lambda m: Method.classic(m, MINKOWSKI_P).label),
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
    def search(self) -> Method:
        """What finds the neighbours (knn_core's Method): classic kNN with the Distance, or a method preset.

        The first part of every neighbour-list request of the pages."""
        return Method.classic(self.metric, MINKOWSKI_P) if self.method == CLASSIC else Method.parse(self.method)

    @property
    def distance_label(self) -> str:
        """The distance the neighbours are ranked by, for captions."""
        return search_label(self.search)


def with_search(settings: Settings, search: Method, **changes) -> Settings:
    """These settings with the neighbours found by `search` (a classic metric or a method preset) instead."""
    if search.is_classic:
        return dataclasses.replace(settings, method=CLASSIC, metric=search.metric, **changes)
    return dataclasses.replace(settings, method=search.preset, **changes)


def search_label(search: Method) -> str:
    """A search in words: 'euclidean', 'minkowski (p=3)', or 'deskew + blur, L3 (L3 distance)'."""
    return search.label if search.is_classic else f"{search.label} ({search.distance_name})"


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
                f"Ignoring URL parameter **{spec.key}**: {md_escape(exc)}; "
                f"using the default {spec.key}={spec.format_func(spec.default)}."
            )
    return values, warnings


_STATE = "_settings"  # session key: the settings' current values (a dict)
_URL_STATE = "_settings_url"  # session key: the query values this session last wrote
_CURRENT = "_settings_current"  # session key: the Settings of this run
_RENDERED = "_settings_rendered"  # session key: True while app.py runs a page under the sidebar


def _widget_key(key: str) -> str:
    return f"setting_{key}"


def set_setting(key: str, value: Any) -> None:
    """Change a shared setting from a page widget's callback (on_change / on_click).

    The sidebar widget takes the value when it is drawn next, and the URL
    follows: the page's own widget and the sidebar stay one setting.
    """
    if key not in SPECS:
        raise KeyError(f"no shared setting named {key!r}; the settings are {', '.join(SPECS)}")
    st.session_state[_widget_key(key)] = value


SETTINGS_BOX = "settings_open"  # the key of the folded settings' expander (on_demand)


def sidebar_settings(on_demand: bool = False) -> Settings:
    """Render the shared sidebar settings and return them (once per run: see shared_sidebar).

    The URL wins when it carries a value this session did not write itself (a
    shared link, the first load of a session); otherwise the widgets do, and
    the URL is updated to match.  on_demand: the widgets are drawn only while
    a folded "Change the settings" section is open, under a line saying the
    current settings.  Each kind of widget is JavaScript a browser fetches and
    runs before the page is usable (seconds on a phone, loadtest/README.md),
    and the Draw page's students rarely change them; the values, the URL and
    the method's vote work as with the widgets shown.
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
    # Always one container, even empty: the page's elements keep their places whether or not there
    # are warnings, so a keyed widget such as the canvas is not mounted afresh (and blank) next run.
    with st.container(key="link_warnings"):
        for w in warnings:
            st.warning(w, icon="⚠️")

    for spec in SETTINGS:
        wkey = _widget_key(spec.key)
        if spec.key in changed or wkey not in state:
            state[wkey] = values[spec.key]
        values[spec.key] = state[wkey]  # a widget's value is in the session before it is drawn

    with st.sidebar:
        st.header("Settings")
        box = None
        if on_demand:
            st.caption(settings_caption(Settings(**values)))
            box = st.expander("Change the settings", key=SETTINGS_BOX, on_change="rerun")
        if box is None or box.open:
            with box if box is not None else nullcontext():
                for spec in SETTINGS:
                    _setting_widget(spec, values)
                    values[spec.key] = state[_widget_key(spec.key)]
        _offer_the_methods_vote(values)

    settings = Settings(**values)
    state[_STATE] = dict(values)
    state[_CURRENT] = settings
    query = settings.as_query()
    if any(st.query_params.get(k) != v for k, v in query.items()):
        st.query_params.update(query)
    state[_URL_STATE] = query
    return settings


def _setting_widget(spec: SettingSpec, values: dict) -> None:
    """The widget of one setting, bound to its session key."""
    wkey = _widget_key(spec.key)
    if spec.kind == "int":
        st.slider(spec.label, spec.lo, spec.hi, key=wkey, help=spec.help)
    elif spec.kind == "int_choice":
        st.select_slider(spec.label, options=list(spec.choices), key=wkey, help=spec.help,
                         format_func=spec.format_func)
    else:
        # A method brings its own distance: the Distance setting then has no say, and its
        # (disabled) box shows the method's own distance.
        disabled = spec.key == "metric" and values["method"] != CLASSIC
        method_distance = Method.parse(values["method"]).distance_name if disabled else ""
        st.selectbox(spec.label, options=list(spec.choices), key=wkey,
                     format_func=(lambda _, name=method_distance: name) if disabled else spec.format_func,
                     disabled=disabled,
                     help=f"Set by the method ({_method_label(values['method'])})." if disabled
                     else spec.help)


def _offer_the_methods_vote(values: dict) -> None:
    """With a method whose validated vote (k, weights) is not the current one: a button to use it."""
    if values["method"] == CLASSIC:
        return
    preset = PRESETS[values["method"]]
    if (values["k"], values["weights"]) == (preset.k, preset.weights):
        st.caption(f"k={preset.k} with {preset.weights} weights: this method's vote chosen on validation.")
        return

    def use_it():
        set_setting("k", preset.k)
        set_setting("weights", preset.weights)

    st.button(f"Use this method's vote: k={preset.k}, {preset.weights} weights", on_click=use_it,
              key="use_method_vote", help="The k and vote weights chosen for this method on the validation "
                                          "split (the last 10,000 training digits), as in the README's table.")


@contextmanager
def shared_sidebar(on_demand: bool = False) -> Iterator[Settings]:
    """For app.py: render the sidebar settings, then run the page inside this block.

    Pages inside the block get these settings from current_settings() without
    rendering the widgets a second time.  The mark is cleared however the run
    ends (st.rerun and st.stop raise through here).  on_demand: the widgets
    only in a folded section (see sidebar_settings).
    """
    settings = sidebar_settings(on_demand)
    st.session_state[_RENDERED] = True
    try:
        yield settings
    finally:
        st.session_state[_RENDERED] = False


def inside_app() -> bool:
    """True while app.py runs a page inside shared_sidebar()."""
    return bool(st.session_state.get(_RENDERED))


def current_settings() -> Settings:
    """The settings of this run, for pages: ``settings = ui.current_settings()``.

    Under app.py's shared_sidebar() they were rendered already; a page
    function called on its own (AppTest) renders the sidebar here.
    """
    state = st.session_state
    if inside_app() and _CURRENT in state:
        return state[_CURRENT]
    return sidebar_settings()


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


def show_command(command: str) -> None:
    """The command line that prints a view's numbers, folded away (students rarely need it)."""
    with st.expander("The same from the command line", icon=":material/terminal:"):
        st.code(command, language="bash")


def settings_caption(settings: Settings) -> str:
    """The settings a view was computed with, in one line."""
    return (f"k={settings.k}, {settings.distance_label}, {settings.weights} votes, "
            f"tie rule {settings.tie}, {settings.size:,} training digits")
