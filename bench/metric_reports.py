"""Issue 13: what each ``/admin/metrics`` report costs, in DynamoDB requests and read units per call.

A synthetic population's lifecycle (14 months of contacts entering the funnel, moving through it and
buying) is counted by the real use cases (``count_stage_move``, ``count_purchase``) into ``ShardedCounters``:
the fake store of ``tests.fakes`` that also keeps each counter row's shard items as ``DynamoMetricStore``
writes them (the shard its first attempt picks), which are then put straight into moto's metrics table
(moto takes some 25 ms per transaction: the 14 months would take minutes; ``tests/unit/test_bench_issue13``
checks the items equal the adapter's). Then each report is asked for through the admin handler hosted as
deployed, for ``period=day`` (30 days), ``week`` (13 weeks) and ``month`` (12 months), the defaults; every
request it makes is counted on its clients and billed by ``bench.capacity``'s meter.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

#: the moment the reports are asked for (the clock every function reads)
NOW = datetime(2026, 12, 31, 12, tzinfo=UTC)
#: how far back the population's history goes
HISTORY_DAYS = 425
#: contacts placed in the funnel per day
ARRIVALS_PER_DAY = 6
SEED = 13
#: issue 15: ``nps``, the net promoter score (surveys sent to a share of the contacts, some of them answering)
REPORTS = ("stages", "funnel", "customers", "cohorts", "revenue", "nps")
#: issue 15: the share of contacts sent a survey, and of those the share answering
SURVEYED, ANSWERING = 0.3, 0.35
SEGMENTS = ("vip", "newsletter", "eu")
PERIODS = {"day": "30 days", "week": "13 weeks", "month": "12 months"}


class ShardedCounters:
    """``MemoryMetricStore`` (the use case's port, contract-tested) that also keeps the counter items as
    ``DynamoMetricStore`` writes them: the adds of a counted record go to the shard its first attempt picks
    (``crc32(<hashed marker>#0) % shards``; a write alone never conflicts), one item per counter, shard and
    row key, its numbers summed."""

    def __init__(self, shards: int | None = None) -> None:
        from shared.adapters.metric_store import SHARDS
        from tests.fakes import MemoryMetricStore

        self.memory = MemoryMetricStore()
        self.shards = shards or SHARDS
        #: (counter, shard, row key) -> name -> value
        self.shard_rows: dict[tuple[str, int, str], dict[str, Decimal]] = {}

    def record(
        self, marker: str, adds: Any, claims: Any = (), customer: str | None = None, *, keep: bool = False
    ) -> bool:
        import zlib

        from shared.adapters.metric_store import hashed

        counted = self.memory.record(marker, adds, claims, customer, keep=keep)
        if counted:
            shard = zlib.crc32(f"{hashed(marker)}#0".encode()) % self.shards
            for add in adds:
                row = self.shard_rows.setdefault((add.counter, shard, add.key), {})
                for name, value in add.values.items():
                    row[name] = row.get(name, Decimal(0)) + Decimal(value)
        return counted

    def customer(self, customer: str, keys: Any) -> Any:
        return self.memory.customer(customer, keys)

    def rows(self, counter: Any, first: str, last: str) -> Any:
        return self.memory.rows(counter, first, last)

    def items(self) -> list[dict[str, Any]]:
        """The counter items in the wire format (``pk`` ``<COUNTER>#<shard>``, ``sk`` the row key)."""
        from shared.adapters.metric_store import PARTITIONS

        return [
            {
                "pk": {"S": f"{PARTITIONS[counter]}#{shard}"},
                "sk": {"S": key},
                **{name: {"N": _number(value)} for name, value in values.items()},
            }
            for (counter, shard, key), values in sorted(self.shard_rows.items())
        ]


def _number(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def populate(store: Any, seed: int = SEED, days: int = HISTORY_DAYS) -> dict[str, int]:
    """Stage moves and purchases of a synthetic population counted into ``store`` (a ``MetricStore``):
    contacts arrive in the funnel's first stage every day, a share moves on stage by stage after some
    days (now and then back), customers buy again every few weeks. Returns what was counted."""
    from shared.contacts.identity import ContactId
    from shared.engagement.events import ContactStageChanged
    from shared.engagement.funnel import default_funnel
    from shared.metrics.nps import survey_sent
    from shared.nps.answers import NpsAnswered, answer_event_id, category_of
    from shared.tracking.messages import parse_calls
    from shared.tracking.wire import Limits
    from shared.usecases.metrics import PurchaseMetering, StageMetering, count_purchase, count_stage_move
    from shared.usecases.nps_metrics import count_nps_answer
    from tests.fakes import CountingTelemetry, MemoryEngagementConfig

    rng = random.Random(seed)
    funnel = default_funnel()
    stages = [stage.id for stage in funnel.stages]
    phases = {stage.id: stage.phase for stage in funnel.stages}
    metering = StageMetering(store=store, telemetry=CountingTelemetry())
    place: dict[str, str] = {}

    class Timeline:
        def stage_at(self, contact: ContactId, at: datetime) -> str | None:
            return place.get(str(contact))

    class Profiles:
        def profile(self, contact: ContactId) -> None:
            return None

    buying = PurchaseMetering(
        store=store,
        contacts=Profiles(),
        timeline=Timeline(),
        funnels=MemoryEngagementConfig(),
        telemetry=CountingTelemetry(),
    )
    happenings: list[tuple[datetime, str, str, Any]] = []
    start = NOW - timedelta(days=days)
    serial = 0
    for day in range(days):
        for _ in range(ARRIVALS_PER_DAY):
            serial += 1
            contact = f"user_id:c{serial:06d}"
            at = start + timedelta(days=day, seconds=rng.randrange(86_400))
            path = [(at, None, stages[0])]
            position = 0
            while position + 1 < len(stages) and rng.random() < 0.45:
                at += timedelta(days=rng.expovariate(1 / 12), seconds=rng.randrange(3600))
                step = 1 if rng.random() < 0.9 or position == 0 else -1
                path.append((at, stages[position], stages[position + step]))
                position += step
            for at, source, target in path:
                if at < NOW:
                    happenings.append((at, "move", contact, (source, target)))
            if phases[stages[position]] in ("retention",) or rng.random() < 0.15:
                bought = at
                for _ in range(rng.randrange(1, 6)):
                    if bought >= NOW:
                        break
                    happenings.append((bought, "purchase", contact, round(rng.uniform(5, 200), 2)))
                    bought += timedelta(days=rng.expovariate(1 / 40))
            if rng.random() < SURVEYED:  # issue 15: a survey some weeks after arriving, and perhaps an answer
                asked = path[0][0] + timedelta(days=rng.uniform(7, 60))
                if asked < NOW:
                    happenings.append((asked, "survey", contact, None))
                    answered = asked + timedelta(hours=rng.uniform(1, 72))
                    if answered < NOW and rng.random() < ANSWERING:
                        segments = tuple(s for s in SEGMENTS if rng.random() < 0.3)
                        happenings.append((answered, "answer", contact, (rng.randrange(11), segments)))
    happenings.sort(key=lambda h: h[0])
    entered: dict[str, datetime] = {}
    counted = {"moves": 0, "purchases": 0, "surveys": 0, "answers": 0}
    for n, (at, kind, contact, what) in enumerate(happenings):
        if kind == "move":
            source, target = what
            count_stage_move(
                ContactStageChanged(
                    event_id=f"{contact}#{n}",
                    contact_id=contact,
                    at=at,
                    **{"from": source, "to": target},
                    phase=phases[target],
                    reason="bench",
                    engagement=0.0,
                    index=0.0,
                    direction="steady",
                    from_entered_at=entered.get(contact) if source is not None else None,
                ),
                metering,
            )
            entered[contact] = at
            place[contact] = target
            counted["moves"] += 1
        elif kind == "survey":
            store.record(f"survey-sent:{contact}#{n}", survey_sent("nps-bench", at))
            counted["surveys"] += 1
        elif kind == "answer":
            score, segments = what
            count_nps_answer(
                NpsAnswered(
                    event_id=answer_event_id("nps-bench", contact),
                    contact_id=contact,
                    at=at,
                    survey_id="nps-bench",
                    score=score,
                    category=category_of(score),
                    source="link",
                    stage=place.get(contact),
                    segments=segments,
                ),
                metering,
            )
            counted["answers"] += 1
        else:
            call = {
                "type": "track",
                "userId": contact.removeprefix("user_id:"),
                "event": "Order Completed",
                "messageId": f"bench-{n}",
                "timestamp": at.isoformat().replace("+00:00", "Z"),
                "properties": {"revenue": what},
            }
            (event,) = parse_calls("/v1/track", call, received_at=at, limits=Limits())
            count_purchase(ContactId.parse(contact), event, f"E#{n:08d}", buying)
            counted["purchases"] += 1
    counted["contacts"] = serial
    return counted


def admin_event(report: str, query: Mapping[str, str]) -> dict[str, Any]:
    """The API Gateway event of ``GET /admin/metrics/<report>?<query>``, IAM-signed as the admin routes are."""
    from urllib.parse import urlencode

    path = f"/admin/metrics/{report}"
    return {
        "version": "2.0",
        "routeKey": f"GET {path}",
        "rawPath": path,
        "rawQueryString": urlencode(query),
        "queryStringParameters": dict(query),
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9"},
            "requestId": "bench",
            "routeKey": f"GET {path}",
            "stage": "$default",
            "authorizer": {
                "iam": {"accountId": "123456789012", "userArn": "arn:aws:iam::123456789012:user/admin"}
            },
        },
        "isBase64Encoded": False,
    }


def report_costs(seed: int = SEED) -> dict[str, Any]:
    """Each report for each period through the admin handler on moto: requests and read units a call."""
    import json

    from bench.capacity import item_size
    from bench.hosted import hosted
    from shared.adapters.tables import METRICS

    with hosted(("admin",), start=NOW) as running:
        started = time.perf_counter()
        counters = ShardedCounters()
        counted = populate(counters, seed)
        rows = counters.items()
        running.put(METRICS.id, rows)
        written = time.perf_counter() - started
        # a first call builds the admin's dependencies and caches the funnel: not what a report costs
        running.invoke("admin", admin_event("stages", {"period": "month"}))
        results = []
        for report in REPORTS:
            for period, span in PERIODS.items():
                if report == "cohorts" and period != "month":
                    continue
                with running.measuring():
                    answer = running.invoke("admin", admin_event(report, {"period": period}))
                assert answer["statusCode"] == 200, answer
                body = json.loads(answer["body"])
                calls = running.requests.of("admin")
                results.append(
                    {
                        "report": report,
                        "period": period,
                        "span": span,
                        "periods": len(body.get("periods", body.get("cohorts", []))),
                        "requests": calls,
                        "queries": calls.get("Query", 0),
                        "other": sum(n for op, n in calls.items() if op != "Query"),
                        "rows_read": sum(
                            n for (f, op), n in running.requests.scanned.items() if f == "admin"
                        ),
                        "rru": running.meter.units("read", function="admin"),
                        "answer_bytes": len(answer["body"]),
                    }
                )
    return {
        "counted": counted,
        "written_seconds": written,
        "counter_items": len(rows),
        "counter_bytes_median": sorted(item_size(r) for r in rows)[len(rows) // 2] if rows else 0,
        "counter_bytes_max": max((item_size(r) for r in rows), default=0),
        "reports": results,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(report_costs(), indent=1, default=str))
