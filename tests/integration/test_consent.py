"""Consent end to end, each function in its own scope with its template environment and role: consent
from the tracking API and the admin API folded into the card, double opt-in with its one confirmation
email, and the unsubscribe and confirmation links (RFC 8058)."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import Any

import pytest

from shared.delivery.tokens import LinkClaims, sign
from tests.conftest import BROWSER_KEY, NOW, Context, http_event
from tests.integration.conftest import call_admin, stream_pump

SECRET = "integration-delivery-secret"
ANN = "user_id:ann"


@pytest.fixture
def links(aws, redeploy):
    """The functions deployed with a delivery secret in Secrets Manager (and double opt-in for the
    ``signup form`` source); ``links(method, path, token)`` calls the preferences function."""
    from shared.adapters import aws as clients

    arn = clients.client("secretsmanager").create_secret(Name="delivery-secret", SecretString=SECRET)["ARN"]
    redeploy(
        DELIVERY_SECRET_ARN=arn,
        DOUBLE_OPT_IN_SOURCES="signup form",
        PUBLIC_BASE_URL="https://api.example.com",
    )
    from functions.preferences.handler import handler

    def _call(method: str, path: str, token: str | None, body: str | None = None) -> dict[str, Any]:
        headers = {"content-type": "application/x-www-form-urlencoded"}
        event = http_event(
            method, path, key=None, body=body, headers=headers, query=None if token is None else {"t": token}
        )
        return handler(event, Context())

    return _call


@pytest.fixture
def automation_events(aws):
    """The events table's stream delivered to the automation events function."""
    return stream_pump(aws, "automation_events")


def token(purpose: str = "unsubscribe", channel: str = "email", days: int = 60, secret: str = SECRET) -> str:
    return sign(secret.encode(), LinkClaims(purpose, ANN, channel, NOW + timedelta(days=days)))  # type: ignore[arg-type]


def card(admin, contact: str = ANN) -> dict[str, Any]:
    status, body, _ = admin(contact)
    assert status == 200, body
    return body


def consent_events(admin) -> list[dict[str, Any]]:
    _, page, _ = admin(ANN, events=True, query={"limit": "100"})
    return [e for e in page["events"] if e["event"] == "Consent Updated"]


def queued_requests() -> list[dict[str, Any]]:
    from shared.adapters import aws as clients

    sqs, found = clients.client("sqs"), []
    while messages := sqs.receive_message(
        QueueUrl=os.environ["DELIVERY_QUEUE_URL"], MaxNumberOfMessages=10
    ).get("Messages", []):
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(
                QueueUrl=os.environ["DELIVERY_QUEUE_URL"], ReceiptHandle=message["ReceiptHandle"]
            )
    return found


def test_consent_from_a_server_key_is_on_the_card_with_its_source_and_time(send, admin) -> None:
    stated = (NOW - timedelta(minutes=5)).isoformat()
    traits = {
        "email": "ann@example.com",
        "email_opt_in": True,
        "sms_consent": False,
        "consent_source": "checkout",
    }
    status, _, _ = send("/v1/identify", {"userId": "ann", "timestamp": stated, "traits": traits})
    assert status == 200
    consent = card(admin)["consent"]
    assert consent["email"]["state"] == "granted"
    assert consent["email"]["granted"] == {"source": "checkout", "at": "2026-11-23T11:55:00Z"}
    assert consent["sms"]["state"] == "revoked" and consent["sms"]["revoked"]["source"] == "checkout"
    send("/v1/track", {"userId": "ann", "event": "Unsubscribed"})
    assert card(admin)["consent"]["email"]["state"] == "revoked"


def test_consent_from_a_browser_key_is_refused_and_nothing_is_written(send, admin, state) -> None:
    send("/v1/identify", {"userId": "ann", "traits": {"plan": "pro"}})
    before = state()
    status, body, _ = send(
        "/v1/identify", {"userId": "ann", "traits": {"email_opt_in": True}}, key=BROWSER_KEY
    )
    assert (status, body["code"]) == (403, "server_key_required")
    status, body, _ = send(
        "/v1/track",
        {"userId": "ann", "event": "Consent Updated", "properties": {"email_opt_in": True}},
        key=BROWSER_KEY,
    )
    assert (status, body["code"]) == (403, "server_key_required")
    assert state() == before
    assert card(admin)["consent"]["email"] == {
        "state": "none",
        "granted": None,
        "revoked": None,
        "confirmed_at": None,
    }


def test_double_opt_in_asks_once_and_the_link_confirms(links, send, admin, automation_events, clock) -> None:
    send(
        "/v1/identify",
        {
            "userId": "ann",
            "traits": {"email": "ann@example.com", "email_opt_in": True, "consent_source": "signup form"},
        },
    )
    assert card(admin)["consent"]["email"]["state"] == "pending"
    automation_events.drain()
    (request,) = queued_requests()
    grant_time = card(admin)["consent"]["email"]["granted"]["at"].replace("Z", ".000Z")
    assert request["id"] == f"{ANN}#consent#email@{grant_time}#0"
    assert (request["template"], request["values"], request["purpose"]) == (
        "consent-confirmation",
        {"confirm": "email"},
        "transactional",
    )
    # the stream delivers the record again (a retried batch): the same request, by its id (the send
    # ledger sends an id once)
    from shared.adapters import aws as clients

    (item,) = [
        i
        for i in clients.client("dynamodb").query(
            TableName=os.environ["EVENTS_TABLE_NAME"],
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": f"C#{ANN}"}},
        )["Items"]
    ]
    from functions.automation_events.handler import handler as events_handler

    record = {
        "eventID": "1",
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "dynamodb": {"Keys": {"pk": item["pk"], "sk": item["sk"]}, "NewImage": item, "SequenceNumber": "1"},
    }
    assert events_handler({"Records": [record]}, Context()) == {"batchItemFailures": []}
    assert {r["id"] for r in queued_requests()} == {request["id"]}

    clock.advance(timedelta(hours=1))
    page = links("GET", "/consent/confirm", token("confirm"))
    assert page["statusCode"] == 200 and card(admin)["consent"]["email"]["state"] == "pending", (
        "a GET confirms nothing"
    )
    page = links("POST", "/consent/confirm", token("confirm"), body="")
    assert page["statusCode"] == 200
    email = card(admin)["consent"]["email"]
    assert email["state"] == "granted" and email["confirmed_at"] == "2026-11-23T13:00:00Z"
    send("/v1/page", {"userId": "ann", "properties": {"url": "https://x.test/"}})  # folds the event in
    assert consent_events(admin)[0]["properties"] == {
        "source": "confirmation link",
        "channel": "email",
        "confirmed": True,
    }
    automation_events.drain()
    assert queued_requests() == [], "a confirmation asks for nothing more"


def test_one_click_unsubscribes_at_once_and_replays_are_harmless(links, send, admin, aggregation) -> None:
    send("/v1/identify", {"userId": "ann", "traits": {"email_opt_in": True}})
    t = token()
    page = links("GET", "/unsubscribe", t)
    assert page["statusCode"] == 200 and 'method="post"' in page["body"]
    assert page["headers"]["cache-control"] == "no-store"
    assert "default-src 'none'" in page["headers"]["content-security-policy"]
    assert card(admin)["consent"]["email"]["state"] == "granted", "a GET changes nothing"

    page = links("POST", "/unsubscribe", t, body="List-Unsubscribe=One-Click")
    assert page["statusCode"] == 200 and "unsubscribed" in page["body"]
    email = card(admin)["consent"]["email"]
    assert email["state"] == "revoked", "at once, before the aggregation folds anything"
    assert email["revoked"] == {"source": "unsubscribe link", "at": "2026-11-23T12:00:00Z"}
    assert links("POST", "/unsubscribe", t, body="List-Unsubscribe=One-Click")["statusCode"] == 200
    aggregation.drain()
    (event,) = consent_events(admin)
    assert event["properties"] == {"source": "unsubscribe link", "email_opt_in": False}
    assert event["trust"] == "server"
    assert card(admin)["consent"]["email"]["state"] == "revoked"


def test_bad_links_get_their_4xx_page_and_change_nothing(links, send, admin, state) -> None:
    send("/v1/identify", {"userId": "ann", "traits": {"email_opt_in": True}})
    before = state()
    forged = token(secret="someone else's secret")
    for method in ("GET", "POST"):
        for bad in (forged, None, "x.y", token("confirm")):
            page = links(method, "/unsubscribe", bad)
            assert page["statusCode"] == 400 and "Traceback" not in page["body"], (method, bad)
        assert links(method, "/unsubscribe", token(days=-1))["statusCode"] == 410
    assert state() == before


def test_an_erased_contacts_link_does_nothing(links, state) -> None:
    before = state()
    assert links("POST", "/unsubscribe", token(), body="List-Unsubscribe=One-Click")["statusCode"] == 200
    assert state() == before


def test_an_administrator_sets_consent_once_per_request(links, send, admin) -> None:
    send("/v1/identify", {"userId": "ann", "traits": {"plan": "pro"}})
    route = "/admin/contacts/{contactId}/consent"
    body = {"email": True, "sms": False}
    status, first, _ = call_admin("PUT", route, {"contactId": ANN}, body)
    assert status == 200 and first["recorded"] is True and first["source"] == "admin"
    status, again, _ = call_admin("PUT", route, {"contactId": ANN}, body)  # a retry
    assert (status, again["recorded"], again["message_id"]) == (200, False, first["message_id"])
    send("/v1/page", {"userId": "ann", "properties": {"url": "https://x.test/"}})  # folds it in
    consent = card(admin)["consent"]
    assert consent["email"]["state"] == "granted" and consent["email"]["granted"]["source"] == "admin"
    assert consent["sms"]["state"] == "revoked"
    assert len(consent_events(admin)) == 1
    status, error, _ = call_admin("PUT", route, {"contactId": ANN}, {"source": "admin"})
    assert status == 400 and "email or sms" in error["message"]
    status, error, _ = call_admin("PUT", route, {"contactId": ANN}, {"email": "yes"})
    assert status == 400 and error["message"].startswith("email:")
    status, _, _ = call_admin("PUT", route, {"contactId": "user_id:nobody"}, body)
    assert status == 404
