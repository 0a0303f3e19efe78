"""The aggregation: the events the tracking path recorded, folded into profiles off the request path.

Events come from the log's stream (``MemoryContactStore.new_events``): at least once, in order per
contact, in batches. Each contact's events in a batch become one blind profile write, once by their
stream positions; events of a contact merged away meanwhile are re-routed to its contact, each once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from shared.contacts.changes import MAX_PROFILE_TRAIT_BYTES, trait_bytes
from shared.contacts.identity import ContactId
from shared.errors import DependencyUnavailable
from shared.scoring.decay import Decay
from shared.scoring.engine import ScoringContext
from shared.scoring.rules import Limit, StoredRule
from shared.tracking.messages import parse_calls
from shared.tracking.wire import Limits
from shared.usecases.aggregation import aggregate
from shared.usecases.recording import ChangeCapacity, CommitOutcome, record
from tests.fakes import CountingTelemetry, MemoryContactLog, MemoryContactStore, StaticRules

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DECAY = Decay()
ANN, BOB, A1 = ContactId.user("ann"), ContactId.user("bob"), ContactId.anonymous("a1")
ONCE = StoredRule(id="once", behaviour="product_viewed", points=5, limit=Limit(per_contact=1), version=1)


def calls(*batch, at=NOW):
    return parse_calls("/v1/batch", {"batch": list(batch)}, received_at=at, limits=Limits())


def page(message_id, *, user=None, anonymous=None, **fields):
    who = {"userId": user} if user else {"anonymousId": anonymous}
    return {"type": "page", **who, "messageId": message_id, **fields}


def viewed(message_id, user="ann"):
    return {"type": "track", "userId": user, "event": "Product Viewed", "messageId": message_id}


def identify(message_id, *, user="ann", anonymous=None, **traits):
    call = {"type": "identify", "userId": user, "messageId": message_id, "traits": traits}
    return {**call, "anonymousId": anonymous} if anonymous else call


def recorded(store, *batch, rules=None, at=NOW):
    """The calls as the tracking path records them (scored as it predicts, with these rules)."""
    scoring = ScoringContext((StaticRules() if rules is None else StaticRules(list(rules))).book(), DECAY)
    return record(calls(*batch, at=at), store, at, scoring)


def deps(store, rules=None, telemetry=None):
    return store.aggregation(rules, DECAY, telemetry)


def test_each_contacts_events_in_a_batch_fold_into_one_write() -> None:
    store = MemoryContactStore()
    recorded(store, page("p1", user="ann"), page("p2", user="bob"), viewed("v1"), page("p3", user="ann"))
    telemetry = CountingTelemetry()
    folded = aggregate(store.new_events(), deps(store, telemetry=telemetry))
    assert (folded.events, folded.failed_from, folded.errors) == (4, None, ())
    assert store.writes == 2
    assert store.profile(ANN).counts == {"visit": 2, "product_viewed": 1}
    assert store.profile(BOB).counts == {"visit": 1}
    assert store.profile(ANN).scores["global"].total > 0, "scored by the shipped rules"
    assert telemetry.counts["EventsFolded"] == 4


def test_a_redelivered_batch_changes_nothing() -> None:
    store = MemoryContactStore()
    recorded(store, page("p1", user="ann"), viewed("v1"), page("p2", user="bob"))
    batch = store.new_events()
    assert aggregate(batch, deps(store)).events == 3
    before = {c: store.profile(c) for c in (ANN, BOB)}
    writes = store.writes
    again = aggregate(batch, deps(store))
    assert (again.events, again.failed_from) == (0, None)
    assert {c: store.profile(c) for c in (ANN, BOB)} == before and store.writes == writes


def test_a_batch_that_starts_with_records_folded_before_adds_only_the_rest() -> None:
    store = MemoryContactStore()
    recorded(store, page("p1", user="ann"), page("p2", user="ann"))
    first = store.new_events()
    aggregate(first, deps(store))
    recorded(store, page("p3", user="ann"))
    folded = aggregate([first[1], *store.new_events()], deps(store))  # the stream resumes at p2
    assert folded.events == 1
    assert store.profile(ANN).event_count == 3


def test_two_calls_with_one_message_id_in_a_batch_both_count() -> None:
    """The log keys a call by its messageId and the time it states: the same messageId without a time,
    then with one, is two calls. Both count, so the profile agrees with its log (a merge waits for that)."""
    store = MemoryContactStore(capacity=ChangeCapacity(max_events=2, max_keys=300))
    recorded(store, page("m0", user="ann"), page("m1", user="ann"))
    recorded(store, page("m0", user="ann", timestamp=(NOW - timedelta(hours=1)).isoformat()))
    assert store.count_events(ANN) == 3
    folded = store.deliver_events()
    assert (folded.events, folded.failed_from) == (3, None)
    assert store.profile(ANN).event_count == 3 and store.profile(ANN).counts == {"visit": 3}


def test_a_contact_that_fails_holds_back_only_its_own_events() -> None:
    store = MemoryContactStore()
    recorded(
        store, page("p1", user="ann"), page("p2", user="bob"), page("p3", user="ann"), page("p4", user="bob")
    )
    batch = store.new_events()
    store.failing.add(BOB)
    folded = aggregate(batch, deps(store))
    bob_first = min(new.position for new in batch if new.contact == BOB)
    assert folded.failed_from == bob_first and folded.events == 2
    assert [type(e) for e in folded.errors] == [DependencyUnavailable]
    assert store.profile(ANN).event_count == 2 and store.profile(BOB) is None
    # the stream delivers again from bob's first record: ann's later one is recognised and skipped
    store.failing.clear()
    retry = aggregate([new for new in batch if new.position >= bob_first], deps(store))
    assert (retry.events, retry.failed_from) == (2, None)
    assert store.profile(ANN).event_count == 2 and store.profile(BOB).event_count == 2


def test_the_earliest_failing_contact_is_where_the_stream_resumes() -> None:
    store = MemoryContactStore()
    recorded(store, page("p1", user="ann"), page("p2", user="bob"), page("p3", user="ann"))
    batch = store.new_events()
    store.failing |= {ANN, BOB}
    folded = aggregate(batch, deps(store))
    assert folded.failed_from == batch[0].position and len(folded.errors) == 2 and folded.events == 0


def test_a_contact_whose_store_keeps_refusing_fails_after_a_few_rounds() -> None:
    @dataclass
    class Refusing(MemoryContactStore):
        commits: list[int] = field(default_factory=list)

        def commit(self, changes, copies=None):
            self.commits.append(len(changes))
            return [CommitOutcome(committed=False) for _ in changes]

    store = Refusing()
    recorded(store, page("p1", user="ann"))
    batch = store.new_events()
    folded = aggregate(batch, deps(store))
    assert folded.failed_from == batch[0].position and isinstance(folded.errors[0], DependencyUnavailable)
    assert 1 < len(store.commits) <= 8


def test_events_of_a_merged_away_contact_are_rerouted_and_count_once() -> None:
    store = MemoryContactStore()
    recorded(store, page("p1", anonymous="a1"))
    store.deliver_events()
    recorded(store, identify("i1", anonymous="a1"))
    store.deliver_events()
    assert store.deliver_merges(NOW) == 1
    recorded(store, page("p2", anonymous="a1"))
    batch = store.new_events()
    assert aggregate(batch, deps(store)).events == 1
    ann = store.profile(ANN)
    assert ann.counts == {"visit": 2, "identified": 1} and ann.event_count == 3
    assert store.message_ids(ANN) == {"p1", "p2", "i1"} and store.count_events(A1) == 0
    assert store.profile(A1).event_count == 1, "the merged-away profile is not written"
    # the same batch again (a redelivery): the copy is there already, nothing counts twice
    assert aggregate(batch, deps(store)).events == 0
    assert store.profile(ANN) == ann and store.message_ids(ANN) == {"p1", "p2", "i1"}


def test_rerouted_events_go_in_transactions_small_enough_for_their_copies() -> None:
    """A re-route writes each event's copy with the profile in one transaction: at most 25 events each,
    so 32 KB calls stay within DynamoDB's 4 MB per transaction (own events go up to 99 per write)."""
    from shared.usecases.aggregation import REROUTED_PER_WRITE

    store = MemoryContactStore()
    recorded(store, identify("i1", anonymous="a1"))
    store.deliver_events()
    assert store.deliver_merges(NOW) == 1
    recorded(store, *(page(f"p{i}", anonymous="a1") for i in range(60)))
    sizes: list[tuple[bool, int]] = []
    commit = store.commit

    def counted(changes, copies={}):
        sizes.extend((c.origin is not None, len(c.events)) for c in changes)
        return commit(changes, copies)

    store.commit = counted  # type: ignore[method-assign]
    assert aggregate(store.new_events(), deps(store)).events == 60
    rerouted = [n for origin, n in sizes if origin]
    assert sum(rerouted) == 60 and max(rerouted) == REROUTED_PER_WRITE == 25
    assert store.profile(ANN).counts == {"identified": 1, "visit": 60}


def test_a_replay_of_an_event_the_merge_moved_counts_once() -> None:
    store = MemoryContactStore()
    stated = (NOW - timedelta(minutes=2)).isoformat()
    recorded(store, page("p1", anonymous="a1", timestamp=stated))
    store.deliver_events()
    recorded(store, identify("i1", anonymous="a1"))
    store.deliver_events()
    assert store.deliver_merges(NOW) == 1
    assert store.message_ids(ANN) == {"p1", "i1"} and store.count_events(A1) == 0
    # the SDK retries p1 under the visitor: its log no longer holds it, so the tracking path takes it
    assert (
        recorded(store, page("p1", anonymous="a1", timestamp=stated), at=NOW + timedelta(minutes=1)).accepted
        == 1
    )
    telemetry = CountingTelemetry()
    assert store.deliver_events(telemetry=telemetry).events == 0
    ann = store.profile(ANN)
    assert ann.counts == {"visit": 1, "identified": 1} and ann.event_count == 2
    assert store.count_events(A1) == 0 and store.count_events(ANN) == 2
    assert telemetry.counts["EventsFolded"] == 0


def test_rerouted_events_follow_a_chain_of_merges() -> None:
    store = MemoryContactStore()
    recorded(store, page("p0", user="ann"), page("pb", user="bob"), page("pa", anonymous="a1"))
    store.deliver_events()
    store.claim(A1, ANN, NOW)
    store.claim(ANN, BOB, NOW)
    recorded(store, page("p1", anonymous="a1"))
    assert store.deliver_events().events == 1
    assert store.message_ids(BOB) == {"pb", "p1"} and store.count_events(A1) == 1, "pa waits for its merge"
    assert store.profile(BOB).event_count == 2 and store.profile(ANN).event_count == 1


def test_a_redelivery_after_the_claim_leaves_the_events_the_merge_will_move() -> None:
    """An event folded into the visitor before its claim is the merge's to move, even when the stream
    delivers it again after the claim: the aggregation must not delete it from the visitor's log."""
    store = MemoryContactStore()
    recorded(store, page("p1", anonymous="a1"))
    batch = store.new_events()
    aggregate(batch, deps(store))
    recorded(store, identify("i1", anonymous="a1"))
    store.deliver_events()
    store.claim(A1, ANN, NOW)  # the merge function has begun
    assert aggregate(batch, deps(store)).events == 0  # a redelivery of the visitor's batch
    assert store.count_events(A1) == 1
    assert store.deliver_merges(NOW) == 1
    assert store.message_ids(ANN) == {"p1", "i1"}
    assert store.profile(ANN).counts == {"visit": 1, "identified": 1}


def test_a_redelivery_after_the_claim_reroutes_none_of_what_the_visitor_folded_in() -> None:
    """The same, for a batch folded in several parts: the visitor's watermark covers all of them."""
    store = MemoryContactStore(capacity=ChangeCapacity(max_events=1, max_keys=300))
    recorded(store, page("p1", anonymous="a1"), page("p2", anonymous="a1", timestamp=NOW.isoformat()))
    batch = store.new_events()
    aggregate(batch, deps(store))
    recorded(store, identify("i1", anonymous="a1"))
    store.deliver_events()
    store.claim(A1, ANN, NOW)
    assert aggregate(batch, deps(store)).events == 0
    assert store.profile(ANN).event_count == 1 and store.count_events(A1) == 2
    assert store.deliver_merges(NOW) == 1
    ann = store.profile(ANN)
    assert ann.counts == {"visit": 2, "identified": 1} and ann.event_count == 3
    assert store.message_ids(ANN) == {"p1", "p2", "i1"}


def test_a_limit_that_held_rewrites_the_ledger_the_tracking_path_predicted() -> None:
    store = MemoryContactStore()
    recorded(store, viewed("v1"), rules=[ONCE])
    store.deliver_events(rules=[ONCE])
    recorded(store, viewed("v2"), rules=[ONCE])  # predicted 5: the tracking path does not read the uses
    (new,) = store.stream
    assert [line.points for line in new.ledger] == [5]
    assert store.deliver_events(rules=[ONCE]).events == 1
    ann = store.profile(ANN)
    assert ann.counts == {"product_viewed": 2} and ann.scores["global"].total == 5
    assert store.log[ANN][new.key].ledger == ()
    assert [e.message_id for e in MemoryContactLog(store).ledger(ANN, 10).entries] == ["v1"]


def test_a_ledger_predicted_right_is_not_rewritten() -> None:
    @dataclass
    class Counting(MemoryContactStore):
        rewrites: list[str] = field(default_factory=list)

        def rewrite_ledger(self, contact, key, ledger):
            self.rewrites.append(key)
            super().rewrite_ledger(contact, key, ledger)

    store = Counting()
    recorded(store, viewed("v1"), viewed("v2"), rules=[ONCE])
    store.deliver_events(rules=[ONCE])
    assert store.rewrites == [] and store.profile(ANN).scores["global"].total == 5


def test_a_limit_refusing_an_early_part_of_a_batch_loses_none_of_it() -> None:
    """A contact's batch too big for one write is cut in parts, folded in stream order: a part refused
    (a limit) is planned again, and no later part may move the watermark past it meanwhile."""
    profiles = []
    for capacity in (ChangeCapacity(max_events=2, max_keys=300), MemoryContactStore.capacity):
        store = MemoryContactStore(capacity=capacity)
        recorded(store, viewed("v0"), rules=[ONCE])
        store.deliver_events(rules=[ONCE])
        recorded(store, viewed("v1"), page("p1", user="ann"), page("p2", user="ann"), rules=[ONCE])
        folded = store.deliver_events(rules=[ONCE])
        assert (folded.events, folded.failed_from) == (3, None)
        profiles.append(store.profile(ANN))
    cut, whole = profiles
    assert cut.counts == {"product_viewed": 2, "visit": 2} and cut.event_count == 4
    assert cut.scores["global"].total == whole.scores["global"].total == 5


def test_a_batch_too_big_for_one_write_is_split_and_all_counted() -> None:
    store = MemoryContactStore()
    many = [identify(f"i{n}", **{f"t{n}-{i}": i for i in range(150)}) for n in range(4)]
    recorded(store, *many)
    folded = store.deliver_events()
    assert (folded.events, folded.failed_from) == (4, None)
    assert store.profile(ANN).event_count == 4 and len(store.profile(ANN).traits) == 600


def test_identify_traits_over_the_cap_are_folded_without_the_traits() -> None:
    store = MemoryContactStore()
    recorded(store, identify("i-a", a="x" * 30_000), identify("i-b", b="x" * 30_000))
    store.deliver_events()
    # this request is within the cap by itself (64 KB per request): taken, then found too much
    recorded(store, identify("i-c", c="x" * 30_000), page("p1", user="ann"))
    telemetry = CountingTelemetry()
    folded = store.deliver_events(telemetry=telemetry)
    assert (folded.events, folded.failed_from) == (2, None)
    ann = store.profile(ANN)
    assert set(ann.traits) == {"a", "b"}
    assert ann.counts == {"identified": 3, "visit": 1} and ann.event_count == 4
    assert telemetry.counts["TraitsNotKept"] == 1 and "EventsNotFolded" not in telemetry.counts
    assert store.message_ids(ANN) == {"i-a", "i-b", "i-c", "p1"}, "the call stays in the log, traits and all"


def test_a_full_profile_still_counts_calls_that_carry_a_timezone() -> None:
    """A browser's calls carry ``context.timezone``, which the profile keeps as a trait if it has none:
    at the cap, the hint is dropped, not the calls."""
    store = MemoryContactStore()
    recorded(
        store,
        identify("i-a", a="x" * 30_000),
        identify("i-b", b="x" * 30_000),
        identify("i-c", c="x" * 5_520),
    )
    store.deliver_events()
    assert trait_bytes(store.profile(ANN).traits) > MAX_PROFILE_TRAIT_BYTES - len('timezone"Europe/Oslo"')
    recorded(store, page("p1", user="ann", context={"timezone": "Europe/Oslo"}), viewed("v1"))
    telemetry = CountingTelemetry()
    folded = store.deliver_events(telemetry=telemetry)
    assert (folded.events, folded.failed_from) == (2, None)
    ann = store.profile(ANN)
    assert ann.counts == {"identified": 3, "visit": 1, "product_viewed": 1} and "timezone" not in ann.traits
    assert "EventsNotFolded" not in telemetry.counts


def test_a_call_too_big_for_any_write_is_left_out_and_counted() -> None:
    """Stored before the tracking path refused such calls: it cannot be folded in, the rest is."""
    store = MemoryContactStore()
    recorded(
        store,
        page("p1", user="ann"),
        identify("i1", **{f"t{i}": i for i in range(11)}),
        page("p2", user="ann"),
    )
    telemetry = CountingTelemetry()
    narrow = _NarrowStore(store)
    folded = aggregate(store.new_events(), replace(deps(store, telemetry=telemetry), contacts=narrow))
    assert (folded.events, folded.failed_from) == (2, None)
    assert store.profile(ANN).counts == {"visit": 2} and telemetry.counts["EventsNotFolded"] == 1


@dataclass
class _NarrowStore:
    """The store's profile writes, holding ten traits at most (a change with more: oversized)."""

    store: MemoryContactStore

    @property
    def capacity(self):
        return self.store.capacity

    def profile(self, contact):
        return self.store.profile(contact)

    def commit(self, changes, copies=None):
        return [
            CommitOutcome(False, oversized=True)
            if len(c.traits_set) > 10
            else self.store.commit([c], copies or {})[0]
            for c in changes
        ]


def test_the_handler_reports_the_first_position_to_resume_from_as_the_stream_numbers_it() -> None:
    from functions.aggregation.handler import response
    from shared.usecases.aggregation import Folded

    records = [{"dynamodb": {"SequenceNumber": s}} for s in ("900000001", "4500000123", "4500000124")]
    failed = Folded(events=1, failed_from="0" * 30 + "4500000123", errors=(DependencyUnavailable("x"),))
    assert response(failed, records) == {"batchItemFailures": [{"itemIdentifier": "4500000123"}]}
    assert response(Folded(events=3), records) == {"batchItemFailures": []}


def test_the_handler_passes_a_record_it_cannot_read_and_reads_the_rest() -> None:
    """The trigger retries until it succeeds: an unreadable record is logged and passed, not retried,
    so it never holds back the records after it (the event stays in the log)."""
    from functions.aggregation.handler import new_events

    def inserted(sequence: str, body: str = '{"userId":"ann"}') -> dict:
        image = {
            "pk": {"S": "C#user_id:ann"},
            "sk": {"S": f"M#m{sequence}"},
            "call": {"S": "page"},
            "behaviour": {"S": "visit"},
            "timestamp": {"S": "2026-11-23T12:00:00.000Z"},
            "receivedAt": {"S": "2026-11-23T12:00:00.000Z"},
            "body": {"S": body},
        }
        return {
            "eventID": sequence,
            "eventName": "INSERT",
            "dynamodb": {"SequenceNumber": sequence, "NewImage": image},
        }

    moved = inserted("12")
    moved["dynamodb"]["NewImage"]["movedFrom"] = {"S": "anonymous_id:a1"}
    found = new_events({"Records": [inserted("11"), moved, inserted("13", body="[]"), inserted("14")]})
    assert [new.event.message_id for new in found] == ["m11", "m14"]


def award(occurrence: str, points: int = 10, dimension: str = "global"):
    """A win-back run's points as the contact effects record them in the log (``LEDGER_CALL``)."""
    from shared.automations.awards import award_event, award_ledger
    from shared.automations.engine import Plan
    from shared.automations.model import PointsStep
    from shared.usecases.recording import NewEntry

    run = Plan(
        contact_id=str(ANN),
        automation="win-back",
        version=2,
        occurrence=occurrence,
        step=0,
        status="acted",
        points=(PointsStep(action="points", points=points, dimension=dimension),),
    )
    return NewEntry(ANN, award_event(run, LATER), award_ledger(run))


LATER = NOW + timedelta(days=60)


def test_an_automations_points_fold_into_the_scores_with_their_ledger_but_are_no_activity() -> None:
    store = MemoryContactStore()
    recorded(store, page("p1", user="ann"))
    store.deliver_events()
    before = store.profile(ANN)
    store.append([award("lapse@1"), award("lapse@1")])  # a run retried: one entry
    assert aggregate(store.new_events(), deps(store)).events == 1
    after = store.profile(ANN)
    assert after.scores["global"].total == before.scores["global"].total + 10
    assert (after.event_count, after.counts, after.last_seen_at, after.first_seen_at) == (
        before.event_count,
        before.counts,
        before.last_seen_at,
        before.first_seen_at,
    ), "a win-back's points must not end the lapse it reacts to"
    [line] = MemoryContactLog(store).ledger(ANN, 1).entries[0].changes
    assert (line.rule_id, line.rule_version, line.points, line.dimension) == (
        "automation:win-back",
        2,
        10,
        "global",
    )


def test_points_and_calls_in_one_batch_count_the_calls_only_as_activity() -> None:
    store = MemoryContactStore()
    store.append([award("lapse@1", points=-4)])
    recorded(store, page("p1", user="ann"), viewed("v1"), at=LATER)
    assert aggregate(store.new_events(), deps(store)).events == 3
    ann = store.profile(ANN)
    assert (ann.event_count, ann.counts) == (2, {"visit": 1, "product_viewed": 1})
    alone = MemoryContactStore()
    recorded(alone, page("p1", user="ann"), viewed("v1"), at=LATER)
    alone.deliver_events()
    assert ann.scores["global"].total == alone.profile(ANN).scores["global"].total - 4


def test_no_rule_scores_an_automations_points() -> None:
    anything = StoredRule(id="custom", behaviour="custom", points=50, version=1)
    store = MemoryContactStore()
    recorded(store, page("p1", user="ann"))
    store.append([award("lapse@1", points=3)])
    aggregate(store.new_events(), deps(store, rules=[anything]))
    ledger = MemoryContactLog(store).ledger(ANN, 5).entries
    assert [
        c.rule_id for entry in ledger for c in entry.changes if entry.message_id.startswith("automation:")
    ] == ["automation:win-back"]
