"""issue 14: the admin API's copies for the console's sign-in (``/console/admin/...``, a JWT authorizer in the
cloud) are served by the admin function as deployed exactly as the IAM routes are: the same answers, the
same changes, the same refusals."""

from __future__ import annotations

import copy
import json
from typing import Any

from infra.wiring import function
from shared.admin import CONSOLE_PREFIX, ROUTES, console_route
from tests.conftest import EVENTS, invoke


def as_console(event: dict[str, Any], groups: str | None = "[marketers]") -> dict[str, Any]:
    """The same request through the console's copy of its route, with what the JWT authorizer adds: the
    access token's claims, its ``cognito:groups`` as the HTTP API renders a list (``"[marketers sales]"``),
    none when ``groups`` is None."""
    mirrored = copy.deepcopy(event)
    route = console_route(event["routeKey"])
    mirrored["routeKey"] = mirrored["requestContext"]["routeKey"] = route
    mirrored["rawPath"] = mirrored["requestContext"]["http"]["path"] = CONSOLE_PREFIX + event["rawPath"]
    mirrored["headers"]["authorization"] = "Bearer eyJraWQiOiJ0ZXN0In0.e30.c2lnbmF0dXJl"
    claims = {"client_id": "consoleclient1234567890", "token_use": "access", "sub": "u-1", "username": "u-1"}
    if groups is not None:
        claims["cognito:groups"] = groups
    mirrored["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": ["openid"]}}
    return mirrored


def sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / "admin" / f"{name}.json").read_text())


def test_a_console_route_answers_as_its_iam_route_does(aws) -> None:
    from functions.admin.handler import handler

    deployed = {f"{r.method} {r.path}" for r in function("admin").routes}
    for name in ("list_rules", "get_funnel"):
        event = sample(name)
        assert console_route(event["routeKey"]) in deployed
        iam_status, iam_body, _ = invoke(handler, event)
        console_status, console_body, _ = invoke(handler, as_console(event))
        assert iam_status == console_status == 200
        assert console_body == iam_body


def test_the_stored_console_sample_is_a_mirrored_route(aws) -> None:
    from functions.admin.handler import handler

    event = sample("console_get_funnel")
    assert event["routeKey"] == console_route("GET /admin/funnel")
    assert invoke(handler, event)[:2] == invoke(handler, sample("get_funnel"))[:2]


def test_a_change_through_the_console_is_the_same_change(aws) -> None:
    from functions.admin.handler import handler

    status, saved, _ = invoke(handler, as_console(sample("put_rule")))
    assert status == 200, saved
    status, rules, _ = invoke(handler, sample("list_rules"))  # read back through the IAM route
    assert status == 200
    assert [r for r in rules["rules"] if r["id"] == "kites"], rules
    # a bad change is refused the same way, with its code
    bad = sample("put_rule")
    bad["body"] = json.dumps({"behaviour": "product_viewed", "points": "many"})
    iam_refusal = invoke(handler, bad)
    console_refusal = invoke(handler, as_console(bad))
    assert iam_refusal[0] == console_refusal[0] == 400
    assert iam_refusal[1]["code"] == console_refusal[1]["code"]


def test_only_admin_routes_are_served_whatever_the_prefix(aws) -> None:
    from functions.admin.handler import handler

    for route in ("GET /console/{file}", "GET /console/admin/nothing", "GET /console/console/admin/rules"):
        event = sample("list_rules")
        event["routeKey"] = event["requestContext"]["routeKey"] = route
        assert invoke(handler, event)[0] == 404, route
    assert len(ROUTES) == len({console_route(key) for key in ROUTES})


# --- the console's roles (shared.admin.access) -----------------------------------------------------------


def seed_user_42() -> None:
    """user-42's contact, from the stored sample of the event log's stream (an analytics.js purchase)."""
    from functions.aggregation.handler import handler
    from tests.conftest import Context

    (stream,) = (EVENTS / "aggregation").glob("*.json")
    assert handler(json.loads(stream.read_text()), Context()) == {"batchItemFailures": []}


def test_a_salesperson_reads_a_card_but_may_not_erase_the_contact(aws) -> None:
    from functions.admin.handler import handler

    seed_user_42()
    status, card, _ = invoke(handler, as_console(sample("get_contact"), "[sales]"))
    assert status == 200, card
    assert card["counts"] == {"purchase": 1}
    status, refusal, _ = invoke(handler, as_console(sample("delete_contact"), "[sales]"))
    assert status == 403
    assert refusal["code"] == "forbidden"
    assert "needs the console group marketers" in refusal["message"]
    assert invoke(handler, sample("get_contact"))[0] == 200  # nothing was erased
    for name in ("list_rules", "put_rule", "get_funnel"):
        assert invoke(handler, as_console(sample(name), "[sales]"))[0] == 403, name


def test_a_marketer_erases_the_contact(aws) -> None:
    from functions.admin.handler import handler

    seed_user_42()
    status, erased, _ = invoke(handler, as_console(sample("delete_contact"), "[sales marketers]"))
    assert status == 200, erased
    assert invoke(handler, sample("get_contact"))[0] == 404


def test_a_signed_in_user_in_no_group_may_do_nothing(aws) -> None:
    from functions.admin.handler import handler

    seed_user_42()
    for groups in (None, "[]", "[admins]"):
        for name in ("get_contact", "list_rules", "delete_contact"):
            status, refusal, _ = invoke(handler, as_console(sample(name), groups))
            assert (status, refusal["code"]) == (403, "forbidden"), (groups, name)
    status, refusal, _ = invoke(handler, as_console(sample("get_contact"), None))
    assert "marketers or sales" in refusal["message"]
    assert invoke(handler, sample("get_contact"))[0] == 200  # still there


def test_the_iam_routes_carry_no_token_and_are_not_checked(aws) -> None:
    from functions.admin.handler import handler

    seed_user_42()
    assert invoke(handler, sample("list_rules"))[0] == 200
    assert invoke(handler, sample("put_rule"))[0] == 200
    assert invoke(handler, sample("delete_contact"))[0] == 200
