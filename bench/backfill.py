"""Issue 13: the contacts back-fill of a new segment at 100,000 contacts, and the same on moto at 2,000.

**The population.** A few template contacts are tracked on moto through the functions as deployed
(``templates``: visitors, engaged leads, customers, some tagged ``kids``), with nine segments stored (one on
the last visit, eight filters of several conditions), and their streams drained: each template's partition
of the contacts table (its profile with stage, quarter, segments and due time, its stage history, its
memberships) is then what the system wrote. ``Population`` copies the templates to any number of contacts
(ids of the template ids' length, so every item keeps its size but for a digit of the member shard; the
attributes derived from the contact, its member and due shards, recomputed), 10% of them from the tagged templates. The back-fill is the one a
new segment ``{"tag": "kids"}`` starts: 10% of the contacts enter it, the others do not change.

1. **In-process, at 100,000** (``in_process``): the back-fill's use case (``backfill_contacts``) for each
   of the workflow's 32 scan segments, reading through the real adapter (``DynamoProfileScan``) from
   ``ContactsScan``: DynamoDB's parallel Scan of the contacts table over the population, paged (1 MB of
   whole items, filter after the read) and billed by DynamoDB's rules. The stage function's use case
   (``Engagement``) evaluates each contact, with the fakes of ``tests.fakes`` (the stage store, the
   publisher), its requests counted as the adapters would send them (``CountedStages``,
   ``CountedPublisher``). CPU seconds of the use case per 1,000 contacts, measured.
2. **On moto, at 2,000** (``on_moto``): the same population's items in the contacts table, the segment
   stored, the workflow run by the local workflow runner with ``backfill_contacts`` hosted as deployed;
   every request counted on its clients and billed by the meter. Part 1's machinery on the same 2,000
   says what the fakes predict.
"""

from __future__ import annotations

import io
import json
import math
import time
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

#: when the template contacts start (the clock every function reads)
START = datetime(2026, 10, 5, 9, tzinfo=UTC)
CONTACTS = 100_000
MOTO_CONTACTS = 2_000
KIDS_SHARE = 10  # percent
NEW_SEGMENT = "kids"
PAGE_BYTES = 1024 * 1024
READ_BLOCK = 4096
#: user ids of the templates and of their copies: the same length, so items keep their size
ID_DIGITS = 11


def template_id(n: int) -> str:
    return f"t{n:0{ID_DIGITS}d}"


def copy_id(n: int) -> str:
    return f"c{n:0{ID_DIGITS}d}"


def old_segments() -> list[Any]:
    """The segments stored before the new one: the recent visitors and eight filters (the bench's
    membership part's, without the tag's)."""
    from bench.membership import KIDS, segments

    return [s for s in segments(10) if s.id != KIDS]


def new_segment() -> Any:
    from shared.segments.model import Segment

    return Segment.model_validate({"id": NEW_SEGMENT, "name": "Parents", "filter": {"tag": "kids"}})


# --- the templates, tracked on moto -------------------------------------------------------------------------

#: (tagged kids, the days' calls): each day a list of (type, body) calls
TEMPLATES: tuple[tuple[bool, tuple[tuple[tuple[str, dict[str, Any]], ...], ...]], ...] = (
    (
        False,
        ((("identify", {"traits": {"email": "a@example.com", "plan": "free"}}), ("page", {"name": "Home"})),),
    ),
    (
        False,
        (
            (("identify", {"traits": {"email": "b@example.com", "plan": "pro", "company": {"size": 20}}}),),
            (("page", {"name": "Pricing"}), ("page", {"name": "Docs"})),
            (("track", {"event": "Product Viewed", "properties": {"product_id": "p-1", "price": 24.99}}),),
            (("page", {"name": "Pricing"}), ("track", {"event": "Signed Up"})),
        ),
    ),
    (
        False,
        (
            (("identify", {"traits": {"email": "c@example.com", "first_name": "Cy"}}),),
            (("track", {"event": "Order Completed", "properties": {"order_id": "o-1", "revenue": 49.98}}),),
        ),
    ),
    (
        False,
        (
            (
                ("identify", {"traits": {"email": "d@example.com", "plan": "team"}}),
                ("page", {"name": "Home"}),
            ),
            (("track", {"event": "Order Completed", "properties": {"order_id": "o-2", "revenue": 19.5}}),),
            (("page", {"name": "Shop"}),),
            (("track", {"event": "Order Completed", "properties": {"order_id": "o-3", "revenue": 120}}),),
        ),
    ),
    (
        True,
        (
            (
                ("identify", {"traits": {"email": "k@example.com", "tags": ["kids"]}}),
                ("page", {"name": "Toys"}),
            ),
            (("page", {"name": "Toys"}),),
        ),
    ),
    (
        True,
        (
            (("identify", {"traits": {"email": "m@example.com", "plan": "free", "tags": ["kids", "golf"]}}),),
            (("track", {"event": "Order Completed", "properties": {"order_id": "o-4", "revenue": 35}}),),
        ),
    ),
)
#: days between a template's days of calls
DAY = timedelta(days=3)


@dataclass(frozen=True)
class Template:
    kids: bool
    #: the partition's items (wire format), in key order
    items: tuple[dict[str, Any], ...]

    @property
    def sizes(self) -> tuple[int, ...]:
        from bench.capacity import item_size

        return tuple(item_size(i) for i in self.items)


def templates() -> tuple[list[Template], datetime]:
    """The template contacts tracked on moto with the old segments stored, their partitions as the system
    left them, and the moment after the last change (when the back-fill runs)."""
    from bench.hosted import hosted
    from bench.tracking import api_event
    from shared.adapters.segment_store import DynamoSegmentStore
    from shared.adapters.tables import CONFIG, CONTACTS

    functions = ("tracking", "aggregation", "stage_transition")
    with (
        redirect_stdout(io.StringIO()),  # the functions' metrics (EMF lines), not wanted here
        hosted(functions, start=START, streams=("aggregation", "stage_transition")) as running,
    ):
        store = DynamoSegmentStore(running.db, table=running.names[CONFIG.id], cache_seconds=0)
        for segment in old_segments():
            store.save(segment, START, None)
        days = max(len(days) for _, days in TEMPLATES)
        serial = 0
        for day in range(days):
            batch = []
            for n, (_, calls) in enumerate(TEMPLATES):
                for kind, body in calls[day] if day < len(calls) else ():
                    serial += 1
                    batch.append({"type": kind, "userId": template_id(n), "messageId": f"m-{serial}", **body})
            answer = running.invoke("tracking", api_event("/v1/batch", {"batch": batch}))
            assert answer["statusCode"] == 200, answer
            running.drain()
            running.clock.advance(DAY)
        found = []
        for n, (kids, _) in enumerate(TEMPLATES):
            items = running.partition(CONTACTS.id, f"C#user_id:{template_id(n)}")
            assert any(i["sk"]["S"] == "PROFILE" for i in items), n
            found.append(Template(kids, tuple(items)))
        return found, running.clock.now()


# --- the population: the templates copied -------------------------------------------------------------------


class Population:
    """``count`` contacts, each a copy of a template (1 in ``100 / KIDS_SHARE`` of a tagged one), its items
    made on demand (``items``): the template's sizes, but for the member shard's digits (0 to 15)."""

    def __init__(self, found: Sequence[Template], count: int, *, due_shards: int) -> None:
        self.templates = list(found)
        self.count = count
        self.due_shards = due_shards
        kids = [n for n, t in enumerate(found) if t.kids]
        others = [n for n, t in enumerate(found) if not t.kids]
        every = 100 // KIDS_SHARE
        self.template_of = [
            kids[(i // every) % len(kids)] if i % every == 0 else others[i % len(others)]
            for i in range(count)
        ]
        self.texts = [json.dumps(t.items) for t in found]
        #: the id each template was tracked under, replaced by each copy's
        self.tracked = [template_id(n) for n in range(len(found))]

    @property
    def kids(self) -> int:
        return sum(1 for n in self.template_of if self.templates[n].kids)

    def contact(self, i: int) -> str:
        return f"user_id:{copy_id(i)}"

    def items(self, i: int) -> list[dict[str, Any]]:
        """Contact ``i``'s partition: its template's items with the template's id replaced, and what
        derives from the contact id (its member shard, its due shard and key) recomputed."""
        from shared.adapters.segment_members import member_shard
        from shared.adapters.stage_store import due_key, due_shard
        from shared.contacts.identity import ContactId
        from shared.tracking.timestamps import parse_time

        n = self.template_of[i]
        items = json.loads(self.texts[n].replace(self.tracked[n], copy_id(i)))
        contact = ContactId.user(copy_id(i))
        for item in items:
            if "segmentShard" in item:
                segment = item["segmentShard"]["S"].rsplit("#", 1)[0]
                item["segmentShard"] = {"S": f"{segment}#{member_shard(contact)}"}
            if "dueShard" in item:
                item["dueShard"] = {"S": due_shard(contact, self.due_shards)}
                item["dueKey"] = {"S": due_key(contact, parse_time(item["dueAt"]["S"]))}
        return items


class ContactsScan:
    """DynamoDB's parallel Scan of the contacts table over a ``Population``: a client stand-in for the real
    adapter (``shared.adapters.contact_scan.DynamoProfileScan``).

    A scan segment holds the contacts whose partition key hashes to it (CRC-32 here), each partition's
    items together, in key order. A page reads whole items until the next would pass ``page_bytes`` (1 MB;
    ``Limit`` items at most), then applies the filter (``sk = PROFILE``, the adapter's): ``ScannedCount`` the
    items read, ``Count`` those kept. Billed: read units of the bytes read, eventually consistent, at least
    half a unit a request. Counted: ``requests``, ``read``, ``bytes``, ``read_units``, ``seconds`` (building
    the pages: in Lambda, botocore's parsing)."""

    def __init__(self, population: Population, *, page_bytes: int = PAGE_BYTES) -> None:
        self.population = population
        self._page_bytes = page_bytes
        self._segments: dict[int, list[list[int]]] = {}
        self._held: tuple[int, list[dict[str, Any]], list[int]] | None = None
        self.requests = 0
        self.read = 0
        self.bytes = 0
        self.read_units = 0.0
        self.seconds = 0.0

    def _contacts(self, segment: int, segments: int) -> list[int]:
        if segments not in self._segments:
            found: list[list[int]] = [[] for _ in range(segments)]
            for i in range(self.population.count):
                pk = f"C#{self.population.contact(i)}"
                found[zlib.crc32(pk.encode()) % segments].append(i)
            self._segments = {segments: found}
        return self._segments[segments][segment]

    def _partition(self, i: int) -> tuple[list[dict[str, Any]], list[int]]:
        """Contact ``i``'s items and their sizes (the last contact's kept: a page reads a partition in turn)."""
        from bench.capacity import item_size

        if self._held is None or self._held[0] != i:
            items = self.population.items(i)
            self._held = (i, items, [item_size(item) for item in items])
        return self._held[1], self._held[2]

    def filtered(self, request: Mapping[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
        """The request's filter (and projection): what a page returns of an item it read, if anything."""
        from shared.adapters.contact_items import PROFILE

        values = request["ExpressionAttributeValues"]
        assert values[":profile"] == {"S": PROFILE}, request
        kept = {value["S"] for value in values.values()}  # issue 14: and the SEARCH items
        return lambda item: item if item["sk"]["S"] in kept else None

    def scan(self, **request: Any) -> dict[str, Any]:
        started = time.process_time()
        keep = self.filtered(request)
        contacts = self._contacts(request["Segment"], request["TotalSegments"])
        position, item_at = 0, 0
        if "ExclusiveStartKey" in request:
            position, item_at = (int(x) for x in request["ExclusiveStartKey"]["position"]["S"].split(":"))
        limit = int(request.get("Limit") or 0) or None
        kept: list[dict[str, Any]] = []
        read = size = 0
        last: tuple[int, int] | None = None
        more = False
        while position < len(contacts):
            items, sizes = self._partition(contacts[position])
            if item_at >= len(items):
                position, item_at = position + 1, 0
                continue
            if (read and size + sizes[item_at] > self._page_bytes) or (limit and read == limit):
                more = True
                break
            returned = keep(items[item_at])
            if returned is not None:
                kept.append(returned)
            read += 1
            size += sizes[item_at]
            last = (position, item_at)
            item_at += 1
        self.requests += 1
        self.read += read
        self.bytes += size
        self.read_units += max(1, math.ceil(size / READ_BLOCK)) * 0.5
        answer: dict[str, Any] = {"Items": kept, "Count": len(kept), "ScannedCount": read}
        if more and last is not None:
            answer["LastEvaluatedKey"] = {"position": {"S": f"{last[0]}:{last[1] + 1}"}}
        self.seconds += time.process_time() - started
        return answer


# --- in-process: the use case with counted fakes ----------------------------------------------------------------


def memory_profile(record: Any) -> Any:
    """A ``ContactRecord`` as ``tests.fakes.MemoryProfile`` holds it (``MemoryProfile.record`` gives it back)."""
    from tests.fakes import MemoryProfile

    data = dict(record)
    own = {
        "contact_id",
        "user_id",
        "anonymous_ids",
        "traits",
        "tags",
        "counts",
        "groups",
        "event_count",
        "first_seen_at",
        "last_seen_at",
        "revenue_total",
        "last_purchase_at",
        "last_times",
        "merged_into",
        "merged_at",
        "scores",
        "rule_uses",
        "entered",
        "consent",
        "recent_products",
    }
    return MemoryProfile(
        traits=dict(record.traits),
        tags=dict(record.tags),
        counts=dict(record.counts),
        groups=set(record.groups),
        anonymous_ids=set(record.anonymous_ids),
        event_count=record.event_count,
        revenue=record.revenue_total,
        first_seen=record.first_seen_at,
        last_seen=record.last_seen_at,
        last_purchase=record.last_purchase_at,
        last_times=dict(record.last_times),
        totals={d: s.total for d, s in record.scores.items()},
        sums={
            (d, memory, bucket): value
            for d, s in record.scores.items()
            for memory, buckets in s.sums.items()
            for bucket, value in buckets.items()
        },
        rule_uses=dict(record.rule_uses),
        merged_into=record.merged_into,
        merged_at=record.merged_at,
        entered=dict(record.entered),
        consent={c: dict(r) for c, r in record.consent.items()},
        recent_products=tuple(record.recent_products),
        stage={k: v for k, v in data.items() if k not in own},
    )


def counted_stages(contacts: Any) -> Any:
    """``MemoryStageStore`` with the requests ``DynamoStageStore`` sends for each call counted: a profile
    read is a ``GetItem``, a write one ``TransactWriteItems`` (its items: the profile, the announcements,
    the memberships), the pending announcements a ``GetItem`` of the profile's list and one per listed entry,
    marking them one ``TransactWriteItems`` per 99."""
    from tests.fakes import MemoryStageStore

    @dataclass
    class CountedStages(MemoryStageStore):
        requests: Counter[str] = field(default_factory=Counter)
        transaction_items: int = 0

        def profile(self, contact: Any) -> Any:
            self.requests["GetItem"] += 1
            return super().profile(contact)

        def apply(
            self, contact: Any, record: Any, evaluation: Any, outputs: Any, owner: Any, now: Any
        ) -> bool:
            self.requests["TransactWriteItems"] += 1
            memberships = sum(1 for m in evaluation.moves if m.kind == "segment")
            self.transaction_items += 1 + len(outputs) + memberships
            return super().apply(contact, record, evaluation, outputs, owner, now)

        def remove(self, contact: Any, record: Any, removal: Any) -> bool:
            self.requests["TransactWriteItems"] += 1
            self.transaction_items += 2  # the profile, the removal
            return super().remove(contact, record, removal)

        def pending(self, contact: Any) -> Any:
            # the profile's list of pending keys, then each listed entry by key
            self.requests["GetItem"] += 1 + len(self.pending_keys.get(contact, ()))
            return super().pending(contact)

        def mark_delivered(self, contact: Any, deliveries: Any) -> None:
            self.requests["TransactWriteItems"] += math.ceil(len(deliveries) / 99)
            self.transaction_items += len(deliveries) + (1 if any(d.complete for d in deliveries) else 0)
            super().mark_delivered(contact, deliveries)

    return CountedStages(contacts)


def counted_publisher() -> Any:
    """``MemoryPublisher`` with ``AwsPublisher``'s ``PutEvents`` counted (10 bus entries a request)."""
    from tests.fakes import EVENTS_CHANNEL, MemoryPublisher

    @dataclass
    class CountedPublisher(MemoryPublisher):
        put_events: int = 0
        entries: int = 0

        def publish(self, pending: Any) -> Any:
            bus = sum(
                1
                for p in pending
                if EVENTS_CHANNEL in self.channels(p.output) and EVENTS_CHANNEL not in p.done
            )
            self.put_events += math.ceil(bus / 10)
            self.entries += bus
            return super().publish(pending)

    return CountedPublisher()


def in_process(
    found: Sequence[Template], count: int, at: datetime, *, segments: int | None = None
) -> dict[str, Any]:
    """The back-fill of the new segment over ``count`` contacts copied from the templates, every scan
    segment in turn through the use case: what it read, wrote and announced, and its CPU."""
    from infra.config import DeploymentConfig
    from shared.adapters.contact_scan import DynamoProfileScan
    from shared.clock import FixedClock
    from shared.contacts.identity import ContactId
    from shared.scoring.decay import Decay
    from shared.usecases.backfills import ContactsBackfilling, backfill_contacts
    from shared.usecases.engagement import Engagement
    from tests.fakes import (
        CountingTelemetry,
        MemoryContactStore,
        MemoryEngagementConfig,
        MemorySegmentRepository,
    )

    config = DeploymentConfig()
    segments = segments or config.backfill_scan_segments
    prepared = time.perf_counter()
    population = Population(found, count, due_shards=config.due_shards)
    contacts = MemoryContactStore()
    from shared.adapters.contact_items import PROFILE, record_from_item

    for i in range(count):
        (profile,) = [item for item in population.items(i) if item["sk"]["S"] == PROFILE]
        contacts.profiles[ContactId.user(copy_id(i))] = memory_profile(record_from_item(profile))
    prepared = time.perf_counter() - prepared
    book = MemorySegmentRepository()
    for segment in [*old_segments(), new_segment()]:
        book.save(segment, START, None)
    stages, publisher = counted_stages(contacts), counted_publisher()
    funnel = MemoryEngagementConfig()
    engagement = Engagement(
        clock=FixedClock(at),
        funnels=funnel,
        decay=Decay(half_life=timedelta(days=config.score_half_life_days)),
        stages=stages,
        router=funnel,
        publisher=publisher,
        telemetry=CountingTelemetry(),
        segments=book,
    )
    scan = ContactsScan(population)
    deps = ContactsBackfilling(
        profiles=DynamoProfileScan(scan, contacts_table="contacts"),
        engagement=engagement,
        telemetry=CountingTelemetry(),
    )
    answers, cpu = [], []
    for segment in range(segments):
        started = time.process_time()
        answers.append(
            backfill_contacts({"time": at.isoformat(), "segment": segment, "segments": segments}, deps)
        )
        cpu.append(time.process_time() - started)
    members = stages.members.members.get(NEW_SEGMENT, set())
    return {
        "contacts": count,
        "segments": segments,
        "kids": population.kids,
        "evaluated": sum(a["contacts"] for a in answers),
        "read": sum(a["read"] for a in answers),
        "changed": sum(a["changed"] for a in answers),
        "entered": len(members),
        "scan": {
            "requests": scan.requests,
            "read": scan.read,
            "bytes": scan.bytes,
            "read_units": scan.read_units,
            "seconds": scan.seconds,
        },
        "requests": {
            "Scan": scan.requests,
            **dict(stages.requests),
            "events.PutEvents": publisher.put_events,
        },
        "transaction_items": stages.transaction_items,
        "announced": publisher.entries,
        "cpu": sum(cpu),
        "cpu_by_segment": cpu,
        "cpu_per_1000": sum(cpu) / count * 1000,
        "prepared_seconds": prepared,
        "segment_contacts": [a["contacts"] for a in answers],
    }


# --- on moto: the workflow with the step function hosted as deployed ---------------------------------------------


def on_moto(found: Sequence[Template], count: int, at: datetime) -> dict[str, Any]:
    """The contacts back-fill on moto: the population's items in the table, the new segment stored, the
    workflow's steps run by the local runner with ``backfill_contacts`` hosted as deployed."""
    from bench.hosted import hosted
    from infra.config import DeploymentConfig
    from infra.local.workflow import LocalWorkflow
    from infra.wiring import CONTACTS_BACKFILL
    from shared.adapters import tables
    from shared.adapters.segment_store import DynamoSegmentStore

    config = DeploymentConfig()
    segments = config.backfill_scan_segments
    population = Population(found, count, due_shards=config.due_shards)
    with hosted(("backfill_contacts",), start=at) as running:
        running.put(tables.CONTACTS.id, [item for i in range(count) for item in population.items(i)])
        store = DynamoSegmentStore(running.db, table=running.names[tables.CONFIG.id], cache_seconds=0)
        for segment in [*old_segments(), new_segment()]:
            store.save(segment, START, None)
        answers: list[dict[str, Any]] = []

        def invoke(name: str, payload: dict[str, Any]) -> Any:
            with redirect_stdout(io.StringIO()):  # its metrics (EMF lines), not wanted here
                answer = running.invoke(name, json.loads(json.dumps(payload)))
            answers.append(answer)
            return answer

        with running.measuring():
            cpu, wall = time.process_time(), time.perf_counter()
            LocalWorkflow(CONTACTS_BACKFILL, segments, invoke).run(at.isoformat())
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            requests = running.requests.of("backfill_contacts")
            scanned = running.requests.scanned.get(("backfill_contacts", "Scan"), 0)
            entries = {op: n for (f, op), n in running.requests.entries.items() if f == "backfill_contacts"}
            wru = running.meter.units("write", function="backfill_contacts")
            rru = running.meter.units("read", function="backfill_contacts")
            scan_rru = running.meter.units("read", function="backfill_contacts", operation="Scan")
            wru_by = {
                f"{op}{' (transaction)' if t else ''}{' index ' + index if index else ''}": units
                for (op, t, index), units in running.meter.by(
                    "write", "operation", "transactional", "index"
                ).items()
            }
        members = [i for i in running.items(tables.CONTACTS.id) if i["sk"]["S"] == f"SEGMENT#{NEW_SEGMENT}"]
    return {
        "contacts": count,
        "segments": segments,
        "kids": population.kids,
        "evaluated": sum(a["contacts"] for a in answers),
        "read": sum(a["read"] for a in answers),
        "changed": sum(a["changed"] for a in answers),
        "entered": len(members),
        "requests": requests,
        "scanned": scanned,
        "entries": entries,
        "wru": wru,
        "rru": rru,
        "scan_rru": scan_rru,
        "wru_by": wru_by,
        "cpu": cpu,
        "wall": wall,
    }


def run(contacts: int = CONTACTS, moto_contacts: int = MOTO_CONTACTS) -> dict[str, Any]:
    found, at = templates()
    at += timedelta(hours=1)
    return {
        "templates": [{"kids": t.kids, "items": len(t.items), "bytes": sum(t.sizes)} for t in found],
        "at": at.isoformat(),
        "at_scale": in_process(found, contacts, at),
        "predicted": in_process(found, moto_contacts, at),
        "moto": on_moto(found, moto_contacts, at),
    }


if __name__ == "__main__":
    import sys

    result = run(
        int(sys.argv[1]) if len(sys.argv) > 1 else 2_000, int(sys.argv[2]) if len(sys.argv) > 2 else 200
    )
    print(json.dumps(result, indent=1, default=str))
