"""Erasure through the admin handler as deployed (its template environment and role, on moto): a contact
with events, stage history, automation runs and timers, a send ledger entry and merged identities is
erased completely; repeating it is harmless; the card is gone; another contact is untouched."""

from __future__ import annotations

import os
from typing import Any

import pytest

from shared.tracking.proofs import unverified_visitor
from tests.conftest import SERVER_KEY
from tests.integration.conftest import call_admin, stream_pump

ANN = "user_id:ann"
#: the identities merged into Ann: a visitor who identified as her, and a user id aliased to hers
MERGED = ("anonymous_id:a-ann", "user_id:old-ann")


def erase(contact_id: str) -> tuple[int, dict[str, Any]]:
    status, body, _ = call_admin("DELETE", "/admin/contacts/{contactId}", {"contactId": contact_id})
    return status, body


def partition(aws, env: str, contact_id: str) -> list[dict[str, Any]]:
    return aws.query(
        TableName=os.environ[env],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"C#{contact_id}"}},
        ConsistentRead=True,
    )["Items"]


def everything_of(aws, contact_id: str) -> list[str]:
    """The sort keys left in the contact's partitions of both tables."""
    return [
        f"{env.split('_')[0].lower()}:{item['sk']['S']}"
        for env in ("CONTACTS_TABLE_NAME", "EVENTS_TABLE_NAME")
        for item in partition(aws, env, contact_id)
    ]


def due_entries(aws) -> list[str]:
    """The due index's keys (``<due time>#<contact>``), every shard (a Query per shard, as the timers read)."""
    from shared.adapters.stage_store import due_shard
    from shared.contacts.identity import ContactId

    shards = {due_shard(ContactId.parse(c), 8) for c in (ANN, "user_id:bob", *MERGED)}
    return [
        item["dueKey"]["S"]
        for shard in shards
        for item in aws.query(
            TableName=os.environ["CONTACTS_TABLE_NAME"],
            IndexName="byDue",
            KeyConditionExpression="dueShard = :s",
            ExpressionAttributeValues={":s": {"S": shard}},
        )["Items"]
    ]


@pytest.fixture
def ann_everywhere(aws, send, merges, stream, automations_api):
    """Ann as the system knows her after some life: merged identities, events, a stage and its history,
    an automation run with its delivery request, a timer armed for next year, a send ledger entry."""
    automations = stream_pump(aws, "automation_events")
    thanks = {
        "id": "thanks",
        "name": "Thanks",
        "trigger": {"type": "event", "behaviour": "purchase"},
        "steps": [{"action": "email", "subject": "Thank you", "text": "Thank you for your order."}],
    }
    assert automations_api("PUT", "thanks", thanks)[0] == 200
    kids = {
        "id": "kids",
        "name": "Kids",
        "trigger": {
            "type": "event",
            "behaviour": "purchase",
            "items": "properties.products",
            "after": {"years": 1},
            "counter": {"name": "age", "from": "child_age", "up_to": 12},
        },
        "steps": [{"action": "email", "subject": "Ideas for {{ age }}", "text": "Ideas."}],
    }
    assert automations_api("PUT", "kids", kids)[0] == 200
    assert (
        send(
            "/v1/page",
            {"anonymousId": "a-ann", "messageId": "p-1", "properties": {"url": "https://s.example/"}},
        )[0]
        == 200
    )
    assert send("/v1/page", {"userId": "old-ann", "messageId": "p-2"})[0] == 200
    identify = {
        "userId": "ann",
        "anonymousId": "a-ann",
        "messageId": "i-1",
        "traits": {"email": "ann@example.com"},
    }
    assert send("/v1/identify", identify, key=SERVER_KEY)[0] == 200
    assert (
        send("/v1/alias", {"userId": "ann", "previousId": "old-ann", "messageId": "al-1"}, key=SERVER_KEY)[0]
        == 200
    )
    merges.drain()
    order = {
        "userId": "ann",
        "event": "Order Completed",
        "messageId": "o-1",
        "properties": {"revenue": 30, "products": [{"product_id": "lego", "child_age": 5}]},
    }
    assert send("/v1/track", order, key=SERVER_KEY)[0] == 200
    assert send("/v1/page", {"userId": "bob", "messageId": "b-1"})[0] == 200
    automations.drain()
    stream.drain()
    # the send ledger entry delivery keeps for the run's email (its adapter's layout: under the contact)
    aws.put_item(
        TableName=os.environ["CONTACTS_TABLE_NAME"],
        Item={
            "pk": {"S": f"C#{ANN}"},
            "sk": {"S": "SEND#thanks#o-1#00"},
            "status": {"S": "sent"},
            "providerId": {"S": "ses-1"},
        },
    )
    kept = everything_of(aws, ANN)
    for prefix in (
        "contacts:PROFILE",
        "contacts:STAGE#",
        "contacts:ANNOUNCED#",
        "contacts:RUN#",
        "contacts:TIMER#",
        "contacts:SEND#",
        "contacts:MERGED#",
        "events:",
    ):
        assert any(k.startswith(prefix) for k in kept), f"no {prefix} for Ann: {kept}"
    assert any(ANN in key for key in due_entries(aws)), "Ann is on the due index (her timer)"
    return kept


def test_erasure_deletes_the_contact_and_every_identity_merged_into_it(aws, ann_everywhere, admin):
    bob_before = everything_of(aws, "user_id:bob")
    # calls that claimed to be Ann without proof and without a visitor of their own are kept here
    visitor = f"anonymous_id:{unverified_visitor('ann')}"
    aws.put_item(
        TableName=os.environ["EVENTS_TABLE_NAME"],
        Item={"pk": {"S": f"C#{visitor}"}, "sk": {"S": "M#claimed"}, "body": {"S": "{}"}},
    )
    status, body = erase(ANN)
    assert status == 200, body
    assert body["erased"] == ANN and body["complete"] is True
    assert body["items"] >= len(ann_everywhere)
    for contact_id in (ANN, *MERGED, visitor):
        assert everything_of(aws, contact_id) == [], contact_id
    assert not any(ANN in key for key in due_entries(aws)), "her timers left the due index with them"
    assert admin(ANN)[0] == 404
    assert admin(MERGED[0])[0] == 404, "the visitor no longer leads anywhere"
    assert everything_of(aws, "user_id:bob") == bob_before


def test_repeating_an_erasure_is_harmless(aws, ann_everywhere):
    assert erase(ANN)[0] == 200
    status, body = erase(ANN)
    assert (status, body["items"], body["complete"]) == (200, 0, True)
    assert erase("user_id:never-known")[1]["items"] == 0


def test_erasing_by_a_merged_identity_erases_the_person_it_belongs_to(aws, ann_everywhere):
    status, body = erase(MERGED[0])
    assert status == 200 and body["erased"] == ANN
    for contact_id in (ANN, *MERGED):
        assert everything_of(aws, contact_id) == []


def test_a_large_contact_is_erased_over_several_requests(aws, ann_everywhere, monkeypatch):
    from shared.usecases import erasure

    monkeypatch.setattr(erasure, "ITEMS_PER_REQUEST", 3)
    answers = []
    for _ in range(50):
        status, body = erase(ANN)
        assert status == 200
        answers.append(body)
        if body["complete"]:
            break
    assert len(answers) > 2 and all(a["items"] <= 3 for a in answers)
    assert sum(a["items"] for a in answers) >= len(ann_everywhere)
    for contact_id in (ANN, *MERGED):
        assert everything_of(aws, contact_id) == []
