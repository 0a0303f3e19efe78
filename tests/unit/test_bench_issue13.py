"""Issue 13's bench stand-ins: what they stand in for must page and bill as DynamoDB (and the adapters read
through them) would, or the figures at scale mean nothing.

- ``bench.metric_reports.ShardedCounters``: the counter items put in moto instead of counting 14 months
  through moto (slow) are the items ``DynamoMetricStore`` writes.
- ``bench.backfill``: the population copies template partitions exactly (sizes, derived keys); the Scan
  stand-in (``ContactsScan``) reads every item once, a contact's items in one segment, in pages of whole
  items up to the page size, billed 4 KB halved; the fake contact store gives back the records it is given.
- ``bench.campaign_planning.MemberIndex``: the ``bySegment`` Query stand-in lists every member once through
  the real adapter, stops on the limit or the page size, and bills what it read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto, with every table of the system (``bench-<id>``), and a client of the harness's."""
    from moto import mock_aws

    from infra.local.moto_dynamodb import serialise
    from shared.adapters.tables import TABLES, create_table_request

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "bench")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "bench")
    serialise()
    with mock_aws():
        import botocore.session

        client = botocore.session.get_session().create_client("dynamodb", region_name="eu-west-1")
        for spec in TABLES:
            client.create_table(**create_table_request(spec, f"bench-{spec.id}"))
        yield client


def _rows(items: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Decimal]]:
    return {
        (i["pk"]["S"], i["sk"]["S"]): {k: Decimal(v["N"]) for k, v in i.items() if k not in ("pk", "sk")}
        for i in items
        if not i["pk"]["S"].startswith(("SEEN#", "CUSTOMER#"))
    }


def test_the_sharded_counters_are_the_items_the_metric_store_writes(dynamodb: Any) -> None:
    from bench.metric_reports import ShardedCounters, populate
    from shared.adapters.metric_store import DynamoMetricStore

    table = "bench-metrics"
    counted = populate(DynamoMetricStore(dynamodb, table=table), days=12)
    written = _rows(dynamodb.scan(TableName=table)["Items"])
    counters = ShardedCounters()
    assert populate(counters, days=12) == counted
    assert counted["moves"] > 50 and counted["purchases"] > 5
    assert _rows(counters.items()) == written
    assert len({pk for pk, _ in written}) > 8, "rows on several shards of several counters"


# --- the contacts back-fill: the population and the Scan stand-in ----------------------------------------------

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def _template(n: int, kids: bool, history: int) -> Any:
    """A template contact's partition in the wire format: profile (with its due time), stage history, a
    membership."""
    from bench.backfill import Template, template_id
    from shared.adapters.segment_members import membership_item
    from shared.adapters.stage_store import due_key, due_shard
    from shared.contacts.identity import ContactId
    from shared.tracking.timestamps import format_time

    contact = ContactId.user(template_id(n))
    due = NOW + timedelta(days=n + 1)
    profile = {
        "pk": {"S": f"C#{contact}"},
        "sk": {"S": "PROFILE"},
        "contactId": {"S": str(contact)},
        "userId": {"S": contact.value},
        "trait:email": {"S": json.dumps(f"{contact.value}@example.com")},
        "stage": {"S": "subscriber"},
        "stageSeq": {"N": str(history)},
        "dueAt": {"S": format_time(due)},
        "dueShard": {"S": due_shard(contact, 8)},
        "dueKey": {"S": due_key(contact, due)},
        **({"tag:kids": {"S": format_time(NOW)}} if kids else {}),
    }
    items = [profile]
    items += [
        {
            "pk": {"S": f"C#{contact}"},
            "sk": {"S": f"STAGE#{seq:08d}#00"},
            "body": {"S": json.dumps({"contact_id": str(contact), "padding": "x" * 300})},
        }
        for seq in range(1, history + 1)
    ]
    items.append(membership_item(contact, "recent-visitors", NOW))
    return Template(kids, tuple(sorted(items, key=lambda i: i["sk"]["S"])))


def _population(count: int) -> Any:
    from bench.backfill import Population

    found = [_template(0, False, 2), _template(1, False, 5), _template(2, True, 1)]
    return Population(found, count, due_shards=8)


def test_the_population_copies_its_templates_with_what_derives_from_the_contact_recomputed() -> None:
    from bench.backfill import copy_id
    from bench.capacity import item_size
    from shared.adapters.segment_members import member_shard
    from shared.adapters.stage_store import due_key, due_shard
    from shared.contacts.identity import ContactId
    from shared.tracking.timestamps import parse_time

    population = _population(40)
    assert population.kids == 4, "one contact in ten is a tagged template's"
    for i in (0, 1, 7, 10, 39):
        contact = ContactId.user(copy_id(i))
        items = population.items(i)
        template = population.templates[population.template_of[i]]
        sizes = [item_size(x) for x in items]
        assert all(abs(a - b) <= 1 for a, b in zip(sizes, template.sizes, strict=True)), (
            "the template's sizes"
        )
        assert {x["pk"]["S"] for x in items} == {f"C#{contact}"}
        assert "t0" not in json.dumps(items), "no trace of the template's id"
        (profile,) = [x for x in items if x["sk"]["S"] == "PROFILE"]
        assert profile["dueShard"]["S"] == due_shard(contact, 8)
        assert profile["dueKey"]["S"] == due_key(contact, parse_time(profile["dueAt"]["S"]))
        (member,) = [x for x in items if x["sk"]["S"].startswith("SEGMENT#")]
        assert member["segmentShard"]["S"] == f"recent-visitors#{member_shard(contact)}"
        assert member["segmentMember"]["S"] == str(contact)


def test_the_scan_stand_in_reads_every_contact_once_in_pages_billed_as_dynamodb_bills_them() -> None:
    from bench.backfill import ContactsScan, copy_id
    from bench.capacity import item_size
    from shared.adapters.contact_scan import DynamoProfileScan

    population = _population(60)
    scan = ContactsScan(population, page_bytes=3000)
    adapter = DynamoProfileScan(scan, contacts_table="contacts")
    seen: dict[str, int] = {}
    read = 0
    for segment in range(4):
        for page in adapter.scan(segment, 4):
            read += page.read
            for profile in page.profiles:
                assert profile.contact_id not in seen, "a contact in one segment, read once"
                seen[profile.contact_id] = segment
    assert set(seen) == {f"user_id:{copy_id(i)}" for i in range(60)}
    items = [item for i in range(60) for item in population.items(i)]
    assert read == scan.read == len(items), (
        "every item of the table read (and billed) once, before the filter"
    )
    assert scan.bytes == sum(item_size(item) for item in items)
    assert scan.requests > 8, "pages of 3,000 bytes: several a segment"

    # page by page: whole items up to the page size, billed 4 KB halved, at least half a unit
    for segment in range(2):
        request: dict[str, Any] = {
            "Segment": segment,
            "TotalSegments": 2,
            "ExpressionAttributeValues": {":profile": {"S": "PROFILE"}},
        }
        while True:
            before = (scan.bytes, scan.read_units, scan.read)
            page = scan.scan(**request)
            size = scan.bytes - before[0]
            assert 0 < size <= 3000
            assert scan.read_units - before[1] == max(1, math.ceil(size / 4096)) * 0.5
            assert page["ScannedCount"] == scan.read - before[2] >= page["Count"] == len(page["Items"])
            assert all(item["sk"]["S"] == "PROFILE" for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_a_record_kept_by_the_fake_contact_store_reads_back_as_it_was() -> None:
    from bench.backfill import memory_profile
    from shared.adapters.contact_items import record_from_item
    from shared.contacts.identity import ContactId
    from shared.contacts.model import ContactRecord

    record = ContactRecord.model_validate(
        {
            "contact_id": "user_id:ann",
            "user_id": "ann",
            "traits": {"email": "ann@example.com", "plan": "pro"},
            "tags": {"kids": NOW},
            "counts": {"purchase": 2, "page": 9},
            "event_count": 11,
            "first_seen_at": NOW - timedelta(days=40),
            "last_seen_at": NOW,
            "revenue_total": "70.5",
            "last_purchase_at": NOW,
            "last_times": {"visit": NOW},
            "scores": {"global": {"total": "42", "sums": {"h7776000": {20410: 12.5, 20411: 3.0}}}},
            "stage": "customer",
            "stage_entered_at": NOW,
            "quarter": "retention",
            "stage_seq": 4,
            "due_at": NOW + timedelta(days=30),
            "segments": ["kids", "recent-visitors"],
            "consent": {"email": {"granted": {"source": "form", "at": NOW}}},
        }
    )
    assert memory_profile(record).record(ContactId.user("ann")) == record
    template = _template(1, True, 2)
    (profile,) = [i for i in template.items if i["sk"]["S"] == "PROFILE"]
    stored = record_from_item(profile)
    assert memory_profile(stored).record(ContactId.parse(stored.contact_id)) == stored


# --- campaign planning: the members' index stand-in -----------------------------------------------------------


def test_the_member_index_stand_in_pages_every_member_once_and_counts_them() -> None:
    from bench.campaign_planning import MemberIndex, recipients
    from shared.adapters.segment_members import MEMBER_SHARDS, DynamoSegmentMembers, member_shard

    members = recipients(300)
    index = MemberIndex("newsletter", members)
    adapter = DynamoSegmentMembers(index, table="contacts")
    listed: list[str] = []
    after = None
    pages = 0
    while True:
        page = adapter.page("newsletter", after, 7)
        pages += 1
        assert len(page.contact_ids) <= 7
        listed += page.contact_ids
        if page.after is None:
            break
        after = page.after
    assert sorted(listed) == sorted(members) and len(listed) == len(set(listed)), "each member once"
    shards = [member_shard(m) for m in listed]
    assert shards == sorted(shards), "the partitions read in turn"
    assert index.read == 300 and index.requests >= pages >= 300 // 7
    requests = index.requests
    assert adapter.count("newsletter") == 300
    assert index.requests - requests == MEMBER_SHARDS, "one Query a partition when it holds under a page"
    assert adapter.count("another") == 0


def test_the_member_index_stops_on_the_limit_or_the_page_size_and_bills_what_it_read() -> None:
    from bench.campaign_planning import MemberIndex, recipients
    from bench.capacity import item_size
    from shared.adapters.segment_members import member_shard

    members = recipients(400)
    index = MemberIndex("newsletter", members, page_bytes=1000)
    shard = member_shard(members[0])
    partition = sorted(m for m in members if member_shard(m) == shard)
    request: dict[str, Any] = {
        "IndexName": "bySegment",
        "ExpressionAttributeValues": {":p": {"S": f"newsletter#{shard}"}},
    }
    got: list[str] = []
    while True:
        before = (index.bytes, index.read_units)
        page = index.query(**request)
        size = index.bytes - before[0]
        assert size == sum(item_size(i) for i in page["Items"]) <= 1000
        assert index.read_units - before[1] == max(1, math.ceil(size / 4096)) * 0.5
        got += [i["segmentMember"]["S"] for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    assert got == partition
    # on the limit: a key even at the partition's end, and the next page is empty (as DynamoDB answers)
    limited = MemberIndex("newsletter", members).query(
        IndexName="bySegment",
        ExpressionAttributeValues={":p": {"S": f"newsletter#{shard}"}},
        Limit=len(partition),
    )
    assert limited["Count"] == len(partition) and "LastEvaluatedKey" in limited
    counted = MemberIndex("newsletter", members).query(
        IndexName="bySegment", ExpressionAttributeValues={":p": {"S": f"newsletter#{shard}"}}, Select="COUNT"
    )
    assert counted["Count"] == len(partition) and "Items" not in counted


def test_the_member_index_pages_as_moto_pages_the_index(dynamodb: Any) -> None:
    """The adapter's pages over the stand-in are its pages over moto's index; the stand-in makes at most one
    Query more per partition (DynamoDB answers a page that ends on the limit with a key, moto does not)."""
    from bench.campaign_planning import START, MemberIndex, recipients
    from shared.adapters.segment_members import MEMBER_SHARDS, DynamoSegmentMembers, membership_item
    from shared.contacts.identity import ContactId

    members = recipients(300)
    items = [membership_item(ContactId.parse(m), "newsletter", START) for m in members]
    for start in range(0, len(items), 25):
        dynamodb.batch_write_item(
            RequestItems={"bench-contacts": [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]}
        )
    queries = 0

    def count(**_: Any) -> None:
        nonlocal queries
        queries += 1

    dynamodb.meta.events.register("before-parameter-build.dynamodb.Query", count)
    index = MemberIndex("newsletter", members)

    def pages(adapter: DynamoSegmentMembers) -> list[list[str]]:
        found, after = [], None
        while True:
            page = adapter.page("newsletter", after, 50)
            found.append(page.contact_ids)
            if page.after is None:
                return [p for p in found if p]
            after = page.after

    on_moto = pages(DynamoSegmentMembers(dynamodb, table="bench-contacts"))
    assert pages(DynamoSegmentMembers(index, table="contacts")) == on_moto
    assert MEMBER_SHARDS <= queries <= index.requests <= queries + MEMBER_SHARDS


# --- bench.funnel_exits and its sections: the metrics back-fill's stand-in and the predictions ----------------------


def _history_item(contact: str, seq: int, output: Any) -> dict[str, Any]:
    """A stage history item as ``DynamoStageStore`` writes it."""
    detail = output.model_dump(mode="json", by_alias=True)
    return {
        "pk": {"S": f"C#{contact}"},
        "sk": {"S": f"STAGE#{seq:08d}#00"},
        "type": {"S": output.detail_type},
        "output": {"S": json.dumps({"detail_type": output.detail_type, **detail})},
        "published": {"BOOL": True},
    }


def _history_template(name: str, tracked: str, moves: int, removed: bool, padding: int = 300) -> Any:
    """A template partition: its profile, ``moves`` stage moves, a removal if ``removed``, and an
    announcement of another kind under ``STAGE#`` (as written before issue 13) the filter leaves out."""
    from bench.backfill import Template
    from bench.funnel_exits import HistoryTemplate
    from shared.engagement.events import ContactRemoved, ContactStageChanged, EngagementQuarterChanged

    at = datetime(2026, 1, 1, tzinfo=UTC)
    contact = f"user_id:{tracked}"
    items: list[dict[str, Any]] = [
        {"pk": {"S": f"C#{contact}"}, "sk": {"S": "PROFILE"}, "pad": {"S": "x" * padding}}
    ]
    stages = ["subscriber", "lead", "mql", "customer", "loyal"]
    for seq in range(1, moves + 1):
        move = ContactStageChanged.model_validate(
            {
                "event_id": f"{contact}#{seq}#0",
                "contact_id": contact,
                "at": (at + timedelta(days=seq)).isoformat(),
                "from": stages[seq - 2] if seq > 1 else None,
                "to": stages[seq - 1],
                "phase": "reach",
                "reason": "r",
                "engagement": 1.0,
                "index": 0.5,
                "direction": "up",
            }
        )
        items.append(_history_item(contact, seq, move))
    quarter = EngagementQuarterChanged.model_validate(
        {
            "event_id": f"{contact}#q",
            "contact_id": contact,
            "at": at.isoformat(),
            "from": None,
            "to": "acquisition",
            "engagement": 1.0,
            "index": 0.5,
            "direction": "up",
        }
    )
    items.append(_history_item(contact, 90, quarter))
    if removed:
        removal = ContactRemoved(
            event_id=f"{contact}#removed",
            contact_id=contact,
            at=at + timedelta(days=30),
            stage=stages[moves - 1],
            reason="merged",
        )
        items.append(_history_item(contact, 99, removal))
    items.sort(key=lambda i: i["sk"]["S"])
    return HistoryTemplate(name, tracked, Template(False, tuple(items)), moves + int(removed))


def test_the_template_slots_give_each_template_its_share_interleaved() -> None:
    from bench.funnel_exits import MIX, template_slots

    slots = template_slots(MIX)
    assert len(slots) == 100
    assert {name: slots.count(name) for name in MIX} == MIX
    assert slots[:3] != [slots[0]] * 3  # interleaved, not in blocks
    assert template_slots({"a": 30, "b": 70}).count("a") == 30
    with pytest.raises(AssertionError):
        template_slots({"a": 30, "b": 60})


def test_the_expected_entries_are_what_the_population_holds() -> None:
    from bench.funnel_exits import HistoryPopulation, expected_entries

    found = [
        _history_template("a", "t00000000000", 1, True),
        _history_template("b", "t00000000001", 3, False),
    ]
    mix = {"a": 30, "b": 70}
    population = HistoryPopulation(found, 1_000, due_shards=16, mix=mix)
    assert expected_entries(found, mix, 1_000) == 300 * 2 + 700 * 3 == population.entries
    # and the copies hold them, under their own ids
    copies = [population.items(i) for i in range(1_000)]
    assert (
        sum(
            sum(1 for x in items if x["type"]["S"] in ("ContactStageChanged", "ContactRemoved"))
            for items in [[i for i in c if "type" in i] for c in copies]
        )
        == population.entries
    )
    assert all(all(x["pk"]["S"].endswith(f"c{i:011d}") for x in items) for i, items in enumerate(copies))


def test_the_history_scan_stand_in_hands_the_adapter_every_move_and_removal_once_and_bills_every_item() -> (
    None
):
    from bench.capacity import item_size
    from bench.funnel_exits import HistoryPopulation, HistoryScan
    from shared.adapters.stage_history_scan import DynamoStageHistoryScan

    found = [
        _history_template("a", "t00000000000", 2, True),
        _history_template("b", "t00000000001", 4, False),
    ]
    population = HistoryPopulation(found, 300, due_shards=16, mix={"a": 50, "b": 50})
    scan = HistoryScan(population, page_bytes=8 * 1024)
    adapter = DynamoStageHistoryScan(scan, contacts_table="contacts")
    segments = 4
    seen: list[str] = []
    read = 0
    for segment in range(segments):
        for page in adapter.scan(segment, segments):
            seen += [e.event_id for e in page.entries]
            read += page.read
            assert page.unreadable == 0
    assert len(seen) == len(set(seen)) == population.entries == 150 * 3 + 150 * 4
    every = [item for i in range(300) for item in population.items(i)]
    assert read == scan.read == len(every)  # the profiles and the other announcements read, not returned
    assert scan.bytes == sum(item_size(i) for i in every)
    assert scan.requests > segments  # pages of 8 KB
    assert scan.read_units >= scan.bytes / 4096 / 2


def test_the_history_scan_stand_in_pages_as_moto_scans_the_contacts_table(dynamodb: Any) -> None:
    from bench.funnel_exits import HistoryPopulation, HistoryScan
    from shared.adapters.stage_history_scan import DynamoStageHistoryScan

    found = [
        _history_template("a", "t00000000000", 2, True),
        _history_template("b", "t00000000001", 1, False),
    ]
    population = HistoryPopulation(found, 40, due_shards=16, mix={"a": 50, "b": 50})
    for i in range(40):
        for item in population.items(i):
            dynamodb.put_item(TableName="bench-contacts", Item=item)
    on_moto = DynamoStageHistoryScan(dynamodb, contacts_table="bench-contacts")
    stand_in = DynamoStageHistoryScan(HistoryScan(population), contacts_table="contacts")

    def entries(adapter: Any) -> tuple[set[str], int]:
        pages = [p for segment in range(3) for p in adapter.scan(segment, 3)]
        return {e.event_id for p in pages for e in p.entries}, sum(p.read for p in pages)

    assert entries(stand_in) == entries(on_moto)
    assert entries(stand_in)[1] == 40 * 4


def test_the_metrics_back_fill_predictions_and_estimate_follow_the_counts() -> None:
    from bench.segments import PRICES, history_estimate, predicted_history_requests

    run = {
        "segments": 32,
        "scan": {"requests": 224, "read_units": 26_000.0},
        "transactions": 220_000,
        "transaction_items": 695_000,
        "cpu": 20.0,
    }
    moto = {"wru": 27_800.0, "transaction_items": 13_900}
    assert predicted_history_requests(run) == {"Scan": 224, "TransactWriteItems": 220_000}
    estimate = history_estimate(run, moto)
    assert estimate["per_item_wru"] == 2.0
    assert estimate["wru"] == 1_390_000
    assert estimate["dollars"]["DynamoDB writes"] == pytest.approx(1.39 * PRICES.per_million_wru)
    assert estimate["dollars"]["DynamoDB reads"] == pytest.approx(0.026 * PRICES.per_million_rru)
    assert estimate["waves"] == 2 and estimate["wall"] == pytest.approx(2 * estimate["segment_seconds"])
    # a segment: its share of the CPU at the function's share of a vCPU, its pages and transactions waited on
    share = min(1.0, estimate["memory"] / 1769)
    assert estimate["segment_seconds"] == pytest.approx(20.0 / 32 / share + (224 * 0.1 + 220_000 * 0.02) / 32)
    assert estimate["total"] == pytest.approx(sum(estimate["dollars"].values()))


def test_the_removal_cost_adds_the_functions_and_prices_a_million() -> None:
    from bench.segments import PRICES, removal_cost

    def part(dynamodb: int, wru: float, rru: float, events: int) -> dict[str, Any]:
        return {
            "dynamodb": dynamodb,
            "put_events": 1,
            "events": events,
            "wru": wru,
            "rru": rru,
            "config_reads": 0,
        }

    case = {
        "contacts": 10,
        "metrics_invocations": 10,
        "functions": {"stage_transition": part(60, 120.0, 30.0, 10), "metrics": part(10, 60.0, 0.0, 0)},
    }
    cost = removal_cost(case, ("stage_transition", "metrics"))
    assert (cost["dynamodb"], cost["wru"], cost["rru"], cost["events"], cost["invocations"]) == (
        7,
        18,
        3,
        1,
        1,
    )
    assert cost["per_million"] == pytest.approx(
        18 * PRICES.per_million_wru
        + 3 * PRICES.per_million_rru
        + PRICES.per_million_events
        + PRICES.lambda_per_million_requests
    )
