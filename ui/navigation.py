"""How a page file runs inside app.py, even in Streamlit's legacy ``pages/`` mode.

A folder named ``pages/`` beside the entry file puts Streamlit 1.67 in its
legacy multipage mode until the first ``st.navigation`` call of the server
process ("As soon as any session of your app executes the st.navigation
command, your app will ignore the pages/ directory (across all sessions)",
st.navigation's documentation); no setting skips that mode.  So on a fresh
server the first request runs in it: Streamlit sends a menu of the raw file
names ("app, baselines, confusion...") and then, for ``/``, runs app.py as its
main page, or, for a link to a page such as ``/confusion?k=3``, runs
``pages/confusion.py`` by itself, without app.py's navigation, page setup and
shared sidebar.

:func:`run_page` (the last line of every page file) does for a page what the
legacy mode does for ``/``: it runs the entry file, whose st.navigation ends
the legacy mode for good and runs the page the URL names inside the app.  No
Streamlit internals are patched.
"""
from __future__ import annotations

import runpy
from pathlib import Path
from typing import Callable

from .settings import inside_app

ENTRY_FILE = Path(__file__).resolve().parents[1] / "app.py"


def run_page(page: Callable[[], None]) -> None:
    """Render a page file's page: at once inside app.py; otherwise by running app.py, which runs it."""
    if inside_app():
        page()
    else:  # the legacy pages/ mode ran this file by itself (see the module docstring)
        runpy.run_path(str(ENTRY_FILE), run_name="__main__")

