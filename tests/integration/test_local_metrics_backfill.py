"""The metrics back-fill on the local stack, as ``make run`` serves it: contacts placed before the lifecycle
metrics counted them are missing from the stage populations (and read below zero once they move on); the
admin starts ``metrics_backfill``, the local stack runs its step per scan segment as deployed (its own
environment and grants), and the populations are right; a second run adds nothing."""

from __future__ import annotations

from typing import Any

from tests.integration.test_lifecycle_metrics import call, report, track


def forget_the_stage_counts(stack: Any) -> int:
    """The metrics table emptied: as if the metrics function had been deployed only now."""
    from shared.adapters import aws

    db, table = aws.client("dynamodb"), stack.table_names["metrics"]
    items = db.scan(TableName=table, ProjectionExpression="pk, sk")["Items"]
    for item in items:
        db.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
    return len(items)


def populations(stack: Any, day: str) -> dict[str, Any]:
    (stages,) = report(stack, "stages", period="day", **{"from": day, "to": day})["periods"]
    return {
        "population": {s: n for s, n in stages["population"].items() if n},
        "entered": stages["entered"],
        "left": stages["left"],
    }


def seed(stack: Any, name: str) -> dict[str, Any]:
    status, answer = call(stack, "POST", "/admin/backfills/metrics_backfill", {"name": name})
    assert (status, answer["started"]) == (200, True), answer
    stack.executions.wait(timeout=120)
    status, run = call(stack, "GET", f"/admin/backfills/metrics_backfill/{name}")
    assert status == 200 and run["status"] == "SUCCEEDED", run
    return run["result"]


def test_the_stage_history_seeds_the_populations_once(local_stack) -> None:
    stack = local_stack
    assert call(stack, "POST", "/_local/clock", {"set": "2031-01-15T10:00:00Z"})[0] == 200
    # Ann and Bob sign up (subscriber, then lead) before the metrics count anything
    for who in ("ann", "bob"):
        identify = {"userId": who, "messageId": f"id-{who}", "traits": {"email": f"{who}@example.com"}}
        track(stack, "/v1/identify", identify)
    stack.drain_streams()
    assert forget_the_stage_counts(stack) > 0
    # then the counting runs: Ann buys and becomes a customer, which is counted live
    purchase = {
        "userId": "ann",
        "event": "Order Completed",
        "messageId": "o-1",
        "properties": {"revenue": 20},
    }
    track(stack, "/v1/track", purchase)
    day = "2031-01-15"
    assert populations(stack, day) == {
        "population": {"lead": -1, "customer": 1},
        "entered": {"customer": 1},
        "left": {"lead": 1},
    }, "Ann left a lead she was never counted in; Bob is nowhere"

    result = seed(stack, "seed-1")
    # Ann: subscriber, lead, customer; Bob: subscriber, lead
    assert (result["entries"], result["counted"], result["unreadable"]) == (5, 4, 0), result
    assert result["segments"] == stack.config.backfill_scan_segments == 4
    assert result["read"] >= result["entries"], "every item of the contacts table is read, moves handed on"
    seeded = populations(stack, day)
    assert seeded == {
        "population": {"lead": 1, "customer": 1},
        "entered": {"subscriber": 2, "lead": 2, "customer": 1},
        "left": {"subscriber": 2, "lead": 1},
    }

    again = seed(stack, "seed-2")
    assert (again["entries"], again["counted"]) == (5, 0), again
    assert populations(stack, day) == seeded
    status, same = call(stack, "POST", "/admin/backfills/metrics_backfill", {"name": "seed-2"})
    assert (status, same["started"]) == (200, False), "a name starts one run"
