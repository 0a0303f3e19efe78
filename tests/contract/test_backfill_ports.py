"""The back-fills' ports, each fake against its adapter on moto: the profile scan (Scan of the contacts
table, profiles only), the purchases the purchase index lacks with the conditional update that indexes
one (Scan and UpdateItem of the events table), and the runs (Step Functions' StartExecution and
DescribeExecution, on moto's state machines)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from shared.contacts.identity import ContactId
from shared.errors import InvalidRequest, NotFound
from shared.tracking.messages import TrackedEvent
from shared.usecases.backfills import CONTACTS_BACKFILL, PURCHASES_BACKFILL, BackfillRun
from tests.contract.helpers import NOW, calls, entries
from tests.fakes import MemoryBackfills, MemoryContactStore, MemoryProfileScan, MemoryUnindexedPurchases

ANN, BOB, A1 = ContactId.user("ann"), ContactId.user("bob"), ContactId.anonymous("a1")


# --- the profile scan ------------------------------------------------------------------------------------------


@pytest.fixture
def profiles(implementation, contact_tables):
    """(the contact stores, the profile scan, the scan with pages of one item)."""
    if implementation == "fake":
        contacts = MemoryContactStore()
        return contacts, MemoryProfileScan(contacts), MemoryProfileScan(contacts, page_size=1)
    from shared.adapters.contact_scan import DynamoProfileScan

    tables = contact_tables()
    return (
        tables.stores(),
        DynamoProfileScan(tables.db, contacts_table=tables.contacts),
        DynamoProfileScan(tables.db, contacts_table=tables.contacts, page_size=1),
    )


def test_the_segments_divide_the_profiles_between_them_and_hold_nothing_else(profiles):
    contacts, scan, paged = profiles
    visits = [{"type": "page", "messageId": f"p{n}"} for n in range(3)]
    for who in (ANN, BOB, A1, ContactId.user("cy"), ContactId.user("di")):
        key = {"userId": who.value} if who.kind == "user_id" else {"anonymousId": who.value}
        contacts.append(entries(who, *({**v, "messageId": f"{who}-{v['messageId']}", **key} for v in visits)))
    contacts.deliver_events()
    contacts.claim(A1, ANN, NOW)  # a merge marker beside the profiles (sk MERGED#...)
    for segments in (1, 3, 7):
        found = [
            (segment, record.contact_id)
            for segment in range(segments)
            for page in scan.scan(segment, segments)
            for record in page.profiles
        ]
        assert sorted(c for _, c in found) == sorted(
            ["user_id:ann", "user_id:bob", "anonymous_id:a1", "user_id:cy", "user_id:di"]
        ), segments
        assert len({c for _, c in found}) == len(found), "each contact in exactly one segment"
    records = {r.contact_id: r for page in scan.scan(0, 1) for r in page.profiles}
    assert records["user_id:bob"].event_count == 3 and records["anonymous_id:a1"].merged_into == "user_id:ann"
    pages = [page for segment in range(2) for page in paged.scan(segment, 2)]
    assert sum(len(p.profiles) for p in pages) == 5 and max(len(p.profiles) for p in pages) <= 1
    assert sum(p.read for p in pages) >= 5 and len(pages) >= 5, "handed on page by page, every item read"


def test_an_empty_segment_yields_no_profile(profiles):
    _, scan, _ = profiles
    assert [r for s in range(4) for page in scan.scan(s, 4) for r in page.profiles] == []


# --- the purchases the index lacks --------------------------------------------------------------------------------


@dataclass
class LegacyLog:
    """Events as stored before the purchase index (no ``purchasedAt``, no ``basket``), the port over them,
    the port with pages of one item, and what the index holds of an event: (its time, its basket)."""

    add: Any
    port: Any
    paged: Any
    indexed: Any


def order(who: ContactId, message_id: str, timestamp: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": who.value,
        "event": "Order Completed",
        "messageId": message_id,
        "timestamp": timestamp,
        "properties": properties,
    }


@pytest.fixture
def legacy(implementation, contact_tables) -> Iterator[LegacyLog]:
    from shared.adapters.contact_items import event_item, event_key

    if implementation == "fake":
        log = MemoryUnindexedPurchases()

        def add_fake(contact: ContactId, event: TrackedEvent) -> None:
            log.add(contact, event_key(event), event.behaviour.value, event.timestamp, json.loads(event.body))

        def indexed_fake(contact: ContactId, event: TrackedEvent) -> tuple[Any, Any]:
            held = log.events[(f"C#{contact}", event_key(event))]
            return held.purchased_at, (None if held.basket is None else [list(p) for p in held.basket])

        yield LegacyLog(add_fake, log, MemoryUnindexedPurchases(log.events, page_size=1), indexed_fake)
        return
    from shared.adapters.contact_items import Retention
    from shared.adapters.purchase_backfill import DynamoUnindexedPurchases

    tables = contact_tables()

    def add_dynamo(contact: ContactId, event: TrackedEvent) -> None:
        item = event_item(contact, event, "2024-01-01T00:00:00.000Z", (), Retention(), "put-1")
        item.pop("purchasedAt", None)
        item.pop("basket", None)
        tables.db.put_item(TableName=tables.events, Item=item)

    def indexed_dynamo(contact: ContactId, event: TrackedEvent) -> tuple[Any, Any]:
        item = tables.db.get_item(
            TableName=tables.events, Key={"pk": {"S": f"C#{contact}"}, "sk": {"S": event_key(event)}}
        )["Item"]
        basket = json.loads(item["basket"]["S"]) if "basket" in item else None
        return item.get("purchasedAt", {}).get("S"), basket

    yield LegacyLog(
        add_dynamo,
        DynamoUnindexedPurchases(tables.db, events_table=tables.events),
        DynamoUnindexedPurchases(tables.db, events_table=tables.events, page_size=1),
        indexed_dynamo,
    )


def test_purchases_without_the_index_are_found_and_indexed_once_as_tracking_writes_them(legacy):
    from shared.tracking.baskets import basket

    (kite, filters), (view,), (refund,), (bob,) = (
        calls(
            order(
                ANN,
                "o1",
                "2025-01-02T03:04:05.678Z",
                revenue=20,
                products=[{"sku": "kite", "category": "toys"}],
            ),
            order(ANN, "o2", "2025-02-01T00:00:00.000Z", revenue=5),
        ),
        calls({"type": "track", "userId": "ann", "event": "Product Viewed", "messageId": "v1"}),
        calls(
            {
                "type": "track",
                "userId": "ann",
                "event": "Order Refunded",
                "messageId": "r1",
                "properties": {"revenue": 5},
            }
        ),
        calls(order(BOB, "o3", "2025-03-01T00:00:00.000Z", product_id=7)),
    )
    for contact, event in ((ANN, kite), (ANN, filters), (ANN, view), (ANN, refund), (BOB, bob)):
        legacy.add(contact, event)
    found = {
        (p.partition, p.key): p
        for segment in range(3)
        for page in legacy.port.scan(segment, 3)
        for p in page.purchases
    }
    assert sorted(str(p.properties.get("revenue")) for p in found.values()) == ["20", "5", "None"]
    assert {k[0] for k in found} == {"C#user_id:ann", "C#user_id:bob"} and len(found) == 3
    pages = [page for segment in range(2) for page in legacy.paged.scan(segment, 2)]
    assert sum(p.read for p in pages) == 5 and sum(len(p.purchases) for p in pages) == 3
    assert len(pages) >= 5, "a page of one item each: every event read, purchases kept"
    for purchase in found.values():
        assert legacy.port.index(purchase, basket(purchase.properties)) is True
        assert legacy.port.index(purchase, basket(purchase.properties)) is False, "never twice"
    assert legacy.indexed(ANN, kite) == ("2025-01-02T03:04:05.678Z", [["kite", "toys"]])
    assert legacy.indexed(ANN, filters) == ("2025-02-01T00:00:00.000Z", None)
    assert legacy.indexed(BOB, bob) == ("2025-03-01T00:00:00.000Z", [["7", None]])
    assert legacy.indexed(ANN, view) == (None, None) and legacy.indexed(ANN, refund) == (None, None)
    assert [p for s in range(3) for page in legacy.port.scan(s, 3) for p in page.purchases] == []


def test_an_event_gone_meanwhile_is_not_written_back(legacy, implementation, contact_tables):
    (event,) = calls(order(ANN, "o1", "2025-01-02T03:04:05.678Z", revenue=20))
    legacy.add(ANN, event)
    (purchase,) = [p for page in legacy.port.scan(0, 1) for p in page.purchases]
    if implementation == "fake":
        legacy.port.events.clear()
    else:
        tables = contact_tables()
        tables.db.delete_item(
            TableName=tables.events, Key={"pk": {"S": purchase.partition}, "sk": {"S": purchase.key}}
        )
    assert legacy.port.index(purchase, ()) is False
    assert [p for page in legacy.port.scan(0, 1) for p in page.purchases] == []


# --- the runs -------------------------------------------------------------------------------------------------------


@dataclass
class Runs:
    port: Any
    #: end a run as its workflow does: (workflow, name, final state or None, failure or None)
    finish: Any


@pytest.fixture
def runs(implementation) -> Iterator[Runs]:
    if implementation == "fake":
        fake = MemoryBackfills()

        def finish_fake(workflow: str, name: str, state: Any, error: str | None) -> None:
            fake.finish(workflow, name, state, error=error, cause="it broke" if error else None)

        yield Runs(fake, finish_fake)
        return
    from moto import mock_aws

    from infra.local.workflow import WorkflowFailed, record_outcome
    from shared.adapters import aws
    from shared.adapters.backfill_runs import StepFunctionsBackfills, execution_arn
    from shared.clock import FixedClock

    with mock_aws():
        aws.reset()
        sfn = aws.client("stepfunctions")
        machines = {
            workflow: sfn.create_state_machine(
                name=f"contract-{workflow}",
                definition=json.dumps({"StartAt": "x", "States": {"x": {"Type": "Pass", "End": True}}}),
                roleArn="arn:aws:iam::123456789012:role/contract",
            )["stateMachineArn"]
            for workflow in (CONTACTS_BACKFILL, PURCHASES_BACKFILL)
        }

        def finish_moto(workflow: str, name: str, state: Any, error: str | None) -> None:
            arn = execution_arn(machines[workflow], name)
            failed = (
                WorkflowFailed(workflow, error.split(".")[0], {}, RuntimeError("it broke"), {})
                if error
                else None
            )
            record_outcome(arn, state, failed)

        yield Runs(StepFunctionsBackfills(sfn, state_machines=machines, clock=FixedClock(NOW)), finish_moto)
        aws.reset()


def test_a_name_starts_one_run_of_its_workflow(runs):
    assert runs.port.run(CONTACTS_BACKFILL, "segment-vip-v1") is None
    assert runs.port.start(CONTACTS_BACKFILL, "segment-vip-v1") is True
    assert runs.port.start(CONTACTS_BACKFILL, "segment-vip-v1") is False, "already started: nothing started"
    assert runs.port.start(PURCHASES_BACKFILL, "segment-vip-v1") is True, "names are per workflow"
    run = runs.port.run(CONTACTS_BACKFILL, "segment-vip-v1")
    assert isinstance(run, BackfillRun)
    assert (run.workflow, run.name, run.status, run.stopped_at, run.result) == (
        CONTACTS_BACKFILL,
        "segment-vip-v1",
        "RUNNING",
        None,
        None,
    )
    assert abs(run.started_at - NOW) < timedelta(days=3650)


def test_an_ended_run_is_read_with_what_it_did_or_why_it_failed(runs):
    runs.port.start(CONTACTS_BACKFILL, "done")
    runs.port.start(PURCHASES_BACKFILL, "broken")
    state = {
        "time": "2026-11-23T12:00:00.000Z",
        "backfill_contacts": [
            {"segment": 0, "segments": 2, "contacts": 3, "read": 7, "changed": 1},
            {"segment": 1, "segments": 2, "contacts": 2, "read": 2, "changed": 2},
        ],
    }
    runs.finish(CONTACTS_BACKFILL, "done", state, None)
    runs.finish(PURCHASES_BACKFILL, "broken", None, "backfill_purchases.RuntimeError")
    done = runs.port.run(CONTACTS_BACKFILL, "done")
    assert done.status == "SUCCEEDED" and done.stopped_at is not None
    assert done.result == {"segments": 2, "contacts": 5, "read": 9, "changed": 3}
    broken = runs.port.run(PURCHASES_BACKFILL, "broken")
    assert broken.status == "FAILED" and broken.result is None
    assert broken.error == "backfill_purchases.RuntimeError" and broken.cause == "it broke"
    assert runs.port.start(CONTACTS_BACKFILL, "done") is False, "an ended run's name stays used"


def test_an_unknown_workflow_or_a_bad_name_starts_nothing(runs):
    with pytest.raises(NotFound):
        runs.port.start("nightly_analytics", "x")
    with pytest.raises(InvalidRequest):
        runs.port.start(CONTACTS_BACKFILL, "segment vip")
    with pytest.raises(InvalidRequest):
        runs.port.run(CONTACTS_BACKFILL, "x" * 81)
    assert runs.port.start(CONTACTS_BACKFILL, "segment-vip") is True
