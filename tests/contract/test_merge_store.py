"""The merge store (the merge function's port): claim, count and move the log, retract duplicates,
absorb, each once.

Contacts get their events as the hot path gives them: appended to the log, then folded into the
profile by the aggregation (``deliver_events``, reading the events table's stream). A merge request is
what the contacts table's stream delivers: the fake queues it, the adapter side reads moto's stream of
the contacts table (``merge_request_from_stream``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from shared.contacts.identity import ContactId
from shared.usecases.merging import MergeRequest
from shared.usecases.recording import Absorbed, merge_plan, retraction
from tests.contract.helpers import DECAY, NOW, entries
from tests.fakes import MemoryContactLog, MemoryContactStore

ANN, BOB, EVE = ContactId.user("ann"), ContactId.user("bob"), ContactId.user("eve")
A1 = ContactId.anonymous("a1")


class Ports:
    def __init__(self, store, log, requests: Callable[[], list[MergeRequest]]) -> None:
        self.store, self.log, self.requests = store, log, requests

    def events(self, contact: ContactId) -> list[str]:
        return sorted(e.message_id for e in self.log.events(contact, 100).events)


@pytest.fixture
def ports(implementation, contact_tables):
    if implementation == "fake":
        store = MemoryContactStore()

        def delivered() -> list[MergeRequest]:
            found, store.merge_requests = store.merge_requests, []
            return found

        return Ports(store, MemoryContactLog(store), delivered)
    from shared.adapters import aws
    from shared.adapters.contact_items import merge_request_from_stream
    from shared.adapters.contact_log import DynamoContactLog

    tables = contact_tables()
    store = tables.stores()
    return Ports(
        store,
        DynamoContactLog(tables.db, events_table=tables.events),
        _stream_reader(aws.client("dynamodbstreams"), tables, merge_request_from_stream),
    )


def _stream_reader(streams, tables, parse) -> Callable[[], list[MergeRequest]]:
    """The merge requests in the contacts table's stream records since the last call."""
    arn = tables.db.describe_table(TableName=tables.contacts)["Table"]["LatestStreamArn"]
    iterators: dict[str, str] = {}

    def delivered() -> list[MergeRequest]:
        found = []
        for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            sid = shard["ShardId"]
            if sid not in iterators:
                iterators[sid] = streams.get_shard_iterator(
                    StreamArn=arn, ShardId=sid, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            answer = streams.get_records(ShardIterator=iterators[sid])
            iterators[sid] = answer["NextShardIterator"]
            found += [r for r in map(parse, answer["Records"]) if r is not None]
        return found

    return delivered


def page(contact: ContactId, message_id: str, hours_ago: int = 1) -> dict:
    who = {"userId": contact.value} if contact.kind == "user_id" else {"anonymousId": contact.value}
    at = (NOW - timedelta(hours=hours_ago)).isoformat()
    return {"type": "page", **who, "messageId": message_id, "timestamp": at}


def commit(store, contact: ContactId, *calls: dict) -> None:
    """The calls recorded for the contact, and folded into its profile."""
    assert store.append(entries(contact, *calls)) == frozenset()
    folded = store.deliver_events()
    assert folded.failed_from is None and folded.events == len(calls)


def merge(store, source: ContactId, target: ContactId) -> Absorbed:
    """The merge function's steps, as ``link`` takes them."""
    assert store.claim(source, target, NOW).owner == target
    moved = store.move_events(source, target, 100)
    for event in moved.duplicates:
        store.retract(source, target, retraction(event, DECAY))
    return store.absorb(target, merge_plan(source, store.profile(source), store.profile(target)), NOW)


def test_the_first_claim_wins_and_later_ones_learn_the_owner(ports):
    store = ports.store
    commit(store, A1, page(A1, "p1"))
    claim = store.claim(A1, ANN, NOW)
    assert (claim.owner, claim.completed, claim.target_moved) == (ANN, False, False)
    assert store.claim(A1, EVE, NOW).owner == ANN
    assert store.profile(A1).merged_into == "user_id:ann"
    assert store.claim(A1, ANN, NOW).owner == ANN, "claiming again is harmless"


def test_a_claim_into_a_contact_merged_away_itself_is_refused(ports):
    store = ports.store
    commit(store, ANN, page(ANN, "p1"))
    commit(store, BOB, page(BOB, "p2"))
    assert store.claim(ANN, BOB, NOW).owner == BOB
    claim = store.claim(BOB, ANN, NOW)  # the opposite alias: it must not win too
    assert claim.target_moved
    assert store.profile(BOB).merged_into is None


def test_events_move_newest_first_in_parts_and_a_repeated_move_finds_nothing(ports):
    store = ports.store
    commit(store, A1, *(page(A1, f"p{n}", hours_ago=5 - n) for n in range(5)))
    commit(store, ANN, page(ANN, "i1"))
    store.claim(A1, ANN, NOW)
    assert store.move_events(A1, ANN, 2).count == 2
    assert ports.events(ANN) == ["i1", "p3", "p4"]
    assert store.move_events(A1, ANN, 100).count == 3
    assert store.move_events(A1, ANN, 100).count == 0
    assert ports.events(ANN) == ["i1", "p0", "p1", "p2", "p3", "p4"] and ports.events(A1) == []


def test_the_log_is_counted_as_it_is_now(ports):
    store = ports.store
    assert store.count_events(A1) == 0
    commit(store, ANN, page(ANN, "i1"))
    commit(
        store, A1, page(A1, "p1"), {"type": "track", "anonymousId": "a1", "event": "Raw", "messageId": "r1"}
    )
    store.append(entries(A1, page(A1, "p2")))  # recorded, not folded in yet
    assert store.count_events(A1) == 3 and store.profile(A1).event_count == 2
    store.deliver_events()
    store.claim(A1, ANN, NOW)
    store.move_events(A1, ANN, 100)
    assert (store.count_events(A1), store.count_events(ANN)) == (0, 4)


def test_calls_without_a_time_of_their_own_move_first_then_the_newest(ports):
    store = ports.store
    commit(store, A1, *(page(A1, f"p{n}", hours_ago=5 - n) for n in range(3)))
    raw = {"type": "page", "anonymousId": "a1", "messageId": "raw"}  # received nine hours ago
    store.append(entries(A1, raw, at=NOW - timedelta(hours=9)))
    assert store.deliver_events().events == 1
    store.claim(A1, ANN, NOW)
    assert store.move_events(A1, ANN, 2).count == 2
    assert ports.events(ANN) == ["p2", "raw"]
    assert store.move_events(A1, ANN, 100).count == 2 and ports.events(A1) == []


def test_an_event_this_source_copied_before_is_taken_again_not_a_duplicate(ports):
    store = ports.store
    commit(store, A1, page(A1, "p1"))
    store.claim(A1, ANN, NOW)
    assert store.move_events(A1, ANN, 100).count == 1
    store.append(entries(A1, page(A1, "p1")))  # the same call again, after its copy moved
    moved = store.move_events(A1, ANN, 100)
    assert (moved.count, moved.duplicates) == (1, ())
    assert ports.events(A1) == [] and ports.events(ANN) == ["p1"]


@pytest.mark.parametrize("timed", [False, True], ids=["untimed", "timed"])
def test_an_event_both_held_is_a_duplicate_retracted_once(ports, timed):
    store = ports.store
    viewed = {"type": "track", "event": "Product Viewed", "messageId": "m1"}
    if timed:  # keyed by the time it states, as SDK calls are
        viewed["timestamp"] = (NOW - timedelta(hours=3)).isoformat()
    commit(store, A1, {**viewed, "anonymousId": "a1"})
    commit(store, ANN, {**viewed, "anonymousId": "a1", "userId": "ann"})
    store.claim(A1, ANN, NOW)
    moved = store.move_events(A1, ANN, 100)
    (duplicate,) = moved.duplicates
    assert moved.count == 0 and duplicate.message_id == "m1" and duplicate.ledger
    before = store.profile(ANN)
    taken_back = retraction(duplicate, DECAY)
    assert store.retract(A1, ANN, taken_back) is Absorbed.DONE
    assert store.retract(A1, ANN, taken_back) is Absorbed.ALREADY
    after = store.profile(ANN)
    assert after.event_count == before.event_count - 1
    assert after.counts["product_viewed"] == before.counts["product_viewed"] - 1
    assert after.scores["global"].total == before.scores["global"].total - duplicate.ledger[0].points
    assert ports.events(A1) == [] and ports.events(ANN) == ["m1"]


@pytest.mark.parametrize("timed", [False, True], ids=["untimed", "timed"])
def test_a_duplicate_taken_back_while_on_its_way_is_given_back_by_its_put_once(ports, timed):
    """The same call under both identities, the visitor's copy not folded in yet when the merge moves the
    log: the merge takes it back as if the visitor had counted it, and marks what it took for that put.
    That put's re-route gets it back, once; a replay of the call (another put) gets nothing."""
    store = ports.store
    viewed = {"type": "track", "event": "Product Viewed", "messageId": "m1"}
    if timed:
        viewed["timestamp"] = (NOW - timedelta(hours=3)).isoformat()
    commit(store, ANN, {**viewed, "userId": "ann"})
    assert store.append(entries(A1, {**viewed, "anonymousId": "a1"})) == frozenset()
    (on_its_way,) = store.new_events()
    before = store.profile(ANN)
    store.claim(A1, ANN, NOW)
    (duplicate,) = store.move_events(A1, ANN, 100).duplicates
    assert store.retract(A1, ANN, retraction(duplicate, DECAY)) is Absorbed.DONE
    assert store.profile(ANN).event_count == before.event_count - 1
    later = NOW + timedelta(seconds=30)
    assert store.append(entries(A1, {**viewed, "anonymousId": "a1"}, at=later)) == frozenset()
    (replay,) = store.new_events()  # the SDK's late retry: another put of the call
    assert store.give_back(A1, ANN, replay.item) is Absorbed.ALREADY
    assert store.give_back(A1, ANN, on_its_way.item) is Absorbed.DONE
    assert store.give_back(A1, ANN, on_its_way.item) is Absorbed.ALREADY
    after = store.profile(ANN)
    assert (after.event_count, after.counts, after.revenue_total) == (
        before.event_count,
        before.counts,
        before.revenue_total,
    )
    assert after.scores["global"].total == before.scores["global"].total
    for memory, buckets in before.scores["global"].sums.items():
        assert after.scores["global"].sums[memory] == pytest.approx(buckets)


def test_giving_back_to_a_contact_merged_away_meanwhile_is_refused(ports):
    store = ports.store
    commit(store, ANN, page(ANN, "m1"))
    assert store.append(entries(A1, page(A1, "m1"))) == frozenset()
    (on_its_way,) = store.new_events()
    store.claim(A1, ANN, NOW)
    (duplicate,) = store.move_events(A1, ANN, 100).duplicates
    store.retract(A1, ANN, retraction(duplicate, DECAY))
    store.claim(ANN, BOB, NOW)
    assert store.give_back(A1, ANN, on_its_way.item) is Absorbed.MOVED
    assert store.give_back(A1, BOB, on_its_way.item) is Absorbed.DONE
    assert store.profile(BOB).event_count == 1 and store.profile(ANN).event_count == 0


def test_a_duplicate_taken_back_after_a_chain_of_merges_is_given_back_by_the_contact_that_held_it(ports):
    """The visitor's call on its way; the visitor merged into bob (the copy moves), bob into ann, who
    holds the call too: bob's copy of the visitor's put is the duplicate, so bob's profile keeps the mark.
    The re-route passed through bob: bob gives it back, the visitor has nothing to give."""
    store = ports.store
    commit(store, ANN, page(ANN, "m1"))
    assert store.append(entries(A1, page(A1, "m1"))) == frozenset()
    (on_its_way,) = store.new_events()
    store.claim(A1, BOB, NOW)
    assert store.move_events(A1, BOB, 100).count == 1
    store.claim(BOB, ANN, NOW)
    (duplicate,) = store.move_events(BOB, ANN, 100).duplicates
    assert not duplicate.folded and retraction(duplicate, DECAY).put == duplicate.put
    assert store.retract(BOB, ANN, retraction(duplicate, DECAY)) is Absorbed.DONE
    assert store.profile(ANN).event_count == 0
    assert store.give_back(A1, ANN, on_its_way.item) is Absorbed.ALREADY
    assert store.give_back(BOB, ANN, on_its_way.item) is Absorbed.DONE
    assert store.give_back(BOB, ANN, on_its_way.item) is Absorbed.ALREADY
    assert store.profile(ANN).event_count == 1 and ports.events(ANN) == ["m1"]


def test_a_duplicate_a_re_route_counted_is_read_as_folded_and_taken_back_without_a_mark(ports):
    """The visitor's call re-routed into bob, who counted it (its copy ``folded``); bob merged into ann,
    who holds the call too. The duplicate is read as folded: its retraction marks nothing, since what it
    takes back was counted (a mark would give it back to a redelivery of the call's record)."""
    store = ports.store
    commit(store, ANN, page(ANN, "m1"))
    store.claim(A1, BOB, NOW)
    assert store.append(entries(A1, page(A1, "m1"))) == frozenset()
    assert store.deliver_events().events == 1  # re-routed into bob: copied there, folded
    store.claim(BOB, ANN, NOW)
    (duplicate,) = store.move_events(BOB, ANN, 100).duplicates
    assert duplicate.folded and duplicate.put is not None
    assert retraction(duplicate, DECAY).put is None


TRAITS = {"plan": "free", "city": "Oslo"}


def test_absorbing_adds_the_profile_once_fills_gaps_and_completes_the_merge(ports):
    store = ports.store
    commit(
        store,
        A1,
        page(A1, "p1", hours_ago=48),
        {"type": "identify", "anonymousId": "a1", "messageId": "i0", "traits": TRAITS},
    )
    commit(store, ANN, {"type": "identify", "userId": "ann", "messageId": "i1", "traits": {"plan": "pro"}})
    assert merge(store, A1, ANN) is Absorbed.DONE
    plan = merge_plan(A1, store.profile(A1), store.profile(ANN))
    assert store.absorb(ANN, plan, NOW) is Absorbed.ALREADY
    ann = store.profile(ANN)
    assert ann.traits == {"plan": "pro", "city": "Oslo"}, "the target's own traits win"
    assert ann.counts == {"visit": 1, "identified": 2} and ann.event_count == 3
    assert ann.anonymous_ids == {"a1"} and ann.first_seen_at == NOW - timedelta(hours=48)
    assert ports.events(ANN) == ["i0", "i1", "p1"]
    assert store.claim(A1, ANN, NOW).completed


def test_absorbing_into_a_contact_merged_away_meanwhile_is_refused(ports):
    store = ports.store
    commit(store, A1, page(A1, "p1"))
    commit(store, ANN, page(ANN, "p2"))
    commit(store, BOB, page(BOB, "p3"))
    store.claim(A1, ANN, NOW)
    store.claim(ANN, BOB, NOW)
    plan = merge_plan(A1, store.profile(A1), store.profile(ANN))
    assert store.absorb(ANN, plan, NOW) is Absorbed.MOVED
    assert store.profile(ANN).event_count == 1


def test_a_change_that_declares_merges_asks_for_them_until_they_are_done(ports):
    store = ports.store
    commit(store, A1, page(A1, "p1"))
    ports.requests()
    commit(store, ANN, {"type": "identify", "userId": "ann", "anonymousId": "a1", "messageId": "i1"})
    (request,) = ports.requests()
    assert (request.target, request.sources) == (ANN, (A1,))
    commit(store, ANN, page(ANN, "p2"))
    assert [r.marker for r in ports.requests()] == [request.marker], "the next write asks again"
    merge(store, A1, ANN)
    ports.requests()
    commit(store, ANN, page(ANN, "p3"))
    assert ports.requests() == [], "a merge done is no longer asked for"


def test_a_request_is_cleared_only_by_its_own_marker(ports):
    store = ports.store
    commit(store, ANN, {"type": "identify", "userId": "ann", "anonymousId": "a1", "messageId": "i1"})
    (request,) = ports.requests()
    store.clear_merge_request(ANN, '["anonymous_id:someone-else"]')
    commit(store, ANN, page(ANN, "p2"))
    assert len(ports.requests()) == 1
    store.clear_merge_request(ANN, request.marker)
    ports.requests()
    commit(store, ANN, page(ANN, "p3"))
    assert ports.requests() == []


def test_of_a_merges_writes_to_the_source_only_the_claim_reaches_the_stage_function(contact_tables):
    """The stage function removes a merged-away contact from its stage on the claim's write; the later
    write completing the merge is not a change it evaluates (each would cost it a read and a refused write)."""
    from infra.local.filters import matches
    from infra.wiring import PROFILE_CHANGED
    from shared.adapters import aws

    tables = contact_tables()
    store = tables.stores()
    commit(store, A1, page(A1, "p1"))
    commit(store, ANN, page(ANN, "p2"))
    seen = _stream_reader(aws.client("dynamodbstreams"), tables, lambda record: record)
    seen()  # what was written before the merge
    assert merge(store, A1, ANN) is Absorbed.DONE
    source = [
        r
        for r in seen()
        if r["dynamodb"]["Keys"]["pk"]["S"] == f"C#{A1}" and r["dynamodb"]["Keys"]["sk"]["S"] == "PROFILE"
    ]
    assert len(source) >= 2, "claimed, then marked complete"
    passed = [r for r in source if matches(PROFILE_CHANGED, r)]
    assert [
        ("mergedInto" in r["dynamodb"]["NewImage"], "mergeCompletedAt" in r["dynamodb"]["NewImage"])
        for r in passed
    ] == [(True, False)]
