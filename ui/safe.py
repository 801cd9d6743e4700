"""Safe output: what a user sent (a URL value, a file name, a click) never becomes markup or a crash.

Streamlit renders Markdown in st.warning/st.error/st.caption: a URL value like
`[Log in again](https://example.com)` would become a link on the projected
page. `md_escape` backslash-escapes every ASCII punctuation character
(CommonMark shows an escaped character as itself), which also defeats bare
URL autolinks and Streamlit's `:red[...]` directives. `shown` does that to a
value quoted for people, cut to a readable length. Values from the browser's
charts and tables go through `valid_index` before they index anything.
"""
from __future__ import annotations

import logging
import re
import string

from knn_core import KnnLabError

_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")
log = logging.getLogger("knn_digit_lab")


def md_escape(text: object) -> str:
    """`text` as Markdown that shows exactly these characters (no links, emphasis, HTML or directives)."""
    return _PUNCTUATION.sub(r"\\\1", str(text).replace("\n", " "))


def shown(value: object, limit: int = 60) -> str:
    """A user's value quoted for a message: repr, cut to `limit` characters, Markdown-escaped."""
    text = repr(value) if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return md_escape(text)


def valid_index(value: object, size: int) -> int | None:
    """A whole number in 0..size-1 from browser data (a click, a table row), or None for anything else."""
    if isinstance(value, bool):
        return None
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return None
    if isinstance(value, float) and value != number:
        return None
    return number if 0 <= number < size else None


def error_message(exc: BaseException) -> str:
    """What a page may say about an error: knn_core's own messages (they name the problem, not the
    server's files) escaped; anything else only by its kind, with the details in the server's log."""
    if isinstance(exc, KnnLabError):
        return md_escape(exc)
    log.error("internal error shown to a user as its type only", exc_info=exc)
    return f"an internal error ({type(exc).__name__}; the server's log has the details)"
