"""The nightly analytics job's ports, each fake against its adapter on moto: the purchase index (Scan of
the events table's ``byPurchase``, with what tracking and merges write), the staging bucket (S3), the
analytics on the profiles with their history and outbox (the contacts table), and the announcer (the bus,
read through an SQS target)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shared.analytics.changes import announcements
from shared.analytics.facts import Analytics, ChurnFacts, CustomerScore, RfmFacts
from shared.contacts.identity import ContactId
from shared.usecases.analytics import (
    Held,
    Outcome,
    Previous,
    ScannedPurchase,
    StagedPurchases,
    StagedScores,
    purchases_key,
    scores_key,
)
from tests.contract.helpers import NOW, change, entries
from tests.fakes import (
    MemoryAnalyticsStore,
    MemoryAnnouncer,
    MemoryContactStore,
    MemoryPurchaseScan,
    MemoryStaging,
)

ANN, BOB, A1 = ContactId.user("ann"), ContactId.user("bob"), ContactId.anonymous("a1")
DAY = date(2026, 11, 22)


def order(who: ContactId, message_id: str, **properties: Any) -> dict[str, Any]:
    key = {"userId": who.value} if who.kind == "user_id" else {"anonymousId": who.value}
    return {
        "type": "track",
        "event": "Order Completed",
        "messageId": message_id,
        "properties": properties,
        **key,
    }


# --- the purchase index -----------------------------------------------------------------------------------


@pytest.fixture
def index(implementation, contact_tables):
    """(the contact stores, a scan of the purchase index over the same events, the scan with pages of 2)."""
    if implementation == "fake":
        contacts = MemoryContactStore()
        scan = MemoryPurchaseScan(contacts)
        return contacts, scan, scan
    from shared.adapters.purchase_index import DynamoPurchaseScan

    tables = contact_tables()
    return (
        tables.stores(),
        DynamoPurchaseScan(tables.db, events_table=tables.events),
        DynamoPurchaseScan(tables.db, events_table=tables.events, page_size=2),
    )


def everything(scan: Any, segments: int) -> list[ScannedPurchase]:
    found = [
        p for segment in range(segments) for page in scan.scan(segment, segments) for p in page.purchases
    ]
    return sorted(found, key=lambda p: (p.contact_id, p.purchased_at))


def test_the_index_holds_purchases_alone_with_their_contact_time_amount_and_basket(index):
    contacts, scan, paged = index
    at = NOW - timedelta(days=3)
    contacts.append(
        entries(
            ANN,
            order(
                ANN,
                "o1",
                revenue=49.98,
                products=[{"product_id": "p1", "category": "filters"}, {"sku": "s2"}],
            ),
            order(ANN, "o2", total=5, product_id=77, category="kitchen"),
            {
                "type": "track",
                "userId": "ann",
                "event": "Order Refunded",
                "messageId": "r1",
                "properties": {"revenue": 5},
            },
            {"type": "page", "userId": "ann", "messageId": "p1"},
            at=at,
        )
    )
    contacts.append(entries(BOB, order(BOB, "o3"), at=at + timedelta(hours=1)))
    contacts.append(
        entries(A1, {**order(A1, "o4", revenue=3), "timestamp": "2026-11-01T10:00:00.123Z"}, at=NOW)
    )
    for segments in (1, 4):
        found = everything(scan, segments)
        assert [(p.contact_id, p.amount, p.basket) for p in found] == [
            ("anonymous_id:a1", 3.0, ()),
            ("user_id:ann", 49.98, (("p1", "filters"), ("s2", None))),
            ("user_id:ann", 5.0, (("77", "kitchen"),)),
            ("user_id:bob", 0.0, ()),
        ]
        assert found[0].purchased_at.isoformat(timespec="milliseconds") == "2026-11-01T10:00:00.123+00:00"
        assert found[1].purchased_at == at
    pages = [page for segment in range(2) for page in paged.scan(segment, 2)]
    assert sum(len(p.purchases) for p in pages) == 4 and sum(p.read for p in pages) == 4
    assert max(len(p.purchases) for p in pages) <= 2 and len(pages) >= 2, "handed on page by page"


def test_a_merge_moves_a_visitors_purchases_to_its_contact_with_their_baskets(index):
    contacts, scan, _ = index
    contacts.append(entries(A1, order(A1, "o1", revenue=10, products=[{"id": "x", "category": "c"}])))
    contacts.deliver_events()
    contacts.claim(A1, ANN, NOW)
    contacts.move_events(A1, ANN, 100)
    (moved,) = everything(scan, 3)
    assert (moved.contact_id, moved.amount, moved.basket) == ("user_id:ann", 10.0, (("x", "c"),))
    # a purchase sent under the visitor's id after the merge is re-routed to its contact, copied whole
    contacts.append(entries(A1, order(A1, "o2", revenue=4, category="c2"), at=NOW + timedelta(minutes=1)))
    contacts.deliver_events()
    found = everything(scan, 3)
    assert [(p.contact_id, p.amount, p.basket) for p in found if p.amount == 4] == [
        ("user_id:ann", 4.0, ((None, "c2"),))
    ]
    assert {p.contact_id for p in found} == {"user_id:ann"}


# --- the staging bucket -------------------------------------------------------------------------------------


@pytest.fixture
def staging(implementation) -> Iterator[Any]:
    if implementation == "fake":
        yield MemoryStaging()
        return
    from moto import mock_aws

    from shared.adapters import aws
    from shared.adapters.analytics_staging import S3Staging

    with mock_aws():
        aws.reset()
        s3 = aws.client("s3")
        s3.create_bucket(
            Bucket="contract-analytics", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        yield S3Staging(s3, bucket="contract-analytics")
        aws.reset()


def test_staged_files_are_read_back_as_written_under_the_contract_keys(staging):
    purchases = StagedPurchases.of(
        DAY,
        2,
        16,
        [
            ScannedPurchase(
                contact_id="user_id:ann",
                purchased_at=NOW - timedelta(days=2),
                amount=9.5,
                basket=(("p", None),),
            ),
            ScannedPurchase(contact_id="user_id:bob", purchased_at=NOW - timedelta(days=400)),
            ScannedPurchase(contact_id="user_id:ann", purchased_at=NOW - timedelta(days=1), amount=3),
        ],
    )
    assert staging.save_purchases(purchases) == "analytics/2026-11-22/purchases/segment-0002-of-0016.json.gz"
    assert staging.purchases(DAY, 2, 16) == purchases
    assert purchases.contacts == ["user_id:ann", "user_id:bob"] and purchases.contact == [0, 1, 0]
    assert staging.purchases(DAY, 3, 16) is None and staging.purchases(DAY, 2, 8) is None
    score = CustomerScore(customer_id="user_id:ann", p_no_purchase=0.25, churn_risk=0.75, risk_level="medium")
    scores = StagedScores(day=DAY, part=7, horizon_days=90, scores=[score])
    assert (
        staging.save_scores(scores) == scores_key(DAY, 7) == "analytics/2026-11-22/scores/part-00007.json.gz"
    )
    assert staging.scores(scores_key(DAY, 7)) == scores and staging.scores(scores_key(DAY, 8)) is None
    again = scores.model_copy(update={"scores": []})
    staging.save_scores(again)  # a retried fit writes the same key again
    assert staging.scores(scores_key(DAY, 7)) == again
    assert purchases_key(DAY, 2, 16) == "analytics/2026-11-22/purchases/segment-0002-of-0016.json.gz"


# --- analytics on the profiles ------------------------------------------------------------------------------


@pytest.fixture
def profiles(implementation, contact_tables):
    """(the contact stores, the analytics store over the same profiles)."""
    if implementation == "fake":
        contacts = MemoryContactStore()
        return contacts, MemoryAnalyticsStore(contacts)
    from shared.adapters.analytics_store import DynamoAnalyticsStore

    tables = contact_tables()
    return tables.stores(), DynamoAnalyticsStore(tables.db, contacts_table=tables.contacts)


def seen(contacts: Any, contact: ContactId) -> None:
    who = {"userId": contact.value} if contact.kind == "user_id" else {"anonymousId": contact.value}
    assert contacts.commit([change(contact, {"type": "page", **who, "messageId": f"{contact}-p"})])[
        0
    ].committed


def scored(day: date, segment: str | None, level: str, risk: float = 0.2) -> Analytics:
    return Analytics(
        day=day,
        rfm=RfmFacts(r=5, f=4, m=5, segment=segment, premium=True) if segment else None,
        churn=ChurnFacts(
            p_no_purchase=0.35,
            churn_risk=risk,
            level=level,
            expected_next_purchase=day + timedelta(days=9),
            typical_gap_days=30.5,
        ),
    )


def test_a_first_write_is_refused_until_it_expects_no_analytics_and_then_records_its_changes(profiles):
    contacts, store = profiles
    seen(contacts, ANN)
    first = scored(DAY, "champions", "low")
    refused = store.record(ANN, first, [], Previous(unchanged=True))
    assert (refused.written, refused.found) == (False, Held(None))
    changes = announcements(str(ANN), None, first, NOW)
    assert store.record(ANN, first, changes, Previous(analytics=None)).written
    record = contacts.profile(ANN)
    assert record.analytics == first and record.event_count == 1, "the tracking attributes are untouched"
    keys = frozenset(a.key for a in changes)
    assert keys == {"2026-11-22#segment-entered", "2026-11-22#risk"}
    assert [(a.kind, a.output) for a in store.unpublished(ANN, keys)] == sorted(
        (a.kind, a.output) for a in changes
    )
    assert store.history(ANN, 10) == [a.output for a in sorted(changes, key=lambda a: a.key, reverse=True)]
    assert [o.initial for o in store.history(ANN, 10)] == [True, True], "the first scoring, read back"
    again = store.record(ANN, first, changes, Previous(analytics=None))
    assert (again.written, again.found) == (False, Held(first, keys)), "the day guard"


def test_a_later_day_is_written_alone_when_nothing_is_announced_and_returns_what_was_there(profiles):
    contacts, store = profiles
    seen(contacts, ANN)
    first = scored(DAY, "loyal", "medium")
    earlier = announcements(str(ANN), None, first, NOW)
    store.record(ANN, first, earlier, Previous(analytics=None))
    keys = frozenset(a.key for a in earlier)
    later = scored(DAY + timedelta(days=1), "loyal", "medium", risk=0.55)
    recorded = store.record(ANN, later, [], Previous(unchanged=True))
    assert recorded.written and recorded.found == Held(first, keys)
    assert contacts.profile(ANN).analytics == later
    moved = scored(DAY + timedelta(days=2), "loyal", "high")
    refused = store.record(ANN, moved, [], Previous(unchanged=True))
    assert (refused.written, refused.found) == (False, Held(later, keys)), "another level: refused"
    assert not store.record(ANN, moved, [], Previous(analytics=first)).written, "not the analytics expected"
    left = scored(DAY + timedelta(days=2), None, "medium")
    assert not store.record(ANN, left, [], Previous(unchanged=True)).written, "another segment: refused"
    changes = announcements(str(ANN), later, moved, NOW)
    assert store.record(ANN, moved, changes, Previous(analytics=later)).written
    keys |= {a.key for a in changes}
    assert store.record(ANN, moved, [], Previous(unchanged=True)).found == Held(moved, keys)
    assert len(store.unpublished(ANN, keys)) == 3 and contacts.profile(ANN).analytics == moved
    risk = [(o.from_level, o.initial) for o in store.history(ANN, 10) if o.detail_type == "ChurnRiskChanged"]
    assert risk == [("medium", False), (None, True)], "the later change, then the first scoring"


def test_marking_published_counts_each_announcement_once(profiles):
    contacts, store = profiles
    seen(contacts, ANN)
    first = scored(DAY, "new", "low")
    changes = announcements(str(ANN), None, first, NOW)
    store.record(ANN, first, changes, Previous(analytics=None))
    entered, risk = sorted(changes, key=lambda a: a.kind, reverse=True)
    store.mark_published(ANN, [(entered, Outcome(sent=True))])
    assert store.unpublished(ANN, {entered.key, risk.key}) == [risk]
    store.mark_published(ANN, [(entered, Outcome(sent=True)), (risk, Outcome(refused="ValidationException"))])
    assert store.unpublished(ANN, {entered.key, risk.key}) == []
    later = scored(DAY + timedelta(days=1), "new", "low")
    assert store.record(ANN, later, [], Previous(unchanged=True)).found == Held(first)
    assert len(store.history(ANN, 10)) == 2, "published announcements stay in the history"


def test_unknown_and_merged_away_contacts_are_refused_and_never_created(profiles):
    contacts, store = profiles
    seen(contacts, A1)
    contacts.claim(A1, ANN, NOW)
    first = scored(DAY, "new", "low")
    changes = announcements(str(A1), None, first, NOW)
    for contact, previous in (
        (A1, Previous(analytics=None)),
        (BOB, Previous(analytics=None)),
        (BOB, Previous(unchanged=True)),
    ):
        recorded = store.record(contact, first, changes, previous)
        assert (recorded.written, recorded.found) == (False, None)
    assert contacts.profile(BOB) is None and store.history(BOB, 5) == []
    assert store.unpublished(A1, {a.key for a in changes}) == []
    store.mark_published(BOB, [(changes[0], Outcome(sent=True))])
    assert contacts.profile(BOB) is None


def test_profile_writes_are_the_analytics_own(profiles, implementation):
    """``lastWriter`` is not tracking's: the stage function's trigger ignores the nightly pass."""
    contacts, store = profiles
    if implementation == "fake":
        pytest.skip("the fake has no lastWriter")
    seen(contacts, ANN)
    first = scored(DAY, "new", "low")
    store.record(ANN, first, announcements(str(ANN), None, first, NOW), Previous(analytics=None))
    item = store._db.get_item(
        TableName=store._table, Key={"pk": {"S": "C#user_id:ann"}, "sk": {"S": "PROFILE"}}
    )
    assert item["Item"]["lastWriter"] == {"S": "analytics"}
    assert item["Item"]["analytics"]["M"]["rfm"]["M"]["segment"] == {"S": "new"}


# --- the announcer -----------------------------------------------------------------------------------------


@pytest.fixture
def bus(implementation) -> Iterator[Callable[..., tuple[Any, Callable[[], list[dict[str, Any]]]]]]:
    """``bus(throttled=False)``: an announcer and what the bus's subscribers received (details)."""
    if implementation == "fake":

        def fake(throttled: bool = False) -> tuple[Any, Callable[[], list[dict[str, Any]]]]:
            announcer = MemoryAnnouncer(unavailable=100 if throttled else 0)
            return announcer, lambda: [json.loads(o.model_dump_json(by_alias=True)) for o in announcer.sent]

        yield fake
        return
    from moto import mock_aws

    from shared.adapters import aws

    with mock_aws():
        aws.reset()
        yield _aws_bus
        aws.reset()


def _aws_bus(throttled: bool = False) -> tuple[Any, Callable[[], list[dict[str, Any]]]]:
    from shared.adapters import aws
    from shared.adapters.analytics_announcer import EventBridgeAnnouncer

    events, sqs = aws.client("events"), aws.client("sqs")
    url = sqs.create_queue(QueueName="contract-analytics")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.create_event_bus(Name="contract-bus")
    pattern = json.dumps({"source": ["lifecycle"], "detail-type": ["SegmentChanged", "ChurnRiskChanged"]})
    events.put_rule(Name="analytics", EventBusName="contract-bus", EventPattern=pattern)
    events.put_targets(Rule="analytics", EventBusName="contract-bus", Targets=[{"Id": "q", "Arn": arn}])
    if throttled:

        def throttle(**_: Any) -> None:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException"}, "ResponseMetadata": {"HTTPStatusCode": 400}},
                "PutEvents",
            )

        events.meta.events.register("before-call.events.PutEvents", throttle)

    def received() -> list[dict[str, Any]]:
        found = []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                found.append(json.loads(message["Body"])["detail"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return found

    return EventBridgeAnnouncer(events, bus="contract-bus"), received


def outputs(count: int) -> list[Any]:
    found = []
    for n in range(count):
        contact = f"user_id:c{n}"
        found += [a.output for a in announcements(contact, None, scored(DAY, "champions", "low"), NOW)]
    return found


def test_every_announcement_goes_on_the_bus_in_batches_with_an_outcome_each(bus):
    announcer, received = bus()
    sent = outputs(12)
    assert announcer.announce(sent) == [Outcome(sent=True)] * 24
    details = received()
    assert sorted(d["event_id"] for d in details) == sorted(o.event_id for o in sent)
    segment = next(d for d in details if d["event_id"] == sent[0].event_id)
    assert segment == json.loads(sent[0].model_dump_json(by_alias=True))
    assert (
        segment["segment"] == "rfm:champions" and segment["from"] is None and segment["to"] == "rfm:champions"
    )
    assert all(d["initial"] is True for d in details), "first scorings, marked on the bus"


def test_a_throttled_bus_leaves_every_announcement_to_retry(bus):
    announcer, received = bus(throttled=True)
    outcomes = announcer.announce(outputs(2))
    assert [o.done for o in outcomes] == [False] * 4 and received() == []
