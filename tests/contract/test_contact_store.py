"""The contact store (recording's port): one atomic change per contact, each event once by messageId."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from shared.contacts.identity import ContactId
from shared.scoring.rules import Limit, StoredRule
from shared.usecases.recording import MAX_ROUNDS
from tests.contract.helpers import NOW, change
from tests.fakes import MemoryContactStore

ANN, BOB, A1 = ContactId.user("ann"), ContactId.user("bob"), ContactId.anonymous("a1")


@pytest.fixture
def store(implementation, contact_tables):
    if implementation == "fake":
        return MemoryContactStore()

    tables = contact_tables()
    return tables.stores()


def identify(message_id: str, **traits):
    return {"type": "identify", "userId": "ann", "messageId": message_id, "traits": traits}


def test_an_unknown_contact_has_no_profile(store):
    assert store.profile(ANN) is None


def test_a_committed_change_reads_back_whole(store):
    earlier = (NOW - timedelta(hours=2)).isoformat()
    ann = change(
        ANN,
        {"type": "page", "userId": "ann", "anonymousId": "a1", "messageId": "p1", "timestamp": earlier},
        identify("i1", email="ann@example.com", plan="pro", tags=["vip"]),
        {"type": "group", "userId": "ann", "groupId": "acme", "messageId": "g1"},
        {
            "type": "track",
            "userId": "ann",
            "event": "Order Completed",
            "messageId": "o1",
            "properties": {"revenue": 12.5},
        },
    )
    assert ann.scored.totals, "the shipped rules score a purchase"
    assert [o.committed for o in store.commit([ann])] == [True]
    record = store.profile(ANN)
    assert record.contact_id == "user_id:ann" and record.user_id == "ann"
    assert record.traits == {"email": "ann@example.com", "plan": "pro"}
    assert set(record.tags) == {"vip"} and record.groups == {"acme"}
    assert record.anonymous_ids == {"a1"}
    assert record.counts == {"visit": 1, "identified": 1, "grouped": 1, "purchase": 1}
    assert record.event_count == 4 and record.revenue_total == Decimal("12.5")
    assert record.first_seen_at == NOW - timedelta(hours=2) and record.last_seen_at == NOW
    assert record.last_purchase_at == NOW
    assert {d: s.total for d, s in record.scores.items()} == ann.scored.totals
    sums = {(d, k, b): v for d, s in record.scores.items() for k, bs in s.sums.items() for b, v in bs.items()}
    assert sums == pytest.approx(dict(ann.scored.sums))
    assert record.merged_into is None and record.stage is None and record.stage_seq == 0


def test_later_changes_add_up_and_unset_traits(store):
    store.commit([change(ANN, identify("i1", email="a@x.example", plan="pro"))])
    store.commit([change(ANN, identify("i2", plan=None, tags=["vip"]))])
    store.commit([change(ANN, identify("i3", tags=["-vip", "beta"]))])
    record = store.profile(ANN)
    assert record.traits == {"email": "a@x.example"} and set(record.tags) == {"beta"}
    assert record.counts == {"identified": 3} and record.event_count == 3


def test_an_event_already_recorded_is_reported_and_nothing_of_the_change_is_applied(store):
    store.commit([change(ANN, {"type": "page", "userId": "ann", "messageId": "m1"})])
    (outcome,) = store.commit(
        [
            change(
                ANN,
                {"type": "page", "userId": "ann", "messageId": "m1"},
                {"type": "page", "userId": "ann", "messageId": "m2"},
            )
        ]
    )
    assert not outcome.committed and outcome.duplicates == {"m1"}
    assert store.profile(ANN).event_count == 1


def test_changes_of_several_contacts_commit_together(store):
    outcomes = store.commit(
        [change(c, {"type": "page", "userId": c.value, "messageId": f"p-{c.value}"}) for c in (ANN, BOB)]
    )
    assert [o.committed for o in outcomes] == [True, True]
    assert store.profile(ANN).event_count == store.profile(BOB).event_count == 1


def test_a_change_of_the_full_capacity_commits_in_one_write(store):
    size = store.capacity.max_events
    big = change(ANN, *({"type": "page", "userId": "ann", "messageId": f"m{i}"} for i in range(size)))
    assert [o.committed for o in store.commit([big])] == [True]
    assert store.profile(ANN).event_count == size


def test_a_merged_away_contact_refuses_changes_and_names_the_contact_it_joined(store):
    store.commit([change(A1, {"type": "page", "anonymousId": "a1", "messageId": "p1"})])
    store.claim(A1, ANN, NOW)
    (outcome,) = store.commit([change(A1, {"type": "page", "anonymousId": "a1", "messageId": "p2"})])
    assert not outcome.committed and outcome.merged_into == ANN
    assert store.profile(A1).event_count == 1 and store.profile(A1).merged_into == "user_id:ann"


def test_a_change_too_big_for_one_write_is_reported_and_nothing_of_the_commit_is_written(store):
    many = change(ANN, *(identify(f"i{n}", **{f"t{n}-{i}": i for i in range(150)}) for n in range(4)))
    small = change(BOB, {"type": "page", "userId": "bob", "messageId": "p1"})
    outcomes = store.commit([small, many])
    assert [o.oversized for o in outcomes] == [False, True]
    assert not any(o.committed for o in outcomes)
    assert store.profile(ANN) is None and store.profile(BOB) is None
    fits = change(ANN, identify("i1", **{f"t{i}": i for i in range(150)}))
    assert [o.committed for o in store.commit([fits])] == [True]


def test_traits_over_the_cap_are_refused_naming_the_limit(store):
    for name in ("a", "b"):
        assert store.commit([change(ANN, identify(f"i-{name}", **{name: "x" * 30_000}))])[0].committed
    (refused,) = store.commit([change(ANN, identify("i-c", c="x" * 30_000))])
    assert not refused.committed and "64 KB" in (refused.refused or "")
    assert set(store.profile(ANN).traits) == {"a", "b"}


def test_a_replaced_trait_near_the_cap_counts_once(store):
    for name in ("a", "b"):
        assert store.commit([change(ANN, identify(f"i-{name}", **{name: "x" * 30_000}))])[0].committed
    replace = change(ANN, identify("i-a2", a="y" * 30_000))
    # the adapter's bound may over-count a replaced trait: it may ask for a retry (not committed, not
    # refused) after checking the real traits, as recording does up to MAX_ROUNDS times
    for _ in range(MAX_ROUNDS):
        (outcome,) = store.commit([replace])
        assert outcome.refused is None
        if outcome.committed:
            break
    assert store.profile(ANN).traits["a"] == "y" * 30_000


def test_a_limited_rule_refuses_a_change_past_its_limit_and_reports_the_uses(store):
    once = StoredRule(id="once", behaviour="product_viewed", points=5, limit=Limit(per_contact=1), version=1)
    viewed = {"type": "track", "userId": "ann", "event": "Product Viewed"}
    assert store.commit([change(ANN, {**viewed, "messageId": "v1"}, rules=[once])])[0].committed
    (outcome,) = store.commit([change(ANN, {**viewed, "messageId": "v2"}, rules=[once])])
    assert not outcome.committed and outcome.rule_uses["once"].count == 1
    record = store.profile(ANN)
    assert record.rule_uses == {"once": (1, None)} and record.scores["global"].total == 5
