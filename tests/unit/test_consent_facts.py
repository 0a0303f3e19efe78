"""Consent facts from events (``shared.contacts.consent``), folded by the aggregation into the profile,
and the consent state they give (``shared.delivery.consent.state``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.contact_items import record_from_item
from shared.adapters.contact_store import profile_update
from shared.contacts.changes import plan_change
from shared.contacts.consent import (
    ConsentChange,
    consent_changes,
    consent_event,
    consent_message_id,
    granted_channels,
    latest_consent,
)
from shared.contacts.identity import ContactId
from shared.delivery.consent import ConsentFact, ConsentRecord, state
from shared.scoring.decay import Decay
from shared.scoring.engine import ScoringContext
from shared.tracking.messages import parse_calls
from shared.tracking.proofs import Provenance
from shared.tracking.wire import Limits
from shared.usecases.aggregation import aggregate
from shared.usecases.recording import record
from tests.fakes import MemoryContactStore, StaticRules

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ANN = ContactId.user("ann")


def at(minutes: int) -> datetime:
    return NOW - timedelta(minutes=minutes)


def calls(*batch):
    return parse_calls("/v1/batch", {"batch": list(batch)}, received_at=NOW, limits=Limits())


def identify(minutes: int = 0, **traits):
    return {"type": "identify", "userId": "ann", "timestamp": at(minutes).isoformat(), "traits": traits}


def track(event: str, minutes: int = 0, **properties):
    return {
        "type": "track",
        "userId": "ann",
        "event": event,
        "timestamp": at(minutes).isoformat(),
        "properties": properties,
    }


def changes(call) -> list[ConsentChange]:
    (event,) = calls(call)
    return consent_changes(event)


# --- the vocabulary ---------------------------------------------------------------------------------------


def test_identify_traits_grant_and_revoke_with_their_source_and_time() -> None:
    assert changes(identify(3, email_opt_in=True, sms_consent=False, consent_source="signup form")) == [
        ConsentChange("email", "granted", "signup form", at(3)),
        ConsentChange("sms", "revoked", "signup form", at(3)),
    ]
    assert changes(identify(email_opt_in=False)) == [ConsentChange("email", "revoked", "api", NOW)]


def test_only_booleans_are_consent() -> None:
    assert changes(identify(email_opt_in="yes", sms_consent=1, plan="pro")) == []
    assert changes(track("Consent Updated", email_opt_in="true")) == []


def test_consent_updated_reads_the_channel_properties_or_channel_and_granted() -> None:
    assert changes(track("Consent Updated", 2, email_opt_in=True, source="checkout")) == [
        ConsentChange("email", "granted", "checkout", at(2))
    ]
    assert changes(track("consent_updated", channel="sms", granted=True)) == [
        ConsentChange("sms", "granted", "api", NOW)
    ]
    assert changes(track("Consent Updated", channel="push", granted=True)) == [], "not a consent channel"
    assert changes(track("Consent Updated", channel="sms")) == [], "granted must be said"


def test_unsubscribed_revokes_email_or_the_channel_named() -> None:
    assert changes(track("Unsubscribed", source="preference centre")) == [
        ConsentChange("email", "revoked", "preference centre", NOW)
    ]
    assert changes(track("Unsubscribed", channel="sms")) == [ConsentChange("sms", "revoked", "api", NOW)]


def test_other_events_state_nothing_and_a_source_is_kept_short() -> None:
    assert changes(track("Order Completed", email_opt_in=True, revenue=3)) == []
    assert changes({"type": "page", "userId": "ann", "properties": {"email_opt_in": True}}) == []
    (long,) = changes(identify(email_opt_in=True, consent_source="x" * 500))
    assert long.source == "x" * 100
    (blank,) = changes(identify(email_opt_in=True, consent_source="  "))
    assert blank.source == "api"


def test_the_latest_fact_per_channel_and_kind_wins() -> None:
    events = calls(
        identify(9, email_opt_in=True, consent_source="old form"),
        identify(1, email_opt_in=True, consent_source="new form"),
        identify(5, email_opt_in=False),
        track("Consent Updated", 3, sms_consent=True),
    )
    assert latest_consent(events) == {
        ("email", "granted"): ConsentFact(source="new form", at=at(1)),
        ("email", "revoked"): ConsentFact(source="api", at=at(5)),
        ("sms", "granted"): ConsentFact(source="api", at=at(3)),
    }
    assert granted_channels(events[3]) == ("sms",)


# --- the events recorded outside tracking -------------------------------------------------------------------


def test_a_consent_event_is_a_server_fact_the_fold_reads_back() -> None:
    event = consent_event(
        ANN, message_id="admin:1", at=NOW, source="admin", granted={"email": True, "sms": False}
    )
    assert (event.call, event.event, event.behaviour.value) == ("track", "Consent Updated", "consent_changed")
    assert event.provenance is Provenance.SERVER and event.user_id == "ann"
    assert consent_changes(event) == [
        ConsentChange("email", "granted", "admin", NOW),
        ConsentChange("sms", "revoked", "admin", NOW),
    ]
    confirmed = consent_event(ANN, message_id="c:1", at=NOW, source="confirmation link", confirmed="email")
    assert confirmed.properties == {"source": "confirmation link", "channel": "email", "confirmed": True}
    assert consent_changes(confirmed) == [], "a confirmation is no grant: only the link confirms"


def test_message_ids_are_stable_per_parts() -> None:
    assert consent_message_id("unsubscribe", "tok") == consent_message_id("unsubscribe", "tok")
    assert consent_message_id("unsubscribe", "tok") != consent_message_id("unsubscribe", "tok2")
    assert consent_message_id("a", "b", "c") != consent_message_id("a", "bc")


# --- folded into the profile ------------------------------------------------------------------------------


def test_the_profile_update_sets_the_latest_facts_and_reads_back() -> None:
    change = plan_change(
        ANN, calls(identify(4, email_opt_in=True, consent_source="form"), identify(2, sms_consent=False))
    )
    update = profile_update(change, "contacts")
    names = update["ExpressionAttributeNames"]
    values = update["ExpressionAttributeValues"]
    item = {"pk": {"S": "C#user_id:ann"}, "sk": {"S": "PROFILE"}}
    for name, value in re.findall(r"(#[0-9a-f]+)=(:[0-9a-f]+)\b", update["UpdateExpression"]):
        if names[name].startswith("consent:"):
            item[names[name]] = values[value]
    assert record_from_item(item).consent == {
        "email": ConsentRecord(granted=ConsentFact(source="form", at=at(4))),
        "sms": ConsentRecord(revoked=ConsentFact(source="api", at=at(2))),
    }


def test_the_aggregation_folds_consent_and_a_later_batch_overwrites_blindly() -> None:
    store = MemoryContactStore()
    scoring = ScoringContext(StaticRules().book(), Decay())
    record(calls(identify(10, email_opt_in=True, consent_source="form")), store, NOW, scoring)
    aggregate(store.new_events(), store.aggregation())
    assert store.profile(ANN).consent["email"] == ConsentRecord(granted=ConsentFact(source="form", at=at(10)))
    record(calls(track("Unsubscribed", 5)), store, NOW, scoring)
    aggregate(store.new_events(), store.aggregation())
    email = store.profile(ANN).consent["email"]
    assert email.revoked == ConsentFact(source="api", at=at(5)) and email.granted is not None
    assert state(email, ()) == "revoked"


# --- the state the facts give -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record_", "double_opt_in", "expected"),
    [
        (None, (), "none"),
        (ConsentRecord(granted=ConsentFact(source="form", at=at(5))), (), "granted"),
        (ConsentRecord(granted=ConsentFact(source="form", at=at(5))), ("form",), "pending"),
        (
            ConsentRecord(granted=ConsentFact(source="form", at=at(5)), confirmed_at=at(4)),
            ("form",),
            "granted",
        ),
        (
            ConsentRecord(
                granted=ConsentFact(source="form", at=at(5)),
                revoked=ConsentFact(source="unsubscribe link", at=at(3)),
                confirmed_at=at(4),
            ),
            ("form",),
            "revoked",
        ),
        (
            ConsentRecord(
                granted=ConsentFact(source="form", at=at(1)),
                revoked=ConsentFact(source="unsubscribe link", at=at(3)),
                confirmed_at=at(4),
            ),
            ("form",),
            "pending",  # a confirmation before the revocation does not hold for the grant after it
        ),
        (ConsentRecord(revoked=ConsentFact(source="api", at=at(3))), (), "revoked"),
    ],
)
def test_state_transitions(record_, double_opt_in, expected) -> None:
    assert state(record_, double_opt_in) == expected


def test_a_full_profile_still_folds_the_consent_its_calls_state() -> None:
    store = MemoryContactStore()
    scoring = ScoringContext(StaticRules().book(), Decay())
    big = [identify(9 - n, **{"big" + str(n): "x" * 30_000}) | {"messageId": f"b{n}"} for n in range(2)]
    record(calls(*big), store, NOW, scoring)
    aggregate(store.new_events(), store.aggregation())
    # within the cap per request, too much for the profile: folded without its traits, not its consent
    revoke = identify(1, email_opt_in=False, more="x" * 30_000) | {"messageId": "r1"}
    record(calls(revoke), store, NOW, scoring)
    aggregate(store.new_events(), store.aggregation())
    ann = store.profile(ANN)
    assert "more" not in ann.traits and "email_opt_in" not in ann.traits
    assert ann.consent["email"].revoked == ConsentFact(source="api", at=at(1))
