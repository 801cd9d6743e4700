"""The page menu, and how a page file runs inside app.py even in Streamlit's legacy ``pages/`` mode.

A folder named ``pages/`` beside the entry file puts Streamlit 1.67 in its
legacy multipage mode until the first ``st.navigation`` call of the server
process ("As soon as any session of your app executes the st.navigation
command, your app will ignore the pages/ directory (across all sessions)",
st.navigation's documentation); no setting skips that mode.  So on a fresh
server the first request runs in it: Streamlit sends a menu of the raw file
names ("app, baselines, confusion...") and then, for ``/``, runs app.py as its
main page, or, for a link to a page such as ``/confusion?k=3``, runs
``pages/confusion.py`` by itself, without app.py's navigation, page setup and
shared sidebar.  Two public means undo both, with no Streamlit internals
patched:

- :func:`run_page` (the last line of every page file) does for a page what the
  legacy mode does for ``/``: it runs the entry file, whose st.navigation ends
  the legacy mode for good and runs the page the URL names inside the app.
- ``client.showSidebarNavigation = false`` (.streamlit/config.toml) hides
  Streamlit's own sidebar menus, the raw one included, which otherwise shows
  until app.py's st.navigation runs, after a first run's imports (5-10 s here
  on a busy 2-core machine); app.py draws the menu instead with :func:`page_menu`.
"""
from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Callable, Sequence

import streamlit as st

from .settings import inside_app

ENTRY_FILE = Path(__file__).resolve().parents[1] / "app.py"


def run_page(page: Callable[[], None]) -> None:
    """Render a page file's page: at once inside app.py; otherwise by running app.py, which runs it."""
    if inside_app():
        page()
    else:  # the legacy pages/ mode ran this file by itself (see the module docstring)
        runpy.run_path(str(ENTRY_FILE), run_name="__main__")


# On a phone the open sidebar covers the page: Streamlit's own menu folds it away once a page is
# chosen, and this does the same for ours by pressing the sidebar's own collapse button.  If
# Streamlit's markup changes, nothing matches and the sidebar merely stays open.
_FOLD_ON_PHONES = """<script>
(function () {
  if (window.__knnMenuFold) return;
  window.__knnMenuFold = true;
  document.addEventListener("click", function (ev) {
    const link = ev.target.closest && ev.target.closest(".st-key-page_menu a");
    if (!link || window.innerWidth > 768) return;  // Streamlit's phone breakpoint
    const fold = document.querySelector('[data-testid="stSidebarCollapseButton"] button');
    if (fold) fold.click();
  }, true);
})();
</script>"""


# Streamlit draws captions in 60%-opacity grey, hard to read on a projector: nearly the text colour.
# (A style-only st.html: Streamlit's event container, no place on the page.)
_READABLE_CAPTIONS = """<style>
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p { color: rgba(27, 31, 28, 0.85); }
</style>"""


def page_menu(pages: Sequence) -> None:
    """The menu of app.py's pages (st.Page objects) at the top of the sidebar, the current one marked,
    and the app's few style fixes."""
    st.html(_READABLE_CAPTIONS)
    with st.sidebar.container(key="page_menu"):
        for page in pages:
            st.page_link(page)
        st.html(_FOLD_ON_PHONES, unsafe_allow_javascript=True)
        st.divider()


def scroll_into_view(selector: str, delay_ms: int = 150) -> None:
    """Scroll the page so the element matching the CSS `selector` is at the top, once it is drawn: for a
    click whose result appears away from what was clicked (a thumbnail, a matrix cell).  Draw it in a
    container that is always on the page, so the elements after it keep their places."""
    st.html(f"""<script>
setTimeout(function () {{
  const target = document.querySelector({json.dumps(selector)});
  if (target) target.scrollIntoView({{behavior: "smooth", block: "start"}});
}}, {int(delay_ms)});
</script>""", unsafe_allow_javascript=True)
