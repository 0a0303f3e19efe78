"""The back-fills on moto, as deployed: the admin starts a run (Step Functions' StartExecution, on moto),
the run's steps are the back-fill functions, hosted with their own environment and grants, one per scan
segment (the local runner, ``LocalExecutions``), and the admin reads the run back.

Segment-agnostic: a contact whose stored stage is stale is re-evaluated by the contacts back-fill (once:
the stream's own evaluation afterwards finds nothing left), and purchases stored before the purchase
index get ``purchasedAt`` and their basket once, after which the nightly scan sees them.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Context, as_function
from tests.integration.conftest import call_admin

SEGMENTS = 3


@pytest.fixture
def engine(aws):
    """Step Functions for the back-fills: each execution the admin starts is run at once, in order (not in
    a background thread), by the workflow's local runner over ``SEGMENTS`` segments; ``engine.steps``
    counts the step runs by function."""
    from infra.local.gateway import load_handler
    from infra.local.workflow import LocalExecutions, LocalWorkflow
    from infra.wiring import BACKFILLS, function
    from shared import scope
    from shared.adapters import aws as clients
    from shared.adapters.backfill_runs import state_machine_env

    steps: Counter[str] = Counter()

    def invoke(name: str, payload: dict[str, Any]) -> Any:
        steps[name] += 1
        result = load_handler(function(name).handler)(json.loads(json.dumps(payload)), Context())
        return json.loads(json.dumps(result))

    admin = scope.hosted(function("admin").handler)
    machines = {flow.name: admin.environ[state_machine_env(flow.name)] for flow in BACKFILLS}
    executions = LocalExecutions(
        runners={machines[flow.name]: LocalWorkflow(flow, SEGMENTS, invoke) for flow in BACKFILLS},
        background=False,
    )
    clients.client("stepfunctions").meta.events.register("after-call.sfn.StartExecution", executions.started)
    executions.steps = steps  # type: ignore[attr-defined]
    return executions


def start(workflow: str, name: str | None = None) -> tuple[int, dict[str, Any]]:
    body = {"name": name} if name else None
    status, answer, _ = call_admin("POST", "/admin/backfills/{workflow}", {"workflow": workflow}, body)
    return status, answer


def run(workflow: str, name: str) -> tuple[int, dict[str, Any]]:
    status, answer, _ = call_admin(
        "GET", "/admin/backfills/{workflow}/{name}", {"workflow": workflow, "name": name}
    )
    return status, answer


def profile(db: Any, contact: str) -> dict[str, Any]:
    return db.get_item(
        TableName=os.environ["CONTACTS_TABLE_NAME"], Key={"pk": {"S": f"C#{contact}"}, "sk": {"S": "PROFILE"}}
    )["Item"]


# --- contacts ---------------------------------------------------------------------------------------------------


def test_a_contact_whose_stored_stage_is_stale_is_reevaluated_once(
    aws, send, stream, engine, bus_events
) -> None:
    send("/v1/identify", {"userId": "ann", "traits": {"email": "ann@example.com"}})
    send("/v1/track", {"userId": "ann", "event": "Order Completed", "properties": {"revenue": 20}})
    send("/v1/identify", {"userId": "bob", "traits": {"email": "bob@example.com"}})
    # the stage function has not seen these changes (its stream is not drained): the stored stage is stale
    assert "stage" not in profile(aws, "user_id:ann") and "stage" not in profile(aws, "user_id:bob")

    status, answer = start("contacts_backfill", "segment-vip-v1")
    assert (status, answer) == (
        200,
        {
            "workflow": "contacts_backfill",
            "name": "segment-vip-v1",
            "started": True,
            "status": "/admin/backfills/contacts_backfill/segment-vip-v1",
        },
    )
    assert engine.steps == {"backfill_contacts": SEGMENTS}, "one step run per scan segment"
    assert profile(aws, "user_id:ann")["stage"]["S"] == "customer"
    assert profile(aws, "user_id:bob")["stage"]["S"] == "lead"
    moved = [e for e in bus_events() if e["detail-type"] == "ContactStageChanged"]
    assert {e["detail"]["contact_id"] for e in moved} == {"user_id:ann", "user_id:bob"}

    status, answer = run("contacts_backfill", "segment-vip-v1")
    assert status == 200 and answer["status"] == "SUCCEEDED" and answer["stopped_at"]
    assert answer["result"] == {
        "segments": SEGMENTS,
        "contacts": 2,
        "read": answer["result"]["read"],
        "changed": 2,
        # issue 14: their search terms, which the stream had not written yet
        "indexed": 2,
    }
    assert answer["result"]["read"] >= 2, "profiles and the contacts' other items (their stage history)"

    # the same name again (the segment saved twice, a retried request): nothing starts, nothing runs
    assert start("contacts_backfill", "segment-vip-v1") == (
        200,
        {
            "workflow": "contacts_backfill",
            "name": "segment-vip-v1",
            "started": False,
            "status": "/admin/backfills/contacts_backfill/segment-vip-v1",
        },
    )
    assert engine.steps == {"backfill_contacts": SEGMENTS}
    # the stream's own evaluation of the same changes finds them made: no move announced twice
    stream.drain()
    assert not [e for e in bus_events() if e["detail-type"] == "ContactStageChanged"]
    # another run changes nothing: each contact costs the scan alone
    assert start("contacts_backfill", "segment-vip-v2")[1]["started"] is True
    assert run("contacts_backfill", "segment-vip-v2")[1]["result"]["changed"] == 0
    assert not bus_events()


def test_a_run_that_fails_says_which_step_and_why(aws, send, engine) -> None:
    send("/v1/identify", {"userId": "ann", "traits": {"email": "ann@example.com"}})

    def refuse(model: Any, **_: Any) -> None:
        if model.name == "Scan":
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "refused"}}, "Scan")

    aws.meta.events.register("before-call.dynamodb.Scan", refuse)
    assert start("contacts_backfill", "broken")[1]["started"] is True
    status, answer = run("contacts_backfill", "broken")
    assert status == 200 and answer["status"] == "FAILED" and answer["result"] is None
    assert answer["error"] == "backfill_contacts.ClientError" and "refused" in answer["cause"]
    assert engine.steps["backfill_contacts"] == 3, "the first segment, tried as often as the workflow retries"


# --- purchases ----------------------------------------------------------------------------------------------------


def unindex(db: Any) -> int:
    """Make every purchase of the log look stored before the purchase index: no purchasedAt, no basket."""
    table = os.environ["EVENTS_TABLE_NAME"]
    items = db.scan(TableName=table)["Items"]
    for item in items:
        if "purchasedAt" in item:
            db.update_item(
                TableName=table,
                Key={"pk": item["pk"], "sk": item["sk"]},
                UpdateExpression="REMOVE purchasedAt, basket",
            )
    return sum(1 for i in items if "purchasedAt" in i)


def nightly_scan() -> list[Any]:
    from shared import runtime

    with as_function("analytics_extract"):
        scan = runtime.analytics_extract().purchases
        return sorted(
            (p for s in range(2) for page in scan.scan(s, 2) for p in page.purchases),
            key=lambda p: (p.contact_id, p.purchased_at),
        )


def test_purchases_stored_before_the_index_get_it_once_and_the_nightly_scan_then_sees_them(
    aws, send, engine
) -> None:
    send(
        "/v1/track",
        {
            "userId": "ann",
            "event": "Order Completed",
            "timestamp": "2026-10-01T10:00:00.000Z",
            "properties": {"revenue": 20, "products": [{"sku": "kite", "category": "toys"}]},
        },
    )
    send("/v1/track", {"userId": "bob", "event": "Order Completed", "timestamp": "2026-10-02T10:00:00.000Z"})
    send("/v1/track", {"userId": "bob", "event": "Product Viewed", "properties": {"sku": "kite"}})
    before = profile(aws, "user_id:ann")
    assert unindex(aws) == 2 and nightly_scan() == []

    status, answer = start("purchases_backfill", "legacy-1")
    assert status == 200 and answer["started"] is True
    assert engine.steps == {"backfill_purchases": SEGMENTS}
    status, answer = run("purchases_backfill", "legacy-1")
    assert answer["status"] == "SUCCEEDED"
    assert answer["result"] == {
        "segments": SEGMENTS,
        "purchases": 2,
        "read": 3,
        "indexed": 2,
        "unreadable": 0,
    }
    found = nightly_scan()
    assert [(p.contact_id, p.purchased_at.isoformat(), p.amount, p.basket) for p in found] == [
        ("user_id:ann", "2026-10-01T10:00:00+00:00", 20.0, (("kite", "toys"),)),
        ("user_id:bob", "2026-10-02T10:00:00+00:00", 0.0, ()),
    ]
    assert profile(aws, "user_id:ann") == before, "an update of an event is folded into no profile"

    assert start("purchases_backfill", "legacy-2")[1]["started"] is True
    again = run("purchases_backfill", "legacy-2")[1]["result"]
    assert again["purchases"] == 0 and again["indexed"] == 0 and again["read"] == 3


# --- the admin's answers to bad requests ------------------------------------------------------------------------


def test_bad_requests_are_refused_naming_the_problem_and_start_nothing(aws, engine) -> None:
    status, answer = start("nightly_analytics", "x")
    assert status == 404 and "contacts_backfill, purchases_backfill" in answer["message"]
    status, answer = start("contacts_backfill", "segment vip")
    assert status == 400 and answer["code"] == "invalid_backfill" and "name" in answer["message"]
    status, answer, _ = call_admin(
        "POST", "/admin/backfills/{workflow}", {"workflow": "contacts_backfill"}, {"nmae": "x"}
    )
    assert status == 400 and "nmae" in answer["message"]
    status, answer = run("contacts_backfill", "never-started")
    assert status == 404 and "never-started" in answer["message"]
    assert not engine.steps


def test_a_run_started_without_a_name_is_named_by_the_minute(aws, engine, clock) -> None:
    status, answer = start("purchases_backfill")
    assert status == 200 and answer["started"] is True
    assert answer["name"] == f"manual-{clock.now():%Y%m%dT%H%M}"
    assert start("purchases_backfill")[1]["started"] is False, "a second click within the minute"


# --- what a back-fill costs (the bench's counts) -------------------------------------------------------------------


def test_a_contact_costs_the_scan_alone_unless_it_changes_and_then_what_a_stream_change_costs(
    aws, send, stream, engine
) -> None:
    for n in range(6):
        send("/v1/identify", {"userId": f"u{n}", "traits": {"email": f"u{n}@example.com"}})
    stream.drain()
    for n in range(3):  # three become customers; the stage function does not hear of it
        send("/v1/track", {"userId": f"u{n}", "event": "Order Completed", "properties": {"revenue": 20}})
    requests: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        requests[model.name] += 1

    aws.meta.events.register("before-parameter-build.dynamodb", count)
    from shared.adapters import aws as clients

    clients.client("events").meta.events.register("before-parameter-build.events", count)
    start("contacts_backfill", "stale")
    assert run("contacts_backfill", "stale")[1]["result"]["changed"] == 3
    # per changed contact: its profile read again, the move written with its announcements, the
    # outbox read (the profile's list of pending entries, then each entry by key: a stage move and a
    # quarter), the announcements published and marked (the first run also reads the funnel)
    assert requests["Scan"] == SEGMENTS and requests["PutEvents"] == 3
    assert requests["TransactWriteItems"] == 2 * 3 and requests["GetItem"] == 3 * 4 + 1
    requests.clear()
    start("contacts_backfill", "fresh")
    result = run("contacts_backfill", "fresh")[1]["result"]
    assert result["changed"] == 0 and result["contacts"] == 6
    assert requests == {"Scan": SEGMENTS, "Query": SEGMENTS}, (
        "nothing changes: nothing read beyond the scan and the segments (once per step run), nothing written"
    )


def test_the_sample_events_run_through_the_handlers(aws, engine) -> None:
    """events/ holds a step's input for each back-fill function and the admin's two routes."""
    from functions.admin.handler import handler as admin
    from functions.backfill_contacts.handler import handler as contacts
    from functions.backfill_purchases.handler import handler as purchases
    from tests.conftest import EVENTS

    step = json.loads((EVENTS / "backfill_contacts" / "segment.json").read_text())
    assert contacts(step, Context())["segments"] == 32
    step = json.loads((EVENTS / "backfill_purchases" / "segment.json").read_text())
    assert purchases(step, Context())["indexed"] == 0
    started = admin(json.loads((EVENTS / "admin" / "start_backfill.json").read_text()), Context())
    assert started["statusCode"] == 200 and json.loads(started["body"])["started"] is True
    found = admin(json.loads((EVENTS / "admin" / "get_backfill.json").read_text()), Context())
    assert found["statusCode"] == 200 and json.loads(found["body"])["status"] == "SUCCEEDED"


# --- a saved segment -------------------------------------------------------------------------------------------


def test_a_saved_segment_back_fills_the_contacts_already_there_once(
    aws, send, stream, engine, bus_events
) -> None:
    """Contacts known before the segment exists enter it when it is saved (its back-fill, named after the
    version), announced once, and are listed among its members; saving again starts the new version's."""
    for user, tags in (("ann", ["kids"]), ("bob", ["kids"]), ("cid", ["golf"])):
        send("/v1/identify", {"userId": user, "traits": {"email": f"{user}@example.com", "tags": tags}})
    stream.drain()
    bus_events()  # the stage moves of the tracked calls
    segment = {"name": "Parents", "filter": {"all": [{"tag": "kids"}]}}

    status, saved, _ = call_admin("PUT", "/admin/segments/{segmentId}", {"segmentId": "parents"}, segment)
    assert status == 200 and saved["version"] == 1
    assert engine.steps == {"backfill_contacts": SEGMENTS}, "the save started the contacts back-fill"
    assert run("contacts_backfill", "seg-parents-v1")[1]["status"] == "SUCCEEDED"
    status, listed, _ = call_admin("GET", "/admin/segments/{segmentId}/members", {"segmentId": "parents"})
    assert status == 200 and sorted(listed["members"]) == ["user_id:ann", "user_id:bob"]
    entered = [e["detail"] for e in bus_events() if e["detail-type"] == "SegmentChanged"]
    assert sorted((e["contact_id"], e["segment"], e["change"], e["initial"]) for e in entered) == [
        ("user_id:ann", "parents", "entered", True),
        ("user_id:bob", "parents", "entered", True),
    ], "what the contacts already were when the segment was saved: initial, which triggers ignore by default"
    # the stream's evaluation of the back-fill's own writes, and a retried save, change nothing more
    stream.drain()
    assert start("contacts_backfill", "seg-parents-v1")[1]["started"] is False
    assert not [e for e in bus_events() if e["detail-type"] == "SegmentChanged"]

    # a new version (golf instead) back-fills again: ann and bob leave, cid enters
    segment["filter"] = {"all": [{"tag": "golf"}]}
    status, saved, _ = call_admin(
        "PUT", "/admin/segments/{segmentId}", {"segmentId": "parents"}, segment, {"If-Match": "1"}
    )
    assert status == 200 and saved["version"] == 2
    assert saved["backfill"] == {
        "workflow": "contacts_backfill",
        "name": "seg-parents-v2",
        "started": True,
        "status": "/admin/backfills/contacts_backfill/seg-parents-v2",
        "error": None,
    }
    assert engine.steps == {"backfill_contacts": 2 * SEGMENTS}
    changed = [e["detail"] for e in bus_events() if e["detail-type"] == "SegmentChanged"]
    assert sorted((e["contact_id"], e["change"]) for e in changed) == [
        ("user_id:ann", "left"),
        ("user_id:bob", "left"),
        ("user_id:cid", "entered"),
    ]
    # a new name, the same filter: nobody moves, no back-fill
    segment["name"] = "Golfers"
    status, saved, _ = call_admin(
        "PUT", "/admin/segments/{segmentId}", {"segmentId": "parents"}, segment, {"If-Match": "2"}
    )
    assert status == 200 and saved["version"] == 3 and saved["backfill"] is None
    assert engine.steps == {"backfill_contacts": 2 * SEGMENTS}


def test_a_backfill_announces_another_segments_real_change_as_one(
    aws, send, stream, engine, bus_events
) -> None:
    """Ann lost her tag, and the back-fill of another segment's save evaluates her before the stream does:
    her departure from the segment she was in is genuine (``initial`` false), her entry into the saved
    segment is what she already was (``initial`` true)."""

    def save(segment_id: str, tag: str) -> None:
        body = {"name": segment_id.title(), "filter": {"tag": tag}}
        status, saved, _ = call_admin("PUT", "/admin/segments/{segmentId}", {"segmentId": segment_id}, body)
        assert status == 200 and saved["backfill"]["started"] is True, saved

    save("parents", "kids")
    send("/v1/identify", {"userId": "ann", "traits": {"tags": ["kids", "golf"]}})
    stream.drain()
    bus_events()
    send("/v1/identify", {"userId": "ann", "traits": {"tags": ["-kids"]}})  # not evaluated yet
    save("golfers", "golf")
    changes = [e["detail"] for e in bus_events() if e["detail-type"] == "SegmentChanged"]
    assert sorted((e["segment"], e["change"], e["initial"]) for e in changes) == [
        ("golfers", "entered", True),
        ("parents", "left", False),
    ]
    stream.drain()
    assert not [e for e in bus_events() if e["detail-type"] == "SegmentChanged"], "announced once"
