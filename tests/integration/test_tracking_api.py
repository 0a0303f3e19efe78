"""The tracking handler on moto, with tables built from the synthesized template."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from tests.conftest import BROWSER_KEY, EVENTS, SERVER_KEY, invoke

ROUTES = {
    "/v1/identify": {"userId": "ann", "traits": {"email": "ann@example.com"}},
    "/v1/track": {"userId": "ann", "event": "Product Viewed", "properties": {"sku": "X"}},
    "/v1/page": {"userId": "ann", "name": "Home"},
    "/v1/screen": {"userId": "ann", "name": "Home"},
    "/v1/group": {"userId": "ann", "groupId": "acme", "traits": {"plan": "gold"}},
    "/v1/alias": {"userId": "ann", "previousId": "ann-old"},
    "/v1/i": {"userId": "ann", "traits": {"name": "Ann"}},
    "/v1/t": {"userId": "ann", "event": "Link Clicked"},
    "/v1/p": {"userId": "ann"},
    "/v1/s": {"userId": "ann"},
    "/v1/g": {"userId": "ann", "groupId": "acme"},
    "/v1/a": {"userId": "ann", "previousId": "ann-older"},
    "/v1/batch": {"batch": [{"type": "page", "userId": "ann"}]},
    "/v1/import": {"batch": [{"type": "page", "userId": "ann", "timestamp": "2025-01-01T00:00:00Z"}]},
    "/v1/b": {"batch": [{"type": "track", "userId": "ann", "event": "Liked"}]},
}


@pytest.mark.parametrize("path", sorted(ROUTES))
def test_every_route_answers_exactly_200_success(send, admin, path: str) -> None:
    status, body, _ = send(path, ROUTES[path])
    assert (status, body) == (200, {"success": True})
    status, card, _ = admin("user_id:ann")
    assert status == 200 and card["event_count"] == 1


def test_metrics_route_is_accepted_and_ignored(send, state) -> None:
    before = state()
    assert send("/v1/m", {"series": [{"type": "Counter", "metric": "x", "value": 1}]}, key=None)[:2] == (
        200,
        {"success": True},
    )
    assert state() == before


def test_write_key_in_body_and_text_plain_as_browsers_send(send, admin) -> None:
    status, _, _ = send(
        "/v1/p",
        json.dumps({"anonymousId": "a1", "writeKey": BROWSER_KEY}),
        key=None,
        headers={"content-type": "text/plain"},
    )
    assert status == 200
    assert admin("anonymous_id:a1")[1]["counts"] == {"visit": 1}


@pytest.mark.parametrize("gzip_body", [False, True])
def test_gzip_and_plain_batches(send, admin, gzip_body: bool) -> None:
    batch = {"batch": [{"type": "page", "userId": "ann", "messageId": f"m{i}"} for i in range(30)]}
    assert send("/v1/batch", batch, gzip_body=gzip_body)[0] == 200
    assert admin("ann")[1]["event_count"] == 30


def test_unknown_or_missing_write_key_is_401_and_writes_nothing(send, state) -> None:
    before = state()
    status, body, _ = send("/v1/track", ROUTES["/v1/track"], key="nope")
    assert status == 401 and body["code"] == "unauthorized" and body["message"]
    status, body, _ = send("/v1/track", ROUTES["/v1/track"], key=None)
    assert status == 401
    assert state() == before


def test_browser_key_cannot_report_a_purchase_and_nothing_is_written(send, state) -> None:
    before = state()
    batch = {
        "batch": [
            {"type": "page", "anonymousId": "a1"},
            {"type": "track", "userId": "ann", "event": "Order Completed", "properties": {"revenue": 10}},
        ]
    }
    status, body, _ = send("/v1/batch", batch, key=BROWSER_KEY)
    assert status == 403 and body["code"] == "server_key_required"
    assert state() == before
    assert send("/v1/batch", batch, key=SERVER_KEY)[0] == 200


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("{", 400, "invalid_json"),
        ({"userId": "ann"}, 400, "invalid_request"),  # track without event name
        ({"event": "X"}, 400, "missing_identity"),
        ({"userId": "ann", "event": "X", "timestamp": "soon"}, 400, "invalid_timestamp"),
        ({"userId": "ann", "event": "X", "properties": {"b": "x" * 33000}}, 413, "payload_too_large"),
    ],
)
def test_bad_input_gets_a_clear_error_and_writes_nothing(send, state, body, status, code) -> None:
    before = state()
    got_status, got, _ = send("/v1/track", body)
    assert got_status == status
    assert got["code"] in (code, "invalid_event")
    assert got["message"]
    assert state() == before


def test_a_bad_call_anywhere_in_a_batch_rejects_the_whole_batch(send, state) -> None:
    before = state()
    batch = {"batch": [{"type": "page", "userId": "ann"}] * 10 + [{"type": "page"}]}
    status, body, _ = send("/v1/batch", batch)
    assert status == 400 and "batch[10]" in body["message"]
    assert state() == before


def test_oversized_batches_are_rejected(send, state) -> None:
    before = state()
    status, _, _ = send("/v1/batch", {"batch": [{"type": "page", "userId": "u"}] * 2501})
    assert status == 413
    huge = {"batch": [{"type": "page", "userId": "u", "properties": {"p": "x" * 20000}} for _ in range(30)]}
    assert send("/v1/batch", huge)[0] == 413
    assert state() == before


def test_replay_leaves_the_state_of_a_single_delivery(send, state) -> None:
    batch = {
        "batch": [
            {"type": "page", "anonymousId": "a1", "messageId": "p1"},
            {
                "type": "identify",
                "userId": "ann",
                "anonymousId": "a1",
                "messageId": "i1",
                "traits": {"tags": ["vip"]},
            },
            {
                "type": "track",
                "userId": "ann",
                "event": "Order Completed",
                "messageId": "o1",
                "properties": {"revenue": 9},
            },
            {"type": "page", "userId": "bob", "messageId": "p2"},
        ]
    }
    assert send("/v1/batch", batch)[0] == 200
    once = state()
    for _ in range(3):
        assert send("/v1/batch", batch)[:2] == (200, {"success": True})
    assert state() == once


def test_sdk_retry_after_a_lost_response_with_new_sent_at(send, admin) -> None:
    call = {"userId": "ann", "event": "Product Viewed", "messageId": "m-1", "sentAt": "2026-11-23T11:59:00Z"}
    send("/v1/track", call)
    send("/v1/track", {**call, "sentAt": "2026-11-23T11:59:30Z"})
    assert admin("ann")[1]["counts"] == {"product_viewed": 1}


def test_two_concurrent_copies_of_one_message_apply_once(send, admin) -> None:
    barrier = threading.Barrier(8)
    results = []
    batch = {
        "batch": [
            {"type": "track", "userId": "ann", "event": "Liked", "messageId": f"m{i}"} for i in range(20)
        ]
    }

    def deliver() -> None:
        barrier.wait()
        results.append(send("/v1/batch", batch)[0])

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 8
    card = admin("ann")[1]
    assert card["counts"] == {"like": 20} and card["event_count"] == 20


def test_sample_events_in_the_events_folder_are_accepted(aws) -> None:
    from functions.tracking.handler import handler

    samples = sorted((EVENTS / "tracking").glob("*.json"))
    assert samples
    for sample in samples:
        event = json.loads(Path(sample).read_text())
        status, body, _ = invoke(handler, event)
        assert (status, body) == (200, {"success": True}), sample.name
    # the browser identify that carries its proof (verified-identity key) counts for its user
    stored = aws.query(
        TableName=os.environ["EVENTS_TABLE_NAME"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "C#user_id:user-43"}},
    )["Items"]
    (verified,) = [item for item in stored if item["sk"]["S"].endswith("#sample-identify-verified-1")]
    assert json.loads(verified["body"]["S"])["_trust"] == "verified"


def nested(levels: int) -> object:
    value: object = "leaf"
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.mark.parametrize("key", [BROWSER_KEY, SERVER_KEY])
def test_deep_nesting_is_rejected_naming_the_field_and_writes_nothing(send, admin, state, key) -> None:
    before = state()
    batch = {
        "batch": [
            {"type": "page", "userId": "ann"},
            {"type": "track", "userId": "ann", "event": "X", "properties": {"p": nested(255)}},
        ]
    }
    status, body, _ = send("/v1/batch", batch, key=key)
    assert (status, body["code"]) == (400, "invalid_event")
    assert body["message"].startswith("batch[1].properties.p.a.a") and "32 levels" in body["message"]
    assert state() == before
    call = {"userId": "ann", "event": "X", "properties": {"p": nested(31)}}
    assert send("/v1/track", call, key=key)[0] == 200
    status, page, _ = admin("ann", events=True)
    assert status == 200 and page["events"][0]["properties"]["p"] == nested(31)


@pytest.mark.parametrize("literal", ["1e400", "-1e400", "NaN", "Infinity", "1e200", "1e-200"])
def test_numbers_that_cannot_be_stored_exactly_are_rejected(send, state, literal) -> None:
    before = state()
    raw = f'{{"userId": "ann", "traits": {{"n": {literal}}}}}'
    status, body, _ = send("/v1/identify", raw)
    assert (status, body["code"]) == (400, "invalid_event")
    assert body["message"].startswith("body.traits.n: ")
    assert state() == before


@pytest.mark.parametrize(
    ("traits", "named"),
    [
        ({"accepts_marketing": True}, "accepts_marketing"),  # Shopify
        ({"hs_email_optout": True}, "hs_email_optout"),  # HubSpot
        ({"doNotContact": True}, "doNotContact"),  # Mautic
        ({"preferences": {"theme": "dark", "unsubscribed": True}}, "preferences.unsubscribed"),
    ],
)
def test_browser_key_cannot_set_consent_traits_in_any_vocabulary(send, admin, state, traits, named) -> None:
    before = state()
    call = {"userId": "ann", "traits": {"plan": "pro", **traits}}
    status, body, _ = send("/v1/identify", {"context": {"traits": traits}, "userId": "ann"}, key=BROWSER_KEY)
    assert (status, body["code"]) == (403, "server_key_required") and named in body["message"]
    status, body, _ = send("/v1/identify", call, key=BROWSER_KEY)
    assert (status, body["code"]) == (403, "server_key_required") and named in body["message"]
    assert state() == before
    assert send("/v1/identify", call, key=SERVER_KEY)[0] == 200
    assert admin("ann")[1]["traits"] == call["traits"]
