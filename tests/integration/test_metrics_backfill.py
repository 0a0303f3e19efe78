"""The metrics back-fill on moto, through the functions as deployed (the admin starts the run, the step
function runs once per scan segment with its own environment and grants): the stage moves the metrics
function counted live are found counted, the others are added, once; and what a run costs (the bench's
counts): the Scan pages, and one conditional write per history entry, whether it counts or not."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from tests.conftest import Context
from tests.integration.test_backfills import SEGMENTS, engine, run, start

__all__ = ["engine"]  # the back-fills' Step Functions (a fixture)


def count_live(events: list[dict[str, Any]]) -> int:
    """The metrics function, as the bus rule invokes it, on each of ``events``: how many it counted."""
    from infra.local.gateway import load_handler
    from infra.wiring import function

    metrics = load_handler(function("metrics").handler)
    return sum(metrics(json.loads(json.dumps(e)), Context())["counted"] for e in events)


def test_the_history_adds_only_what_the_metrics_function_never_counted_and_a_rerun_adds_nothing(
    aws, send, stream, engine, bus_events
) -> None:
    for n in range(4):
        send("/v1/identify", {"userId": f"u{n}", "traits": {"email": f"u{n}@example.com"}})
    stream.drain()
    moves = [e for e in bus_events() if e["detail-type"] == "ContactStageChanged"]
    assert len(moves) == 8, "each: first seen (subscriber), identified (lead)"
    # the metrics function heard of u0's and u1's moves only (the others: before it was deployed)
    live = [e for e in moves if e["detail"]["contact_id"] in ("user_id:u0", "user_id:u1")]
    assert count_live(live) == 4

    requests: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        requests[model.name] += 1

    aws.meta.events.register("before-parameter-build.dynamodb", count)
    assert start("metrics_backfill", "seed-1")[1]["started"] is True
    assert engine.steps == {"backfill_metrics": SEGMENTS}
    status, answer = run("metrics_backfill", "seed-1")
    assert status == 200 and answer["status"] == "SUCCEEDED", answer
    result = answer["result"]
    assert (result["segments"], result["entries"], result["counted"], result["unreadable"]) == (
        SEGMENTS,
        8,
        4,
        0,
    )
    assert result["read"] > result["entries"], (
        "profiles, events' copies, other announcements: read, not handed on"
    )
    # a segment's page per Scan (a small table), one conditional transaction per entry: nothing else
    assert requests == {"Scan": SEGMENTS, "TransactWriteItems": 8}, requests
    assert count_live(moves) == 0, "every move is now counted: the live function finds each counted"

    requests.clear()
    start("metrics_backfill", "seed-2")
    again = run("metrics_backfill", "seed-2")[1]["result"]
    assert (again["entries"], again["counted"], again["read"]) == (8, 0, result["read"])
    assert requests == {"Scan": SEGMENTS, "TransactWriteItems": 8}, "each write refused: its marker is kept"


def test_the_sample_step_runs_through_the_handler(aws, engine) -> None:
    from functions.backfill_metrics.handler import handler
    from tests.conftest import EVENTS

    step = json.loads((EVENTS / "backfill_metrics" / "segment.json").read_text())
    answer = handler(step, Context())
    assert answer == {"segment": 0, "segments": 32, "entries": 0, "read": 0, "counted": 0, "unreadable": 0}
