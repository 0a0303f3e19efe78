"""Identity merges run off the request path: the request asks, the contacts table's stream merges."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest

from tests.conftest import BROWSER_KEY


def requests_made(aws) -> Counter[str]:
    """Every DynamoDB request the functions make from now on, by operation (a botocore hook)."""
    made: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        made[model.name] += 1

    aws.meta.events.register("before-call.dynamodb", count)
    return made


def identifies(count: int) -> list[dict[str, Any]]:
    return [
        {"type": "identify", "anonymousId": f"v{i}", "userId": f"u{i}", "messageId": f"i{i}"}
        for i in range(count)
    ]


@pytest.mark.parametrize("calls", [100, 2500])
def test_merging_identify_calls_cost_the_request_one_put_each_whatever_the_batch_size(
    aws, send, calls
) -> None:
    """The request only appends its events (one conditional put each, no transaction, no profile write);
    the merges are asked for when the aggregation folds the identify calls in, one write per user."""
    visits = [{"type": "page", "anonymousId": f"v{i}", "messageId": f"p{i}"} for i in range(100)]
    assert send("/v1/b", {"batch": visits}, key=BROWSER_KEY)[0] == 200  # history to merge, for some
    made = requests_made(aws)
    assert send("/v1/b", {"batch": identifies(calls)}, key=BROWSER_KEY, fold=False)[0] == 200
    assert made["PutItem"] == calls and "TransactWriteItems" not in made and "UpdateItem" not in made
    assert sum(made.values()) - calls <= 2, made  # the write key and the rule book, at most


def test_the_stream_merges_what_the_requests_asked_for(aws, send, admin, merges) -> None:
    """Until the merge function has run, the visitor's history is still its own; then it is the user's."""
    visits = [{"type": "page", "anonymousId": f"v{i}", "messageId": f"p{i}"} for i in range(100)]
    assert send("/v1/b", {"batch": visits}, key=BROWSER_KEY)[0] == 200
    assert send("/v1/b", {"batch": identifies(100)}, key=BROWSER_KEY)[0] == 200
    assert admin("u7")[1]["event_count"] == 1  # the window: asked for, not merged yet
    assert merges.drain() == 100  # one profile write per user asked
    for i in (0, 7, 99):
        card = admin(f"u{i}")[1]
        assert card["event_count"] == 2 and card["anonymous_ids"] == [f"v{i}"]
        assert sorted(e["message_id"] for e in card["recent_events"]) == [f"i{i}", f"p{i}"]
    assert admin("anonymous_id:v7")[1]["contact_id"] == "user_id:u7"
    assert merges.drain() == 0 and not merges.dead_letters  # the merges' own writes ask for nothing


def test_retries_replays_and_redelivery_merge_once(aws, send, admin, merges, monkeypatch) -> None:
    """A merge cut short (the function fails mid-way) resumes when the batch is retried; an SDK retry
    of the identify and a redelivered stream record change nothing."""
    from functions.merge.handler import handler
    from shared.adapters.contact_merges import DynamoMergeStore
    from shared.errors import DependencyUnavailable
    from tests.conftest import Context

    journey = [
        {"type": "track", "anonymousId": "v1", "event": "Product Viewed", "messageId": "t1"},
        {
            "type": "track",
            "anonymousId": "v1",
            "event": "Order Completed",
            "messageId": "o1",
            "properties": {"revenue": 20},
        },
    ]
    assert send("/v1/b", {"batch": journey})[0] == 200
    identify = {"anonymousId": "v1", "userId": "ann", "messageId": "i1"}
    assert send("/v1/identify", identify)[0] == 200
    absorb, failures = DynamoMergeStore.absorb, []

    def fails_once(self, target, plan, at):
        if not failures:
            failures.append(plan.source)
            raise DependencyUnavailable("injected: the function timed out mid-merge")
        return absorb(self, target, plan, at)

    monkeypatch.setattr(DynamoMergeStore, "absorb", fails_once)
    assert merges.drain() == 1 and failures and not merges.dead_letters
    once = admin("ann")[1]
    assert once["event_count"] == 3 and once["revenue_total"] == 20
    assert once["counts"] == {"product_viewed": 1, "purchase": 1, "identified": 1}
    assert send("/v1/identify", identify)[0] == 200  # the SDK retries: nothing new is asked
    assert merges.drain() == 0
    record = {
        "eventID": "1",
        "eventName": "MODIFY",
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "Keys": {"pk": {"S": "C#user_id:ann"}, "sk": {"S": "PROFILE"}},
            "NewImage": {
                "pk": {"S": "C#user_id:ann"},
                "sk": {"S": "PROFILE"},
                "lastWriter": {"S": "tracking"},
                "mergeRequested": {"S": '["anonymous_id:v1"]'},
            },
            "SequenceNumber": "1",
        },
    }
    assert handler({"Records": [record]}, Context()) == {"batchItemFailures": []}  # redelivered
    again = admin("ann")[1]
    assert {k: again[k] for k in ("event_count", "revenue_total", "counts", "scores")} == {
        k: once[k] for k in ("event_count", "revenue_total", "counts", "scores")
    }


def test_the_sample_stream_event_runs_through_the_aggregation_function_once(aws, admin) -> None:
    """events/aggregation holds the INSERT an analytics.js purchase makes in the event log: the aggregation
    folds it into the profile, and the same record delivered again changes nothing."""
    import json

    from functions.aggregation.handler import handler
    from tests.conftest import EVENTS, Context

    (sample,) = (EVENTS / "aggregation").glob("*.json")
    event = json.loads(sample.read_text())
    assert handler(event, Context()) == {"batchItemFailures": []}
    card = admin("user-42")[1]
    assert card["counts"] == {"purchase": 1} and card["revenue_total"] == 49.98
    assert handler(event, Context()) == {"batchItemFailures": []}
    assert admin("user-42")[1]["counts"] == {"purchase": 1} and admin("user-42")[1]["event_count"] == 1


def test_the_sample_stream_event_runs_through_the_merge_function(aws, admin) -> None:
    import json

    from functions.merge.handler import handler
    from tests.conftest import EVENTS, Context

    (sample,) = (EVENTS / "merge").glob("*.json")
    assert handler(json.loads(sample.read_text()), Context()) == {"batchItemFailures": []}
    card = admin("user-42")[1]
    assert card["anonymous_ids"] == ["5f2b1d8e-0c6a-4a8e-9a51-1f0e2c3d4b5a"]


def test_merging_many_visitors_never_overfills_the_users_traits(merges, send, admin) -> None:
    """Each visitor may hold up to 64 KB of traits, and a browser key may join any visitor to any user:
    the merge fills only what fits under the user's cap, so the user's profile stays writable."""
    from shared.contacts.changes import MAX_PROFILE_TRAIT_BYTES, trait_bytes

    for v in range(3):
        for half in range(2):
            traits = {f"v{v}h{half}_{i}": "x" * 2000 for i in range(14)}  # ~28 KB a call
            body = {"anonymousId": f"v{v}", "messageId": f"t{v}-{half}", "traits": traits}
            assert send("/v1/identify", body, key=BROWSER_KEY)[0] == 200
    for v in range(3):
        body = {"anonymousId": f"v{v}", "userId": "bob", "messageId": f"i{v}"}
        assert send("/v1/identify", body, key=BROWSER_KEY)[0] == 200
    merges.drain()
    assert merges.dead_letters == []
    status, card, _ = admin("bob")
    assert status == 200 and card["event_count"] == 9  # every merge completed: its counters arrived
    assert 0 < trait_bytes(card["traits"]) <= MAX_PROFILE_TRAIT_BYTES
    # bob can still be identified and tracked
    assert send("/v1/identify", {"userId": "bob", "traits": {"name": "Bob"}, "messageId": "n"})[0] == 200
    assert send("/v1/track", {"userId": "bob", "event": "Product Viewed", "messageId": "p"})[0] == 200


def test_an_event_sent_to_the_user_while_the_merge_copies_counts_once(merges, send, admin, monkeypatch):
    """The merge reads the visitor's events, then copies them: the same messageId arriving under the user
    in between is not overwritten by the copy, and is taken back from the visitor's counters instead."""
    from shared.adapters.contact_merges import DynamoMergeStore

    assert send("/v1/track", {"anonymousId": "a1", "event": "Product Viewed", "messageId": "mX"})[0] == 200
    assert send("/v1/identify", {"anonymousId": "a1", "userId": "bob", "messageId": "i1"})[0] == 200
    copy = DynamoMergeStore._copy
    raced: list[int] = []

    def racing(self, items, source, target):
        if not raced:
            raced.append(1)
            call = {"anonymousId": "a1", "userId": "bob", "event": "Product Viewed", "messageId": "mX"}
            assert send("/v1/track", call)[0] == 200
        return copy(self, items, source, target)

    monkeypatch.setattr(DynamoMergeStore, "_copy", racing)
    merges.drain()
    card = admin("bob")[1]
    stored = sorted(e["message_id"] for e in card["recent_events"])
    assert stored == ["i1", "mX"]
    assert card["event_count"] == 2 and card["counts"]["product_viewed"] == 1


def test_a_call_sent_under_both_identities_still_on_its_way_at_the_merge_counts_once(
    send, admin, merges, aggregation
):
    """The same call (messageId) sent under the user, then under the identity aliased into it, that copy
    not folded in yet when the merge moves the log: the merge takes it back as if the alias's profile had
    counted it, and the copy's re-route gives it back. The call counts once, nothing is lost."""
    first = [
        {"type": "page", "userId": "ann", "messageId": "m0"},
        {"type": "alias", "userId": "ann", "previousId": "bob", "messageId": "m1"},
    ]
    assert send("/v1/batch", {"batch": first})[0] == 200
    assert send("/v1/page", {"userId": "bob", "messageId": "m0"}, fold=False)[0] == 200
    merges.drain()  # the merge moves bob's log before the aggregation has folded bob's m0 in
    assert admin("ann")[1]["event_count"] == 1, "taken back as if bob's profile had counted it"
    aggregation.drain()  # re-routed to ann, who holds m0: given back
    card = admin("ann")[1]
    assert sorted(e["message_id"] for e in card["recent_events"]) == ["m0", "m1"]
    assert card["event_count"] == 2 and sum(card["counts"].values()) == 2
    assert admin("bob")[1]["contact_id"] == "user_id:ann"
    assert merges.drain() == 0 and not merges.dead_letters


#: The chain of merges below: the visitor v1 identified as bob, bob aliased into ann.
IDENTIFY_BOB = {"type": "identify", "userId": "bob", "anonymousId": "v1", "messageId": "i1"}
ALIAS_ANN = {"type": "alias", "userId": "ann", "previousId": "bob", "messageId": "a1"}


def asks_bob_then_ann(send, *more_for_ann: dict[str, Any]) -> None:
    """Bob's profile asks for v1, then ann's for bob: two requests, folded one after the other, so the
    contacts table's stream holds them in this order. Sent in one batch, the two contacts' calls are put
    in parallel and the stream orders records per item only: the merges would come in either order
    (``asks_ann_then_bob``, the other one)."""
    assert send("/v1/batch", {"batch": [IDENTIFY_BOB]})[0] == 200
    assert send("/v1/batch", {"batch": [ALIAS_ANN, *more_for_ann]})[0] == 200


def asks_ann_then_bob(send, *more_for_ann: dict[str, Any]) -> None:
    """Ann's profile asks for bob, then bob's for v1: bob is merged into ann before v1 is merged into bob."""
    assert send("/v1/batch", {"batch": [ALIAS_ANN, *more_for_ann]})[0] == 200
    assert send("/v1/batch", {"batch": [IDENTIFY_BOB]})[0] == 200


def test_a_call_on_its_way_through_a_chain_of_merges_counts_once_where_it_ends_up(
    aws, send, admin, merges, aggregation
):
    """A visitor merged into bob, bob into ann, in one run of the merge function, while the visitor's call
    is still on its way: each merge moves the uncounted copy and names itself as its source, so when it
    reaches ann the copy says ``bob``, not the visitor. The re-route (origin: the visitor) finds that very
    put, not counted by anyone, and counts it, once; nothing is lost, a redelivery counts nothing."""
    asks_bob_then_ann(send)
    assert send("/v1/page", {"anonymousId": "v1", "messageId": "p1"}, fold=False)[0] == 200
    assert merges.drain() == 2  # v1 into bob, then bob into ann: before the aggregation folds p1 in
    table = os.environ["EVENTS_TABLE_NAME"]
    moved = aws.get_item(TableName=table, Key={"pk": {"S": "C#user_id:ann"}, "sk": {"S": "M#p1"}})["Item"]
    assert moved["movedFrom"] == {"S": "user_id:bob"} and "folded" not in moved, "moved twice, uncounted"
    assert admin("ann")[1]["event_count"] == 2
    aggregation.drain()  # re-routed from v1 (through bob) to ann: the copy of that very put, counted
    card = admin("ann")[1]
    assert sorted(e["message_id"] for e in card["recent_events"]) == ["a1", "i1", "p1"]
    assert card["event_count"] == 3 and sum(card["counts"].values()) == 3
    assert admin("anonymous_id:v1")[1]["contact_id"] == "user_id:ann"
    assert aggregation.drain() == 0 and admin("ann")[1]["event_count"] == 3
    assert merges.drain() == 0 and not merges.dead_letters


def test_a_call_on_both_identities_taken_back_after_a_chain_of_merges_counts_once(
    send, admin, merges, aggregation
):
    """The visitor's call on its way; the visitor merged into bob (the copy moves to bob), then bob into
    ann, who holds the same call: bob's copy is retracted as if counted, and bob's profile keeps the mark.
    The re-route (from the visitor, through bob) finds it there and gives it back: the call counts once."""
    asks_bob_then_ann(send, {"type": "page", "userId": "ann", "messageId": "m0"})
    assert send("/v1/page", {"anonymousId": "v1", "messageId": "m0"}, fold=False)[0] == 200
    assert merges.drain() == 2  # v1 into bob, then bob into ann: before the aggregation folds v1's m0 in
    assert admin("ann")[1]["event_count"] == 2, "taken back as if bob's profile had counted it"
    aggregation.drain()
    card = admin("ann")[1]
    assert sorted(e["message_id"] for e in card["recent_events"]) == ["a1", "i1", "m0"]
    assert card["event_count"] == 3 and sum(card["counts"].values()) == 3
    assert aggregation.drain() == 0 and admin("ann")[1]["event_count"] == 3
    assert merges.drain() == 0 and not merges.dead_letters


def test_a_call_on_its_way_when_bob_merges_into_ann_before_the_visitor_merges_counts_once(
    aws, send, admin, merges, aggregation, metrics
):
    """The same chain in the other order: bob is merged into ann first, then the merge of the visitor
    into bob finds bob merged away and goes to ann, so the uncounted copy says the visitor. The re-route
    counts that very put, once; a redelivery counts nothing."""
    asks_ann_then_bob(send)
    assert send("/v1/page", {"anonymousId": "v1", "messageId": "p1"}, fold=False)[0] == 200
    merges.drain()
    # bob into ann (the alias names bob both as a user and as a visitor's id), then v1 into ann
    assert metrics["ContactsMerged"] == 3 and not merges.dead_letters
    table = os.environ["EVENTS_TABLE_NAME"]
    moved = aws.get_item(TableName=table, Key={"pk": {"S": "C#user_id:ann"}, "sk": {"S": "M#p1"}})["Item"]
    assert moved["movedFrom"] == {"S": "anonymous_id:v1"} and "folded" not in moved, "moved once, uncounted"
    assert admin("ann")[1]["event_count"] == 2
    aggregation.drain()
    card = admin("ann")[1]
    assert sorted(e["message_id"] for e in card["recent_events"]) == ["a1", "i1", "p1"]
    assert card["event_count"] == 3 and sum(card["counts"].values()) == 3
    assert admin("anonymous_id:v1")[1]["contact_id"] == "user_id:ann"
    assert admin("bob")[1]["contact_id"] == "user_id:ann"
    assert aggregation.drain() == 0 and admin("ann")[1]["event_count"] == 3
    merges.drain()
    assert metrics["ContactsMerged"] == 3 and not merges.dead_letters  # nothing merged again


def test_a_call_on_both_identities_when_bob_merges_into_ann_first_counts_once(
    send, admin, merges, aggregation, metrics
):
    """The other order again, with the call on ann too: the visitor's merge (gone to ann) retracts the
    visitor's copy as if counted, and the visitor's profile keeps the mark; the re-route (from the
    visitor, straight to ann) finds it there and gives it back: the call counts once."""
    asks_ann_then_bob(send, {"type": "page", "userId": "ann", "messageId": "m0"})
    assert send("/v1/page", {"anonymousId": "v1", "messageId": "m0"}, fold=False)[0] == 200
    merges.drain()
    assert metrics["ContactsMerged"] == 3 and not merges.dead_letters  # as above: bob twice, then v1
    assert admin("ann")[1]["event_count"] == 2, "taken back as if the visitor's profile had counted it"
    aggregation.drain()
    card = admin("ann")[1]
    assert sorted(e["message_id"] for e in card["recent_events"]) == ["a1", "i1", "m0"]
    assert card["event_count"] == 3 and sum(card["counts"].values()) == 3
    assert aggregation.drain() == 0 and admin("ann")[1]["event_count"] == 3
    merges.drain()
    assert metrics["ContactsMerged"] == 3 and not merges.dead_letters  # nothing merged again
