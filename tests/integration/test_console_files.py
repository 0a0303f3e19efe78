"""The console function as deployed (its template environment, its role: no table, no service): it serves
the page, its scripts and the pinned charting library's build, with a strict Content-Security-Policy,
and nothing outside its folder."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from infra import console_assets
from tests.conftest import EVENTS, Context


@pytest.fixture
def console(aws) -> Any:
    console_assets.ensure()
    from functions.console.handler import handler

    def _get(name: str, **changes: str) -> dict[str, Any]:
        event = json.loads((EVENTS / "console" / f"{name}.json").read_text()) | changes
        return handler(event, Context())

    return _get


def body(response: dict[str, Any]) -> bytes:
    raw = response["body"]
    return base64.b64decode(raw) if response["isBase64Encoded"] else raw.encode()


def test_the_page_is_served_with_a_policy_that_allows_only_its_own_scripts(console) -> None:
    page = console("get_page")
    assert page["statusCode"] == 200 and page["headers"]["content-type"].startswith("text/html")
    assert b'<script type="module" src="/console/app.js">' in body(page)
    policy = page["headers"]["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe" not in policy


def test_its_scripts_and_the_charting_library_are_served_as_javascript(console) -> None:
    script = console("get_script")
    assert script["statusCode"] == 200 and script["headers"]["content-type"].startswith("text/javascript")
    library = console("get_script", rawPath="/console/chart.umd.min.js")
    assert library["statusCode"] == 200 and b"Chart.js v4.5.1" in body(library)[:200]


def test_the_configuration_says_where_the_admin_api_is_and_where_to_sign_in(console) -> None:
    """As deployed (issue 14): the admin routes that accept the sign-in, and the hosted login (the tests
    name the pool's domain ``lifecycle-tests`` and its client ``consoleclient1234567890``)."""
    config = json.loads(body(console("get_script", rawPath="/console/config.json")))
    assert config == {
        "apiBase": "/console",
        "signIn": {
            "url": "https://lifecycle-tests.auth.eu-west-1.amazoncognito.com",
            "clientId": "consoleclient1234567890",
            "scopes": ["openid", "email", "profile"],
        },
    }
    # the page may call its own origin and the hosted login's (the token exchange), nothing else
    policy = dict(
        part.strip().split(" ", 1)
        for part in console("get_page")["headers"]["content-security-policy"].split(";")
    )
    assert policy["connect-src"] == "'self' https://lifecycle-tests.auth.eu-west-1.amazoncognito.com"


@pytest.mark.parametrize(
    "path",
    ["/console/../handler.py", "/console/%2e%2e/handler.py", "/console/.hidden", "/console/handler.py", "/x"],
)
def test_nothing_outside_its_files_is_served(console, path: str) -> None:
    assert console("get_script", rawPath=path)["statusCode"] == 404
