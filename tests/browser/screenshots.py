"""``make screenshots``: the console's main pages as PNGs in docs/screenshots/, for the README and docs.

Starts the local stack as the browser tests do (``python -m infra.local`` on a free port), seeds the demo
population (tests/browser/demo.py), opens each page of :data:`tests.browser.demo.PAGES` in Debian's
Chromium at desktop size and writes ``docs/screenshots/<page>.png``. A page that reports a script error,
or does not render its heading, stops the run with the reason: a screenshot of a broken page is worse
than none.

``python -m tests.browser.screenshots [page ...]`` takes only the pages named.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from infra import console_assets
from tests.browser.conftest import CHROMIUM_ARGS, DESKTOP, chromium_path, script_errors
from tests.browser.demo import PAGES, Demo, seed
from tests.conftest import ROOT
from tests.loopback.conftest import running_stack

OUT = ROOT / "docs" / "screenshots"
#: The demo's server write key, given to the stack it starts.
SERVER_KEY = "screenshots-server-key"


@contextmanager
def seeded_console(weeks: int | None = None) -> Iterator[tuple[str, Demo]]:
    """The local stack with the console's files, seeded with the demo population."""
    console_assets.ensure()
    with running_stack(LOCAL_SERVER_WRITE_KEY=SERVER_KEY) as (url, _banner):
        demo = seed(url, SERVER_KEY, **({} if weeks is None else {"weeks": weeks}))
        yield url, demo


def render(page: Any, route: str) -> list[str]:
    """Open ``route`` and wait until its screen has rendered (a heading in the main view, no loading
    indicator, the fonts and charts settled); the page's script errors, if any."""
    errors = script_errors(page)
    page.goto(f"/{route}")
    page.wait_for_function(
        "() => document.querySelector('#view h1') && !document.querySelector('#view [aria-busy=\"true\"]')"
    )
    page.wait_for_load_state("networkidle")
    page.evaluate("document.fonts.ready")
    # every chart drawn in its final state, not caught halfway through its animation
    page.evaluate(
        "() => { for (const chart of Object.values((window.Chart && window.Chart.instances) || {})) "
        "{ chart.stop(); chart.update('none') } }"
    )
    return errors


def take(console: str, demo: Demo, names: list[str], out: Path = OUT) -> list[Path]:
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    if path is None:
        raise SystemExit("no Chromium: install Debian's package (apt-get install chromium) or set CHROMIUM")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True, args=list(CHROMIUM_ARGS))
        context = browser.new_context(
            viewport=DESKTOP, base_url=console, device_scale_factor=1, reduced_motion="reduce"
        )
        for name, route in demo.pages().items():
            if names and name not in names:
                continue
            page = context.new_page()
            errors = render(page, route)
            if errors:
                raise SystemExit(f"{name} ({route}) reported errors: {errors}")
            if page.title().startswith("Not found"):
                raise SystemExit(f"{name} ({route}): the console has no such screen (see PAGES in demo.py)")
            target = out / f"{name}.png"
            page.evaluate(
                "document.activeElement && document.activeElement.blur()"
            )  # no focus ring in a picture
            page.screenshot(path=str(target), full_page=True)
            written.append(target)
            print(f"wrote {target}", flush=True)
            page.close()
        browser.close()
    return written


def main(argv: list[str]) -> int:
    names = argv[1:]
    unknown = [n for n in names if n not in PAGES]
    if unknown:
        print(f"unknown pages {unknown}; they are {', '.join(PAGES)}", file=sys.stderr)
        return 2
    with seeded_console() as (console, demo):
        take(console, demo, names)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
