"""The contact's deliveries card through the real admin handler on moto: the send ledger's entries
newest first (sent, skipped with the reason, deferred until a time), consent per channel, limits, and a
merged-away identity resolved to its contact."""

from __future__ import annotations

import json
import os
from datetime import timedelta

from shared.contacts.identity import ContactId
from shared.delivery.requests import DeliveryRequest
from tests.conftest import NOW, SERVER_KEY

ROUTE = "/admin/contacts/{contactId}/deliveries"


def request(step: int, channel: str = "email") -> DeliveryRequest:
    return DeliveryRequest(
        id=f"user_id:ann#win-back#lapse@1#{step}",
        contact_id="user_id:ann",
        automation="win-back",
        version=1,
        occurrence="lapse@1",
        step=step,
        channel=channel,
        at=NOW,
        subject="We miss you",
        text="Hello Ann, at ann@example.com",
    )


def grant(db, contact: ContactId, channel: str, part: str, source: str, at) -> None:
    """A consent fact on the profile, as the aggregation (or the admin, or the unsubscribe link) writes it."""
    from shared.adapters.contact_items import consent_attribute, consent_fact_value, profile_key

    db.update_item(
        TableName=os.environ["CONTACTS_TABLE_NAME"],
        Key=profile_key(contact),
        UpdateExpression="SET #c = :c",
        ExpressionAttributeNames={"#c": consent_attribute(channel, part)},
        ExpressionAttributeValues={":c": consent_fact_value(source, at)},
    )


def deliveries(contact_id: str, query: dict[str, str] | None = None):
    from functions.admin.handler import handler
    from tests.conftest import http_event, invoke

    path = ROUTE.format(contactId=contact_id)
    return invoke(
        handler,
        http_event(
            "GET",
            path,
            route=f"GET {ROUTE}",
            key=None,
            path_parameters={"contactId": contact_id},
            query=query,
        ),
    )


def test_the_card_shows_each_send_newest_first_with_reasons_and_consent(aws, send, merges) -> None:
    from shared.adapters.send_ledger import DynamoSendLedger

    send("/v1/page", {"anonymousId": "a-1", "messageId": "p1"}, key=SERVER_KEY)
    status, _, _ = send(
        "/v1/identify",
        {"userId": "ann", "anonymousId": "a-1", "traits": {"email": "ann@example.com"}},
        key=SERVER_KEY,
    )
    assert status == 200
    merges.drain()  # the visitor a-1 joins ann
    ann = ContactId.user("ann")
    grant(aws, ann, "email", "granted", "signup-form", NOW)
    grant(aws, ann, "sms", "granted", "checkout", NOW)
    grant(aws, ann, "sms", "revoked", "STOP", NOW + timedelta(days=1))

    ledger = DynamoSendLedger(aws, contacts_table=os.environ["CONTACTS_TABLE_NAME"])
    sent, capped, quiet = request(0), request(1, "sms"), request(2)
    ledger.claim(sent, NOW)
    ledger.complete(sent, "ses-0100", NOW + timedelta(seconds=1))
    ledger.claim(capped, NOW + timedelta(minutes=1))
    ledger.settle(capped, "skipped", "frequency cap (day)", NOW + timedelta(minutes=1))
    ledger.claim(quiet, NOW + timedelta(minutes=2))
    ledger.defer(quiet, NOW + timedelta(hours=9), "quiet hours", NOW + timedelta(minutes=2))

    status, page, _ = deliveries("user_id:ann")
    assert status == 200, page
    assert page["contact_id"] == "user_id:ann"
    assert [(d["status"], d["channel"], d["reason"]) for d in page["deliveries"]] == [
        ("deferred", "email", "quiet hours"),
        ("skipped", "sms", "frequency cap (day)"),
        ("sent", "email", None),
    ]
    deferred, _, done = page["deliveries"]
    assert deferred["due_at"] == "2026-11-23T21:00:00Z" and deferred["automation"] == "win-back"
    assert (done["provider_id"], done["sent_at"], done["attempts"]) == ("ses-0100", "2026-11-23T12:00:01Z", 1)
    assert done["id"] == "user_id:ann#win-back#lapse@1#0"
    assert "ann@example.com" not in json.dumps(page["deliveries"]), "the card shows no message content"
    assert page["consent"]["email"]["state"] == "granted"
    assert page["consent"]["email"]["granted"]["source"] == "signup-form"
    assert page["consent"]["sms"]["state"] == "revoked"
    assert page["consent"]["sms"]["revoked"]["source"] == "STOP"

    status, latest, _ = deliveries("user_id:ann", {"limit": "1"})
    assert status == 200 and [d["status"] for d in latest["deliveries"]] == ["deferred"]
    status, merged, _ = deliveries("anonymous_id:a-1")
    assert status == 200 and merged["contact_id"] == "user_id:ann" and len(merged["deliveries"]) == 3


def test_a_contact_without_consent_or_sends_has_an_empty_card(aws, send) -> None:
    send("/v1/identify", {"userId": "bob", "traits": {"plan": "pro"}}, key=SERVER_KEY)
    status, page, _ = deliveries("user_id:bob")
    assert status == 200
    assert page["deliveries"] == []
    assert {c: v["state"] for c, v in page["consent"].items()} == {"email": "none", "sms": "none"}


def test_unknown_contacts_and_bad_limits_are_refused(aws) -> None:
    status, body, _ = deliveries("user_id:nobody")
    assert status == 404 and body["code"] == "not_found"
    for limit in ("0", "101", "ten"):
        status, body, _ = deliveries("user_id:nobody", {"limit": limit})
        assert status == 400 and body["code"] == "invalid_limit"
