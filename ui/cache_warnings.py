"""Problems of the on-disk cache, told once per session to the person in front of the page."""
from __future__ import annotations

import streamlit as st


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
