"""Lifecycle metrics through the local stack: tracked calls move contacts through stages (the stage function
announces each move on the bus, the metrics function counts it), purchases are counted by the events
trigger, and ``/admin/metrics/...`` answers from the counters; each function as deployed (its own
environment, only its grants)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

SERVER = "local-server-key"


def call(stack: Any, method: str, path: str, body: Any = None, key: str | None = None) -> tuple[int, Any]:
    headers = {"content-type": "application/json"}
    if key is not None:
        import base64

        headers["authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    request = urllib.request.Request(
        f"{stack.url}{path}",
        data=None if method == "GET" else json.dumps(body or {}).encode(),
        method=method,
        headers=headers,
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def track(stack: Any, path: str, body: dict[str, Any]) -> None:
    status, answer = call(stack, "POST", path, body, key=SERVER)
    assert status == 200, answer


def report(stack: Any, name: str, **query: str) -> dict[str, Any]:
    stack.drain_streams()
    status, answer = call(stack, "GET", f"/admin/metrics/{name}?{urllib.parse.urlencode(query)}")
    assert status == 200, answer
    return answer


def test_tracked_behaviour_becomes_lifecycle_metrics(local_stack) -> None:
    stack = local_stack
    assert call(stack, "POST", "/_local/clock", {"set": "2031-01-15T10:00:00Z"})[0] == 200
    # Ann and Bob sign up (first seen, then identified: subscriber, then lead); Ann buys and becomes a customer
    for who in ("ann", "bob"):
        track(
            stack,
            "/v1/identify",
            {"userId": who, "messageId": f"id-{who}", "traits": {"email": f"{who}@example.com"}},
        )
    stack.drain_streams()
    track(
        stack,
        "/v1/track",
        {"userId": "ann", "event": "Order Completed", "messageId": "o-1", "properties": {"revenue": 49.98}},
    )
    day = {"period": "day", "from": "2031-01-15", "to": "2031-01-15"}

    (stages,) = report(stack, "stages", **day)["periods"]
    assert {s: n for s, n in stages["population"].items() if n} == {"lead": 1, "customer": 1}
    assert stages["entered"] == {"subscriber": 2, "lead": 2, "customer": 1}
    assert stages["left"] == {"subscriber": 2, "lead": 1}

    (funnel,) = report(stack, "funnel", **day)["periods"]
    lead = next(s for s in funnel["stages"] if s["stage"] == "lead")
    assert (lead["entered"], lead["converted"], lead["conversion_rate"]) == (2, 1, 0.5)
    assert (lead["converted_to"], lead["median_days_in_stage"]) == ({"customer": 1}, 0)

    (customers,) = report(stack, "customers", **day)["periods"]
    assert (customers["new"], customers["active"], customers["churned"]) == (1, 1, 0)

    (money,) = report(stack, "revenue", **day)["periods"]
    assert (money["revenue"], money["orders"]) == (49.98, 1)
    assert money["by_stage"] == {"lead": {"revenue": 49.98, "orders": 1}}, "Ann bought as a lead"
    assert money["by_rfm_segment"] == {"none": {"revenue": 49.98, "orders": 1}}, "not scored yet"

    # two months on (the hourly timers let decay move Ann to at-risk, the nightly pass scores her on the way),
    # Ann buys again: not in February, so she churned then and is returning in March
    assert call(stack, "POST", "/_local/clock", {"advance": "P60D"})[0] == 200
    track(
        stack,
        "/v1/track",
        {"userId": "ann", "event": "Order Completed", "messageId": "o-2", "properties": {"revenue": 20}},
    )
    stack.drain_streams()
    status, card = call(stack, "GET", "/admin/contacts/user_id:ann")
    assert status == 200 and card["analytics"]["segment"], card.get("analytics")
    months = {"period": "month", "from": "2031-01-01", "to": "2031-03-16"}
    january, february, march = report(stack, "customers", **months)["periods"]
    assert (january["new"], february["churned"], march["returning"], march["active"]) == (1, 1, 1, 1)
    money = report(stack, "revenue", **months)["periods"][2]
    assert money["by_stage"] == {"at_risk": {"revenue": 20.0, "orders": 1}}, "she bought while at risk"
    assert money["by_rfm_segment"] == {card["analytics"]["segment"]: {"revenue": 20.0, "orders": 1}}
    table = {c["cohort"]: (c["size"], c["active"]) for c in report(stack, "cohorts", **months)["cohorts"]}
    assert table == {"2031-01": (1, [1, 0, 1]), "2031-02": (0, [0, 0]), "2031-03": (0, [0])}
    (march_stages,) = report(stack, "stages", period="month", **{"from": "2031-03-01", "to": "2031-03-16"})[
        "periods"
    ]
    # the purchase engaged her again: back to customer
    assert {s: n for s, n in march_stages["population"].items() if n} == {"lead": 1, "customer": 1}
    assert (march_stages["left"], march_stages["entered"]) == ({"at_risk": 1}, {"customer": 1})

    # a bad parameter is a 400 naming it, and reads nothing
    status, refused = call(stack, "GET", "/admin/metrics/stages?period=year")
    assert (status, refused["code"]) == (400, "invalid_parameter")
    assert refused["message"].startswith("period:"), refused
    status, refused = call(stack, "GET", "/admin/metrics/cohorts?period=week")
    assert status == 400 and "month" in refused["message"]


def test_the_sample_stage_move_and_removal_are_counted_once_by_the_metrics_handler(aws) -> None:
    """events/metrics holds what the bus rule hands the function (a move, and a visitor's removal when it
    merged into a user); a second delivery counts nothing, and the admin's sample report shows both."""
    from functions.admin.handler import handler as admin
    from functions.metrics.handler import handler as metrics
    from tests.conftest import EVENTS, Context

    samples = {path.stem: json.loads(path.read_text()) for path in (EVENTS / "metrics").glob("*.json")}
    assert set(samples) == {"stage_changed", "contact_removed", "nps_answered"}  # issue 15: an NPS answer
    for event in samples.values():
        assert metrics(event, Context()) == {"counted": True}
        assert metrics(event, Context()) == {"counted": False}
    answer = admin(json.loads((EVENTS / "admin" / "get_metrics_funnel.json").read_text()), Context())
    assert answer["statusCode"] == 200, answer
    week = json.loads(answer["body"])["periods"][-1]
    by_stage = {s["stage"]: s for s in week["stages"]}
    mql, subscriber = by_stage["mql"], by_stage["subscriber"]
    assert (week["period"], mql["left"], mql["moved_to"], mql["median_days_in_stage"]) == (
        "2026-W48",
        1,
        {"sql": 1},
        3,
    )
    # the removal leaves its stage, as no move: no transition, no time in stage
    assert (subscriber["left"], subscriber["removed"], subscriber["moved_to"], subscriber["timed_exits"]) == (
        1,
        1,
        {},
        0,
    )


def test_the_sample_nps_answer_is_counted_once_and_reported_by_stage(aws) -> None:
    """Issue 15: the NpsAnswered sample counted by the metrics handler, the admin's sample NPS report (by week,
    broken down by stage) shows it; a second delivery counts nothing."""
    from functions.admin.handler import handler as admin
    from functions.metrics.handler import handler as metrics
    from tests.conftest import EVENTS, Context

    sample = json.loads((EVENTS / "metrics" / "nps_answered.json").read_text())
    assert metrics(sample, Context()) == {"counted": True}
    assert metrics(sample, Context()) == {"counted": False}
    answer = admin(json.loads((EVENTS / "admin" / "get_metrics_nps.json").read_text()), Context())
    assert answer["statusCode"] == 200, answer
    report = json.loads(answer["body"])
    week = next(p for p in report["periods"] if p["period"] == "2026-W48")
    assert (week["responses"], week["detractors"], week["nps"], week["sent"]) == (1, 1, -100.0, 0)
    assert [(g["key"], g["detractors"]) for g in week["groups"]] == [("sql", 1)]
    assert [(g["key"], g["responses"]) for g in report["by_segment"]] == [("high-value", 1)]
    assert report["total"]["nps_low"] < -100 + 50 < report["total"]["nps_high"], report["total"]


def test_visitors_who_identify_and_contacts_erased_leave_the_populations(local_stack) -> None:
    """A visitor is placed (subscriber); identifying merges it into Carol, who is placed on her own: the
    stage function announces the visitor leaving, so one person counts once. Erasing Carol announces her
    leaving too: the populations go back to nobody, and both show as removed."""
    stack = local_stack
    assert call(stack, "POST", "/_local/clock", {"set": "2032-03-10T09:00:00Z"})[0] == 200
    track(stack, "/v1/page", {"anonymousId": "v-carol", "messageId": "p-carol"})
    day = {"period": "day", "from": "2032-03-10", "to": "2032-03-10"}
    (seen,) = report(stack, "stages", **day)["periods"]
    assert {s: n for s, n in seen["population"].items() if n} == {"subscriber": 1}

    track(stack, "/v1/identify", {"anonymousId": "v-carol", "userId": "carol", "messageId": "i-carol"})
    stack.drain_streams()
    (identified,) = report(stack, "stages", **day)["periods"]
    assert {s: n for s, n in identified["population"].items() if n} == {"lead": 1}, identified
    assert identified["removed"] == {"subscriber": 1}

    status, erased = call(stack, "DELETE", "/admin/contacts/user_id:carol")
    assert status == 200 and erased["complete"], erased
    (gone,) = report(stack, "stages", **day)["periods"]
    assert {s: n for s, n in gone["population"].items() if n} == {}, gone
    assert gone["removed"] == {"subscriber": 1, "lead": 1}
    (funnel,) = report(stack, "funnel", **day)["periods"]
    lead = next(s for s in funnel["stages"] if s["stage"] == "lead")
    assert (lead["entered"], lead["left"], lead["removed"], lead["moved_to"]) == (1, 1, 1, {})
