"""issue 14: the console's configuration (``config.json``) from the function's settings, its policy, and the
one place the console's prefix is taken off admin routes."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.config import SIGN_IN_ENV, DeploymentConfig, environment
from infra.wiring import FUNCTIONS, TABLES, function
from shared import runtime
from shared.admin import CONSOLE_PREFIX, ROUTES, admin_route, console_route
from shared.console import SIGN_IN_SCOPES, ConsoleConfig, answer
from shared.scope import FunctionScope
from shared.settings import ConsoleSettings

SIGN_IN_URL = "https://acme-console.auth.eu-west-1.amazoncognito.com"
CLOUD = {"CONSOLE_API_BASE": "/console", "CONSOLE_SIGN_IN_URL": SIGN_IN_URL, "CONSOLE_CLIENT_ID": "abc123"}


def console_config(environ: dict[str, str]) -> ConsoleConfig:
    with FunctionScope("console", environ).active():
        return runtime.console()


def config_json(config: ConsoleConfig, tmp_path: Path) -> dict:
    response = answer("/console/config.json", tmp_path, config)
    assert response["headers"]["cache-control"] == "no-store"
    return json.loads(base64.b64decode(response["body"]))


def test_in_the_cloud_the_page_is_told_where_to_sign_in(tmp_path: Path) -> None:
    config = console_config(CLOUD)
    assert config_json(config, tmp_path) == {
        "apiBase": "/console",
        "signIn": {"url": SIGN_IN_URL, "clientId": "abc123", "scopes": list(SIGN_IN_SCOPES)},
    }
    policy = config.content_security_policy()
    assert f"connect-src 'self' {SIGN_IN_URL};" in policy
    assert "form-action 'self'" in policy and "script-src 'self';" in policy


def test_locally_there_is_no_sign_in(tmp_path: Path) -> None:
    config = console_config({})
    assert config_json(config, tmp_path) == {"apiBase": "", "signIn": None}
    assert "connect-src 'self';" in config.content_security_policy()


def test_a_sign_in_on_another_port_is_allowed_by_its_origin() -> None:
    config = console_config({**CLOUD, "CONSOLE_SIGN_IN_URL": "http://127.0.0.1:4123/"})
    assert config.sign_in is not None and config.sign_in.origin == "http://127.0.0.1:4123"
    assert "connect-src 'self' http://127.0.0.1:4123;" in config.content_security_policy()
    assert config.model_dump(by_alias=True, mode="json")["signIn"]["url"] == "http://127.0.0.1:4123"


@pytest.mark.parametrize("missing", ["CONSOLE_SIGN_IN_URL", "CONSOLE_CLIENT_ID"])
def test_half_a_sign_in_is_a_misconfiguration(missing: str) -> None:
    with pytest.raises(ValidationError, match="set together"):
        ConsoleSettings.model_validate({k: v for k, v in CLOUD.items() if k != missing})


def test_a_sign_in_url_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValidationError):
        console_config({**CLOUD, "CONSOLE_SIGN_IN_URL": "acme-console"})


def test_only_the_console_function_is_told_of_the_sign_in_and_only_where_it_exists() -> None:
    names = {spec.id: spec.id for spec in TABLES}
    services = {"sign_in": SIGN_IN_URL, "sign_in_client": "abc123", "sign_in_api_base": CONSOLE_PREFIX}
    for spec in FUNCTIONS:
        queues = {access.queue.id: access.queue.id for access in spec.queues}
        buckets = {access.bucket.id: access.bucket.id for access in spec.buckets}
        env = environment(spec, names, DeploymentConfig(), services, queues, buckets)
        told = {name: env[name] for name in SIGN_IN_ENV.values() if name in env}
        assert told == (CLOUD if spec.name == "console" else {}), spec.name
    # the local stack has no sign-in: nothing set, the page needs none
    local = environment(function("console"), names, DeploymentConfig(), {"links": "http://127.0.0.1:3000"})
    assert not set(SIGN_IN_ENV.values()) & set(local)


def test_the_prefix_is_taken_off_console_routes_only() -> None:
    for key in ROUTES:
        assert admin_route(console_route(key)) == key
        assert admin_route(key) == key
        assert console_route(key).split(" ", 1)[1].startswith("/console/admin/")
    assert admin_route("GET /console/{file}") == "GET /console/{file}"
    assert admin_route("GET /console/console/admin/rules") == "GET /console/console/admin/rules"
    assert admin_route("GET /") == "GET /"


def test_the_console_routes_are_served_locally_to_loopback_callers_only() -> None:
    from infra.local.gateway import Gateway, routes_for

    gateway = Gateway(routes_for([function("admin")]), cors_origins=["*"])
    assert gateway.private("/console/admin/rules") and gateway.private("/admin/rules")
    found = gateway.match("GET", "/console/admin/contacts/c-1")
    assert found is not None and found[0].route.auth == "jwt" and found[1] == {"contactId": "c-1"}
