"""Neighbour lists for the analysis pages, searched in background threads of the server.

:func:`neighbor_lists` returns knn_core's lists for (split, search, training
size) requests: from memory (one copy per server process), from the disk cache,
or searched in a background thread while the page shows the progress; a search
estimated to take longer than CONFIRM_SECONDS waits for a button press.

The calls into knn_core's search API are :func:`_search_lists`,
:func:`_is_cached` and :func:`_estimate` (one per step: search, cached?,
estimate), each choosing between a metric and a method preset.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from typing import Any, Sequence

import streamlit as st

from knn_core.evaluate import K_MAX as SEARCH_K
from knn_core.evaluate import estimate_search_seconds, neighbors_cached, split_neighbors
from knn_core.methods import PRESETS, estimate_recipe_seconds, recipe_cached, recipe_neighbors

from .resources import get_dataset
from .settings import METHOD_PREFIX, MINKOWSKI_P, search_label

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
def search_jobs() -> tuple[dict, threading.Lock]:
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
    table, lock = search_jobs()
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
