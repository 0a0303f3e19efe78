"""Consent written at once by the links (``ConsentProfiles``): on the profile holding the contact now,
never creating one, and kept by the aggregation's later writes. The same assertions on the fake and on
moto."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.contacts.identity import ContactId
from shared.delivery.consent import ConsentFact, ConsentRecord, state
from tests.contract.helpers import NOW, change
from tests.fakes import MemoryConsentProfiles, MemoryContactStore

ANN, BOB = ContactId.user("ann"), ContactId.user("bob")
LATER = NOW + timedelta(minutes=5)


@pytest.fixture
def ports(implementation, contact_tables):
    """(contacts with their log and stream, consent profiles)."""
    if implementation == "fake":
        contacts = MemoryContactStore()
        return contacts, MemoryConsentProfiles(contacts)
    from shared.adapters.consent_profiles import DynamoConsentProfiles

    tables = contact_tables()
    return tables.stores(), DynamoConsentProfiles(
        tables.db, contacts_table=tables.contacts, sleep=lambda _: None
    )


def granted(contacts, contact: ContactId = ANN, message: str = "i1") -> None:
    call = {
        "type": "identify",
        "userId": contact.value,
        "messageId": message,
        "traits": {"email_opt_in": True, "consent_source": "form"},
    }
    assert contacts.commit([change(contact, call)])[0].committed


def test_a_revocation_and_a_confirmation_are_set_on_the_profile(ports):
    contacts, profiles = ports
    granted(contacts)
    assert profiles.confirm(ANN, "email", NOW) == ANN
    assert profiles.revoke(ANN, "email", ConsentFact(source="unsubscribe link", at=LATER)) == ANN
    assert contacts.profile(ANN).consent["email"] == ConsentRecord(
        granted=ConsentFact(source="form", at=NOW),
        revoked=ConsentFact(source="unsubscribe link", at=LATER),
        confirmed_at=NOW,
    )
    assert state(contacts.profile(ANN).consent["email"], {"form"}) == "revoked"
    assert contacts.profile(ANN).traits["email_opt_in"] is True, "the rest of the profile is kept"


def test_a_replay_sets_the_same_fact_again(ports):
    contacts, profiles = ports
    granted(contacts)
    fact = ConsentFact(source="unsubscribe link", at=LATER)
    assert profiles.revoke(ANN, "sms", fact) == profiles.revoke(ANN, "sms", fact) == ANN
    assert contacts.profile(ANN).consent["sms"] == ConsentRecord(revoked=fact)


def test_no_profile_no_write(ports):
    contacts, profiles = ports
    assert profiles.revoke(BOB, "email", ConsentFact(source="unsubscribe link", at=NOW)) is None
    assert profiles.confirm(BOB, "email", NOW) is None
    assert contacts.profile(BOB) is None, "an erased contact is not brought back"


def test_a_merged_away_contact_is_followed_to_the_profile_that_holds_it(ports):
    contacts, profiles = ports
    granted(contacts, ANN)
    granted(contacts, BOB, "i2")
    assert contacts.claim(BOB, ANN, NOW).owner == ANN  # bob is merged into ann
    assert profiles.revoke(BOB, "email", ConsentFact(source="unsubscribe link", at=LATER)) == ANN
    assert contacts.profile(ANN).consent["email"].revoked == ConsentFact(source="unsubscribe link", at=LATER)
    assert contacts.profile(BOB).consent["email"].revoked is None


def test_the_aggregation_keeps_what_the_link_wrote(ports):
    contacts, profiles = ports
    granted(contacts)
    profiles.confirm(ANN, "email", LATER)
    page = {"type": "page", "userId": "ann", "messageId": "p1", "properties": {"url": "https://x.test/"}}
    assert contacts.commit([change(ANN, page, at=LATER)])[0].committed
    assert contacts.profile(ANN).consent["email"].confirmed_at == LATER


def test_a_grant_is_found_from_the_time_it_was_made_on(ports):
    """What an unsubscribe link issued before a new opt-in checks, so replaying it undoes nothing."""
    contacts, profiles = ports
    assert profiles.granted_since(ANN, "email", NOW - timedelta(days=1)) is False, "no profile"
    granted(contacts)
    assert profiles.granted_since(ANN, "email", NOW - timedelta(days=1)) is True
    assert profiles.granted_since(ANN, "email", LATER) is False, "granted before the link was made"
    assert profiles.granted_since(ANN, "sms", NOW - timedelta(days=1)) is False, "per channel"
