"""Safe output (#16): a user's values never become markup on a (projected) page, and browser data is checked."""
from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

import ui
from knn_core import DataError

LINK = "[Log in again](https://example.com)"


def page_script(name: str):
    import importlib

    getattr(importlib.import_module(f"pages.{name}"), f"{name}_page")()


def unescaped_link(markdown: str) -> bool:
    """Would Streamlit's Markdown render a link (or a bare URL autolink) from this text?"""
    return bool(re.search(r"(?<!\\)\]\((?!\\)", markdown) or re.search(r"(?<!\\)https?(?<!\\):(?!\\)//", markdown))


def test_md_escape_shows_every_character_and_renders_no_markup():
    text = ui.md_escape(LINK + " **bold** :red[x] <b>html</b> www.example.com $x$")
    assert not unescaped_link(text)
    assert "**" not in text and "<b>" not in text and ":red[" not in text and "$x$" not in text
    # unescaping gives the original back: the reader sees exactly what was sent
    assert re.sub(r"\\(.)", r"\1", text) == LINK + " **bold** :red[x] <b>html</b> www.example.com $x$"


def test_shown_quotes_and_cuts_long_values():
    assert ui.shown("abc") == "\\'abc\\'"
    assert len(ui.shown("x" * 500)) < 100 and ui.shown("x" * 500).endswith("…")


@pytest.mark.parametrize("value, size, expected", [
    (3, 10, 3), ("7", 10, 7), (0, 10, 0), (9.0, 10, 9),
    (10, 10, None), (-1, 10, None), (3.5, 10, None), ("x", 10, None), (None, 10, None), ([1], 10, None),
    (True, 10, None), ("1e400", 10, None), (float("nan"), 10, None), (10**30, 10, None),
])
def test_valid_index_takes_only_whole_numbers_in_range(value, size, expected):
    assert ui.valid_index(value, size) == expected


def test_error_message_shows_knn_cores_messages_and_only_the_kind_of_anything_else():
    assert ui.error_message(DataError("mnist.pkl is truncated")) == ui.md_escape("mnist.pkl is truncated")
    text = ui.error_message(OSError(2, "No such file", "/srv/secret/path/cache.npz"))
    assert "/srv" not in text and "FileNotFoundError" in text  # OSError(2, ...) is one


@pytest.mark.parametrize("name", ["draw", "confusion"])
def test_a_markdown_link_in_the_url_is_shown_as_text_not_as_a_link(name):
    at = AppTest.from_function(page_script, default_timeout=300, kwargs={"name": name})
    at.query_params["metric"] = LINK
    at.query_params["size"] = "500"
    at.run()
    assert not at.exception
    warnings = [w.value for w in at.warning if "Ignoring URL parameter" in w.value]
    assert len(warnings) == 1, [w.value for w in at.warning]
    assert "Log in again" in warnings[0] and not unescaped_link(warnings[0])


def test_the_server_config_hides_tracebacks_and_the_developer_menu():
    import tomllib
    from pathlib import Path

    config = tomllib.loads((Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"
    assert config["client"]["toolbarMode"] == "minimal"
    assert config["server"]["maxMessageSize"] <= 16
