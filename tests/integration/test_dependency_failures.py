"""When DynamoDB throttles or fails, clients get 503 with Retry-After, and their resend counts once."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import http_event, invoke


class Flaky:
    """Wraps the real client; the chosen calls fail with a throttling error."""

    def __init__(
        self, client: Any, fail_calls: set[int], code: str = "ProvisionedThroughputExceededException"
    ):
        self._client = client
        self._fail = fail_calls
        self._code = code
        self.calls = 0

    def transact_write_items(self, **request: Any) -> Any:
        self.calls += 1
        if self.calls in self._fail:
            raise ClientError({"Error": {"Code": self._code, "Message": "slow down"}}, "TransactWriteItems")
        return self._client.transact_write_items(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.fixture
def flaky(aws):
    from shared import runtime
    from shared.adapters import aws as clients

    def install(fail_calls: set[int], code: str = "ProvisionedThroughputExceededException") -> Flaky:
        wrapper = Flaky(aws, fail_calls, code)
        runtime.reset()
        clients.use("dynamodb", wrapper)
        return wrapper

    yield install
    runtime.reset()


def test_throttling_after_retries_is_503_with_retry_after(flaky, admin) -> None:
    from functions.tracking.handler import handler

    flaky({1, 2, 3, 4})
    status, body, headers = invoke(
        handler, http_event("POST", "/v1/track", body={"userId": "ann", "event": "Liked", "messageId": "m1"})
    )
    assert status == 503 and body["code"] == "unavailable"
    assert int(headers["retry-after"]) > 0
    assert admin("ann")[0] == 404, "nothing was written"


def test_a_short_throttle_is_absorbed_by_retries(flaky, admin) -> None:
    from functions.tracking.handler import handler

    store = flaky({1})
    assert (
        invoke(handler, http_event("POST", "/v1/track", body={"userId": "ann", "event": "Liked"}))[0] == 200
    )
    assert store.calls == 2


def test_resend_after_a_half_written_batch_counts_every_event_once(flaky, admin) -> None:
    """100 contacts need two transactions; the second throttles; the client resends the whole batch."""
    from functions.tracking.handler import handler

    batch = {
        "batch": [
            {"type": "track", "userId": f"u{i}", "event": "Liked", "messageId": f"m{i}"} for i in range(100)
        ]
    }
    flaky({2, 3, 4, 5})
    assert invoke(handler, http_event("POST", "/v1/batch", body=batch))[0] == 503
    flaky(set())
    assert invoke(handler, http_event("POST", "/v1/batch", body=batch))[0] == 200
    for i in (0, 49, 50, 99):
        card = admin(f"u{i}")[1]
        assert card["counts"] == {"like": 1} and card["event_count"] == 1


# --- faults real DynamoDB has and moto never shows ------------------------------------------------

CONFLICT = "TransactionConflict"


class Faults:
    """A botocore hook on the shared client: the matching calls fail as real DynamoDB fails them.

    ``times`` calls fail (``None``: every one); ``match`` picks the requests (default: all of them).
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

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name != self.operation or (self.match is not None and not self.match(params)):
            return
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


INTERNALS = ("Exception", "TransactWriteItems", "UpdateItem", "ClientError", "botocore", "Cancellation")


def no_internals(body: dict[str, Any]) -> bool:
    return not any(word.lower() in body["message"].lower() for word in INTERNALS)


def test_a_conflict_on_the_tracking_write_is_retried(faults, send, admin) -> None:
    fault = conflict(faults, times=2)
    assert send("/v1/track", {"userId": "ann", "event": "Liked", "messageId": "m1"})[0] == 200
    assert fault.seen == 3
    assert admin("ann")[1]["event_count"] == 1


def test_a_lasting_conflict_is_503_with_retry_after_and_nothing_written(faults, send, admin) -> None:
    conflict(faults)
    status, body, headers = send("/v1/track", {"userId": "ann", "event": "Liked", "messageId": "m1"})
    assert (status, body["code"]) == (503, "unavailable") and int(headers["retry-after"]) > 0
    assert no_internals(body), body
    assert admin("ann")[0] == 404


def test_a_conflict_on_a_merge_is_retried_not_a_500(merges, faults, send, admin) -> None:
    """The merge function's transactions conflict with tracking writes on the same profile: retried."""
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


def test_throttling_messages_name_no_backend_internals(flaky, send) -> None:
    flaky({1, 2, 3, 4})
    status, body, _ = send("/v1/track", {"userId": "ann", "event": "Liked"})
    assert status == 503 and no_internals(body), body


def test_the_stage_function_retries_a_conflict(faults, send, stream, admin) -> None:
    fault = conflict(faults, match=stage_write, times=1)
    send("/v1/track", {"userId": "ann", "event": "Liked", "messageId": "m1"})
    invocations: list[dict[str, Any]] = []
    original = stream._handler
    stream._handler = lambda event, context: invocations.append(event) or original(event, context)
    assert stream.drain() == 1
    assert len(invocations) == 1, "a passing conflict is absorbed, not redelivered"
    assert fault.seen == 2 and admin("ann")[1]["stage"] == "lead"


def test_a_lasting_conflict_fails_the_stream_record_for_lambda_to_retry(
    faults, send, stream, admin
) -> None:
    from functions.stage_transition.handler import handler

    from tests.conftest import Context

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


# --- a bounded profile; a batch is never half-answered ---------------------------------------------


def traits(prefix: str, count: int = 20, size: int = 500) -> dict[str, str]:
    """About ``count * size`` bytes of traits under new names."""
    return {f"{prefix}{i}": "x" * size for i in range(count)}


def test_a_profile_holds_at_most_64_kb_of_traits(send, admin, state) -> None:
    for call in range(6):  # 6 x ~10 KB: under the cap
        status, body, _ = send("/v1/identify", {"userId": "ann", "traits": traits(f"t{call}_")})
        assert status == 200, body
    before = state()
    status, body, _ = send(
        "/v1/batch",
        {
            "batch": [
                {"type": "identify", "userId": "ann", "traits": traits("more_"), "messageId": "big"},
                {"type": "track", "userId": "ann", "event": "Liked", "messageId": "like"},
            ]
        },
    )
    assert (status, body["code"]) == (413, "payload_too_large")
    assert "64 KB" in body["message"] and "big" in body["message"] and no_internals(body)
    card = admin("ann")[1]
    assert "more_0" not in card["traits"] and card["counts"]["like"] == 1, "the good call still counts"
    assert len(state()[1]) == len(before[1]) + 1
    # Clearing traits (null) makes room; the refused call then goes through.
    send("/v1/identify", {"userId": "ann", "traits": {f"t0_{i}": None for i in range(20)}})
    assert send("/v1/identify", {"userId": "ann", "traits": traits("more_"), "messageId": "big"})[0] == 200
    assert admin("ann")[1]["traits"]["more_0"] == "x" * 500


def test_sending_the_same_traits_again_never_fills_the_profile(send, admin) -> None:
    """The bound counts a replaced trait again; near the cap it is recounted from the real traits."""
    for call in range(20):
        status, body, _ = send("/v1/identify", {"userId": "ann", "traits": traits("same_")})
        assert status == 200, (call, body)
    assert len(admin("ann")[1]["traits"]) == 20


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


ITEM_LIMIT = 400 * 1024


def item_bytes(item: dict[str, Any]) -> int:
    return sum(len(name) + len(json.dumps(value)) for name, value in item.items())


@pytest.fixture
def item_size_limit(aws):
    """DynamoDB's 400 KB item limit, which moto does not enforce: an update that would make a profile
    bigger cancels the transaction with a ValidationError, as DynamoDB does."""

    def check(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name != "TransactWriteItems":
            return
        reasons = []
        for item in params["TransactItems"]:
            update = item.get("Update")
            reason = {"Code": "None"}
            if update is not None:
                current = aws.get_item(TableName=update["TableName"], Key=update["Key"]).get("Item") or {}
                added = item_bytes(update.get("ExpressionAttributeValues") or {}) + item_bytes(
                    update["ExpressionAttributeNames"]
                )
                if item_bytes(current) + added > ITEM_LIMIT:
                    reason = {
                        "Code": "ValidationError",
                        "Message": "Item size to update has exceeded the maximum allowed size",
                    }
            reasons.append(reason)
        if any(r["Code"] != "None" for r in reasons):
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
                    "CancellationReasons": reasons,
                },
                "TransactWriteItems",
            )

    aws.meta.events.register_first("before-parameter-build.dynamodb", check)
    yield
    aws.meta.events.unregister("before-parameter-build.dynamodb", check)


def test_an_item_over_400_kb_is_a_413_and_the_other_calls_are_kept(
    aws, item_size_limit, send, admin
) -> None:
    """A profile grown big by tags (traits are capped): real DynamoDB refuses the write; the others count."""
    send("/v1/track", {"userId": "ann", "event": "Liked", "messageId": "first"})
    table = os.environ["CONTACTS_TABLE_NAME"]
    tags = {f"#t{i}": f"tag:{'t' * 200}{i}" for i in range(1650)}  # about 390 KB
    for start in range(0, len(tags), 50):
        names = list(tags)[start : start + 50]
        aws.update_item(
            TableName=table,
            Key={"pk": {"S": "C#user_id:ann"}, "sk": {"S": "PROFILE"}},
            UpdateExpression="SET " + ",".join(f"{name} = :at" for name in names),
            ExpressionAttributeNames={name: tags[name] for name in names},
            ExpressionAttributeValues={":at": {"S": "2026-11-23T12:00:00.000Z"}},
        )
    batch = [{"type": "identify", "userId": "ann", "traits": traits("t", size=1000), "messageId": "big"}]
    batch += [
        {"type": "track", "userId": f"u{i}", "event": "Liked", "messageId": f"m{i}"} for i in range(120)
    ]
    for _ in range(2):  # the resend changes nothing
        status, body, _ = send("/v1/batch", {"batch": batch})
        assert (status, body["code"]) == (413, "payload_too_large")
        assert "400 KB" in body["message"] and "big" in body["message"] and no_internals(body)
        for i in (0, 60, 119):
            assert admin(f"u{i}")[1]["event_count"] == 1
        assert "t0" not in admin("ann")[1]["traits"]


def test_a_batch_cut_short_by_an_unexpected_error_asks_for_a_resend(faults, send, admin) -> None:
    """100 contacts need two transactions; DynamoDB refuses the second. The answer makes the client
    resend (5xx, no internals), and the resend completes the batch with every event counted once."""
    batch = {
        "batch": [
            {"type": "track", "userId": f"u{i}", "event": "Liked", "messageId": f"m{i}"} for i in range(100)
        ]
    }
    second = faults(
        "TransactWriteItems",
        "ValidationException",
        times=1,
        match=touches("M#m99"),
        message="One or more parameter values were invalid: TransactWriteItems ...",
    )
    status, body, _ = send("/v1/batch", batch)
    assert status >= 500 and no_internals(body), body
    assert second.seen == 1 and admin("u0")[0] == 200 and admin("u99")[0] == 404
    assert send("/v1/batch", batch)[0] == 200
    for i in (0, 49, 50, 99):
        card = admin(f"u{i}")[1]
        assert card["counts"] == {"like": 1} and card["event_count"] == 1


def test_a_call_too_big_for_one_write_is_refused_before_anything_is_written(
    send, rules_api, state
) -> None:
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
