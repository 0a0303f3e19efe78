"""Issue 13: what keeping segment membership costs per contact change, through the functions as deployed.

On moto, with 0, 10 and 100 segments stored (``segments``: one on a tag, one on the last visit within 30
days, the rest filters of several conditions of every kind that the bench's contacts do not match), the
tracking, aggregation, stage and timer functions hosted as deployed (``bench.hosted``); ``CONTACTS``
contacts tracked through the real route, their profile changes delivered to the stage function by the
contacts table's stream. Three changes, each for every contact:

- **quiet**: one more page view a day later (in the recent visitors already; no membership moves);
- **enter**: an identify that tags the contact ``kids`` (enters the tag's segment);
- **leave**: 31 days later, the timer function (as its hourly schedule invokes it) re-evaluates the contacts
  whose due time came: they leave the recent visitors (a due-time departure).

Every request of each function is counted on its clients and billed by ``bench.capacity``'s meter; the
segment book's reads (a Query of the config table, cached for ``rulesCacheSeconds`` per instance) are
counted apart. The same changes with no segments are the baseline: the difference is what segments cost.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from typing import Any

#: the first moment of the run (the clock every function reads)
START = datetime(2026, 11, 2, 9, tzinfo=UTC)
CONTACTS = 20
SEGMENT_COUNTS = (0, 10, 100)
#: the functions a contact change goes through
FUNCTIONS = ("tracking", "aggregation", "stage_transition", "timers")
KIDS, RECENT = "kids", "recent-visitors"


def segments(count: int) -> list[Any]:
    """``count`` segments: the tag's, the recent visitors', and filters the bench's contacts never match
    (each a group of 8 to 10 conditions: traits, scores, counts, times, consent, stage; 1,000 conditions
    at most in all, the system's limit)."""
    from shared.segments.model import Segment

    found = []
    if count >= 1:
        found.append({"id": KIDS, "name": "Parents", "filter": {"tag": "kids"}})
    if count >= 2:
        found.append(
            {"id": RECENT, "name": "Recent visitors", "filter": {"last": "visit", "within_days": 30}}
        )
    for n in range(len(found), count):
        found.append(
            {
                "id": f"filler-{n:03d}",
                "name": f"Filler {n}",
                "filter": {
                    "all": [
                        {"trait": "plan", "in": [f"plan-{n}", f"plan-{n}-team"]},
                        {"score": "global", "gte": 10 + n, "lt": 500},
                        {"any": [{"tag": f"t{n}"}, {"count": "purchase", "gte": 3}]},
                        {"last": "activity", "within_days": 7 + n % 60},
                        {"consent": "email", "eq": "granted"},
                        {"not": {"field": "stage", "eq": "customer"}},
                        {"revenue": "total", "lt": 1000 + n},
                        {"trait": "company.size", "gte": 50},
                    ]
                },
            }
        )
    return [Segment.model_validate(body) for body in found]


def _stored_conditions(found: Sequence[Any]) -> int:
    return sum(s.filter.conditions() for s in found)


def _track(running: Any, calls: list[dict[str, Any]]) -> None:
    from bench.tracking import api_event

    answer = running.invoke("tracking", api_event("/v1/batch", {"batch": calls}))
    assert answer["statusCode"] == 200, answer


def _measured(running: Any, label: str, contacts: int, act: Any) -> dict[str, Any]:
    """Run ``act`` (it makes the change and lets the streams run dry), counting what each function did."""
    from shared.adapters.tables import CONFIG

    with running.measuring():
        cpu = time.process_time()
        act()
        cpu = time.process_time() - cpu
    requests = running.requests
    by_function = {}
    for name in FUNCTIONS:
        calls = requests.of(name)
        book = sum(n for (f, op, table, _), n in requests.tables.items() if f == name and table == CONFIG.id)
        by_function[name] = {
            "requests": calls,
            "dynamodb": sum(n for op, n in calls.items() if "." not in op),
            "config_reads": book,
            "put_events": calls.get("events.PutEvents", 0),
            "events": requests.entries.get((name, "events.PutEvents"), 0),
            "transaction_items": requests.entries.get((name, "TransactWriteItems"), 0),
            "wru": running.meter.units("write", function=name),
            "rru": running.meter.units("read", function=name),
        }
    return {"case": label, "contacts": contacts, "functions": by_function, "cpu": cpu}


def one_count(count: int, contacts: int = CONTACTS) -> dict[str, Any]:
    """The three changes for ``contacts`` contacts with ``count`` segments stored."""
    from bench.capacity import item_size
    from bench.hosted import hosted
    from shared.adapters import tables
    from shared.adapters.segment_members import MEMBERSHIP
    from shared.adapters.segment_store import DynamoSegmentStore

    stored = segments(count)
    with (
        redirect_stdout(io.StringIO()),  # the functions' metrics (EMF lines), not wanted here
        hosted(FUNCTIONS, start=START, streams=("aggregation", "stage_transition")) as running,
    ):
        store = DynamoSegmentStore(running.db, table=running.names[tables.CONFIG.id], cache_seconds=0)
        for segment in stored:
            store.save(segment, START, None)
        users = [f"u{n:03d}" for n in range(contacts)]

        def calls(kind: str, day: int, **body: Any) -> list[dict[str, Any]]:
            return [{"type": kind, "userId": u, "messageId": f"{kind}-{day}-{u}", **body} for u in users]

        # the contacts arrive (identified, a first visit): they enter the funnel, and the recent visitors
        _track(running, calls("identify", 0, traits={"email": "someone@example.com", "plan": "free"}))
        _track(running, calls("page", 0, name="Home", properties={"url": "https://shop.example/"}))
        running.drain()
        results = []

        def quiet() -> None:
            running.clock.advance(timedelta(days=1))
            _track(running, calls("page", 1, name="Toys", properties={"url": "https://shop.example/toys"}))
            running.drain()

        results.append(_measured(running, "quiet", contacts, quiet))
        evaluation = _replay_cpu(running, "stage_transition")

        def enter() -> None:
            running.clock.advance(timedelta(days=1))
            _track(running, calls("identify", 2, traits={"tags": ["kids"]}))
            running.drain()

        results.append(_measured(running, "enter", contacts, enter))
        members_after_enter = _members(running, tables.CONTACTS.id, MEMBERSHIP)

        def leave() -> None:
            running.clock.advance(timedelta(days=31))
            running.invoke("timers", {})
            running.drain()

        results.append(_measured(running, "leave", contacts, leave))
        members_after_leave = _members(running, tables.CONTACTS.id, MEMBERSHIP)

        # what one read of the segment book costs (the harness's own read, billed to ``process``)
        with running.measuring():
            book = DynamoSegmentStore(
                running.db, table=running.names[tables.CONFIG.id], cache_seconds=0
            ).book()
        book_rru = running.meter.units("read", operation="Query")
        book_bytes = sum(item_size(i) for i in running.items(tables.CONFIG.id) if i["pk"]["S"] == "SEGMENTS")
    return {
        "segments": count,
        "conditions": _stored_conditions(stored),
        "book_segments": len(list(book)) if hasattr(book, "__iter__") else count,
        "book_rru": book_rru,
        "book_bytes": book_bytes,
        "members_after_enter": members_after_enter,
        "evaluation": evaluation,
        "members_after_leave": members_after_leave,
        "cases": results,
    }


def _replay_cpu(running: Any, name: str, repeat: int = 20, rounds: int = 9) -> dict[str, float]:
    """CPU per record of the function's last batch delivered again (nothing changes: no request is made),
    the least of ``rounds`` rounds of ``repeat`` deliveries (other work on the machine only adds)."""
    from bench.harness import cpu_seconds
    from infra.local.gateway import LambdaContext

    batch = running.batches[name]
    handler, timeout = running.handlers[name]
    before = running.requests.dynamodb(name)

    def deliver() -> None:
        answer = handler(batch, LambdaContext(f"lifecycle-{name}", "bench", timeout_seconds=timeout))
        assert answer == {"batchItemFailures": []}, answer

    samples = [cpu_seconds(deliver, repeat) for _ in range(rounds)]
    records = len(batch["Records"])
    assert running.requests.dynamodb(name) == before, "a replayed batch that changes nothing made requests"
    return {"records": records, "us_per_record": min(samples) / repeat / records * 1e6}


def _members(running: Any, table_id: str, prefix: str) -> dict[str, int]:
    held: dict[str, int] = {}
    for item in running.items(table_id):
        if item["sk"]["S"].startswith(prefix):
            segment = item["sk"]["S"][len(prefix) :]
            held[segment] = held.get(segment, 0) + 1
    return held


def membership_costs(
    counts: Sequence[int] = SEGMENT_COUNTS, contacts: int = CONTACTS
) -> list[dict[str, Any]]:
    return [one_count(count, contacts) for count in counts]


if __name__ == "__main__":
    import json

    print(json.dumps(membership_costs(), indent=1, default=str))
