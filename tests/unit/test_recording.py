from datetime import UTC, datetime

import pytest

from shared.contacts.changes import identity_links
from shared.contacts.identity import ContactId
from shared.errors import DependencyUnavailable
from shared.scoring.decay import Decay
from shared.tracking.messages import parse_calls
from shared.tracking.wire import Limits
from shared.usecases.recording import ChangeCapacity, link, record
from tests.fakes import MemoryContactStore

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DECAY = Decay()


def calls(*batch):
    return parse_calls("/v1/batch", {"batch": list(batch)}, received_at=NOW, limits=Limits())


def test_each_event_once_even_when_repeated_in_the_batch_or_replayed() -> None:
    store = MemoryContactStore()
    batch = calls(
        {"type": "page", "userId": "ann", "messageId": "m1"},
        {"type": "page", "userId": "ann", "messageId": "m1"},
        {"type": "page", "userId": "bob", "messageId": "m2"},
    )
    first = record(batch, store, NOW)
    assert (first.accepted, first.duplicates) == (2, 1)
    again = record(batch, store, NOW)
    assert (again.accepted, again.duplicates) == (0, 3)
    assert store.profile(ContactId.user("ann")).counts == {"visit": 1}


def test_partial_replay_applies_only_the_new_events() -> None:
    store = MemoryContactStore()
    record(calls({"type": "page", "userId": "ann", "messageId": "m1"}), store, NOW)
    result = record(
        calls(
            {"type": "page", "userId": "ann", "messageId": "m1"},
            {"type": "page", "userId": "ann", "messageId": "m2"},
        ),
        store,
        NOW,
    )
    assert (result.accepted, result.duplicates) == (1, 1)
    assert store.profile(ContactId.user("ann")).event_count == 2


def test_identify_merges_anonymous_history_once() -> None:
    store = MemoryContactStore()
    record(calls({"type": "page", "anonymousId": "a1", "messageId": "p1"}), store, NOW)
    identify = calls(
        {"type": "identify", "userId": "ann", "anonymousId": "a1", "messageId": "i1", "traits": {"x": 1}}
    )
    assert record(identify, store, NOW).merges == 1  # asked for, in the identify's own write
    assert store.profile(ContactId.user("ann")).counts == {"identified": 1}
    assert store.deliver_merges(NOW) == 1
    ann = store.profile(ContactId.user("ann"))
    assert ann.counts == {"visit": 1, "identified": 1}
    assert ann.anonymous_ids == {"a1"}
    assert set(store.events_by_contact[ContactId.user("ann")]) == {"p1", "i1"}
    assert record(identify, store, NOW).merges == 0  # replayed identify: no second merge
    assert store.deliver_merges(NOW) == 0
    assert store.profile(ContactId.user("ann")).counts == {"visit": 1, "identified": 1}


def test_anonymous_events_after_the_merge_are_rerouted() -> None:
    store = MemoryContactStore()
    record(calls({"type": "identify", "userId": "ann", "anonymousId": "a1", "messageId": "i1"}), store, NOW)
    store.deliver_merges(NOW)
    result = record(calls({"type": "page", "anonymousId": "a1", "messageId": "p9"}), store, NOW)
    assert result.accepted == 1
    assert "p9" in store.events_by_contact[ContactId.user("ann")]


def test_an_anonymous_id_stays_with_its_first_user() -> None:
    store = MemoryContactStore()
    record(calls({"type": "identify", "userId": "ann", "anonymousId": "a1"}), store, NOW)
    store.deliver_merges(NOW)
    assert not link(ContactId.anonymous("a1"), ContactId.user("eve"), store, NOW, DECAY)
    assert store.profile(ContactId.anonymous("a1")).merged_into == "user_id:ann"


def test_alias_links_previous_user_and_anonymous_ids() -> None:
    (alias,) = calls({"type": "alias", "userId": "new", "previousId": "old"})
    assert identity_links([alias]) == [
        (ContactId.user("old"), ContactId.user("new")),
        (ContactId.anonymous("old"), ContactId.user("new")),
    ]


def test_merge_cycles_are_refused() -> None:
    store = MemoryContactStore()
    record(calls({"type": "page", "userId": "a"}, {"type": "page", "userId": "b"}), store, NOW)
    assert link(ContactId.user("a"), ContactId.user("b"), store, NOW, DECAY)
    assert not link(ContactId.user("b"), ContactId.user("a"), store, NOW, DECAY)
    assert store.profile(ContactId.user("b")).merged_into is None


def test_a_repeated_identify_costs_one_conditional_write() -> None:
    store = MemoryContactStore()
    record(calls({"type": "identify", "userId": "ann", "anonymousId": "a1"}), store, NOW)
    store.deliver_merges(NOW)

    reads = []
    store.profile = lambda contact, _p=store.profile: reads.append(contact) or _p(contact)  # type: ignore[method-assign]
    assert not link(ContactId.anonymous("a1"), ContactId.user("ann"), store, NOW, DECAY)
    assert reads == []


def test_a_merge_cut_short_after_the_claim_finishes_on_the_next_identify() -> None:
    store = MemoryContactStore()
    record(calls({"type": "page", "anonymousId": "a1", "messageId": "p1"}), store, NOW)
    store.claim(ContactId.anonymous("a1"), ContactId.user("ann"), NOW)  # the first attempt died here
    record(calls({"type": "identify", "userId": "ann", "anonymousId": "a1", "messageId": "i1"}), store, NOW)
    assert store.deliver_merges(NOW) == 1
    assert store.profile(ContactId.user("ann")).counts == {"visit": 1, "identified": 1}


def test_large_groups_are_split_into_changes_the_store_can_apply() -> None:
    store = MemoryContactStore(capacity=ChangeCapacity(max_events=10, max_keys=300))
    result = record(
        calls(*({"type": "page", "userId": "ann", "messageId": f"m{i}"} for i in range(25))), store, NOW
    )
    assert result.accepted == 25
    assert store.writes == 3


def test_gives_up_with_retryable_error_when_the_store_keeps_refusing() -> None:
    class Refusing(MemoryContactStore):
        def commit(self, changes):
            from shared.usecases.recording import CommitOutcome

            return [CommitOutcome(committed=False) for _ in changes]

    with pytest.raises(DependencyUnavailable):
        record(calls({"type": "page", "userId": "ann"}), Refusing(), NOW)


def test_a_retraction_takes_back_exactly_what_recording_added() -> None:
    """Counters, revenue, lifetime points and each decaying sum, as ``plan_change`` computed them."""
    from dataclasses import asdict
    from decimal import Decimal

    from shared.contacts.changes import plan_change
    from shared.usecases.recording import retraction
    from shared.contacts.views import LedgerLine, StoredEvent
    from shared.scoring.decay import Decay
    from shared.scoring.engine import ScoringContext
    from tests.fakes import StaticRules

    (order,) = calls(
        {
            "type": "track",
            "userId": "ann",
            "event": "Order Completed",
            "messageId": "o1",
            "timestamp": "2026-11-20T08:00:00Z",
            "properties": {"revenue": 12.5},
        }
    )
    decay = Decay()
    change = plan_change(ContactId.user("ann"), [order], ScoringContext(StaticRules().book(), decay))
    assert change.scored.totals, "the shipped rules score a purchase"
    stored = StoredEvent(
        message_id="o1",
        call="track",
        behaviour=order.behaviour.value,
        timestamp=order.timestamp,
        received_at=change.last_seen,
        revenue=order.revenue,
        ledger=[LedgerLine(**asdict(c)) for c in change.scored.ledger["o1"]],
    )
    back = retraction(stored, decay, limited=frozenset({c.rule_id for c in change.scored.ledger["o1"]}))
    assert back.counts == {b: -c for b, c in change.counts.items()} and back.event_count == -1
    assert back.revenue == -change.revenue == Decimal("-12.5")
    assert {d: s.total for d, s in back.scores.items()} == {d: -p for d, p in change.scored.totals.items()}
    sums = {(d, k, b): v for d, s in back.scores.items() for k, bs in s.sums.items() for b, v in bs.items()}
    assert sums.keys() == change.scored.sums.keys()
    assert all(sums[key] == pytest.approx(-value) for key, value in change.scored.sums.items())
    assert set(back.rule_uses.values()) == {-1}
