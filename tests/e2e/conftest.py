"""Browser tests: the session's `streamlit run app.py` server (tests/conftest.py) and headless Chromium.

Only ever talks to 127.0.0.1.  Skipped (with the reason) when Chromium or
Playwright is missing; CI sets KNN_REQUIRE_BROWSER=1 to make that a failure.
Each test module here carries ``pytestmark = pytest.mark.e2e``.
"""
from __future__ import annotations

import os

import pytest

from loadtest.browser import CHROMIUM_ARGS
from loadtest.browser import chromium_path as find_chromium


def _skip_or_fail(reason: str) -> None:
    """Skip locally; fail where a browser is required (CI sets KNN_REQUIRE_BROWSER=1)."""
    if os.environ.get("KNN_REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        _skip_or_fail("chromium not found on PATH (Debian: apt-get install chromium); browser tests need it")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _skip_or_fail("the playwright Python package is not installed (requirements-dev.txt)")
    return path


@pytest.fixture(scope="session")
def nginx_path() -> str:
    """nginx for the tests of several processes behind a proxy (scripts/serve.sh)."""
    from deploy.serve import nginx_path as find_nginx

    path = find_nginx()
    if path is None:
        _skip_or_fail("nginx not found (Debian: apt-get install nginx); the tests of scripts/serve.sh need it")
    return path


@pytest.fixture(scope="session")
def app_url(chromium_path, server_url):
    """The session's app server, for tests that open it in Chromium."""
    return server_url


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)  # a first stroke fits the classifier on a busy machine
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()
