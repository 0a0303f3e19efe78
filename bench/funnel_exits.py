"""Issue 13: what contacts leaving the funnel cost, and the metrics back-fill at 100,000 contacts.

1. **A merged visitor's removal** (``removal_costs``): on moto, the tracking, aggregation, stage and metrics
   functions hosted as deployed (``bench.hosted``), the contacts table's stream delivered to the stage
   function and the bus's rule to the metrics function (``metrics_bus``: the rule's pattern as deployed,
   its events handed on as EventBridge hands them). ``CONTACTS`` identified users arrive first (placed as
   leads), then three changes, each for every contact, measured apart: **enter** (an anonymous visitor's
   first page view: placed in the funnel), **move** (each user buys: lead to customer, an ordinary stage
   move) and **merge** (each visitor identifies as one of the users: merged away, it leaves its stage;
   the user, a customer already, does not move). Every request counted on the functions' clients and
   billed by ``bench.capacity``'s meter; the announcements the metrics function was handed, by type.
2. **metrics_backfill at 100,000** (``backfill_in_process``): template contacts tracked on moto through
   the functions (``history_templates``: visitors, visitors merged away, leads, customers, repeat buyers),
   each partition as the system left it copied to 100,000 contacts in a chosen mix (``MIX``), scanned by
   the real use case (``backfill_metrics``) and adapter (``DynamoStageHistoryScan``) over a stand-in for
   DynamoDB's parallel Scan (``HistoryScan``: whole items to 1 MB a page, the filter after the read, billed
   by the bytes read) and counted into the fake metric store, each ``record`` a ``TransactWriteItems`` of
   its marker and its counters' rows. Three runs: the first (everything added), a second (everything
   refused: the same reads and transactions, nothing added), and one after half the entries were counted
   live. ``backfill_on_moto`` runs the workflow with ``backfill_metrics`` hosted as deployed over the same
   population at 2,000, twice, beside the stand-in's prediction.
"""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.backfill import ContactsScan, Population, Template, template_id

#: the first moment of the runs (the clock every function reads)
START = datetime(2026, 10, 5, 9, tzinfo=UTC)
#: contacts per case of part 1
CONTACTS = 20
HISTORY_CONTACTS = 100_000
MOTO_HISTORY_CONTACTS = 2_000
DAY = timedelta(days=3)
FUNCTIONS = ("tracking", "aggregation", "merge", "stage_transition", "metrics")
#: the two functions a contact's stage change costs (the others' work is the tracking's)
STAGE_PATH = ("stage_transition", "metrics")


# --- 1. a merged visitor's removal, through the functions on moto ----------------------------------------------


class BusEvents:
    """The metrics function's rule on the bench's bus (its pattern as deployed) with a queue target, handed
    to the hosted function as EventBridge hands it (``infra.local.bus.BusPump``); the detail types it was
    handed are counted, and every failure kept."""

    def __init__(self, running: Any, name: str = "metrics") -> None:
        from bench.hosted import BUS
        from infra.local.bus import BusPump, rule_pattern
        from infra.local.gateway import LambdaContext
        from infra.wiring import function
        from shared.adapters import aws

        spec = function(name)
        assert spec.bus is not None, f"{name} has no bus trigger"
        sqs, events = aws.client("sqs"), aws.client("events")
        url = sqs.create_queue(QueueName=f"bench-{name}-bus-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(
            Name=f"bench-{name}", EventBusName=BUS, EventPattern=json.dumps(rule_pattern(spec.bus))
        )
        events.put_targets(Rule=f"bench-{name}", EventBusName=BUS, Targets=[{"Id": "function", "Arn": arn}])
        handler = running.handlers[name][0]
        self.handed: Counter[str] = Counter()
        self.answers: Counter[str] = Counter()
        self.failures: list[dict[str, Any]] = []

        def deliver(event: dict[str, Any], context: Any) -> Any:
            self.handed[event["detail-type"]] += 1
            answer = handler(event, context)
            self.answers[json.dumps(answer, sort_keys=True)] += 1
            return answer

        self.pump = BusPump(
            name=name,
            sqs=sqs,
            queue_url=url,
            trigger=spec.bus,
            handler=deliver,
            context=lambda: LambdaContext(f"lifecycle-{name}", "bench", timeout_seconds=spec.timeout_seconds),
            on_failure=self.failures.append,
        )

    def drain(self) -> int:
        return self.pump.drain()


def settle(running: Any, bus: BusEvents) -> None:
    """The streams and the bus run dry."""
    for _ in range(20):
        if not running.drain() + bus.drain():
            assert not bus.failures, bus.failures
            return
    raise RuntimeError("the streams and the bus never ran dry")


def _measured(
    running: Any, bus: BusEvents, label: str, contacts: int, act: Callable[[], None]
) -> dict[str, Any]:
    from shared.adapters.tables import CONFIG

    requests = running.requests
    with running.measuring():
        bus.handed.clear()
        bus.answers.clear()
        act()
        settle(running, bus)
    by_function = {}
    for name in FUNCTIONS:
        calls = requests.of(name)
        by_function[name] = {
            "requests": calls,
            "dynamodb": sum(n for op, n in calls.items() if "." not in op),
            "put_events": calls.get("events.PutEvents", 0),
            "events": requests.entries.get((name, "events.PutEvents"), 0),
            "transaction_items": requests.entries.get((name, "TransactWriteItems"), 0),
            "wru": running.meter.units("write", function=name),
            "rru": running.meter.units("read", function=name),
            "config_reads": sum(
                n for (f, _, table, _), n in requests.tables.items() if f == name and table == CONFIG.id
            ),
        }
    return {
        "case": label,
        "contacts": contacts,
        "functions": by_function,
        "handed": dict(bus.handed),
        "answers": dict(bus.answers),
        "metrics_invocations": sum(bus.handed.values()),
    }


def removal_costs(contacts: int = CONTACTS) -> dict[str, Any]:
    """The three changes (enter, move, merge) for ``contacts`` contacts each, through the functions on moto."""
    from bench.hosted import hosted
    from bench.tracking import api_event

    users = [f"u{n:03d}" for n in range(contacts)]
    visitors = [f"v{n:03d}" for n in range(contacts)]
    with (
        redirect_stdout(io.StringIO()),  # the functions' metrics (EMF lines), not wanted here
        hosted(FUNCTIONS, start=START, streams=("aggregation", "merge", "stage_transition")) as running,
    ):
        bus = BusEvents(running)

        def track(calls: list[dict[str, Any]]) -> None:
            answer = running.invoke("tracking", api_event("/v1/batch", {"batch": calls}))
            assert answer["statusCode"] == 200, answer

        # the users arrive identified: placed as leads (not measured)
        track(
            [
                {
                    "type": "identify",
                    "userId": u,
                    "messageId": f"i0-{u}",
                    "traits": {"email": f"{u}@example.com"},
                }
                for u in users
            ]
        )
        settle(running, bus)
        cases = []

        def enter() -> None:
            running.clock.advance(timedelta(hours=1))
            track(
                [{"type": "page", "anonymousId": v, "messageId": f"p-{v}", "name": "Home"} for v in visitors]
            )

        cases.append(_measured(running, bus, "enter", contacts, enter))

        def move() -> None:
            running.clock.advance(timedelta(hours=1))
            track(
                [
                    {
                        "type": "track",
                        "userId": u,
                        "messageId": f"o-{u}",
                        "event": "Order Completed",
                        "properties": {"order_id": f"o-{u}", "revenue": 30},
                    }
                    for u in users
                ]
            )

        cases.append(_measured(running, bus, "move", contacts, move))

        def merge() -> None:
            running.clock.advance(timedelta(hours=1))
            track(
                [
                    {"type": "identify", "userId": u, "anonymousId": v, "messageId": f"i1-{v}"}
                    for u, v in zip(users, visitors, strict=True)
                ]
            )

        cases.append(_measured(running, bus, "merge", contacts, merge))
        removed = sum(
            1
            for item in running.items("contacts")
            if item["sk"]["S"] == "PROFILE" and "stageRemovedAt" in item
        )

    return {"contacts": contacts, "cases": cases, "removed": removed}


# --- 2. the metrics back-fill ------------------------------------------------------------------------------------

#: the template contacts: (name, identity kind, the days' calls); an anonymous template's calls carry its
#: id as ``anonymousId``, an identify naming ``userId`` too merges it into the user of the same id
HISTORIES: tuple[tuple[str, tuple[tuple[tuple[str, dict[str, Any]], ...], ...]], ...] = (
    ("visitor", ((("page", {"name": "Home"}),), (("page", {"name": "Shop"}),))),
    (
        "merged visitor",
        (
            (("page", {"name": "Home"}),),
            (("page", {"name": "Shop"}),),
            (("identify", {"merge": True, "traits": {"email": "v@example.com"}}),),
        ),
    ),
    (
        "lead",
        ((("identify", {"traits": {"email": "l@example.com", "plan": "free"}}), ("page", {"name": "Home"})),),
    ),
    (
        "customer",
        (
            (("identify", {"traits": {"email": "c@example.com"}}),),
            (("track", {"event": "Order Completed", "properties": {"order_id": "o-1", "revenue": 49.98}}),),
        ),
    ),
    (
        "repeat buyer",
        (
            (
                ("identify", {"traits": {"email": "r@example.com", "plan": "team"}}),
                ("page", {"name": "Home"}),
            ),
            (("track", {"event": "Order Completed", "properties": {"order_id": "o-2", "revenue": 19.5}}),),
            (("track", {"event": "Order Completed", "properties": {"order_id": "o-3", "revenue": 120}}),),
            (
                ("page", {"name": "Shop"}),
                ("track", {"event": "Product Viewed", "properties": {"product_id": "p"}}),
            ),
            (("track", {"event": "Order Completed", "properties": {"order_id": "o-4", "revenue": 35}}),),
        ),
    ),
)
#: the population's mix: percent of the contacts (partitions) copied from each template; a merged visitor's
#: user is among the leads and customers (the issue is silent: 30% of contacts are visitors merged away)
MIX: dict[str, int] = {
    "visitor": 15,
    "merged visitor": 30,
    "user joined": 15,
    "lead": 15,
    "customer": 15,
    "repeat buyer": 10,
}


@dataclass(frozen=True)
class HistoryTemplate:
    name: str
    #: the id the template was tracked under (replaced by each copy's)
    tracked: str
    template: Template
    #: its stage history entries counted (moves, removals)
    entries: int


def _call(kind: str, body: dict[str, Any], n: int, serial: int) -> dict[str, Any]:
    body = dict(body)
    merge = body.pop("merge", False)
    anonymous = HISTORIES[n][0] in ("visitor", "merged visitor")
    who: dict[str, str] = {}
    if anonymous:
        who["anonymousId"] = template_id(n)
    if not anonymous or merge:
        who["userId"] = template_id(n)
    return {"type": kind, "messageId": f"h-{serial}", **who, **body}


def counted_entries(items: Sequence[Mapping[str, Any]]) -> int:
    """The stage history entries among a partition's items that the metrics back-fill counts."""
    from shared.adapters.stage_history_scan import COUNTED
    from shared.adapters.stage_store import HISTORY

    return sum(1 for i in items if i["sk"]["S"].startswith(HISTORY) and i.get("type", {}).get("S") in COUNTED)


def history_templates() -> list[HistoryTemplate]:
    """The template contacts tracked through the functions on moto (identity merges included); each
    partition as the system left it, with the history entries the back-fill counts."""
    from bench.hosted import hosted
    from bench.tracking import api_event
    from shared.adapters.tables import CONTACTS

    functions = ("tracking", "aggregation", "merge", "stage_transition")
    with (
        redirect_stdout(io.StringIO()),
        hosted(functions, start=START, streams=("aggregation", "merge", "stage_transition")) as running,
    ):
        serial = 0
        for day in range(max(len(days) for _, days in HISTORIES)):
            batch = []
            for n, (_, days) in enumerate(HISTORIES):
                for kind, body in days[day] if day < len(days) else ():
                    serial += 1
                    batch.append(_call(kind, body, n, serial))
            if batch:
                answer = running.invoke("tracking", api_event("/v1/batch", {"batch": batch}))
                assert answer["statusCode"] == 200, answer
            running.drain()
            running.clock.advance(DAY)
        found = []
        for n, (name, _) in enumerate(HISTORIES):
            anonymous = name in ("visitor", "merged visitor")
            kind = "anonymous_id" if anonymous else "user_id"
            items = running.partition(CONTACTS.id, f"C#{kind}:{template_id(n)}")
            found.append(
                HistoryTemplate(name, template_id(n), Template(False, tuple(items)), counted_entries(items))
            )
            if name == "merged visitor":
                joined = running.partition(CONTACTS.id, f"C#user_id:{template_id(n)}")
                found.append(
                    HistoryTemplate(
                        "user joined", template_id(n), Template(False, tuple(joined)), counted_entries(joined)
                    )
                )
        return found


def template_slots(mix: Mapping[str, int]) -> list[str]:
    """100 slots, each template's share of them, interleaved (contact ``i`` is copied from slot ``i % 100``)."""
    assert sum(mix.values()) == 100, mix
    slots: list[str] = []
    given = dict.fromkeys(mix, 0)
    for k in range(100):
        # the template furthest behind its share so far
        name = max(mix, key=lambda m: (mix[m] * (k + 1) / 100 - given[m], mix[m]))
        given[name] += 1
        slots.append(name)
    return slots


def expected_entries(found: Sequence[HistoryTemplate], mix: Mapping[str, int], count: int) -> int:
    """The history entries a population of ``count`` contacts in ``mix`` holds."""
    entries = {t.name: t.entries for t in found}
    slots = template_slots(mix)
    return sum(entries[slots[i % 100]] for i in range(count))


class HistoryPopulation(Population):
    """``count`` contacts copied from the history templates in ``mix`` (``Population``'s copying)."""

    def __init__(
        self, found: Sequence[HistoryTemplate], count: int, *, due_shards: int, mix: Mapping[str, int] = MIX
    ) -> None:
        super().__init__([t.template for t in found], 0, due_shards=due_shards)
        self.count = count
        self.history = list(found)
        self.tracked = [t.tracked for t in found]
        at = {t.name: n for n, t in enumerate(found)}
        slots = [at[name] for name in template_slots(mix)]
        self.template_of = [slots[i % 100] for i in range(count)]

    @property
    def entries(self) -> int:
        return sum(self.history[n].entries for n in self.template_of)


class HistoryScan(ContactsScan):
    """``ContactsScan`` with the stage history's filter and projection (``DynamoStageHistoryScan``'s):
    items under ``STAGE#`` of the counted types, ``output`` alone returned; billed for every item read."""

    def filtered(self, request: Mapping[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
        from shared.adapters.stage_history_scan import COUNTED
        from shared.adapters.stage_store import HISTORY

        assert request["FilterExpression"] == "begins_with(#sk, :history) AND #type IN (:moved, :removed)", (
            request
        )
        assert request["ProjectionExpression"] == "#output", request
        values = request["ExpressionAttributeValues"]
        assert (
            values[":history"]["S"] == HISTORY and (values[":moved"]["S"], values[":removed"]["S"]) == COUNTED
        )

        def keep(item: dict[str, Any]) -> dict[str, Any] | None:
            if item["sk"]["S"].startswith(HISTORY) and item.get("type", {}).get("S") in COUNTED:
                return {"output": item["output"]}
            return None

        return keep


def counted_metric_store() -> Any:
    """``MemoryMetricStore`` with ``DynamoMetricStore``'s requests counted: each ``record`` one
    ``TransactWriteItems`` (its marker's put and an update per counter row added), refused or not."""
    from tests.fakes import MemoryMetricStore

    @dataclass
    class CountedMetricStore(MemoryMetricStore):
        transactions: int = 0
        transaction_items: int = 0
        added: int = 0
        refused: int = 0

        def record(
            self, marker: str, adds: Any, claims: Any = (), customer: str | None = None, *, keep: bool = False
        ) -> bool:
            self.transactions += 1
            self.transaction_items += 1 + len(claims) + len(adds)
            counted = super().record(marker, adds, claims, customer, keep=keep)
            self.added += int(counted)
            self.refused += int(not counted)
            return counted

    return CountedMetricStore()


def _history_run(population: HistoryPopulation, store: Any, segments: int) -> dict[str, Any]:
    """One back-fill run over ``population`` into ``store``, every scan segment in turn through the use case."""
    from shared.adapters.stage_history_scan import DynamoStageHistoryScan
    from shared.usecases.backfills import MetricsBackfilling, backfill_metrics
    from shared.usecases.metrics import StageMetering
    from tests.fakes import CountingTelemetry

    scan = HistoryScan(population)
    telemetry = CountingTelemetry()
    deps = MetricsBackfilling(
        history=DynamoStageHistoryScan(scan, contacts_table="contacts"),
        metering=StageMetering(store=store, telemetry=telemetry),
        telemetry=telemetry,
    )
    before = (store.transactions, store.transaction_items, store.added, store.refused)
    answers, cpu = [], 0.0
    for segment in range(segments):
        started = time.process_time()
        answers.append(
            backfill_metrics({"time": START.isoformat(), "segment": segment, "segments": segments}, deps)
        )
        cpu += time.process_time() - started
    entries = sum(a["entries"] for a in answers)
    return {
        "contacts": population.count,
        "segments": segments,
        "entries": entries,
        "read": sum(a["read"] for a in answers),
        "counted": sum(a["counted"] for a in answers),
        "unreadable": sum(a["unreadable"] for a in answers),
        "scan": {
            "requests": scan.requests,
            "read": scan.read,
            "bytes": scan.bytes,
            "read_units": scan.read_units,
        },
        "transactions": store.transactions - before[0],
        "transaction_items": store.transaction_items - before[1],
        "added": store.added - before[2],
        "refused": store.refused - before[3],
        "cpu": cpu,
        "stand_in_seconds": scan.seconds,
        "cpu_per_1000": cpu / max(entries, 1) * 1000,
    }


def count_live(population: HistoryPopulation, store: Any, share: int = 2) -> int:
    """Every ``share``-th history entry counted as the metrics function counts it live (before the run,
    not measured): what a back-fill after a deployment finds counted."""
    from shared.adapters.stage_history_scan import history_entry
    from shared.usecases.metrics import StageMetering, count_stage_move
    from tests.fakes import CountingTelemetry

    deps = StageMetering(store=store, telemetry=CountingTelemetry())
    seen = counted = 0
    for i in range(population.count):
        for item in population.items(i):
            if not counted_entries([item]):
                continue
            entry = history_entry(item)
            assert entry is not None, item
            if seen % share == 0:
                counted += int(count_stage_move(entry, deps))
            seen += 1
    return counted


def backfill_in_process(found: Sequence[HistoryTemplate], count: int) -> dict[str, Any]:
    """The three runs at ``count`` contacts: first, second (all refused), and after half was counted live."""
    from infra.config import DeploymentConfig

    config = DeploymentConfig()
    segments = config.backfill_scan_segments
    population = HistoryPopulation(found, count, due_shards=config.due_shards)
    store = counted_metric_store()
    first = _history_run(population, store, segments)
    second = _history_run(population, store, segments)
    half = counted_metric_store()
    live = count_live(population, half)
    half.transactions = half.transaction_items = half.added = half.refused = 0
    after_live = _history_run(population, half, segments)
    return {
        "contacts": count,
        "segments": segments,
        "entries": population.entries,
        "first": first,
        "second": second,
        "counted_live": live,
        "after_live": after_live,
        "counter_rows": len(store.counters),
    }


def backfill_on_moto(found: Sequence[HistoryTemplate], count: int, runs: int = 2) -> list[dict[str, Any]]:
    """The metrics back-fill on moto: the population's items in the contacts table, the workflow's steps run
    by the local runner with ``backfill_metrics`` hosted as deployed, ``runs`` times (the second adds nothing)."""
    from bench.hosted import hosted
    from infra.config import DeploymentConfig
    from infra.local.workflow import LocalWorkflow
    from infra.wiring import METRICS_BACKFILL
    from shared.adapters import tables

    config = DeploymentConfig()
    segments = config.backfill_scan_segments
    population = HistoryPopulation(found, count, due_shards=config.due_shards)
    name = "backfill_metrics"
    results = []
    with hosted((name,), start=START) as running:
        running.put(tables.CONTACTS.id, [item for i in range(count) for item in population.items(i)])
        for _ in range(runs):
            answers: list[dict[str, Any]] = []

            def invoke(step: str, payload: dict[str, Any], answers: list[dict[str, Any]] = answers) -> Any:
                with redirect_stdout(io.StringIO()):  # its metrics (EMF lines), not wanted here
                    answer = running.invoke(step, json.loads(json.dumps(payload)))
                answers.append(answer)
                return answer

            with running.measuring():
                LocalWorkflow(METRICS_BACKFILL, segments, invoke).run(running.clock.now().isoformat())
                results.append(
                    {
                        "contacts": count,
                        "segments": segments,
                        "entries": sum(a["entries"] for a in answers),
                        "read": sum(a["read"] for a in answers),
                        "counted": sum(a["counted"] for a in answers),
                        "requests": running.requests.of(name),
                        "scanned": running.requests.scanned.get((name, "Scan"), 0),
                        "transaction_items": running.requests.entries.get((name, "TransactWriteItems"), 0),
                        "wru": running.meter.units("write", function=name),
                        "rru": running.meter.units("read", function=name),
                    }
                )
            running.clock.advance(timedelta(hours=1))
    return results


def run(
    contacts: int = CONTACTS, history: int = HISTORY_CONTACTS, moto_history: int = MOTO_HISTORY_CONTACTS
) -> dict[str, Any]:
    found = history_templates()
    return {
        "removal": removal_costs(contacts),
        "templates": [
            {
                "name": t.name,
                "entries": t.entries,
                "items": len(t.template.items),
                "bytes": sum(t.template.sizes),
            }
            for t in found
        ],
        "at_scale": backfill_in_process(found, history),
        "predicted": backfill_in_process(found, moto_history),
        "moto": backfill_on_moto(found, moto_history),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=1, default=str))
