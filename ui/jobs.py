"""Neighbour lists for the analysis pages: from memory, from the disk cache, or through the one job queue.

:func:`neighbor_lists` returns knn_core's lists for (split, method, training
size) requests. Lists already searched come from memory or the disk cache.
A search that is missing goes through knn_core's `JobQueue`, one per server
process (a module global, not a Streamlit cache a browser could clear): a
fixed number of workers, at most a few searches per session, the same search
asked twice runs once, and a search nobody waits for any more is cancelled;
each worker runs its searches in a child process at idle priority
(knn_core.worker), so a search holds neither this process's interpreter nor
its CPU.
A search estimated beyond CONFIRM_SECONDS waits for a button press; one
beyond the operator's limit ($KNN_LAB_MAX_SEARCH_SECONDS, default a minute)
is not started from the browser at all: the page shows the command that
fills the disk cache, and serves the result once it is there.
"""
from __future__ import annotations

import os
import time
from collections import OrderedDict
from typing import Sequence

import streamlit as st

from knn_core import K_MAX, Method, estimate_seconds, is_cached
from knn_core import neighbor_lists as search_neighbor_lists
from knn_core.jobs import CANCELLED, DONE, FAILED, Job, QueueFull, queue_from_environment
from knn_core.worker import Task, task

from . import fair
from .resources import browser_connected, get_dataset, session_owner
from .safe import error_message
from .settings import Settings, cli_command, search_label, with_search

CONFIRM_SECONDS = 10.0  # a search estimated to take longer waits for a button press
MAX_SECONDS_ENV = "KNN_LAB_MAX_SEARCH_SECONDS"
DEFAULT_MAX_SECONDS = 60.0  # longer searches are not started from a browser (the operator may raise it)
KEEP_BYTES = 400e6  # neighbour lists kept in memory; older ones reload from the disk cache
SEARCH_THREADS = 1  # a queued search on one core (at low priority): the other is the students'

QUEUE = queue_from_environment()  # the server process's one queue for long searches
_loaded: OrderedDict = OrderedDict()  # request -> NeighborLists, least recently used first


def fmt_seconds(seconds: float) -> str:
    """A duration for people: '5 s', '3 min', '1.2 h'."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def max_browser_seconds() -> float:
    """The longest search a browser may start ($KNN_LAB_MAX_SEARCH_SECONDS, default 60)."""
    try:
        return float(os.environ.get(MAX_SECONDS_ENV, DEFAULT_MAX_SECONDS))
    except ValueError:
        return DEFAULT_MAX_SECONDS


def describe_search(ds, request: tuple) -> str:
    split, search, size = request
    name = search_label(search)
    if split == "test":
        return f"{len(ds.test_labels):,} test digits vs {min(size, len(ds.train_labels)):,} training digits, {name}"
    if split == "val":
        return (f"{len(ds.val_labels):,} validation digits vs {min(size, len(ds.fit_labels)):,} "
                f"training digits, {name}")
    return f"leave-one-out on {min(size, len(ds.train_labels)):,} training digits, {name}"


def fill_cache_command(request: tuple) -> str:
    """The command line that searches a request's lists into the disk cache the pages read."""
    split, search, size = request
    settings = with_search(Settings(size=size), search)
    if split == "test":
        return cli_command("evaluate", settings, k=False, vote=False)
    return cli_command("sweep", settings, k=False, vote=False, split=split)


def forget_loaded() -> None:
    """Drop the lists held in memory, as a server restart would (they reload from the disk cache)."""
    _loaded.clear()


def _remember(request: tuple, lists) -> None:
    _loaded[request] = lists
    _loaded.move_to_end(request)
    size = sum(lst.distances.nbytes + lst.indices.nbytes for lst in _loaded.values())
    while len(_loaded) > 1 and size > KEEP_BYTES:
        _, old = _loaded.popitem(last=False)
        size -= old.distances.nbytes + old.indices.nbytes


def neighbor_lists(requests: Sequence[tuple], *, key: str) -> list | None:
    """knn_core neighbour lists (K_MAX neighbours) for each (split, method, training size).

    Returns None, having said why on the page, while a search waits for its
    button or is too long for a browser, or after it failed: draw nothing
    that needs them then. While searches run, this shows their progress.
    """
    ds = get_dataset()
    requests = [(split, Method.parse(search), int(size)) for split, search, size in requests]
    missing = []
    for r in dict.fromkeys(requests):
        if r in _loaded:
            _loaded.move_to_end(r)
        elif is_cached(ds, r[1], r[0], train_size=r[2], k_max=K_MAX):
            with st.spinner("Loading neighbour lists from the disk cache…"):
                _remember(r, search_neighbor_lists(ds, r[1], r[0], train_size=r[2], k_max=K_MAX))
        else:
            missing.append(r)
    if missing and not _search(ds, missing, key):
        return None
    return [_loaded[r] for r in requests]


def _search(ds, missing: list, key: str) -> bool:
    """Search the missing requests through the queue (joining searches already under way)."""
    new = [r for r in missing if (job := QUEUE.get(r)) is None or job.state in (FAILED, CANCELLED)]
    estimates = {r: estimate_seconds(ds, r[1], r[0], r[2]) for r in new}
    too_long = [r for r in new if estimates[r] > max_browser_seconds()]
    if too_long:
        st.info(f"**This search is too long to start from a browser** (about "
                f"{fmt_seconds(sum(estimates[r] for r in too_long))} on this server: "
                + "; ".join(describe_search(ds, r) for r in too_long)
                + "). Whoever runs the server can compute it once with the command below; this page then "
                "shows the result.", icon="⏳")
        st.code("\n".join(dict.fromkeys(fill_cache_command(r) for r in too_long)), language="bash")
        return False
    total = sum(estimates.values())
    if total > CONFIRM_SECONDS:
        st.warning(f"**This takes about {fmt_seconds(total)}** on this machine ("
                   + "; ".join(describe_search(ds, r) for r in new)
                   + "). The result is kept on disk for next time.", icon="⏳")
        if not st.button(f"Start the search (about {fmt_seconds(total)})", key=key, type="primary"):
            return False
    owner = session_owner()
    try:
        jobs = [QUEUE.submit(r, _work(ds, r), owner=owner, estimate=estimates.get(r, 0.0)) for r in missing]
    except QueueFull as exc:
        st.warning(f"{exc}.", icon="⏳")
        return False
    _wait(ds, jobs)
    ok = True
    for job in jobs:
        if job.state == DONE:
            _remember(job.key, job.result)
        elif job.state == FAILED:
            st.error(f"The search ({describe_search(ds, job.key)}) failed: {error_message(job.error)}", icon="🚫")
            ok = False
        else:
            st.warning(f"The search ({describe_search(ds, job.key)}) was cancelled; reload the page to start it "
                       "again.", icon="⏳")
            ok = False
    return ok


def _work(ds, request: tuple) -> Task:
    """The search, to run in the queue worker's child process (knn_core.worker): not in the server's."""
    split, search, size = request
    return task(search_neighbor_lists, ds, search, split, train_size=size, k_max=K_MAX, n_jobs=SEARCH_THREADS)


def _wait(ds, jobs: list[Job]) -> None:
    """Show the progress of the searches until they end, telling the queue someone still waits."""
    est = sum(j.estimate for j in jobs)
    label = f"Searching ({fmt_seconds(est)} estimated): " + "; ".join(describe_search(ds, j.key) for j in jobs)
    t0 = time.monotonic()
    weight = [max(j.estimate, 0.5) for j in jobs]
    with fair.waiting_for_work(), st.status(label, expanded=True) as status:
        bar = st.progress(0.0)
        while True:
            for j in jobs:
                j.touch()
            waiting = [j for j in jobs if not j.ended]
            frac = sum(w * j.fraction for w, j in zip(weight, jobs)) / sum(weight)
            now = waiting[0] if waiting else None
            if now is None:
                text = "done"
            elif now.started is None:
                ahead = QUEUE.position(now)
                text = f"{describe_search(ds, now.key)}: waiting for {ahead + 1} search{'es' if ahead else ''} " \
                       "of other pages to finish"
            else:
                text = f"{describe_search(ds, now.key)}: {now.done:,} of {now.total or '…'} digits"
            bar.progress(min(frac, 1.0), text=f"{text} · {time.monotonic() - t0:.0f} s")
            if not waiting or not browser_connected():  # done, or the page was closed: nobody waits
                break
            time.sleep(0.2)
        bad = any(j.state != DONE for j in jobs)
        status.update(label=f"{'Stopped' if bad else 'Searched'} in {time.monotonic() - t0:.1f} s",
                      state="error" if bad else "complete", expanded=False)
