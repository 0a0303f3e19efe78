"""Automations and timers (issue 10): the timer function reads only what is due; timers add no billed
write units per event.

1. ``due_reads``: 100,000 contacts on moto with the real table spec (the due index sharded as deployed),
   1% of them due now, plus series timers and runs a crash left pending. The timer function's due read
   and then the whole timer function are counted on the botocore client (requests, items returned) and
   billed by ``bench.capacity``'s meter.
2. ``write_units``: the billed-capacity benchmark (``bench.capacity``) run twice in one process, without
   automations and with the shipped examples (``examples/automations/*.json``) in force; the difference is
   what timers cost per event.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import capacity
from bench.harness import ROOT

EXAMPLES = ROOT / "examples" / "automations"
#: the examples the benchmark stores (their ids are read from the files)
EXAMPLE_FILES = ("win-back.json", "kids-program.json")
#: how long ago the template contacts were active: past the win-back's 90 days
LAPSED = timedelta(days=91)
BATCH_WRITE = 25


def example_automations() -> list[Any]:
    from shared.automations.model import Automation

    return [Automation.model_validate_json((EXAMPLES / name).read_text()) for name in EXAMPLE_FILES]


def store_examples(running: capacity.System) -> None:
    """The shipped examples, stored as the admin API stores them."""
    from shared.adapters.automation_store import DynamoAutomationStore

    store = DynamoAutomationStore(running.client, table=running.tables["config"])
    for automation in example_automations():
        store.save(automation, datetime.now(UTC), None)


# --- counting requests on the botocore client -------------------------------------------------------------


@dataclass
class Calls:
    """DynamoDB requests through one client, by (operation, index), with the items Query and Scan return."""

    requests: Counter[tuple[str, str | None]] = field(default_factory=Counter)
    #: items returned (Count) and read (ScannedCount, before any filter) by Query and Scan
    returned: Counter[tuple[str, str | None]] = field(default_factory=Counter)
    scanned: Counter[tuple[str, str | None]] = field(default_factory=Counter)
    #: responses that said there was more (LastEvaluatedKey): each costs one more request
    continued: Counter[tuple[str, str | None]] = field(default_factory=Counter)
    #: items written inside TransactWriteItems and BatchWriteItem
    batched_items: Counter[str] = field(default_factory=Counter)
    #: an index whose returned entries are kept (``watched``, as ``<contact>|<sort key>``)
    watch: str | None = None
    watched: set[str] = field(default_factory=set)

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-parameter-build.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    def clear(self) -> None:
        for counter in (self.requests, self.returned, self.scanned, self.continued, self.batched_items):
            counter.clear()

    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        key = (model.name, params.get("IndexName"))
        context["bench_call"] = key
        self.requests[key] += 1
        if model.name == "TransactWriteItems":
            self.batched_items[model.name] += len(params["TransactItems"])
        elif model.name == "BatchWriteItem":
            self.batched_items[model.name] += sum(len(r) for r in params["RequestItems"].values())

    def _after(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        key = context.get("bench_call", (model.name, None))
        if model.name in ("Query", "Scan"):
            self.returned[key] += parsed.get("Count", 0)
            self.scanned[key] += parsed.get("ScannedCount", 0)
            if parsed.get("LastEvaluatedKey"):
                self.continued[key] += 1
            if self.watch is not None and key[1] == self.watch:
                self.watched.update(
                    f"{item['pk']['S'].removeprefix('C#')}|{item['sk']['S']}"
                    for item in parsed.get("Items", [])
                )

    def count(self, *operations: str) -> int:
        return sum(n for (operation, _), n in self.requests.items() if operation in operations)


READS = ("GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems")
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")
SINGLE_WRITES = ("PutItem", "UpdateItem", "DeleteItem")


# --- 1. the timer function reads only what is due ----------------------------------------------------------


@contextmanager
def lapsed_system(clock: Any) -> Iterator[capacity.System]:
    """The billed system with the timer function hosted too, the examples in force, and the clock
    installed for every function (set ``LAPSED`` back: the template contacts are made in the past)."""
    from shared import clock as clocks

    clocks.install(clock)
    try:
        with capacity.system(also=("timers",)) as running:
            store_examples(running)
            yield running
    finally:
        clocks.install(None)


def _call(kind: str, user: str, at: datetime, n: int, **body: Any) -> dict[str, Any]:
    stamp = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"type": kind, "userId": user, "messageId": f"bench-{user}-{n}", "timestamp": stamp, **body}


def templates(running: capacity.System, at: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """A visitor's profile and a purchase's series timer as the system writes them: a contact who signed
    up and visited, and one who bought a product for a 6-year-old (the kids program arms a timer)."""
    from shared.adapters.automation_runs import TIMER

    batch = [
        _call("identify", "visitor", at, 1, traits={"email": "ann@example.com", "first_name": "Ann"}),
        _call("page", "visitor", at, 2, name="Home", properties={"url": "https://shop.example.com/"}),
        _call("identify", "buyer", at, 1, traits={"email": "bob@example.com", "first_name": "Bob"}),
        _call(
            "track",
            "buyer",
            at,
            2,
            event="Order Completed",
            properties={"order_id": "o-1", "revenue": 24.99, "products": [{"sku": "K-1", "child_age": 6}]},
        ),
    ]
    running.send(capacity.BATCH_PATH, {"batch": batch})
    running.drain()
    db, table = running.client, running.tables["contacts"]
    profile = db.get_item(TableName=table, Key={"pk": {"S": "C#user_id:visitor"}, "sk": {"S": "PROFILE"}})
    timers = db.query(
        TableName=table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :t)",
        ExpressionAttributeValues={":pk": {"S": "C#user_id:buyer"}, ":t": {"S": TIMER}},
    )["Items"]
    assert "Item" in profile and len(timers) == 1, (profile, timers)
    for pk, sk in (("visitor", "PROFILE"), ("buyer", "PROFILE"), ("buyer", timers[0]["sk"]["S"])):
        db.delete_item(
            TableName=table, Key={"pk": {"S": f"C#user_id:{pk}"}, "sk": {"S": sk}}
        )  # off the index
    return profile["Item"], timers[0]


def _setup_client() -> Any:
    import botocore.session
    from botocore.config import Config

    return botocore.session.get_session().create_client("dynamodb", config=Config(parameter_validation=False))


@dataclass
class Population:
    contacts: int
    due_profiles: set[str]
    due_timers: set[str]
    due_runs: set[str]
    timers: int
    runs: int
    seconds: float

    @property
    def due(self) -> int:
        return len(self.due_profiles) + len(self.due_timers) + len(self.due_runs)


def populate(
    running: capacity.System,
    profile: dict[str, Any],
    timer: dict[str, Any],
    now: datetime,
    *,
    contacts: int,
    due_share: float,
    timers: int,
    runs: int,
    shards: int,
) -> Population:
    """``contacts`` copies of the template profile written with BatchWriteItem, each with its own due
    attributes (``due_shard``, ``due_key``): ``due_share`` of them due within the last hour, the rest
    over the coming year; ``timers`` copies of the template timer on other contacts (the same share due);
    ``runs`` win-back runs recorded (``DynamoRunStore.start``) and left pending, as by a crash."""
    from infra.config import DeploymentConfig
    from shared.adapters.automation_runs import DynamoRunStore
    from shared.adapters.automation_store import DynamoAutomationStore
    from shared.adapters.contact_items import LAST, record_from_item
    from shared.adapters.stage_store import due_key, due_shard
    from shared.automations.engine import Occurrence, plan
    from shared.contacts.identity import ContactId
    from shared.scoring.decay import Decay
    from shared.tracking.timestamps import format_time

    started = time.perf_counter()
    shuffle = random.Random(10)
    db, table = running.client, running.tables["contacts"]
    due_count = round(contacts * due_share)
    due_profiles: set[str] = set()
    due_timers: set[str] = set()

    def due_attributes(contact: ContactId, due: datetime) -> dict[str, Any]:
        return {
            "dueAt": {"S": format_time(due)},
            "dueShard": {"S": due_shard(contact, shards)},
            "dueKey": {"S": due_key(contact, due)},
        }

    def later() -> datetime:
        return now + timedelta(hours=1) + timedelta(seconds=shuffle.uniform(0, 364 * 86400))

    def recently() -> datetime:
        return now - timedelta(seconds=shuffle.uniform(60, 3600))

    def contact(i: int) -> ContactId:
        return ContactId.user(f"c{i:06d}")

    # full copies of the template where the timer function reads the profile (contacts due, contacts with
    # a timer due or a pending run); a minimal profile (keys, contact id, due attributes) elsewhere
    timer_due = round(timers * due_share)
    with_runs = range(due_count + timers, due_count + timers + runs)
    minimal = {"sk": profile["sk"]}
    items: list[dict[str, Any]] = []
    for i in range(contacts):
        who = contact(i)
        full = i < due_count + timer_due or i in with_runs
        item = {**(profile if full else minimal), "pk": {"S": f"C#{who}"}, "contactId": {"S": str(who)}}
        if i < due_count:  # lapsed: 90 days since the last visit, due within the last hour
            due = recently()
            item[LAST + "visit"] = {"S": format_time(due - timedelta(days=90))}
            due_profiles.add(str(who))
        else:  # due later (decay, the next lapse...) over the coming year
            due = later()
        if full:
            item["userId"] = {"S": who.value}
            if i >= due_count:  # has a timer or a pending run; visited lately
                item[LAST + "visit"] = {"S": format_time(now - timedelta(days=shuffle.uniform(0, 89)))}
        item.update(due_attributes(who, due))
        items.append(item)
    for j in range(timers):  # series timers on contacts that are not due themselves
        who = contact(due_count + j)
        due = recently() if j < timer_due else later()
        item = {**timer, "pk": {"S": f"C#{who}"}, **due_attributes(who, due)}
        if j < timer_due:
            due_timers.add(f"{who}|{item['sk']['S']}")
        items.append(item)
    writer = _setup_client()  # the setup's own client: no parameter validation of 100,000 items
    for start in range(0, len(items), BATCH_WRITE):
        request = {table: [{"PutRequest": {"Item": item}} for item in items[start : start + BATCH_WRITE]]}
        while request:
            request = writer.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}

    # runs a crash left pending: recorded through the run store, never marked done
    config = DeploymentConfig()
    winback = DynamoAutomationStore(db, table=running.tables["config"]).book().get("win-back")
    assert winback is not None
    store = DynamoRunStore(db, contacts_table=table, due_shards=shards)
    decay = Decay(half_life=timedelta(days=config.score_half_life_days))
    at = now - timedelta(minutes=10)
    due_runs: set[str] = set()
    for k in range(runs):
        who = contact(due_count + timers + k)
        last = format_time(at - timedelta(days=90))
        record = record_from_item({**profile, "pk": {"S": f"C#{who}"}, "contactId": {"S": str(who)}})
        run = plan(winback, record, Occurrence(winback.id, f"lapse@{last}", {"last": last}), decay, at)
        assert store.start(who, run, now=at) == "started"
        due_runs.add(f"{who}|RUN#{run.key}")
    return Population(
        contacts, due_profiles, due_timers, due_runs, timers, runs, time.perf_counter() - started
    )


def still_due(meter: capacity.Meter, now: datetime) -> set[str]:
    """The contacts table's items on the due index whose time has come, read from moto's backend (not a
    request: nothing is counted or billed), as ``<contact>|<sort key>``."""
    upto = now.isoformat(timespec="milliseconds").replace("+00:00", "Z") + "~"
    return {
        f"{item['pk']['S'].removeprefix('C#')}|{item['sk']['S']}"
        for item in meter.items("contacts").values()
        if "dueShard" in item and "dueKey" in item and item["dueKey"]["S"] <= upto
    }


def due_reads(
    contacts: int = 100_000, due_share: float = 0.01, timers: int = 2_000, runs: int = 20
) -> dict[str, Any]:
    """The timer function on 100,000 contacts, 1% of them due: the items its due read returns ÷ the
    entries due, its requests, and what the whole function reads and writes per due entry."""
    import io
    from contextlib import redirect_stdout

    from infra.config import DeploymentConfig
    from infra.local.gateway import LambdaContext, load_handler
    from infra.wiring import function
    from shared.adapters import aws
    from shared.adapters.stage_store import BY_DUE
    from shared.clock import ControlledClock

    shards = DeploymentConfig().due_shards
    now = datetime.now(UTC)
    clock = ControlledClock(start=now - LAPSED)
    with lapsed_system(clock) as running:
        profile, timer = templates(running, clock.now())
        clock.set(now)
        population = populate(
            running,
            profile,
            timer,
            now,
            contacts=contacts,
            due_share=due_share,
            timers=timers,
            runs=runs,
            shards=shards,
        )
        print(
            f"automations: {population.contacts:,} contacts, {population.timers:,} timers and "
            f"{population.runs} pending runs written in {population.seconds:.1f} s",
            flush=True,
        )
        expected = (
            {f"{c}|PROFILE" for c in population.due_profiles} | population.due_timers | population.due_runs
        )
        assert still_due(running.meter, clock.now()) == expected, "the setup wrote other entries due"

        # the timer function, as the hourly schedule invokes it, through the counted client
        calls = Calls(watch=BY_DUE.name)
        calls.attach(running.client)
        aws.use("dynamodb", running.client)
        handler = load_handler(function("timers").handler)
        meter = running.meter
        meter.clear()
        started = time.perf_counter()
        with redirect_stdout(io.StringIO()):  # its metrics (EMF lines), not wanted here
            result = handler(
                {},
                LambdaContext(
                    "lifecycle-timers", "bench", timeout_seconds=function("timers").timeout_seconds
                ),
            )
        seconds = time.perf_counter() - started
        index = ("Query", BY_DUE.name)
        left = still_due(meter, clock.now())
    read = {
        "queries": calls.requests[index],
        "continued": calls.continued[index],
        "returned": calls.returned[index],
        "scanned": calls.scanned[index],
        "rru": meter.units("read", operation="Query", index=BY_DUE.name),
    }
    ratio = read["scanned"] / population.due
    assert calls.watched == expected, "the due read must return exactly the entries that are due"
    assert ratio <= 1.1, f"the due read read {ratio:.2f} index items per due entry"
    assert calls.count("Scan") == 0, "the timer function scanned"
    assert read["queries"] == shards + read["continued"], read
    assert result["done"] == population.due, result
    other = {key: n for key, n in calls.requests.items() if key != index}
    return {
        "contacts": population.contacts,
        "due_profiles": len(population.due_profiles),
        "timers": population.timers,
        "due_timers": len(population.due_timers),
        "runs": population.runs,
        "due": population.due,
        "shards": shards,
        "setup_seconds": population.seconds,
        "read": read,
        "ratio": ratio,
        "scans": calls.count("Scan"),
        "done": result["done"],
        "seconds": seconds,
        "requests": {
            f"{operation} ({name} index)" if name else operation: n
            for (operation, name), n in sorted(other.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
        },
        "reads": sum(n for (operation, _), n in other.items() if operation in READS),
        "writes": sum(n for (operation, _), n in other.items() if operation in WRITES),
        "written_items": sum(n for (operation, _), n in other.items() if operation in SINGLE_WRITES)
        + sum(calls.batched_items.values()),
        "wru": meter.units("write"),
        "wru_by_dues": meter.units("write", index=BY_DUE.name),
        "wru_by_operation": meter.by("write", "operation", "transactional", "table", "index"),
        "rru": meter.units("read"),
        "left_due": len(left),
    }


# --- 2. timers add no billed write units per event ----------------------------------------------------------

PURCHASES = "purchases of a product for a child (each starts the kids program)"


def purchases(
    running: capacity.System, count: int = 20
) -> list[tuple[str, list[tuple[str, dict[str, Any]]], int]]:
    """A case the examples act on: returning contacts each buy a product for a 6-year-old."""
    now = datetime.now(UTC)
    batch = [
        _call(
            "track",
            f"user-{i}",
            now,
            1000 + i,
            event="Order Completed",
            properties={"order_id": f"o-{i}", "revenue": 24.99, "products": [{"sku": "K-1", "child_age": 6}]},
        )
        for i in range(count)
    ]
    return [(PURCHASES, [(capacity.BATCH_PATH, {"batch": batch})], count)]


def write_units() -> dict[str, list[dict[str, Any]]]:
    """The billed-capacity cases, and purchases, without automations and with the examples in force."""
    plain = capacity.capacity_per_event(more=purchases)
    automated = capacity.capacity_per_event(prepare=store_examples, more=purchases)
    return {"without": plain, "with": automated}


def differences(runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    from shared.adapters.stage_store import BY_DUE
    from shared.adapters.tables import CONTACTS

    place = (CONTACTS.id, BY_DUE.name)
    rows = []
    for without, with_ in zip(runs["without"], runs["with"], strict=True):
        assert without["case"] == with_["case"] and without["events"] == with_["events"]
        events = with_["events"]
        rows.append(
            {
                "case": with_["case"],
                "events": events,
                "without": without["wru"] / events,
                "with": with_["wru"] / events,
                "extra": (with_["wru"] - without["wru"]) / events,
                "due_without": without["wru_by_place"].get(place, 0.0) / events,
                "due_with": with_["wru_by_place"].get(place, 0.0) / events,
                "rru_extra": (with_["rru_total"] - without["rru_total"]) / events,
                "due_entries_stored": with_["stored"].get(place, 0) > 0,
            }
        )
    return rows


def _share(value: float) -> str:
    return f"{value:.2f}" if value >= 0.005 or value == 0 else "< 0.01"


def section(where: str, due: dict[str, Any], runs: dict[str, list[dict[str, Any]]]) -> str:
    """The ``automations`` section of BENCHMARKS.md."""
    from shared.adapters.stage_store import BY_DUE

    n = due["due"]
    read = due["read"]
    requests = "\n".join(
        f"| {name} | {count:,} | {_share(count / n)} |" for name, count in due["requests"].items()
    )
    places = "\n".join(
        f"| {operation}{' in a transaction' if transactional else ''} | `{table}`"
        + (f" index `{index}`" if index else "")
        + f" | {units / n:.2f} |"
        for (operation, transactional, table, index), units in sorted(
            due["wru_by_operation"].items(), key=lambda kv: (kv[0][2], kv[0][3] or "", kv[0][0])
        )
    )
    rows = differences(runs)
    ordinary = [r for r in rows if r["case"] != PURCHASES]
    purchase = next(r for r in rows if r["case"] == PURCHASES)
    table = "\n".join(
        f"| {r['case']} | {r['events']} | {r['without']:.2f} | {r['with']:.2f} | **{r['extra']:+.2f}** | "
        f"{r['due_without']:.2f} | {r['due_with']:.2f} | {r['rru_extra']:+.2f} |"
        for r in rows
    )
    worst = max(abs(r["extra"]) for r in ordinary)
    return f"""
Measured by `make bench` (or `python -m bench automations`) on {where}.

**The timer function reads only what is due.** On moto, the contacts table as deployed (the `{BY_DUE.name}`
index over {due["shards"]} shards): {due["contacts"]:,} contacts, {due["due_profiles"]:,} of them due now
(90 days since their last visit: the win-back example is due) and the rest due over the coming year
(minimal profiles: keys and due attributes, written with `BatchWriteItem` in {due["setup_seconds"]:.0f} s);
{due["timers"]:,} kids-program timers on other contacts, {due["due_timers"]} of them due; {due["runs"]} win-back
runs a crash left pending. Both examples in force. The timer function invoked as its hourly schedule
invokes it, with the real adapters; every DynamoDB request counted on the botocore client:

| the due read | count |
|---|---|
| entries due (profiles, timers, runs) | {n:,} |
| index items returned (= read: no filter) | {read["scanned"]:,}, exactly the entries due |
| **items read ÷ entries due** | **{due["ratio"]:.2f}** (target ≤ 1.1) |
| Query calls on `{BY_DUE.name}` | {read["queries"]} ({due["shards"]} shards, {read["continued"]} further pages) |
| Scan calls | **{due["scans"]}** |
| read units billed for it | {read["rru"]:.1f} RRU (keys only, eventually consistent) |

**The whole timer function on those {n:,} entries** (each win-back fired or held out, each timer's series
moved on, each pending run finished, each due profile re-evaluated for its stage): {due["done"]:,} done,
{due["reads"] / n:.2f} reads and {due["writes"] / n:.2f} write requests ({due["written_items"] / n:.2f} items written)
per due entry besides the due read; {due["wru"] / n:.1f} WRU and {due["rru"] / n:.1f} RRU billed per due entry,
{due["wru_by_dues"] / n:.1f} WRU of it on the `{BY_DUE.name}` index. Entries still due afterwards:
**{due["left_due"]}** (each was consumed, moved on, or finished by the function's own writes).
It took {due["seconds"]:.0f} s on moto (information only: moto walks the whole table for an index query and
serialises items slowly; not a prediction for DynamoDB).

| request (besides the due read) | count | per due entry |
|---|---|---|
{requests}

| write units billed, per due entry | table or index | WRU |
|---|---|---|
{places}

**Timers add no billed write units per event.** The billed-capacity benchmark (`bench/capacity.py`, its
cases and its meter, which bills a global index's entry writes: one for an item entering or leaving it,
two for a changed key) run twice in one process: without automations, and with the win-back and
kids-program examples stored through `DynamoAutomationStore`. The win-back watches visits: each visit
moves `last:visit`, one attribute of the profile update that already happens; the contact's due time
moves only when it passes (lazily), so a visit does not rewrite it. WRU per event:

| case | events | no automations | examples in force | difference | `{BY_DUE.name}` WRU, none | `{BY_DUE.name}` WRU, in force | RRU difference |
|---|---|---|---|---|---|---|---|
{table}

Ordinary events (visits, product views, sign-ins): at most **{worst:.2f}** extra WRU per event. Automations
cost where they act: a purchase that starts the kids program arms its yearly timer (one item on the
`{BY_DUE.name}` index), {purchase["extra"]:+.2f} WRU per purchase.
"""
