"""The console in a real browser: Debian's Chromium, driven by Playwright for Python, against the local
stack (``make run``) started as a subprocess.

Playwright's own browser download is not used (nor reachable here): the system Chromium is launched by
its path. Without it the tests are skipped with the reason, except where ``LIFECYCLE_REQUIRE_BROWSER`` is
set (``.ci/run`` sets it): CI never skips them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra import console_assets
from tests.loopback.conftest import running_stack

#: Where Debian's package puts it; CHROMIUM overrides.
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
#: Headless, as root in CI, and quiet: without the background-networking flags Chromium keeps trying to
#: reach Google's hosts, which this machine's closed network refuses.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
#: A phone (the issue's 360 px) and a desktop.
PHONE = {"width": 360, "height": 780}
DESKTOP = {"width": 1280, "height": 900}


def chromium_path() -> str | None:
    found = os.environ.get("CHROMIUM") or next((p for p in CHROMIUM_PATHS if Path(p).exists()), None)
    return found or shutil.which("chromium")


def _unavailable(reason: str) -> None:
    if os.environ.get("LIFECYCLE_REQUIRE_BROWSER"):
        pytest.fail(f"{reason} (LIFECYCLE_REQUIRE_BROWSER is set: CI never skips the browser tests)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, launched by Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - a dev install has it
        _unavailable("Playwright for Python is not installed (pip install -e '.[dev]')")
    path = chromium_path()
    if path is None:
        _unavailable("no Chromium: install Debian's package (apt-get install chromium) or set CHROMIUM")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True, args=list(CHROMIUM_ARGS))
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def console_url() -> Iterator[str]:
    """The local stack, as ``make run`` starts it, with the console's files in place."""
    console_assets.ensure()
    with running_stack() as (url, _banner):
        yield url


@pytest.fixture
def page(chromium: Any, console_url: str) -> Iterator[Any]:
    """A fresh desktop page (its own storage) that fails the test on a script error, a console error, or a
    file of the page's own that does not load. The admin API's refusals (a 400 for a bad field, a 404 for an
    erased contact) are behaviour the tests assert, not errors: Chromium's "Failed to load resource" line
    for them is left out, and the page's own files are checked by their responses instead."""
    context = chromium.new_context(viewport=DESKTOP, base_url=console_url)
    page = context.new_page()
    errors = script_errors(page)
    page.on(
        "response",
        lambda response: (
            errors.append(f"{response.status} {response.url}")
            if response.status >= 400 and _own_file(response.url, console_url)
            else None
        ),
    )
    yield page
    context.close()
    assert not errors, f"the page reported errors: {errors}"


def script_errors(page: Any) -> list[str]:
    """The page's script errors and console errors, as they come (a list the caller reads). Chromium's
    "Failed to load resource" lines are left out: the admin API's refusals are behaviour, not errors."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None
        ),
    )
    return errors


def _own_file(url: str, base: str) -> bool:
    """One of the console's files (the page, its scripts, styles and configuration), not an API call."""
    path = url.removeprefix(base).split("?", 1)[0]
    return url.startswith(base) and (path in ("", "/") or path.startswith("/console/"))
