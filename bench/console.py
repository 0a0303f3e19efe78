"""Issue 14: the console's weight and cost. What the browser downloads (bytes, raw and gzip), what the
console function imports on a cold start (modules, and time as a ratio to the same baseline as the other
functions'), and how many admin-API requests the page makes to render the contact card and a contacts
search, counted in Debian's Chromium against the local stack.

``python -m bench console`` runs only this section. Counts and ratios within one run; nothing is asserted.
"""

from __future__ import annotations

import gzip
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.harness import ROOT, median

STATIC = ROOT / "functions" / "console" / "static"
#: The charting library's browser build, copied next to the page by ``make`` (infra/console_assets.py).
CHART = "chart.umd.min.js"

IMPORT_COUNT = """
import json, sys, time
before = set(sys.modules)
t = time.perf_counter()
import {module}
ms = (time.perf_counter() - t) * 1000
new = set(sys.modules) - before
print(json.dumps({{"ms": ms, "modules": len(new), "boto3": "boto3" in sys.modules,
                  "pydantic": "pydantic" in sys.modules}}))
"""
BASELINE = "import time; t = time.perf_counter()\nimport boto3\nboto3.client('dynamodb')\nprint((time.perf_counter() - t) * 1000)"


def page_weight(static: Path = STATIC) -> list[dict[str, Any]]:
    """Bytes of each part of the page, raw and gzip-compressed (level 6, as web servers and CloudFront
    compress): the page, its ES modules, its stylesheet, the charting library."""
    modules = sorted(p for p in static.glob("*.js") if p.name != CHART)
    parts = [
        ("index.html", [static / "index.html"]),
        (f"ES modules ({len(modules)} files)", modules),
        ("styles.css", sorted(static.glob("*.css"))),
        (f"{CHART} (Chart.js, pinned)", [static / CHART] if (static / CHART).exists() else []),
    ]
    rows = []
    for what, files in parts:
        raw = sum(len(f.read_bytes()) for f in files)
        packed = sum(len(gzip.compress(f.read_bytes(), compresslevel=6)) for f in files)
        rows.append({"what": what, "files": len(files), "raw": raw, "gzip": packed})
    rows.append(
        {
            "what": "total",
            "files": sum(r["files"] for r in rows),
            "raw": sum(r["raw"] for r in rows),
            "gzip": sum(r["gzip"] for r in rows),
        }
    )
    return rows


def _lambda_env(name: str) -> dict[str, str]:
    from infra.config import DeploymentConfig, environment, identity_secrets_path
    from infra.wiring import function
    from shared.adapters.tables import TABLES

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    names = {t.id: f"bench-{t.id}" for t in TABLES}
    services = {"identity_secrets": identity_secrets_path("lifecycle")}
    env.update(environment(function(name), names, DeploymentConfig(), services))
    env.update(
        {
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "LAMBDA_TASK_ROOT": "/var/task",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def _child(code: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def cold_import(samples: int = 11) -> dict[str, Any]:
    """Fresh interpreters, alternating, in a Lambda-like environment: the console's handler and the admin
    API's, each as modules newly imported and time as a ratio to ``import boto3`` + one DynamoDB client."""
    result: dict[str, Any] = {}
    for name in ("console", "admin"):
        env = _lambda_env(name)
        runs, ratios = [], []
        for _ in range(samples):
            base = float(_child(BASELINE, env))
            run = json.loads(_child(IMPORT_COUNT.format(module=f"functions.{name}.handler"), env))
            runs.append(run)
            ratios.append(run["ms"] / base)
        result[name] = {
            "modules": int(median([r["modules"] for r in runs])),
            "ms": median([r["ms"] for r in runs]),
            "ratio": statistics.median(ratios),
            "boto3": runs[-1]["boto3"],
            "pydantic": runs[-1]["pydantic"],
        }
    return result


def admin_requests() -> dict[str, int | None]:
    """Admin-API requests the page makes to render a contact's card, and to show a contacts search's
    results, in Chromium against the local stack with a few contacts. ``None``: the console has no such
    screen (yet)."""
    import pytest
    from playwright.sync_api import sync_playwright

    from infra import console_assets
    from tests.browser.conftest import CHROMIUM_ARGS, DESKTOP, chromium_path
    from tests.browser.demo import Stack
    from tests.loopback.conftest import running_stack

    path = chromium_path()
    if path is None:
        return {"card": None, "search": None}
    console_assets.ensure()
    counts: dict[str, int | None] = {}
    try:
        with running_stack(LOCAL_SERVER_WRITE_KEY="bench-console-key") as (url, _banner):
            _seed_a_few(Stack(url, "bench-console-key"))
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=path, headless=True, args=list(CHROMIUM_ARGS)
                )
                try:
                    counts["card"] = _count(browser, url, DESKTOP, _open_card)
                    counts["search"] = _count(browser, url, DESKTOP, _search)
                finally:
                    browser.close()
    except (Exception, pytest.fail.Exception) as stopping:
        # the stack's slow stop on a busy machine is the tests' concern, not this count's
        if len(counts) < 2:
            raise
        print(f"console bench: the local stack did not stop cleanly: {stopping}", flush=True)
    return counts


def _seed_a_few(stack: Any) -> None:
    for user, name in (("ada", "Ada Lovelace"), ("adam", "Adam Smith"), ("grace", "Grace Hopper")):
        stack.track("identify", {"userId": user, "traits": {"email": f"{user}@example.com", "name": name}})
        stack.track("track", {"userId": user, "event": "Product Viewed", "properties": {"sku": "kite-3"}})
        stack.track("track", {"userId": user, "event": "Order Completed", "properties": {"revenue": 49}})


def _count(browser: Any, url: str, viewport: dict[str, int], action: Any) -> int | None:
    context = browser.new_context(viewport=viewport, base_url=url)
    page = context.new_page()
    try:
        page.goto("/")
        page.wait_for_load_state("networkidle")
        seen: list[str] = []
        page.on("request", lambda request: seen.append(request.url) if "/admin/" in request.url else None)
        if not action(page):
            return None
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(500)  # a request started by a response just answered
        return len(seen)
    finally:
        context.close()


def _open_card(page: Any) -> bool:
    page.goto("/#/contacts/user_id:ada")
    page.wait_for_function("() => document.querySelector('#view h1')")
    return not page.title().startswith("Not found")


def _search(page: Any) -> bool:
    page.goto("/#/contacts")
    page.wait_for_function("() => document.querySelector('#view h1')")
    if page.title().startswith("Not found"):
        return False
    box = page.locator("#view input[type=search], #view [role=searchbox], #view input[name=q]").first
    if box.count() == 0:
        box = page.get_by_label("Search", exact=False).first
        if box.count() == 0:
            return False
    box.fill("ada")
    box.press("Enter")
    return True


def section(
    where: str, weight: list[dict[str, Any]], imports: dict[str, Any], requests: dict[str, Any]
) -> str:
    rows = "\n".join(f"| {r['what']} | {r['files']} | {r['raw']:,} | {r['gzip']:,} |" for r in weight)
    imported = "\n".join(
        f"| `functions.{name}.handler` | {i['modules']} | {i['ratio']:.2f}× | "
        f"{'yes' if i['boto3'] else 'no'} | {'yes' if i['pydantic'] else 'no'} |"
        for name, i in imports.items()
    )

    def shown(value: int | None) -> str:
        return "not measured: the console has no such screen yet" if value is None else str(value)

    return f"""
Measured by `make bench` on {where}.

**Page weight** (what a browser downloads on a first visit, before any admin-API call; no front-end build,
files as served):

| part | files | bytes | gzip bytes |
|---|---|---|---|
{rows}

**Cold import of the console's function** (fresh interpreters in a Lambda-like environment, median of
alternating runs; the time as a ratio to `import boto3` + one DynamoDB client in the same run, the admin
API's handler beside it for comparison):

| handler | modules imported | import time ratio | imports boto3 | imports pydantic |
|---|---|---|---|---|
{imported}

**Admin-API requests to render a screen** (counted in Chromium against the local stack, from the moment
the screen is asked for until the network is idle):

| screen | admin-API requests |
|---|---|
| the contact card (`#/contacts/<id>`) | {shown(requests["card"])} |
| a contacts search (`#/contacts`, one query typed) | {shown(requests["search"])} |
"""


def run(where: str) -> str:
    weight = page_weight()
    for row in weight:
        print(f"console weight: {row}", flush=True)
    imports = cold_import()
    print(f"console import: {imports}", flush=True)
    requests = admin_requests()
    print(f"console admin requests: {requests}", flush=True)
    return section(where, weight, imports, requests)
