"""When DynamoDB throttles, conflicts or refuses, nothing is lost and nothing counts twice.

The request path (tracking) only appends events, one conditional PutItem each: a failure there is a
503 with Retry-After (or a 500) and the client's resend counts every event once. The profiles are
folded in off the request path (aggregation, on the events table's stream): a failure there holds the
contact's records back for the stream to deliver again, and what was folded in before is skipped.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError

from tests.conftest import Context

THROTTLED = "ProvisionedThroughputExceededException"
CONFLICT = "TransactionConflict"


class Faults:
    """A botocore hook on the shared client: the matching calls fail as real DynamoDB fails them.

    ``times`` calls fail (``None``: every one); ``match`` picks the requests (default: all of them).
    Thread-safe: a request's event puts run side by side.
    """

    def __init__(
        self,
        operation: str,
        code: str,
        *,
        times: int | None,
        match: Any = None,
        reason: str | None = None,
        message: str = "injected",
    ) -> None:
        self.operation, self.code, self.times, self.match = operation, code, times, match
        self.reason, self.message = reason, message
        self.seen = 0
        self._lock = threading.Lock()

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name != self.operation or (self.match is not None and not self.match(params)):
            return
        with self._lock:
            self.seen += 1
            if self.times is not None and self.seen > self.times:
                return
        error: dict[str, Any] = {"Error": {"Code": self.code, "Message": self.message}}
        if self.reason is not None:  # a cancelled transaction: a reason per item, as DynamoDB reports them
            error["CancellationReasons"] = [
                {"Code": self.reason, "Message": self.message} for _ in params.get("TransactItems", [])
            ]
        raise ClientError(error, self.operation)


@pytest.fixture
def faults(aws):
    installed: list[Faults] = []

    def install(operation: str, code: str, **kwargs: Any) -> Faults:
        fault = Faults(operation, code, **kwargs)
        aws.meta.events.register_first("before-parameter-build.dynamodb", fault)
        installed.append(fault)
        return fault

    yield install
    for fault in installed:
        aws.meta.events.unregister("before-parameter-build.dynamodb", fault)


def conflict(faults, match: Any = None, times: int | None = None) -> Faults:
    """Real DynamoDB cancels concurrent transactions on one item; moto serialises and never does."""
    return faults(
        "TransactWriteItems",
        "TransactionCanceledException",
        times=times,
        match=match,
        reason=CONFLICT,
        message="Transaction is ongoing for the item",
    )


def touches(prefix: str) -> Any:
    """Transactions writing an item whose sort key starts with ``prefix``."""

    def match(params: dict[str, Any]) -> bool:
        for item in params.get("TransactItems", []):
            request = next(iter(item.values()))
            key = request.get("Key") or request.get("Item") or {}
            if key.get("sk", {}).get("S", "").startswith(prefix):
                return True
        return False

    return match


def stage_write(params: dict[str, Any]) -> bool:
    """The stage function's write: an update of the profile that sets stageSeq."""
    return any(
        "stageSeq" in (i.get("Update") or {}).get("ExpressionAttributeNames", {}).values()
        for i in params.get("TransactItems", [])
    )


def puts_of(*message_ids: str) -> Any:
    """The tracking path's puts of these calls (PutItem of their events)."""
    from shared.adapters.contact_items import message_id_of

    wanted = set(message_ids)
    return lambda params: message_id_of(params["Item"]["sk"]["S"]) in wanted


def folds_into(contact: str) -> Any:
    """The aggregation's profile update of this contact (``user_id:ann``): the one that moves its
    stream position (``aggregatedThrough``)."""

    def match(params: dict[str, Any]) -> bool:
        return (
            params["Key"]["pk"]["S"] == f"C#{contact}"
            and "aggregatedThrough" in (params.get("ExpressionAttributeNames") or {}).values()
        )

    return match


def reroutes_from(contact: str) -> Any:
    """The aggregation's transaction that copies events recorded for a merged-away contact into its
    contact's log (``movedFrom``) and folds them into its profile."""

    def match(params: dict[str, Any]) -> bool:
        return any(
            (i.get("Put") or {}).get("Item", {}).get("movedFrom", {}).get("S") == contact
            for i in params.get("TransactItems", [])
        )

    return match


INTERNALS = (
    "Exception",
    "TransactWriteItems",
    "PutItem",
    "UpdateItem",
    "ClientError",
    "botocore",
    "Cancellation",
    "Throughput",
    "injected",
)


def no_internals(body: dict[str, Any]) -> bool:
    return not any(word.lower() in body["message"].lower() for word in INTERNALS)


def likes(users: Any) -> dict[str, Any]:
    """A batch of one Liked call per user given, ``m0``, ``m1``... in that order."""
    return {
        "batch": [
            {"type": "track", "userId": user, "event": "Liked", "messageId": f"m{i}"}
            for i, user in enumerate(users)
        ]
    }


def log_of(aws: Any, contact: str) -> list[dict[str, Any]]:
    """The contact's partition of the events table (``user_id:ann``)."""
    return aws.query(
        TableName=os.environ["EVENTS_TABLE_NAME"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"C#{contact}"}},
    )["Items"]


def recorded_batch(aggregation: Any) -> list[dict[str, Any]]:
    """The records the events table's stream holds for the aggregation now, as Lambda would pass them
    (drained without running the function)."""
    batches: list[dict[str, Any]] = []
    aggregation._handler = lambda event, context: batches.append(event) or {"batchItemFailures": []}
    aggregation.drain()
    return [record for batch in batches for record in batch["Records"]]


def sequence(record: dict[str, Any]) -> str:
    return record["dynamodb"]["SequenceNumber"]


def user_of(record: dict[str, Any]) -> str:
    return record["dynamodb"]["Keys"]["pk"]["S"].removeprefix("C#user_id:")


# --- the request path: one conditional put per event -------------------------------------------------


def test_throttling_after_retries_is_503_with_retry_after(faults, send, admin, state) -> None:
    from shared.adapters.dynamodb import ATTEMPTS

    before = state()
    fault = faults("PutItem", THROTTLED, times=None)
    status, body, headers = send("/v1/track", {"userId": "ann", "event": "Liked", "messageId": "m1"})
    assert (status, body["code"]) == (503, "unavailable") and int(headers["retry-after"]) > 0
    assert no_internals(body), body
    assert fault.seen == ATTEMPTS, "retried with backoff before answering"
    assert state() == before and admin("ann")[0] == 404, "nothing was written"


def test_a_short_throttle_is_absorbed_by_retries(faults, send, admin) -> None:
    fault = faults("PutItem", THROTTLED, times=1)
    assert send("/v1/track", {"userId": "ann", "event": "Liked", "messageId": "m1"})[0] == 200
    assert fault.seen == 2
    card = admin("ann")[1]
    assert card["event_count"] == 1 and card["counts"] == {"like": 1}


def test_throttling_messages_name_no_backend_internals(faults, send) -> None:
    faults(
        "PutItem",
        "ThrottlingException",
        times=None,
        message="Rate of requests exceeds the allowed throughput",
    )
    status, body, _ = send("/v1/batch", likes(["ann", "bob"]))
    assert status == 503 and no_internals(body), body


def test_resend_after_a_half_written_batch_counts_every_event_once(faults, send, admin, aws) -> None:
    """Half of a batch's puts are throttled past the retries: the others are in the log (and folded
    in); the client resends the whole batch, and every event counts once."""
    batch = likes(f"u{i}" for i in range(100))
    fault = faults("PutItem", THROTTLED, times=None, match=puts_of(*(f"m{i}" for i in range(50, 100))))
    status, body, headers = send("/v1/batch", batch)
    assert status == 503 and int(headers["retry-after"]) > 0 and no_internals(body), body
    assert admin("u0")[1]["event_count"] == 1 and admin("u49")[1]["event_count"] == 1, "some puts were done"
    assert admin("u50")[0] == 404 and admin("u99")[0] == 404 and log_of(aws, "user_id:u99") == []
    fault.times = 0  # the throttle passes; the SDK resends the batch
    assert send("/v1/batch", batch)[0] == 200
    for i in (0, 49, 50, 99):
        card = admin(f"u{i}")[1]
        assert card["counts"] == {"like": 1} and card["event_count"] == 1, i
        assert len(log_of(aws, f"user_id:u{i}")) == 1


def test_a_batch_cut_short_by_an_unexpected_error_asks_for_a_resend(faults, send, admin) -> None:
    """DynamoDB refuses one put of a batch for a reason that is not the client's: the answer makes the
    client resend (5xx, no internals), and the resend completes the batch with every event counted once."""
    batch = likes(f"u{i}" for i in range(100))
    refused = faults(
        "PutItem",
        "ValidationException",
        times=1,
        match=puts_of("m99"),
        message="One or more parameter values were invalid: PutItem ...",
    )
    status, body, _ = send("/v1/batch", batch)
    assert status >= 500 and no_internals(body), body
    assert refused.seen == 1 and admin("u0")[1]["event_count"] == 1 and admin("u99")[0] == 404
    assert send("/v1/batch", batch)[0] == 200
    for i in (0, 49, 50, 99):
        card = admin(f"u{i}")[1]
        assert card["counts"] == {"like": 1} and card["event_count"] == 1, i


# --- aggregation: folding the log into profiles, off the request path ----------------------------------


@pytest.mark.parametrize(
    ("code", "attempts"),
    [(THROTTLED, "all"), ("InternalServerError", "all"), ("ValidationException", 1)],
    ids=["throttled", "server-error", "unexpected"],
)
def test_a_failed_profile_update_holds_back_the_contacts_records_and_the_retry_counts_once(
    code, attempts, faults, send, aggregation, admin
) -> None:
    """bob, ann, bob, ann: ann's profile update fails. The batch reports ann's first record; Lambda
    delivers it again with every later record (bob's second one too): each event counts once."""
    from functions.aggregation.handler import handler
    from shared.adapters.dynamodb import ATTEMPTS

    for i, user in enumerate(["bob", "ann", "bob", "ann"]):  # one request each: in this order
        assert (
            send("/v1/track", {"userId": user, "event": "Liked", "messageId": f"m{i}"}, fold=False)[0] == 200
        )
    records = recorded_batch(aggregation)
    assert [user_of(r) for r in records] == ["bob", "ann", "bob", "ann"]
    fault = faults("UpdateItem", code, times=None, match=folds_into("user_id:ann"))
    assert handler({"Records": records}, Context()) == {
        "batchItemFailures": [{"itemIdentifier": sequence(records[1])}]
    }
    assert fault.seen == (ATTEMPTS if attempts == "all" else attempts)
    assert admin("ann")[0] == 404
    assert admin("bob")[1]["counts"] == {"like": 2}, "the other contact's events stand"
    fault.times = 0  # the fault passes; Lambda resumes at the reported record
    for _ in range(2):  # and may deliver it again (at least once)
        assert handler({"Records": records[1:]}, Context()) == {"batchItemFailures": []}
        for user in ("ann", "bob"):
            card = admin(user)[1]
            assert card["counts"] == {"like": 2} and card["event_count"] == 2, (user, card)


def test_the_stream_retries_a_throttled_profile_update_until_it_counts_once(
    faults, send, aggregation, admin
) -> None:
    """Through the event source mapping: the first invocation runs out of retries on ann's profile,
    reports her record, and the mapping retries from there; nothing is set aside."""
    from shared.adapters.dynamodb import ATTEMPTS

    fault = faults("UpdateItem", THROTTLED, times=ATTEMPTS, match=folds_into("user_id:ann"))
    assert send("/v1/batch", likes(["bob", "ann", "bob", "ann"]))[0] == 200
    assert fault.seen == ATTEMPTS + 1
    assert aggregation.invocations == 2 and aggregation.dead_letters == []
    for user in ("ann", "bob"):
        card = admin(user)[1]
        assert card["counts"] == {"like": 2} and card["event_count"] == 2, (user, card)


def merged_visitor(send, merges, admin) -> None:
    """Visitor a1 joined ann: the events a1 records from now on are re-routed to ann when folded in."""
    assert send("/v1/track", {"anonymousId": "a1", "event": "Liked", "messageId": "m1"})[0] == 200
    assert send("/v1/identify", {"anonymousId": "a1", "userId": "ann", "messageId": "i1"})[0] == 200
    merges.drain()
    assert merges.dead_letters == [] and admin("anonymous_id:a1")[1]["contact_id"] == "user_id:ann"


def test_a_conflict_on_the_reroute_transaction_is_retried(
    faults, send, merges, aggregation, admin, aws
) -> None:
    merged_visitor(send, merges, admin)
    fault = conflict(faults, match=reroutes_from("anonymous_id:a1"), times=2)
    assert send("/v1/track", {"anonymousId": "a1", "event": "Liked", "messageId": "late"})[0] == 200
    assert fault.seen == 3 and aggregation.dead_letters == []
    card = admin("ann")[1]
    assert card["counts"] == {"like": 2, "identified": 1} and card["event_count"] == 3
    assert "late" in {e["message_id"] for e in card["recent_events"]}
    assert log_of(aws, "anonymous_id:a1") == [], "the re-routed event lives on under ann only"


def test_a_lasting_conflict_on_the_reroute_holds_the_record_back_and_the_retry_counts_once(
    faults, send, merges, aggregation, admin, aws
) -> None:
    from functions.aggregation.handler import handler
    from shared.adapters.dynamodb import ATTEMPTS

    merged_visitor(send, merges, admin)
    assert (
        send("/v1/track", {"anonymousId": "a1", "event": "Liked", "messageId": "late"}, fold=False)[0] == 200
    )
    (record,) = recorded_batch(aggregation)
    fault = conflict(faults, match=reroutes_from("anonymous_id:a1"))
    assert handler({"Records": [record]}, Context()) == {
        "batchItemFailures": [{"itemIdentifier": sequence(record)}]
    }
    assert fault.seen == ATTEMPTS, "retried before giving the record back"
    assert admin("ann")[1]["event_count"] == 2, "nothing folded in"
    assert len(log_of(aws, "anonymous_id:a1")) == 1 and len(log_of(aws, "user_id:ann")) == 2, "nor copied"
    fault.times = 0
    for _ in range(2):  # the retry, and a redelivery after it
        assert handler({"Records": [record]}, Context()) == {"batchItemFailures": []}
        card = admin("ann")[1]
        assert card["counts"] == {"like": 2, "identified": 1} and card["event_count"] == 3
        assert log_of(aws, "anonymous_id:a1") == [] and len(log_of(aws, "user_id:ann")) == 3


def test_a_conflict_on_a_merge_is_retried_not_a_500(merges, faults, send, admin) -> None:
    """The merge function's transactions conflict with other writes on the same profile: retried."""
    send("/v1/track", {"anonymousId": "a1", "event": "Liked", "messageId": "m1"})
    send("/v1/identify", {"userId": "ann", "traits": {"plan": "pro"}})
    fault = conflict(faults, match=touches("MERGED#"), times=1)
    assert send("/v1/identify", {"anonymousId": "a1", "userId": "ann"})[0] == 200
    merges.drain()
    assert fault.seen == 2 and merges.dead_letters == []
    card = admin("ann")[1]
    assert card["counts"]["like"] == 1 and card["traits"]["plan"] == "pro"


def test_a_conflict_on_a_rule_change_is_retried(faults, rules_api) -> None:
    fault = conflict(faults, times=1)
    status, body, _ = rules_api("PUT", "likes", {"behaviour": "like", "points": 5})
    assert status == 200, body
    assert fault.seen == 2


def test_the_stage_function_retries_a_conflict(faults, send, stream, admin) -> None:
    fault = conflict(faults, match=stage_write, times=1)
    send("/v1/track", {"userId": "ann", "event": "Liked", "messageId": "m1"})
    invocations: list[dict[str, Any]] = []
    original = stream._handler
    stream._handler = lambda event, context: invocations.append(event) or original(event, context)
    assert stream.drain() == 1
    assert len(invocations) == 1, "a passing conflict is absorbed, not redelivered"
    assert fault.seen == 2 and admin("ann")[1]["stage"] == "lead"


def test_a_lasting_conflict_fails_the_stream_record_for_lambda_to_retry(faults, send, stream, admin) -> None:
    from functions.stage_transition.handler import handler

    send("/v1/track", {"userId": "ann", "event": "Liked", "messageId": "m1"})
    send("/v1/track", {"userId": "bob", "event": "Liked", "messageId": "m2"})
    batches: list[dict[str, Any]] = []
    stream._handler = lambda event, context: batches.append(event) or {"batchItemFailures": []}
    stream.drain()
    batch = {"Records": [r for b in batches for r in b["Records"]]}
    (ann,) = [r for r in batch["Records"] if r["dynamodb"]["Keys"]["pk"]["S"] == "C#user_id:ann"]

    def anns(params: dict[str, Any]) -> bool:
        return stage_write(params) and params["TransactItems"][0]["Update"]["Key"]["pk"]["S"].endswith("ann")

    fault = conflict(faults, match=anns)
    response = handler(batch, Context())
    assert response == {"batchItemFailures": [{"itemIdentifier": ann["dynamodb"]["SequenceNumber"]}]}
    assert fault.seen >= 4, "retried with backoff before giving the record back"
    assert admin("ann")[1]["stage_history"] == [] and admin("bob")[1]["stage"] == "lead"
    fault.times = 0  # the conflict passes; Lambda redelivers the record
    assert handler({"Records": [ann]}, Context()) == {"batchItemFailures": []}
    moves = admin("ann")[1]["stage_history"]
    assert admin("ann")[1]["stage"] == "lead" and moves
    assert handler({"Records": [ann]}, Context()) == {"batchItemFailures": []}
    assert admin("ann")[1]["stage_history"] == moves, "applied once"


# --- DynamoDB's limits: 4 KB expressions, 64 KB of traits, 400 KB items ----------------------------------


def traits(prefix: str, count: int = 20, size: int = 500) -> dict[str, str]:
    """About ``count * size`` bytes of traits under new names."""
    return {f"{prefix}{i}": "x" * size for i in range(count)}


@pytest.fixture
def profile_writes(aws):
    """``profile_writes("user_id:ann")``: the aggregation's updates of that profile from now on."""
    hooks: list[Any] = []

    def start(contact: str) -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        match = folds_into(contact)

        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            if model.name == "UpdateItem" and match(params):
                seen.append(params)

        aws.meta.events.register("before-parameter-build.dynamodb", record)
        hooks.append(record)
        return seen

    yield start
    for hook in hooks:
        aws.meta.events.unregister("before-parameter-build.dynamodb", hook)


def test_calls_that_fit_one_write_each_but_not_together_are_folded_in_parts(
    profile_writes, send, rules_api, aggregation, admin
) -> None:
    """One request each, so in this stream order: a product view that 40 tag rules credit, two identify
    calls of 140 traits and one of 30 (a change holds at most 300 traits: the last starts a second
    part). Each call fits one profile write; the first part does not (4 KB of update expression, which
    the ``dynamodb_limits`` hook enforces). The aggregation folds it in smaller parts, in stream order:
    every tag and trait kept, each call once."""
    for i in range(40):
        rule = {"behaviour": "product_viewed", "points": 1, "match": {"product": "kite"}, "tag": f"t{i}"}
        assert rules_api("PUT", f"kite-{i}", rule)[0] == 200
    view = {
        "userId": "ann",
        "event": "Product Viewed",
        "messageId": "view",
        "properties": {"product_id": "kite"},
    }
    assert send("/v1/track", view, fold=False)[0] == 200
    for name, count in (("x", 140), ("y", 140), ("z", 30)):
        call = {"userId": "ann", "traits": traits(f"{name}_", count=count, size=4), "messageId": name}
        assert send("/v1/identify", call, fold=False)[0] == 200
    writes = profile_writes("user_id:ann")
    aggregation.drain()
    assert len(writes) >= 3, "the first part was cut in two"
    assert aggregation.dead_letters == []
    card = admin("ann")[1]
    assert card["event_count"] == 4 and card["counts"] == {"product_viewed": 1, "identified": 3}
    assert sorted(card["tags"]) == sorted(f"t{i}" for i in range(40))
    assert len(card["traits"]) == 310


def test_a_call_too_big_for_one_write_is_refused_before_anything_is_written(send, rules_api, state) -> None:
    """100 tag rules credit one call with 100 tag scores: its profile update passes 4 KB. The other
    calls of the batch, planned first, must not be written before the 413."""
    for i in range(100):
        rule = {"behaviour": "product_viewed", "points": 1, "match": {"product": "kite"}, "tag": f"t{i}"}
        assert rules_api("PUT", f"kite-{i}", rule)[0] == 200
    viewed = {"type": "track", "event": "Product Viewed"}
    batch = [{**viewed, "userId": f"u{i}", "messageId": f"m{i}"} for i in range(60)]
    batch.append({**viewed, "userId": "ann", "messageId": "kite", "properties": {"product_id": "kite"}})
    batch += [{**viewed, "userId": f"v{i}", "messageId": f"n{i}"} for i in range(60)]
    before = state()
    status, body, _ = send("/v1/batch", {"batch": batch})
    assert status == 413 and body.get("code") == "payload_too_large", (status, body)
    assert "kite" in body["message"]
    assert state() == before, "a 4xx writes nothing"


def test_a_profile_keeps_at_most_64_kb_of_traits(send, admin, state) -> None:
    """The request path does not read profiles, so a call that would take a profile past 64 KB of
    traits is accepted (200) and recorded; the aggregation folds it in without its traits, and the
    other calls' effects stand."""
    for call in range(6):  # 6 x ~10 KB: under the cap
        status, body, _ = send("/v1/identify", {"userId": "ann", "traits": traits(f"t{call}_")})
        assert status == 200, body
    before = state()
    batch = [
        {"type": "identify", "userId": "ann", "traits": traits("more_"), "messageId": "big"},
        {"type": "track", "userId": "ann", "event": "Liked", "messageId": "like"},
    ]
    assert send("/v1/batch", {"batch": batch})[0] == 200
    card = admin("ann")[1]
    assert "more_0" not in card["traits"] and len(card["traits"]) == 120, "the call's traits are not kept"
    assert card["counts"] == {"identified": 7, "like": 1} and card["event_count"] == 8, "the calls count"
    assert len(state()[1]) == len(before[1]) + 2, "both calls are in the log"
    # Clearing traits (null) makes room; the next call's traits are kept.
    send("/v1/identify", {"userId": "ann", "traits": {f"t0_{i}": None for i in range(20)}})
    assert send("/v1/identify", {"userId": "ann", "traits": traits("more_"), "messageId": "big2"})[0] == 200
    card = admin("ann")[1]
    assert card["traits"]["more_0"] == "x" * 500 and "t0_0" not in card["traits"]


def test_sending_the_same_traits_again_never_fills_the_profile(send, admin) -> None:
    """The bound counts a replaced trait again; near the cap it is recounted from the real traits."""
    for call in range(20):
        body = {"userId": "ann", "traits": traits("same_"), "messageId": f"i{call}"}
        status, answer, _ = send("/v1/identify", body)
        assert status == 200, (call, answer)
    card = admin("ann")[1]
    assert len(card["traits"]) == 20 and card["counts"] == {"identified": 20}


def test_traits_over_the_cap_in_one_request_write_nothing(send, admin, state) -> None:
    before = state()
    batch = [
        {"type": "identify", "userId": "ann", "traits": traits(f"b{i}_"), "messageId": f"i{i}"}
        for i in range(7)
    ]
    batch.insert(0, {"type": "track", "userId": "bob", "event": "Liked", "messageId": "like"})
    status, body, _ = send("/v1/batch", {"batch": batch})
    assert status == 413 and "64 KB" in body["message"]
    assert state() == before


#: Below moto's own limit (405,000 bytes, applied mid-update); ``item_bytes`` overstates what DynamoDB counts.
ITEM_LIMIT = 400_000


def item_bytes(item: dict[str, Any]) -> int:
    return sum(len(name) + len(json.dumps(value)) for name, value in item.items())


@pytest.fixture
def item_size_limit(aws):
    """DynamoDB's 400 KB item limit, which moto applies only part way through an update: a profile
    update that would make the item bigger is refused whole, as DynamoDB refuses it (UpdateItem: a
    ValidationException; in a transaction: a ValidationError reason)."""

    def too_big(update: dict[str, Any]) -> bool:
        current = aws.get_item(TableName=update["TableName"], Key=update["Key"]).get("Item") or {}
        added = item_bytes(update.get("ExpressionAttributeValues") or {}) + item_bytes(
            update.get("ExpressionAttributeNames") or {}
        )
        return item_bytes(current) + added > ITEM_LIMIT

    def check(params: dict[str, Any], model: Any, **_: Any) -> None:
        message = "Item size to update has exceeded the maximum allowed size"
        if model.name == "UpdateItem" and too_big({**params}):
            raise ClientError({"Error": {"Code": "ValidationException", "Message": message}}, model.name)
        if model.name != "TransactWriteItems":
            return
        reasons = [
            {"Code": "ValidationError", "Message": message}
            if "Update" in item and too_big(item["Update"])
            else {"Code": "None"}
            for item in params["TransactItems"]
        ]
        if any(r["Code"] != "None" for r in reasons):
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
                    "CancellationReasons": reasons,
                },
                model.name,
            )

    aws.meta.events.register_first("before-parameter-build.dynamodb", check)
    yield
    aws.meta.events.unregister("before-parameter-build.dynamodb", check)


def grow(aws: Any, contact: str, *, to: int) -> None:
    """Tags (traits are capped) until the profile holds about ``to`` bytes."""
    table = os.environ["CONTACTS_TABLE_NAME"]
    key = {"pk": {"S": f"C#{contact}"}, "sk": {"S": "PROFILE"}}
    batch = 0
    while to - (size := item_bytes(aws.get_item(TableName=table, Key=key)["Item"])) >= 300:
        count = min(50, max(1, (to - size) // 260))
        names = {f"#t{i}": f"tag:{'t' * 200}{batch}-{i}" for i in range(count)}
        aws.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET " + ",".join(f"{name} = :at" for name in names),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={":at": {"S": "2026-11-23T12:00:00.000Z"}},
        )
        batch += 1


def test_a_profile_near_400_kb_keeps_the_calls_without_their_traits(
    aws, item_size_limit, send, admin, aggregation
) -> None:
    """A profile grown big by tags: real DynamoDB refuses an update past 400 KB. The identify call is
    folded in without its traits, the other calls count, and the resend changes nothing."""
    send("/v1/track", {"userId": "ann", "event": "Liked", "messageId": "first"})
    grow(aws, "user_id:ann", to=ITEM_LIMIT - 10_000)
    batch = [{"type": "identify", "userId": "ann", "traits": traits("t", size=1000), "messageId": "big"}]
    batch += [{"type": "track", "userId": "ann", "event": "Liked", "messageId": "like"}]
    batch += [
        {"type": "track", "userId": f"u{i}", "event": "Liked", "messageId": f"m{i}"} for i in range(120)
    ]
    for _ in range(2):  # the resend changes nothing
        assert send("/v1/batch", {"batch": batch})[0] == 200
        for i in (0, 60, 119):
            assert admin(f"u{i}")[1]["event_count"] == 1
        card = admin("ann")[1]
        assert "t0" not in card["traits"]
        assert card["counts"] == {"like": 2, "identified": 1} and card["event_count"] == 3
    assert aggregation.dead_letters == []


def test_events_a_full_profile_cannot_take_stay_in_the_log_unfolded(
    aws, item_size_limit, send, admin, aggregation
) -> None:
    """A profile at 400 KB takes no more writes: its new events are recorded (200) and listed, not
    folded in, and the stream moves on (no retries, nothing set aside)."""
    send("/v1/track", {"userId": "ann", "event": "Liked", "messageId": "first"})
    grow(aws, "user_id:ann", to=ITEM_LIMIT - 100)
    assert send("/v1/track", {"userId": "ann", "event": "Liked", "messageId": "late"})[0] == 200
    assert aggregation.invocations == 2 and aggregation.dead_letters == []
    card = admin("ann")[1]
    assert card["event_count"] == 1 and card["counts"] == {"like": 1}
    events = admin("ann", events=True)[1]["events"]
    assert {e["message_id"] for e in events} == {"first", "late"}


def test_a_failing_search_upkeep_does_not_hold_the_stage_move_back(send, stream, admin, monkeypatch) -> None:
    """The stage function evaluates the stage first, then keeps the search terms: a search write that
    fails gives the record back for Lambda to retry (both are idempotent), with the stage already moved."""
    from functions.stage_transition.handler import handler
    from shared import runtime

    send("/v1/identify", {"userId": "ann", "traits": {"name": "Ann Lee"}, "messageId": "i1"})
    batches: list[dict[str, Any]] = []
    stream._handler = lambda event, context: batches.append(event) or {"batchItemFailures": []}
    stream.drain()
    batch = {"Records": [r for b in batches for r in b["Records"]]}

    class Down:
        def replace(self, *args: Any, **kwargs: Any) -> bool:
            raise ConnectionError("the search terms are out of reach")

    monkeypatch.setattr(runtime, "search_terms", Down)
    assert len(batch["Records"]) == 1
    with pytest.raises(BatchProcessingError):  # the whole batch failed: given back for the search terms
        handler(batch, Context())
    assert admin("ann")[1]["stage"] == "lead"
