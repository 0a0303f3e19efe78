"""The nightly analytics job end to end on moto, through its three handlers: purchases tracked through the
tracking API -> extract (two scan segments) -> fit -> apply -> the profiles carry their analytics, the
contact card shows them with their history, and the changes are on the bus; a second run of the same day
changes nothing and announces nothing; a run 90 days later finds the water-filter customer overdue.

The steps run as the workflow runs them (``run``), each handler in a function scope of its own with the
environment the job's functions get. The models behind ``score`` may be the placeholders of the base or
the real ones: the assertions hold for both (risk levels are set for the placeholder rhythm, which needs
a longer silence than the real one before it calls a 30-day buyer's 90 days overdue).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Context, shared_hooks
from tests.integration.conftest import dump

BUCKET = "lifecycle-analytics-test"
STEPS = {
    "extract": "functions.analytics_extract.handler.handler",
    "fit": "functions.analytics_fit.handler.handler",
    "apply": "functions.analytics_apply.handler.handler",
}


#: What each step may call (the workflow's grants): anything else fails the test.
GRANTED = {
    "extract": {("dynamodb", "Scan"), ("s3", "PutObject")},
    "fit": {("s3", "GetObject"), ("s3", "PutObject"), ("s3", "ListObjectsV2")},
    "apply": {
        ("s3", "GetObject"),
        ("dynamodb", "GetItem"),
        ("dynamodb", "UpdateItem"),
        ("dynamodb", "PutItem"),
        ("dynamodb", "TransactWriteItems"),  # of Update and Put items (checked below)
        ("events", "PutEvents"),
    },
}


@pytest.fixture
def nightly(aws) -> Callable[..., list[dict[str, Any]]]:
    """``nightly(time)``: the workflow's run at ``time`` (extract each of 2 segments, fit, apply each part),
    the apply steps' answers; ``nightly.outputs`` holds every step's answer of the last run. Every call a
    step makes is checked against its grants (``GRANTED``; extract scans the purchase index only)."""
    from shared import scope
    from shared.adapters import aws as clients

    clients.client("s3").create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": os.environ["AWS_REGION"]}
    )
    environ = {
        "EVENTS_TABLE_NAME": os.environ["EVENTS_TABLE_NAME"],
        "CONTACTS_TABLE_NAME": os.environ["CONTACTS_TABLE_NAME"],
        "EVENT_BUS_NAME": os.environ["EVENT_BUS_NAME"],
        "ANALYTICS_BUCKET_NAME": BUCKET,
        "ANALYTICS_PART_SIZE": "1",  # a part per customer: the Map over parts is exercised
        "RISK_MEDIUM": "0.3",
        "RISK_HIGH": "0.6",
    }
    for name, handler in STEPS.items():
        scope.host(handler, scope.FunctionScope(f"analytics_{name}", environ, on_client=granted(name)))
    from functions.analytics_apply.handler import handler as apply
    from functions.analytics_extract.handler import handler as extract
    from functions.analytics_fit.handler import handler as fit

    class Run:
        def __init__(self) -> None:
            self.outputs: list[dict[str, Any]] = []

        def __call__(self, time: datetime, segments: int = 2) -> list[dict[str, Any]]:
            stamp = time.isoformat()
            extracted = [
                extract({"time": stamp, "segment": i, "segments": segments}, Context())
                for i in range(segments)
            ]
            fitted = fit({"time": stamp, "segments": segments}, Context())
            applied = [apply({"time": stamp, "part": part}, Context()) for part in fitted["parts"]]
            self.outputs = [*extracted, fitted, *applied]
            return applied

    return Run()


def granted(step: str) -> Callable[[str, Any], None]:
    """The step's clients: DynamoDB's limits and the tests' hooks, and a check of each call's action."""
    attach = shared_hooks()

    def check(params: dict[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.service_name
        assert (service, model.name) in GRANTED[step], f"{step} may not call {service} {model.name}"
        if model.name == "Scan":
            assert params.get("IndexName") == "byPurchase", "extract scans the purchase index only"
        for item in params.get("TransactItems", []):
            assert set(item) <= {"Update", "Put"}, f"{step}: a transaction item {set(item)}"

    def on_client(service: str, client: Any) -> None:
        attach(service, client)
        client.meta.events.register(
            f"before-parameter-build.{client.meta.service_model.service_id.hyphenize()}", check
        )

    return on_client


def order(send, user: str, at: datetime, revenue: float, sku: str, category: str) -> None:
    status, _, _ = send(
        "/v1/track",
        {
            "userId": user,
            "event": "Order Completed",
            "timestamp": at.isoformat(),
            "messageId": f"{user}-{at.date()}",
            "properties": {"revenue": revenue, "products": [{"sku": sku, "category": category}]},
        },
    )
    assert status == 200


def analytics_items(db) -> list[dict[str, Any]]:
    return [i for i in dump(db, "CONTACTS_TABLE_NAME") if i["sk"]["S"].startswith("ANALYTICS#")]


def test_purchases_tracked_are_scored_applied_announced_once_and_an_overdue_regular_buyer_turns_high(
    aws, send, admin, clock, bus_events, nightly
) -> None:
    now = clock.now()
    for n in range(12):  # water filters every 30 days for a year, the last one yesterday
        order(send, "wendy", now - timedelta(days=1 + 30 * n), 24.0, "filter-3", "water-filters")
    order(send, "amy", now - timedelta(days=30), 899.0, "oven-9", "kitchen")  # a durable, a month ago
    item = aws.query(
        TableName=os.environ["EVENTS_TABLE_NAME"],
        IndexName="byPurchase",
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "C#user_id:amy"}},
    )["Items"]
    assert [(i["purchasedAt"]["S"][:10], i["basket"]["S"]) for i in item] == [
        (str((now - timedelta(days=30)).date()), '[["oven-9","kitchen"]]')
    ]

    applied = nightly(now)
    extracted, fitted = nightly.outputs[:2], nightly.outputs[2]
    day = str((now - timedelta(days=1)).date())
    assert sum(e["purchases"] for e in extracted) == 13 and sum(e["read"] for e in extracted) == 13
    assert fitted["day"] == day and fitted["customers"] == 2 and len(fitted["parts"]) == 2
    assert sum(a["updated"] for a in applied) == 2 and sum(a["announced"] for a in applied) == 4
    first = {(e["detail"]["contact_id"], e["detail-type"], e["detail"]["initial"]) for e in bus_events()}
    assert first == {
        (who, kind, True)  # each contact's first scoring: what it already was, not a change
        for who in ("user_id:wendy", "user_id:amy")
        for kind in ("SegmentChanged", "ChurnRiskChanged")
    }
    status, card, _ = admin("wendy")
    assert status == 200
    seen = card["analytics"]
    assert seen["day"] == day and seen["risk_level"] == "low" and seen["segment_name"]
    assert seen["typical_gap_days"] is not None and seen["expected_next_purchase"] is not None
    assert [h["type"] for h in card["analytics_history"]] == ["SegmentChanged", "ChurnRiskChanged"]
    assert card["analytics_history"][1]["from"] is None and card["analytics_history"][1]["to"] == "low"
    assert card["analytics_history"][1]["initial"] is True
    assert admin("amy")[1]["analytics"]["risk_level"] == "low"

    # the same day again (a re-run, a double-fired schedule): one refused write per contact, nothing else
    before = dump(aws, "CONTACTS_TABLE_NAME")
    calls: list[str] = []
    aws.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    again = nightly(now)
    assert [(a["updated"], a["announced"]) for a in again] == [(0, 0), (0, 0)]
    assert dump(aws, "CONTACTS_TABLE_NAME") == before and bus_events() == []
    assert calls.count("UpdateItem") == 2 and set(calls) == {"Scan", "UpdateItem"}

    clock.advance(timedelta(days=90))  # wendy's filters are three cycles overdue
    later = nightly(clock.now())
    assert sum(a["updated"] for a in later) == 2
    risk = [e["detail"] for e in bus_events() if e["detail-type"] == "ChurnRiskChanged"]
    wendy = [d for d in risk if d["contact_id"] == "user_id:wendy"]
    assert [(d["from"], d["to"], d["day"], d["initial"]) for d in wendy] == [
        ("low", "high", str((clock.now() - timedelta(days=1)).date()), False)
    ]
    card = admin("wendy")[1]
    assert card["analytics"]["risk_level"] == "high" and card["analytics_history"][0]["to"] == "high"
    assert all(i["published"]["BOOL"] for i in analytics_items(aws)), "every announcement marked published"
    profile = aws.get_item(
        TableName=os.environ["CONTACTS_TABLE_NAME"],
        Key={"pk": {"S": "C#user_id:wendy"}, "sk": {"S": "PROFILE"}},
    )["Item"]
    assert profile["lastWriter"] == {"S": "analytics"} and "analyticsUnpublished" not in profile, (
        "all published"
    )


def test_the_sample_step_inputs_run_through_their_handlers(aws, send, nightly) -> None:
    """events/analytics_*: the inputs Step Functions passes (the sample run's day: 2026-11-22)."""
    import json

    from functions.analytics_apply.handler import handler as apply
    from functions.analytics_extract.handler import handler as extract
    from functions.analytics_fit.handler import handler as fit
    from tests.conftest import EVENTS

    order(send, "ann", datetime(2026, 11, 20, 9, tzinfo=UTC), 30.0, "p-1", "c-1")
    sample = {
        step: json.loads(next((EVENTS / f"analytics_{step}").glob("*.json")).read_text()) for step in STEPS
    }
    for segment in range(sample["extract"]["segments"]):
        extract({**sample["extract"], "segment": segment}, Context())
    assert fit(sample["fit"], Context())["parts"] == [sample["apply"]["part"]]
    assert apply(sample["apply"], Context()) == {
        "day": "2026-11-22",
        "customers": 1,
        "updated": 1,
        "announced": 2,
    }


def test_a_bad_step_input_fails_the_step_naming_it(aws, nightly) -> None:
    from functions.analytics_fit.handler import handler as fit
    from shared.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="segments"):
        fit({"time": "2026-11-23T02:00:00Z", "segments": "many"}, Context())


def test_a_time_to_come_and_a_part_not_staged_fail_their_step_saying_so(aws, nightly) -> None:
    """The steps' clock is the function's (``NOW`` here): a manual run at a time to come writes nothing
    (its day is not over, and would keep the real nights from writing); a part that expired or was never
    written is not found (the apply role may list the staging prefix, so S3 answers 404, not 403)."""
    from functions.analytics_apply.handler import handler as apply
    from functions.analytics_extract.handler import handler as extract
    from functions.analytics_fit.handler import handler as fit
    from shared.errors import InvalidRequest, NotFound

    future = "2099-12-31T02:00:00+00:00"
    for step, event in (
        (extract, {"segment": 0, "segments": 2}),
        (fit, {"segments": 2}),
        (apply, {"part": "analytics/2099-12-30/scores/part-00000.json.gz"}),
    ):
        with pytest.raises(InvalidRequest, match=f"time {re.escape(future)} is later than now"):
            step({"time": future, **event}, Context())
    from shared.adapters import aws as clients

    assert clients.client("s3").list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
    with pytest.raises(NotFound, match="no scores are staged at analytics/2026-11-22/scores/part-00007"):
        apply(
            {"time": "2026-11-23T02:00:00Z", "part": "analytics/2026-11-22/scores/part-00007.json.gz"},
            Context(),
        )
