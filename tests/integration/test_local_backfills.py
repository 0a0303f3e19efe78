"""The back-fills on the local stack, as ``make run`` serves them: the admin route starts a run on moto's
Step Functions, the local stack runs it in the background with the step functions as deployed (their own
environment and grants), and the status route reads it back once it has ended."""

from __future__ import annotations

from typing import Any

from tests.integration.test_analytics_end_to_end import call, track


def strip_purchase_index(stack: Any) -> int:
    """Every purchase as stored before the purchase index existed (no purchasedAt, no basket)."""
    from shared.adapters import aws

    db, table = aws.client("dynamodb"), stack.table_names["events"]
    stripped = 0
    for item in db.scan(TableName=table)["Items"]:
        if "purchasedAt" in item:
            db.update_item(
                TableName=table,
                Key={"pk": item["pk"], "sk": item["sk"]},
                UpdateExpression="REMOVE purchasedAt, basket",
            )
            stripped += 1
    return stripped


def test_backfills_run_in_the_background_and_report_when_done(local_stack) -> None:
    stack = local_stack
    track(
        stack,
        [
            {
                "type": "track",
                "userId": f"u{n}",
                "event": "Order Completed",
                "timestamp": "2024-01-10T10:00:00Z",
                "properties": {"revenue": 10 + n, "products": [{"product_id": "kite", "category": "toys"}]},
            }
            for n in range(5)
        ],
    )
    assert strip_purchase_index(stack) == 5
    status, answer = call(stack, "POST", "/admin/backfills/purchases_backfill", {"name": "legacy"})
    assert (status, answer["started"]) == (200, True), answer
    stack.executions.wait(timeout=120)
    status, run = call(stack, "GET", "/admin/backfills/purchases_backfill/legacy")
    assert status == 200 and run["status"] == "SUCCEEDED", run
    assert (
        run["result"]["indexed"] == 5
        and run["result"]["segments"] == stack.config.backfill_scan_segments == 4
    )
    # the nightly pass now finds the purchases in the index
    status, nightly = call(stack, "POST", "/_local/analytics/run")
    assert status == 200 and sum(s["purchases"] for s in nightly["analytics_extract"]) == 5

    status, answer = call(stack, "POST", "/admin/backfills/contacts_backfill", {"name": "segment-vip-v1"})
    assert (status, answer["started"]) == (200, True)
    stack.executions.wait(timeout=120)
    status, run = call(stack, "GET", "/admin/backfills/contacts_backfill/segment-vip-v1")
    assert run["status"] == "SUCCEEDED" and run["result"]["contacts"] == 5, run
    assert run["result"]["changed"] == 0, "the stage function had evaluated them already"
    status, again = call(stack, "POST", "/admin/backfills/contacts_backfill", {"name": "segment-vip-v1"})
    assert (status, again["started"]) == (200, False)
