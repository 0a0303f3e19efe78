"""Recording (the request path) and merging identities.

``record`` appends each new call once to its contact's log with the ledger it is expected to score,
and writes nothing else; the profiles change when the aggregation folds the log's stream in
(``MemoryContactStore.deliver_events``), and merges run when the contacts table's stream delivers
the requests (``deliver_merges``).
"""

from datetime import UTC, datetime, timedelta

import pytest

from shared.contacts.changes import identity_links
from shared.contacts.identity import ContactId
from shared.errors import PayloadTooLarge
from shared.scoring.decay import Decay
from shared.scoring.engine import ScoringContext
from shared.scoring.rules import Limit, StoredRule
from shared.tracking.messages import parse_calls
from shared.tracking.wire import Limits
from shared.usecases.aggregation import aggregate
from shared.usecases.recording import link, record
from tests.fakes import MemoryContactLog, MemoryContactStore, StaticRules

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DECAY = Decay()
ANN, BOB, EVE = ContactId.user("ann"), ContactId.user("bob"), ContactId.user("eve")
A1 = ContactId.anonymous("a1")
SCORING = ScoringContext(StaticRules().book(), DECAY)


def calls(*batch, at=NOW):
    return parse_calls("/v1/batch", {"batch": list(batch)}, received_at=at, limits=Limits())


def page(message_id, *, user=None, anonymous=None, **fields):
    who = {"userId": user} if user else {"anonymousId": anonymous}
    return {"type": "page", **who, "messageId": message_id, **fields}


def identify(message_id=None, *, user="ann", anonymous=None, **traits):
    call = {"type": "identify", "userId": user, "traits": traits}
    if anonymous:
        call["anonymousId"] = anonymous
    if message_id:
        call["messageId"] = message_id
    return call


def folded(store, **kwargs):
    """Deliver the events recorded so far to the aggregation; they must all fold in."""
    result = store.deliver_events(**kwargs)
    assert result.failed_from is None, result.errors
    return result


# --- record: the request path ---------------------------------------------------------------------------


def test_each_event_once_even_when_repeated_in_the_batch_or_replayed() -> None:
    store = MemoryContactStore()
    batch = calls(page("m1", user="ann"), page("m1", user="ann"), page("m2", user="bob"))
    first = record(batch, store, NOW)
    assert (first.accepted, first.duplicates) == (2, 1)
    again = record(batch, store, NOW + timedelta(seconds=3))
    assert (again.accepted, again.duplicates) == (0, 3)
    assert folded(store).events == 2
    assert store.profile(ANN).counts == {"visit": 1}


def test_partial_replay_appends_only_the_new_events() -> None:
    store = MemoryContactStore()
    record(calls(page("m1", user="ann")), store, NOW)
    result = record(calls(page("m1", user="ann"), page("m2", user="ann")), store, NOW)
    assert (result.accepted, result.duplicates) == (1, 1)
    assert store.message_ids(ANN) == {"m1", "m2"}
    folded(store)
    assert store.profile(ANN).event_count == 2


def test_a_retry_is_known_by_its_message_id_and_the_time_it_states() -> None:
    store = MemoryContactStore()
    stated = (NOW - timedelta(minutes=5)).isoformat()
    assert record(calls(page("m1", user="ann", timestamp=stated)), store, NOW).accepted == 1
    # the SDK retries later with the same call: same messageId, same timestamp
    retry = record(calls(page("m1", user="ann", timestamp=stated), at=NOW + timedelta(minutes=1)), store, NOW)
    assert (retry.accepted, retry.duplicates) == (0, 1)
    # the same messageId stating another time is another call
    other = record(calls(page("m1", user="ann", timestamp=NOW.isoformat())), store, NOW)
    assert (other.accepted, other.duplicates) == (1, 0)
    assert folded(store).events == 2


def test_recording_writes_the_log_only_with_the_ledger_it_predicts() -> None:
    store = MemoryContactStore()
    order = {"type": "track", "userId": "ann", "event": "Order Completed", "messageId": "o1"}
    recorded = record(calls(order, page("p1", anonymous="a1")), store, NOW, SCORING)
    assert (recorded.accepted, recorded.duplicates, recorded.merges) == (2, 0, 0)
    assert store.profiles == {} and store.writes == 0, "no profile is written on the request path"
    (item,) = store.log[ANN].values()
    assert item.ledger and {line.dimension for line in item.ledger} >= {"global"}
    assert [(new.contact, new.event.message_id) for new in store.stream] == [(ANN, "o1"), (A1, "p1")]
    assert store.stream[0].ledger == item.ledger


def test_without_scoring_the_predicted_ledger_is_empty() -> None:
    store = MemoryContactStore()
    record(
        calls({"type": "track", "userId": "ann", "event": "Order Completed", "messageId": "o1"}), store, NOW
    )
    (item,) = store.log[ANN].values()
    assert item.ledger == ()


def test_a_limited_rule_is_predicted_within_the_request() -> None:
    once = StoredRule(id="once", behaviour="product_viewed", points=5, limit=Limit(per_contact=1), version=1)
    scoring = ScoringContext(StaticRules([once]).book(), DECAY)
    store = MemoryContactStore()
    viewed = {"type": "track", "userId": "ann", "event": "Product Viewed"}
    record(calls({**viewed, "messageId": "v1"}, {**viewed, "messageId": "v2"}), store, NOW, scoring)
    ledgers = {new.event.message_id: new.ledger for new in store.stream}
    assert [line.points for line in ledgers["v1"]] == [5] and ledgers["v2"] == ()


def test_each_call_goes_to_the_log_of_its_contact() -> None:
    store = MemoryContactStore()
    record(
        calls(
            identify("i1", anonymous="a1"),  # the user's: it asks for the visitor to be merged in
            page("p1", anonymous="a1"),
            {"type": "alias", "userId": "bob", "previousId": "a1", "messageId": "al1"},
        ),
        store,
        NOW,
    )
    assert (store.message_ids(ANN), store.message_ids(A1), store.message_ids(BOB)) == (
        {"i1"},
        {"p1"},
        {"al1"},
    )


def test_merges_are_counted_as_asked_for_and_a_replay_asks_for_none() -> None:
    store = MemoryContactStore()
    identify_call = calls(identify("i1", anonymous="a1"))
    assert record(identify_call, store, NOW).merges == 1
    replay = record(identify_call, store, NOW)
    assert (replay.accepted, replay.duplicates, replay.merges) == (0, 1, 0)


class NarrowLog(MemoryContactStore):
    """A log whose profile writes hold ten traits at most (DynamoDB's: a call's 150 traits and 50 tags)."""

    def fits(self, change) -> bool:
        return len(change.traits_set) <= 10


def test_a_call_no_profile_write_could_hold_is_refused_and_nothing_is_written() -> None:
    store = NarrowLog()
    with pytest.raises(PayloadTooLarge, match="call i2 carries more traits"):
        record(calls(page("p1", user="ann"), identify("i2", **{f"t{i}": i for i in range(11)})), store, NOW)
    assert store.log == {} and store.stream == []
    # each call fits on its own: the aggregation folds them in separate writes
    six = [identify(f"i{n}", **{f"t{n}-{i}": i for i in range(6)}) for n in range(2)]
    assert record(calls(*six), store, NOW).accepted == 2


def test_calls_too_big_together_but_not_alone_are_recorded() -> None:
    store = MemoryContactStore()
    many = [identify(f"i{n}", **{f"t{n}-{i}": i for i in range(150)}) for n in range(4)]
    result = record(calls(*many), store, NOW)
    assert result.accepted == 4
    assert folded(store).events == 4
    ann = store.profile(ANN)
    assert len(ann.traits) == 600 and ann.event_count == 4
    assert store.writes > 1, "folded in several profile writes"


def test_more_traits_than_a_contact_may_keep_in_one_request_are_refused() -> None:
    store = MemoryContactStore()
    with pytest.raises(PayloadTooLarge, match="64 KB"):
        record(
            calls(
                identify("i1", a="x" * 30_000), identify("i2", b="x" * 30_000), identify("i3", c="x" * 6_000)
            ),
            store,
            NOW,
        )
    assert store.log == {} and store.stream == []
    assert (
        record(calls(identify("i1", a="x" * 30_000), identify("i2", b="x" * 30_000)), store, NOW).accepted
        == 2
    )


# --- merges, fed by the aggregation --------------------------------------------------------------------


def test_identify_merges_anonymous_history_once() -> None:
    store = MemoryContactStore()
    record(calls(page("p1", anonymous="a1")), store, NOW)
    folded(store)
    identify_call = calls(identify("i1", anonymous="a1", x=1))
    assert record(identify_call, store, NOW).merges == 1
    assert store.deliver_merges(NOW) == 0, "asked for in the identify's own profile write, once folded in"
    folded(store)
    assert store.profile(ANN).counts == {"identified": 1}
    assert store.deliver_merges(NOW) == 1
    ann = store.profile(ANN)
    assert ann.counts == {"visit": 1, "identified": 1} and ann.event_count == 2
    assert ann.anonymous_ids == {"a1"}
    assert store.message_ids(ANN) == {"p1", "i1"} and store.message_ids(A1) == set()
    record(identify_call, store, NOW)  # replayed identify: a duplicate, nothing to fold or merge
    folded(store)
    assert store.deliver_merges(NOW) == 0
    assert store.profile(ANN).counts == {"visit": 1, "identified": 1}


def test_anonymous_events_after_the_merge_are_rerouted() -> None:
    store = MemoryContactStore()
    record(calls(identify("i1", anonymous="a1")), store, NOW)
    folded(store)
    store.deliver_merges(NOW)
    result = record(calls(page("p9", anonymous="a1")), store, NOW)
    assert result.accepted == 1 and store.message_ids(A1) == {"p9"}, "recorded where it was sent"
    assert folded(store).events == 1
    assert store.message_ids(ANN) == {"i1", "p9"} and store.message_ids(A1) == set()
    assert store.profile(ANN).counts == {"identified": 1, "visit": 1}


def test_a_merge_moves_events_still_on_their_way_and_their_re_route_counts_them() -> None:
    """The merge does not wait for the visitor's last calls to be folded in: it moves them uncounted, and
    the aggregation, finding the visitor merged, counts each once through the merge's copy of its put."""
    store = MemoryContactStore()
    record(calls(page("p1", anonymous="a1")), store, NOW)
    folded(store)
    record(calls(identify("i1", anonymous="a1")), store, NOW)
    folded(store)
    record(calls(page("p2", anonymous="a1")), store, NOW)  # on its way to the visitor's profile
    assert store.deliver_merges(NOW) == 1
    assert store.message_ids(ANN) == {"p1", "p2", "i1"} and store.count_events(A1) == 0
    assert store.profile(ANN).event_count == 2, "p2 is in the log, not counted yet"
    assert folded(store).events == 1  # re-routed to ann: counted through the merge's copy
    assert folded(store).events == 0
    ann = store.profile(ANN)
    assert ann.counts == {"visit": 2, "identified": 1} and ann.event_count == 3


def test_an_anonymous_id_stays_with_its_first_user() -> None:
    store = MemoryContactStore()
    record(calls(identify(anonymous="a1")), store, NOW)
    folded(store)
    store.deliver_merges(NOW)
    assert not link(A1, EVE, store, NOW, DECAY)
    assert store.profile(A1).merged_into == "user_id:ann"


def test_alias_links_previous_user_and_anonymous_ids() -> None:
    (alias,) = calls({"type": "alias", "userId": "new", "previousId": "old"})
    assert identity_links([alias]) == [
        (ContactId.user("old"), ContactId.user("new")),
        (ContactId.anonymous("old"), ContactId.user("new")),
    ]


def test_merge_cycles_are_refused() -> None:
    store = MemoryContactStore()
    record(calls({"type": "page", "userId": "a"}, {"type": "page", "userId": "b"}), store, NOW)
    folded(store)
    assert link(ContactId.user("a"), ContactId.user("b"), store, NOW, DECAY)
    assert not link(ContactId.user("b"), ContactId.user("a"), store, NOW, DECAY)
    assert store.profile(ContactId.user("b")).merged_into is None


def test_a_repeated_identify_costs_one_conditional_write() -> None:
    store = MemoryContactStore()
    record(calls(identify(anonymous="a1")), store, NOW)
    folded(store)
    store.deliver_merges(NOW)

    reads = []
    store.profile = lambda contact, _p=store.profile: reads.append(contact) or _p(contact)  # type: ignore[method-assign]
    assert not link(A1, ANN, store, NOW, DECAY)
    assert reads == []


def test_a_merge_cut_short_after_the_claim_finishes_on_the_next_identify() -> None:
    store = MemoryContactStore()
    record(calls(page("p1", anonymous="a1")), store, NOW)
    folded(store)
    store.claim(A1, ANN, NOW)  # the first attempt died here
    record(calls(identify("i1", anonymous="a1")), store, NOW)
    folded(store)
    assert store.deliver_merges(NOW) == 1
    assert store.profile(ANN).counts == {"visit": 1, "identified": 1}


def test_an_event_sent_under_both_identities_counts_once_after_the_merge() -> None:
    """The same call (messageId and time) recorded for the visitor and for the user: the merge finds the
    user's copy and takes back what the visitor's added."""
    store = MemoryContactStore()
    stated = (NOW - timedelta(minutes=1)).isoformat()
    viewed = {"type": "track", "event": "Product Viewed", "messageId": "v1", "timestamp": stated}
    record(calls({**viewed, "anonymousId": "a1"}), store, NOW, SCORING)
    record(calls({**viewed, "userId": "ann"}, identify("i1", anonymous="a1")), store, NOW, SCORING)
    folded(store)
    assert store.deliver_merges(NOW) == 1
    ann = store.profile(ANN)
    assert ann.counts == {"product_viewed": 1, "identified": 1} and ann.event_count == 2
    (line,) = store.log[ANN][next(k for k in store.log[ANN] if "v1" in k)].ledger
    assert ann.scores["global"].total == line.points
    assert store.count_events(A1) == 0 and store.message_ids(ANN) == {"v1", "i1"}
    assert [e.message_id for e in MemoryContactLog(store).events(ANN, 10).events] == ["i1", "v1"]


def test_a_retraction_takes_back_exactly_what_recording_added() -> None:
    """Counters, revenue, lifetime points and each decaying sum, as ``plan_change`` computed them."""
    from dataclasses import asdict
    from decimal import Decimal

    from shared.contacts.changes import plan_change
    from shared.contacts.views import LedgerLine, StoredEvent
    from shared.usecases.recording import retraction

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
    change = plan_change(ANN, [order], ScoringContext(StaticRules().book(), decay))
    assert change.scored.totals, "the shipped rules score a purchase"
    stored = StoredEvent(
        message_id="o1",
        key="E#2026-11-20T08:00:00.000Z#o1",
        call="track",
        behaviour=order.behaviour.value,
        timestamp=order.timestamp,
        received_at=change.last_seen,
        revenue=order.revenue,
        ledger=[LedgerLine(**asdict(c)) for c in change.scored.ledger["o1"]],
    )
    back = retraction(stored, decay, limited=frozenset({c.rule_id for c in change.scored.ledger["o1"]}))
    assert back.key == "E#2026-11-20T08:00:00.000Z#o1" and back.message_id == "o1"
    assert back.counts == {b: -c for b, c in change.counts.items()} and back.event_count == -1
    assert back.revenue == -change.revenue == Decimal("-12.5")
    assert {d: s.total for d, s in back.scores.items()} == {d: -p for d, p in change.scored.totals.items()}
    sums = {(d, k, b): v for d, s in back.scores.items() for k, bs in s.sums.items() for b, v in bs.items()}
    assert sums.keys() == change.scored.sums.keys()
    assert all(sums[key] == pytest.approx(-value) for key, value in change.scored.sums.items())
    assert set(back.rule_uses.values()) == {-1}


def test_a_call_recorded_while_the_merge_moves_the_log_counts_once() -> None:
    """A call lands on the visitor while the merge moves its log: moved uncounted or left behind, its
    re-route counts it once; the stream delivering it again counts nothing."""
    store = MemoryContactStore()
    record(calls(page("p1", anonymous="a1")), store, NOW)
    folded(store)
    record(calls(identify("i1", anonymous="a1")), store, NOW)
    folded(store)
    move_events = store.move_events

    def record_then_move(source, target, limit):  # the visitor's next call lands right before the move
        if source == A1 and "p2" not in store.message_ids(ANN) | store.message_ids(A1):
            record(calls(page("p2", anonymous="a1")), store, NOW)
        return move_events(source, target, limit)

    store.move_events = record_then_move  # type: ignore[method-assign]
    assert store.deliver_merges(NOW) == 1
    batch = store.new_events()
    assert aggregate(batch, store.aggregation()).events == 1
    assert aggregate(batch, store.aggregation()).events == 0
    ann = store.profile(ANN)
    assert store.message_ids(ANN) == {"p1", "p2", "i1"}
    assert ann.counts == {"visit": 2, "identified": 1} and ann.event_count == 3
