"""Recipients (delivery's port): the profile as delivery reads it, merges followed, erased contacts gone;
the same on the fake and on moto's contacts table."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest

from shared.contacts.identity import ContactId
from shared.delivery.consent import ConsentFact, ConsentRecord
from tests.contract.helpers import NOW, change
from tests.fakes import MemoryContactStore, MemoryRecipients

ANN, BOB, EVE = ContactId.user("ann"), ContactId.user("bob"), ContactId.user("eve")


class ConsentedProfiles:
    """The contact store fake's profiles with the consent facts the profile holds (the aggregation's
    part, which this fake does not fold): what the adapter reads from ``consent:*`` attributes."""

    def __init__(self, contacts: MemoryContactStore) -> None:
        self.contacts = contacts
        self.consent: dict[ContactId, dict[str, ConsentRecord]] = {}

    def profile(self, contact: ContactId) -> Any:
        record = self.contacts.profile(contact)
        if record is None or contact not in self.consent:
            return record
        return record.model_copy(update={"consent": self.consent[contact]})


class Profiles:
    def __init__(self, implementation: str, contact_tables: Any) -> None:
        self.implementation = implementation
        if implementation == "fake":
            self.contacts: Any = MemoryContactStore()
            self.consented = ConsentedProfiles(self.contacts)
            self.port: Any = MemoryRecipients(self.consented)
            return
        from shared.adapters.recipients import DynamoRecipients

        tables = contact_tables()
        self.db, self.table = tables.db, tables.contacts
        self.contacts = tables.stores()
        self.port = DynamoRecipients(tables.db, contacts_table=tables.contacts)

    def identify(self, contact: ContactId, traits: dict) -> None:
        call = {
            "type": "identify",
            "userId": contact.value,
            "messageId": f"i-{contact.value}",
            "traits": traits,
        }
        assert self.contacts.commit([change(contact, call)])[0].committed

    def grant(self, contact: ContactId, channel: str, source: str, confirmed: bool = False) -> None:
        if self.implementation == "fake":
            fact = ConsentFact(source=source, at=NOW)
            self.consented.consent.setdefault(contact, {})[channel] = ConsentRecord(
                granted=fact, confirmed_at=NOW + timedelta(hours=1) if confirmed else None
            )
            return
        from shared.adapters.contact_items import consent_attribute, consent_fact_value, profile_key
        from shared.tracking.timestamps import format_time

        names = {"#g": consent_attribute(channel, "granted")}
        values: dict[str, Any] = {":g": consent_fact_value(source, NOW)}
        expression = "SET #g = :g"
        if confirmed:
            names["#c"] = consent_attribute(channel, "confirmed")
            values[":c"] = {"S": format_time(NOW + timedelta(hours=1))}
            expression += ", #c = :c"
        self.db.update_item(
            TableName=self.table,
            Key=profile_key(contact),
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def erase(self, contact: ContactId) -> None:
        if self.implementation == "fake":
            del self.contacts.profiles[contact]
            return
        from shared.adapters.contact_items import profile_key

        self.db.delete_item(TableName=self.table, Key=profile_key(contact))


@pytest.fixture
def profiles(implementation, contact_tables) -> Profiles:
    return Profiles(implementation, contact_tables)


TRAITS = {
    "email": " ann@example.com ",
    "phone": "+48 600 100 200",
    "timezone": "Europe/Warsaw",
    "first_name": "Ann",
    "kids": [{"age": 3}],
    "tags": ["vip", "kids"],
}


def test_a_recipient_is_the_profile_delivery_reads(profiles) -> None:
    profiles.identify(ANN, TRAITS)
    profiles.grant(ANN, "email", "signup-form", confirmed=True)
    profiles.grant(ANN, "sms", "checkout")
    found = profiles.port.recipient("user_id:ann")
    assert (found.contact_id, found.email, found.phone, found.timezone) == (
        "user_id:ann",
        "ann@example.com",
        "+48 600 100 200",
        "Europe/Warsaw",
    )
    assert found.traits["first_name"] == "Ann" and found.traits["kids"] == [{"age": 3}]
    assert found.tags == ("kids", "vip")
    assert found.stage is None
    assert found.consent == {
        "email": ConsentRecord(
            granted=ConsentFact(source="signup-form", at=NOW), confirmed_at=NOW + timedelta(hours=1)
        ),
        "sms": ConsentRecord(granted=ConsentFact(source="checkout", at=NOW)),
    }
    assert profiles.port.recipient("ann") == found, "a bare id is a user id"


def test_a_trait_that_is_no_address_is_none(profiles) -> None:
    profiles.identify(BOB, {"email": 42, "phone": "  ", "timezone": {"zone": "x"}})
    found = profiles.port.recipient("user_id:bob")
    assert (found.email, found.phone, found.timezone, found.consent) == (None, None, None, {})


def test_unknown_and_erased_contacts_have_no_recipient(profiles) -> None:
    assert profiles.port.recipient("user_id:nobody") is None
    profiles.identify(ANN, TRAITS)
    profiles.erase(ANN)
    assert profiles.port.recipient("user_id:ann") is None


def test_a_merged_away_contact_is_followed_to_the_one_it_joined(profiles) -> None:
    profiles.identify(ANN, {"email": "old@example.com"})
    profiles.identify(BOB, {"email": "bob@example.com"})
    profiles.identify(EVE, {"email": "eve@example.com"})
    assert profiles.contacts.claim(ANN, BOB, NOW).owner == BOB
    assert profiles.contacts.claim(BOB, EVE, NOW).owner == EVE
    found = profiles.port.recipient("user_id:ann")
    assert (found.contact_id, found.email) == ("user_id:eve", "eve@example.com")


def test_a_chain_of_merges_longer_than_the_hops_followed_has_no_recipient(profiles) -> None:
    chain = [ContactId.user(f"c{n}") for n in range(6)]
    for contact in chain:
        profiles.identify(contact, {"email": f"{contact.value}@example.com"})
    for source, target in pairwise(chain):
        profiles.contacts.claim(source, target, NOW)
    assert profiles.port.recipient("user_id:c2").contact_id == "user_id:c5"
    assert profiles.port.recipient("user_id:c0") is None
