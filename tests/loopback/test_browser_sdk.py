"""Loopback: the real analytics.js (``@segment/analytics-next`` 1.84.3) in a jsdom page, sending to the
local stack (``make run``), with the identity proof a site's back-end renders into the page (issue 9).

The page is ``browser/drive.js``: it loads the SDK with its settings given (no CDN, no metrics; any
request to another host is refused and reported) and prints what it sent, as the server received it.
``npm ci`` installs the SDK and jsdom from the committed lock file when ``node_modules`` is missing or
was installed from another lock file."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import urllib.error
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.loopback.conftest import (
    BROWSER_KEY,
    IDENTITY_SECRET,
    VERIFIED_KEY,
    eventually,
    get,
    stored_events,
    stored_message_ids,
)

pytestmark = pytest.mark.loopback
PAGE = ROOT / "tests" / "loopback" / "browser"
PAGE_URL = "http://shop.example.test/products/42?utm_source=newsletter&utm_medium=email"
#: What an installed ``node_modules`` was installed from: the lock file's hash.
STAMP = ".installed-from-lock"


def installed_packages() -> Path:
    """``node_modules`` of the page, installed by ``npm ci`` from the committed lock file, again only when
    the lock file changed (tests/browser/test_browser_sdk.py loads the same pinned analytics-next)."""
    npm, node = shutil.which("npm"), shutil.which("node")
    assert npm and node, "the browser SDK test needs Node.js 18+ and npm on PATH"
    lock = hashlib.sha256((PAGE / "package-lock.json").read_bytes()).hexdigest()
    stamp = PAGE / "node_modules" / STAMP
    if not stamp.exists() or stamp.read_text() != lock:
        installed = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
            cwd=PAGE,
            capture_output=True,
            check=False,
            text=True,
            timeout=600,
            env={**os.environ, "npm_config_update_notifier": "false"},
        )
        assert installed.returncode == 0, f"npm ci failed:\n{installed.stdout}\n{installed.stderr}"
        stamp.write_text(lock)
    return PAGE / "node_modules"


@pytest.fixture(scope="session")
def analytics_js() -> Path:
    """The page's driver, with its packages installed."""
    installed_packages()
    return PAGE / "drive.js"


def open_page(
    driver: Path,
    base: str,
    write_key: str,
    calls: list[list[Any]],
    *,
    proof: dict[str, str] | None = None,
    strategy: str = "standard",
) -> dict[str, Any]:
    """Load analytics.js in a fresh page (a new visitor) and make ``calls``; what it sent and what came back.

    Every request must have been answered 200, nothing else reached, and no call reported an error."""
    config = {
        "apiHost": base.removeprefix("http://") + "/v1",
        "writeKey": write_key,
        "url": PAGE_URL,
        "strategy": strategy,
        "proof": proof,
        "calls": calls,
    }
    ran = subprocess.run(
        ["node", str(driver), json.dumps(config)],
        cwd=PAGE,
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert report["refused"] == [], "analytics.js reached beyond the local stack"
    assert report["errors"] == []
    assert [r["status"] for r in report["requests"]] == [200] * len(report["requests"]), report["requests"]
    return report


def wire(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every message as analytics.js put it in a request body, in the order sent."""
    return [m for r in report["requests"] for m in r["messages"]]


def sent_ids(report: dict[str, Any]) -> list[str]:
    return [c["messageId"] for c in report["calls"]]


def user_hash(secret: str, user_id: str) -> str:
    """What the site's back-end renders into the page: HMAC-SHA256 of the userId under the source secret."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def token(secret: str, user_id: str, expires: float) -> str:
    """An HS256 JWT for ``user_id``, as a back-end's JWT library signs it."""

    def part(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signed = ".".join(
        part(json.dumps(x, separators=(",", ":")).encode())
        for x in ({"alg": "HS256", "typ": "JWT"}, {"sub": user_id, "exp": int(expires)})
    )
    return f"{signed}.{part(hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest())}"


def visit(user: str) -> list[list[Any]]:
    """A visitor's page view, then signing in, then browsing: every call after identify names the user."""
    return [
        ["page"],
        ["identify", user, {"name": "Loop", "plan": "pro"}],
        ["track", "Product Viewed", {"sku": "kite-3", "price": 12.5}],
        ["page", "Docs", "Install"],
        ["track", "Product Added", {"sku": "kite-3"}],
    ]


@pytest.mark.parametrize("strategy", ["standard", "batching"])
def test_analytics_js_sends_the_proof_on_every_call_and_each_call_is_stored_once(
    analytics_js: Path, local_stack: str, strategy: str
) -> None:
    """The README's source middleware puts ``integrations.Lifecycle`` into the body of every call, the
    calls analytics.js adds the stored userId to included; each call is stored once, the proof nowhere."""
    user = f"ajs-{strategy}"
    proof = {"userHash": user_hash("the source secret", user)}
    report = open_page(analytics_js, local_stack, BROWSER_KEY, visit(user), proof=proof, strategy=strategy)

    sent = wire(report)
    assert sorted(m["messageId"] for m in sent) == sorted(sent_ids(report))
    assert [m["type"] for m in sent] == ["page", "identify", "track", "page", "track"]
    assert [m["userId"] for m in sent] == [None, user, user, user, user]
    assert {m["anonymousId"] for m in sent} == {report["anonymousId"]}
    assert [m["integrations"] for m in sent] == [{"Lifecycle": proof}] * 5
    paths = [r["path"] for r in report["requests"]]
    assert paths == (["/v1/p", "/v1/i", "/v1/t", "/v1/p", "/v1/t"] if strategy == "standard" else ["/v1/b"])

    # identify merges the visitor into the user: its first page view moves to the user too
    expected = sorted(sent_ids(report))
    stored = eventually(
        lambda: sorted(ids := stored_message_ids(local_stack, f"user_id:{user}")) == expected and ids
    )
    assert sorted(stored) == expected
    events = json.dumps(stored_events(local_stack, f"user_id:{user}"))
    assert proof["userHash"] not in events and "Lifecycle" not in events


def test_options_argument_carries_the_proof_only_on_the_calls_given_it(
    analytics_js: Path, local_stack: str
) -> None:
    """``{integrations: {Lifecycle: ...}}`` as a call's options reaches that call's body (identify, track
    and page alike) but no other: a call made without it, as analytics.js's own calls are, has none."""
    user = "ajs-options"
    proof = {"userHash": user_hash("the source secret", user)}
    options = {"integrations": {"Lifecycle": proof}}
    calls = [
        ["identify", user, {"name": "Loop"}, options],
        ["track", "Product Viewed", {"sku": "kite-3"}, options],
        ["page", "Docs", "Install", {}, options],
        ["track", "Product Viewed", {"sku": "kite-4"}],
    ]
    report = open_page(analytics_js, local_stack, BROWSER_KEY, calls)
    sent = wire(report)
    assert [m["integrations"] for m in sent] == [{"Lifecycle": proof}] * 3 + [{}]
    assert [m["userId"] for m in sent] == [user] * 4
    stored = eventually(lambda: len(ids := stored_message_ids(local_stack, f"user_id:{user}")) == 4 and ids)
    assert sorted(stored) == sorted(sent_ids(report))


@pytest.mark.parametrize("proof_kind", ["user-hash", "jwt", "forged-user-hash", "expired-jwt", "no-proof"])
def test_verified_key_keeps_analytics_js_calls_on_the_user_only_with_a_valid_proof(
    analytics_js: Path, local_stack: str, proof_kind: str
) -> None:
    """Issue 9, with the key that requires verified identity (``LOCAL_VERIFIED_WRITE_KEY``): a valid proof
    from the back-end puts the page's calls on ``user_id:<id>``; a forged, expired or missing one keeps
    every call on the visitor ``anonymous_id:<anonymousId>``, with the claimed userId recorded, and
    nothing reaches the user. Still 200 for every call, as analytics.js expects."""
    user = f"ajs-verified-{proof_kind}"
    now = datetime.fromisoformat(get(f"{local_stack}/_local/clock")["now"]).timestamp()
    proof = {
        "user-hash": {"userHash": user_hash(IDENTITY_SECRET, user)},
        "jwt": {"jwt": token(IDENTITY_SECRET, user, expires=now + 600)},
        "forged-user-hash": {"userHash": user_hash("not-the-source-secret", user)},
        "expired-jwt": {"jwt": token(IDENTITY_SECRET, user, expires=now - 3600)},
        "no-proof": None,
    }[proof_kind]
    report = open_page(analytics_js, local_stack, VERIFIED_KEY, visit(user), proof=proof)
    sent = wire(report)
    assert [m["integrations"] for m in sent] == [{"Lifecycle": proof} if proof else {}] * 5
    expected = sorted(sent_ids(report))
    visitor = f"anonymous_id:{report['anonymousId']}"

    proven = proof_kind in ("user-hash", "jwt")
    contact = f"user_id:{user}" if proven else visitor
    stored = eventually(lambda: sorted(ids := stored_message_ids(local_stack, contact)) == expected and ids)
    assert sorted(stored) == expected
    # each call's trust as recorded: the first page view named no user; every later call named it
    trust = {e["message_id"]: (e["trust"], e["claimed_user_id"]) for e in stored_events(local_stack, contact)}
    named = ("verified", None) if proven else ("unverified", user)
    assert [trust[m] for m in sent_ids(report)] == [("browser", None)] + [named] * 4
    if proven:
        return
    assert stored_message_ids(local_stack, f"user_id:{user}") == []
    with pytest.raises(urllib.error.HTTPError) as missing:
        get(f"{local_stack}/admin/contacts/user_id:{user}")
    assert missing.value.code == 404, "an unproven claim must not create or touch the user"
