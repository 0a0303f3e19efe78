"""The event log (tracking's port) and the contact store (the aggregation's port), with the events
table's stream between them.

The log appends each call once by its key (its messageId and the time it states), and its stream
delivers every new event once, in order; the contact store folds changes into profiles blindly, each
once by its stream positions, refuses what a merged-away contact, a rule's limit or the trait cap
forbid, and copies re-routed events into the log of the contact they now belong to, each once.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from shared.contacts.identity import ContactId
from shared.scoring.rules import Limit, StoredRule
from shared.usecases.recording import MAX_ROUNDS, NewEntry
from tests.contract.helpers import NOW, calls, change, entries, planned, position, positioned
from tests.fakes import MemoryContactStore, as_logged

ANN, BOB, A1 = ContactId.user("ann"), ContactId.user("bob"), ContactId.anonymous("a1")
EARLIER = (NOW - timedelta(hours=2)).isoformat()


@pytest.fixture
def store(implementation, contact_tables):
    if implementation == "fake":
        return MemoryContactStore()

    tables = contact_tables()
    return tables.stores()


def identify(message_id: str, **traits):
    return {"type": "identify", "userId": "ann", "messageId": message_id, "traits": traits}


def page(contact: ContactId, message_id: str, **fields):
    who = {"userId": contact.value} if contact.kind == "user_id" else {"anonymousId": contact.value}
    return {"type": "page", **who, "messageId": message_id, **fields}


# --- the event log and its stream ------------------------------------------------------------------------


def test_each_call_is_appended_once_by_its_key_and_a_retry_is_a_duplicate(store):
    first = entries(ANN, page(ANN, "untimed"), page(ANN, "timed", timestamp=EARLIER))
    assert store.append(first) == frozenset()
    # an SDK's retry: the same messageId and the same stated time, received later
    retry = entries(
        ANN, page(ANN, "untimed"), page(ANN, "timed", timestamp=EARLIER), at=NOW + timedelta(minutes=5)
    )
    assert store.append(retry) == {"untimed", "timed"}
    assert store.count_events(ANN) == 2
    assert sorted(new.event.message_id for new in store.new_events()) == ["timed", "untimed"]
    assert store.new_events() == [], "each new event is delivered once"


def test_the_same_message_id_stating_another_time_is_another_event(store):
    later = (NOW - timedelta(hours=1)).isoformat()
    assert store.append(entries(ANN, page(ANN, "m1", timestamp=EARLIER))) == frozenset()
    assert store.append(entries(ANN, page(ANN, "m1", timestamp=later))) == frozenset()
    assert store.append(entries(BOB, page(BOB, "m1", timestamp=EARLIER))) == frozenset(), (
        "logs are per contact"
    )
    news = store.new_events()
    assert [(n.contact, n.event.message_id) for n in news] == [(ANN, "m1"), (ANN, "m1"), (BOB, "m1")]
    assert [n.event.stated_time for n in news] == [
        NOW - timedelta(hours=2),
        NOW - timedelta(hours=1),
        NOW - timedelta(hours=2),
    ]
    assert len({n.key for n in news if n.contact == ANN}) == 2
    assert store.count_events(ANN) == 2


def test_the_stream_delivers_each_new_event_as_recorded(store):
    viewed = {"type": "track", "userId": "ann", "event": "Product Viewed", "properties": {"sku": "x"}}
    appended = entries(
        ANN,
        {**viewed, "messageId": "v1", "timestamp": EARLIER, "context": {"timezone": "Europe/Oslo"}},
        identify("i1", email="ann@example.com", tags=["vip"]),
        {**viewed, "messageId": "v2"},
    )
    assert any(entry.ledger for entry in appended), "the shipped rules score a product view"
    store.append(appended)  # the adapter's puts run side by side: the stream holds them in any order
    news = {n.event.message_id: n for n in store.new_events()}
    assert {m: n.event for m, n in news.items()} == {e.event.message_id: as_logged(e.event) for e in appended}
    assert {m: n.ledger for m, n in news.items()} == {e.event.message_id: e.ledger for e in appended}
    assert {n.contact for n in news.values()} == {ANN}
    assert len({n.position for n in news.values()}) == 3 and len({n.key for n in news.values()}) == 3


def test_an_append_after_a_delivery_comes_later_in_the_stream(store):
    store.append(entries(ANN, page(ANN, "p1")))
    (first,) = store.new_events()
    store.append(entries(BOB, page(BOB, "p2")))
    (second,) = store.new_events()
    assert first.position < second.position


def test_fits_tells_a_change_one_profile_write_holds_from_one_it_does_not(store):
    assert store.fits(change(ANN, identify("i1", **{f"t{i}": i for i in range(150)})))
    many = (identify(f"i{n}", **{f"t{n}-{i}": i for i in range(150)}) for n in range(4))
    assert not store.fits(change(ANN, *many))


def test_forgotten_events_leave_the_log_and_unknown_keys_are_ignored(store):
    store.append(entries(A1, page(A1, "p1"), page(A1, "p2", timestamp=EARLIER)))
    news = sorted(store.new_events(), key=lambda n: n.event.message_id)
    store.forget(A1, [news[1].key, "M#never-recorded"])
    assert store.count_events(A1) == 1
    store.forget(A1, [news[1].key])
    assert store.count_events(A1) == 1
    assert store.append(entries(A1, page(A1, "p2", timestamp=EARLIER))) == frozenset(), (
        "its key is free again"
    )


# --- the contact store --------------------------------------------------------------------------------


def test_an_unknown_contact_has_no_profile(store):
    assert store.profile(ANN) is None


def test_a_committed_change_reads_back_whole(store):
    ann = change(
        ANN,
        {"type": "page", "userId": "ann", "anonymousId": "a1", "messageId": "p1", "timestamp": EARLIER},
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
    assert [o.committed for o in store.commit([positioned(ann, 1, 4)])] == [True]
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
    store.commit([positioned(change(ANN, identify("i1", email="a@x.example", plan="pro")), 1)])
    store.commit([positioned(change(ANN, identify("i2", plan=None, tags=["vip"])), 2)])
    store.commit([positioned(change(ANN, identify("i3", tags=["-vip", "beta"])), 3)])
    record = store.profile(ANN)
    assert record.traits == {"email": "a@x.example"} and set(record.tags) == {"beta"}
    assert record.counts == {"identified": 3} and record.event_count == 3


def test_a_change_applies_once_by_its_stream_positions(store):
    first = positioned(change(ANN, page(ANN, "p1"), page(ANN, "p2")), 3, 5)
    assert store.commit([first])[0].committed
    (again,) = store.commit([first])
    assert not again.committed and again.applied_through == position(5)
    # a later batch that starts with records folded in before is refused whole: the caller drops those
    (overlapping,) = store.commit([positioned(change(ANN, page(ANN, "p2"), page(ANN, "p3")), 5, 6)])
    assert not overlapping.committed and overlapping.applied_through == position(5)
    assert store.profile(ANN).event_count == 2
    assert store.commit([positioned(change(ANN, page(ANN, "p3")), 6)])[0].committed
    assert store.commit([positioned(change(ANN, page(ANN, "p4")), 10)])[0].committed
    (older,) = store.commit([positioned(change(ANN, page(ANN, "p9")), 7)])
    assert older.applied_through == position(10)
    assert store.profile(ANN).event_count == 4


def test_changes_of_several_contacts_commit_together(store):
    outcomes = store.commit(
        [positioned(change(c, page(c, f"p-{c.value}")), n) for n, c in enumerate((ANN, BOB), start=1)]
    )
    assert [o.committed for o in outcomes] == [True, True]
    assert store.profile(ANN).event_count == store.profile(BOB).event_count == 1


def test_a_change_of_the_full_capacity_commits_in_one_write(store):
    size = store.capacity.max_events
    big = change(ANN, *(page(ANN, f"m{i}") for i in range(size)))
    assert [o.committed for o in store.commit([positioned(big, 1, size)])] == [True]
    assert store.profile(ANN).event_count == size


def test_a_merged_away_contact_refuses_changes_naming_its_contact_and_what_it_folded_in(store):
    store.commit([positioned(change(A1, page(A1, "p1")), 4)])
    store.claim(A1, ANN, NOW)
    (outcome,) = store.commit([positioned(change(A1, page(A1, "p2")), 7)])
    assert not outcome.committed and outcome.merged_into == ANN
    assert outcome.applied_through == position(4)
    assert store.profile(A1).event_count == 1 and store.profile(A1).merged_into == "user_id:ann"


def test_a_rerouted_change_copies_its_events_into_the_contact_and_counts_once(store):
    store.commit([positioned(change(ANN, page(ANN, "own")), 50)])
    store.append(entries(A1, page(A1, "p1", timestamp=EARLIER), page(A1, "p2")))
    news = sorted(store.new_events(), key=lambda n: n.event.timestamp)
    copies = {n.event.message_id: n.item for n in news}
    store.claim(A1, ANN, NOW)
    # re-routed events keep their own positions, which the target's watermark does not guard
    rerouted = positioned(planned(ANN, [n.event for n in news]), 1, 2, origin=A1)
    assert store.commit([rerouted], copies)[0].committed
    assert store.count_events(ANN) == 2, "copied into the contact's log"
    assert store.count_events(A1) == 2, "the originals stay until forgotten"
    assert store.new_events() == [], "copies are not new events"
    (again,) = store.commit([rerouted], copies)
    assert not again.committed and again.duplicates == {"p1", "p2"}
    ann = store.profile(ANN)
    assert ann.event_count == 3 and ann.counts == {"visit": 3}
    store.forget(A1, [n.key for n in news])
    assert store.count_events(A1) == 0 and store.count_events(ANN) == 2


def test_a_rerouted_change_with_one_copy_held_already_writes_nothing(store):
    store.append(entries(A1, page(A1, "p1"), page(A1, "p2", timestamp=EARLIER)))
    news = sorted(store.new_events(), key=lambda n: n.event.message_id)
    copies = {n.event.message_id: n.item for n in news}
    store.claim(A1, ANN, NOW)
    assert store.commit([positioned(planned(ANN, [news[0].event]), 1, origin=A1)], copies)[0].committed
    (outcome,) = store.commit([positioned(planned(ANN, [n.event for n in news]), 1, 2, origin=A1)], copies)
    assert not outcome.committed and outcome.duplicates == {"p1"}
    assert store.profile(ANN).event_count == 1 and store.count_events(ANN) == 1
    assert store.commit([positioned(planned(ANN, [news[1].event]), 2, origin=A1)], copies)[0].committed
    assert store.profile(ANN).event_count == 2 and store.count_events(ANN) == 2


def test_a_rerouted_event_the_merge_moved_uncounted_counts_once_and_a_replay_not_at_all(store):
    """The merge moved a call its visitor's profile had not counted (recorded between the merge's count
    and its move): the re-route finds the merge's copy of that very call (same arrival) and counts it,
    once. A replay of the call (a new arrival) finds the copy and counts nothing."""
    store.append(entries(A1, page(A1, "p1")))
    (new,) = store.new_events()
    store.claim(A1, ANN, NOW)
    assert store.move_events(A1, ANN, 10).count == 1  # the merge's copy: not counted by anyone yet
    rerouted = positioned(planned(ANN, [new.event]), 1, origin=A1)
    assert store.commit([rerouted], {"p1": new.item})[0].committed
    (again,) = store.commit([rerouted], {"p1": new.item})
    assert not again.committed and again.duplicates == {"p1"}
    assert store.profile(ANN).event_count == 1
    store.append(entries(A1, page(A1, "p1"), at=NOW + timedelta(seconds=30)))  # the SDK's late retry
    (replay,) = store.new_events()
    (outcome,) = store.commit([positioned(planned(ANN, [replay.event]), 2, origin=A1)], {"p1": replay.item})
    assert not outcome.committed and outcome.duplicates == {"p1"}
    assert store.profile(ANN).event_count == 1 and store.count_events(ANN) == 1


def test_a_rerouted_event_moved_uncounted_through_a_chain_of_merges_counts_once(store):
    """The visitor merged into bob, bob into ann, before the visitor's call was counted: each merge moves
    the copy and names itself as its source (the copy in ann's log says bob). The re-route from the
    visitor still finds that very put, counted by nobody, and counts it, once; a replay counts nothing."""
    store.append(entries(A1, page(A1, "p1")))
    (new,) = store.new_events()
    store.claim(A1, BOB, NOW)
    assert store.move_events(A1, BOB, 10).count == 1
    store.claim(BOB, ANN, NOW)
    assert store.move_events(BOB, ANN, 10).count == 1  # the copy, moved a second time: from bob now
    rerouted = positioned(planned(ANN, [new.event]), 1, origin=A1)
    assert store.commit([rerouted], {"p1": new.item})[0].committed
    (again,) = store.commit([rerouted], {"p1": new.item})
    assert not again.committed and again.duplicates == {"p1"}
    store.append(entries(A1, page(A1, "p1"), at=NOW + timedelta(seconds=30)))  # the SDK's late retry
    (replay,) = store.new_events()
    (outcome,) = store.commit([positioned(planned(ANN, [replay.event]), 2, origin=A1)], {"p1": replay.item})
    assert not outcome.committed and outcome.duplicates == {"p1"}
    assert store.profile(ANN).event_count == 1 and store.count_events(ANN) == 1


def test_the_merge_moving_an_event_a_re_route_counted_keeps_it_counted_once(store):
    """The re-route copied and counted the call; the merge then moves the visitor's original: it takes
    it as moved (no retraction, the copy keeps its mark), and the stream delivering it again counts nothing."""
    store.append(entries(A1, page(A1, "p1")))
    (new,) = store.new_events()
    store.claim(A1, ANN, NOW)
    rerouted = positioned(planned(ANN, [new.event]), 1, origin=A1)
    assert store.commit([rerouted], {"p1": new.item})[0].committed
    moved = store.move_events(A1, ANN, 10)
    assert moved.count == 1 and moved.duplicates == ()
    assert store.count_events(A1) == 0 and store.count_events(ANN) == 1
    (again,) = store.commit([rerouted], {"p1": new.item})
    assert not again.committed and again.duplicates == {"p1"}
    assert store.profile(ANN).event_count == 1


def test_a_change_rerouted_to_a_contact_merged_away_too_names_the_next_one(store):
    store.commit([positioned(change(ANN, page(ANN, "own")), 1)])
    store.append(entries(A1, page(A1, "p1")))
    (new,) = store.new_events()
    store.claim(A1, ANN, NOW)
    store.claim(ANN, BOB, NOW)
    (outcome,) = store.commit([positioned(planned(ANN, [new.event]), 2, origin=A1)], {"p1": new.item})
    assert not outcome.committed and outcome.merged_into == BOB and not outcome.duplicates
    assert store.count_events(ANN) == 0 and store.profile(ANN).event_count == 1


def test_a_change_too_big_for_one_write_is_reported_and_not_written(store):
    many = change(ANN, *(identify(f"i{n}", **{f"t{n}-{i}": i for i in range(150)}) for n in range(4)))
    small = change(BOB, page(BOB, "p1"))
    outcomes = store.commit([positioned(small, 1), positioned(many, 2, 5)])
    assert [(o.committed, o.oversized) for o in outcomes] == [(True, False), (False, True)]
    assert store.profile(ANN) is None and store.profile(BOB).event_count == 1
    fits = change(ANN, identify("i1", **{f"t{i}": i for i in range(150)}))
    assert [o.committed for o in store.commit([positioned(fits, 2)])] == [True]


def test_traits_over_the_cap_are_refused_naming_the_limit(store):
    for n, name in enumerate(("a", "b"), start=1):
        assert store.commit([positioned(change(ANN, identify(f"i-{name}", **{name: "x" * 30_000})), n)])[
            0
        ].committed
    (refused,) = store.commit([positioned(change(ANN, identify("i-c", c="x" * 30_000)), 3)])
    assert not refused.committed and "64 KB" in (refused.refused or "")
    assert set(store.profile(ANN).traits) == {"a", "b"}
    # the same calls without their traits are welcome (what the aggregation does next)
    (without,) = calls(identify("i-c", c="x" * 30_000))
    assert store.commit([positioned(planned(ANN, [replace(without, traits={})]), 3)])[0].committed
    assert store.profile(ANN).counts == {"identified": 3}


def test_a_timezone_hint_past_the_cap_is_refused_and_the_call_without_it_welcome(store):
    traits = {"a": "x" * 30_000, "b": "x" * 30_000, "c": "x" * 5_520}  # 7 bytes below the cap
    for n, (name, value) in enumerate(traits.items(), start=1):
        assert store.commit([positioned(change(ANN, identify(f"i-{name}", **{name: value})), n)])[0].committed
    (hinted,) = calls(page(ANN, "p1", context={"timezone": "Europe/Oslo"}))
    (refused,) = store.commit([positioned(planned(ANN, [hinted]), 4)])
    assert not refused.committed and "64 KB" in (refused.refused or "")
    assert store.commit([positioned(planned(ANN, [replace(hinted, context_timezone=None)]), 4)])[0].committed
    assert "timezone" not in store.profile(ANN).traits and store.profile(ANN).counts["visit"] == 1


def test_a_replaced_trait_near_the_cap_counts_once(store):
    for n, name in enumerate(("a", "b"), start=1):
        assert store.commit([positioned(change(ANN, identify(f"i-{name}", **{name: "x" * 30_000})), n)])[
            0
        ].committed
    replaced = positioned(change(ANN, identify("i-a2", a="y" * 30_000)), 3)
    # the adapter's bound may over-count a replaced trait: it may ask for a retry (not committed, not
    # refused) after checking the real traits, as the aggregation does up to MAX_ROUNDS times
    for _ in range(MAX_ROUNDS):
        (outcome,) = store.commit([replaced])
        assert outcome.refused is None and outcome.applied_through is None
        if outcome.committed:
            break
    assert store.profile(ANN).traits["a"] == "y" * 30_000
    assert store.profile(ANN).event_count == 3


def test_a_limited_rule_refuses_a_change_past_its_limit_and_reports_the_uses(store):
    once = StoredRule(id="once", behaviour="product_viewed", points=5, limit=Limit(per_contact=1), version=1)
    viewed = {"type": "track", "userId": "ann", "event": "Product Viewed"}
    assert store.commit([positioned(change(ANN, {**viewed, "messageId": "v1"}, rules=[once]), 1)])[
        0
    ].committed
    (outcome,) = store.commit([positioned(change(ANN, {**viewed, "messageId": "v2"}, rules=[once]), 2)])
    assert not outcome.committed and outcome.rule_uses["once"].count == 1 and outcome.refused is None
    record = store.profile(ANN)
    assert record.rule_uses == {"once": (1, None)} and record.scores["global"].total == 5
    assert record.event_count == 1


def test_a_ledger_rewritten_is_what_the_log_keeps(store):
    appended = entries(ANN, {"type": "track", "userId": "ann", "event": "Product Viewed", "messageId": "v1"})
    store.append(appended)
    (new,) = store.new_events()
    assert new.ledger
    store.rewrite_ledger(ANN, new.key, ())
    store.rewrite_ledger(ANN, "M#never-recorded", new.ledger)  # moved by a merge meanwhile: nothing to do
    assert store.count_events(ANN) == 1
    assert store.new_events() == [], "a corrected ledger is no new event"


def test_an_entry_for_one_contact_is_not_a_duplicate_of_the_same_call_for_another(store):
    (event,) = calls(page(ANN, "shared"))
    assert store.append([NewEntry(ANN, event, ()), NewEntry(A1, event, ())]) == frozenset()
    assert {n.contact for n in store.new_events()} == {ANN, A1}
