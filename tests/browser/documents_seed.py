"""Seeding and reading the local stack for the editing screens' browser tests: the tracking API with the
local stack's server write key (as a website's backend calls it), the admin API as any loopback caller,
and ``GET /_local/events``, which drains every stream, bus rule and queue before it answers, so what a
call set in motion is done when the test reads its effect (no waiting on time)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

#: the local stack's default server key (``infra/local/stack.py``), which the console fixture's stack uses
SERVER_KEY = "local-server-key"
SERVER = "Basic " + base64.b64encode(f"{SERVER_KEY}:".encode()).decode()


def call(
    base: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{base}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"content-type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    return status, json.loads(text) if text else None


def admin(base: str, method: str, path: str, body: Any = None) -> Any:
    """An admin call that must succeed: its answer."""
    status, answer = call(base, method, path, body)
    assert status == 200, (method, path, status, answer)
    return answer


def settle(base: str) -> None:
    """Let every function the calls so far triggered finish (the local stack drains its triggers)."""
    status, _ = call(base, "GET", "/_local/events")
    assert status == 200


def track(base: str, method: str, body: dict[str, Any]) -> None:
    """A tracking call (``identify``, ``track``...) with the server key, then its effects settled."""
    status, answer = call(base, "POST", f"/v1/{method}", body, {"authorization": SERVER})
    assert (status, answer) == (200, {"success": True}), answer
    settle(base)


def lifetime_score(base: str, contact_id: str) -> float:
    """The contact's lifetime global points (what decay leaves alone), from its card."""
    return admin(base, "GET", f"/admin/contacts/{contact_id}")["scores"]["global"]["lifetime"]


#: how long an assertion on the page waits for it to come true: a shared, loaded machine runs a save's
#: functions (a segment's back-fill, a campaign's planner) much slower than Playwright's 5 s default
PATIENCE_MS = 30_000


@pytest.fixture(autouse=True)
def patient_page_assertions() -> Iterator[None]:
    """Page assertions wait up to ``PATIENCE_MS`` in these tests (they end as soon as they hold)."""
    expect.set_options(timeout=PATIENCE_MS)
    yield
    expect.set_options(timeout=5_000)
