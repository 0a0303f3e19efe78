"""The contact erasure (the admin's port): the identities merged into a contact, and its partitions
deleted in both tables, events first and the profile last, at most ``limit`` items per call.

Contacts get their events as the hot path gives them (appended, folded by the aggregation) and merge
through the merge store's steps (``link``), on the fake and on moto alike.
"""

from __future__ import annotations

import pytest

from shared.contacts.identity import ContactId
from shared.usecases.erasure import Erased
from shared.usecases.recording import link
from tests.contract.helpers import DECAY, NOW, entries
from tests.fakes import MemoryContactErasure, MemoryContactLog, MemoryContactStore

ANN, BOB, OLD = ContactId.user("ann"), ContactId.user("bob"), ContactId.user("old-ann")
A1 = ContactId.anonymous("a1")


class Ports:
    def __init__(self, store, log, erasure) -> None:
        self.store, self.log, self.erasure = store, log, erasure

    def events(self, contact: ContactId) -> list[str]:
        return sorted(e.message_id for e in self.log.events(contact, 100).events)

    def gone(self, contact: ContactId) -> bool:
        return self.store.profile(contact) is None and self.events(contact) == []


@pytest.fixture
def ports(implementation, contact_tables):
    if implementation == "fake":
        store = MemoryContactStore()
        return Ports(store, MemoryContactLog(store), MemoryContactErasure(store))
    from shared.adapters.contact_erasure import DynamoContactErasure
    from shared.adapters.contact_log import DynamoContactLog

    tables = contact_tables()
    erasure = DynamoContactErasure(
        tables.db, contacts_table=tables.contacts, events_table=tables.events, sleep=lambda _: None
    )
    return Ports(tables.stores(), DynamoContactLog(tables.db, events_table=tables.events), erasure)


def visits(contact: ContactId, *ids: str) -> list:
    who = {"userId": contact.value} if contact.kind == "user_id" else {"anonymousId": contact.value}
    return entries(contact, *({"type": "page", **who, "messageId": i} for i in ids))


@pytest.fixture
def merged(ports):
    """Ann with events, a visitor and an old user id merged into her; Bob on his own."""
    ports.store.append(
        visits(ANN, "ann-1", "ann-2") + visits(A1, "a1-1") + visits(OLD, "old-1") + visits(BOB, "bob-1")
    )
    ports.store.deliver_events()
    assert link(A1, ANN, ports.store, NOW, DECAY)
    assert link(OLD, ANN, ports.store, NOW, DECAY)
    return ports


def test_the_identities_merged_into_a_contact_are_found(merged):
    assert merged.erasure.merged_identities(ANN) == {A1, OLD}
    assert merged.erasure.merged_identities(BOB) == frozenset()
    assert merged.erasure.merged_identities(ContactId.user("nobody")) == frozenset()


def test_erasing_deletes_the_partitions_and_nothing_else(merged):
    bob = merged.events(BOB)
    for identity in (A1, OLD, ANN):
        erased = merged.erasure.erase(identity, 1000)
        assert erased.done and erased.deleted >= 1
        assert merged.gone(identity)
    assert merged.erasure.merged_identities(ANN) == frozenset()
    assert merged.events(BOB) == bob and merged.store.profile(BOB) is not None


def test_erasing_again_finds_nothing(merged):
    merged.erasure.erase(ANN, 1000)
    assert merged.erasure.erase(ANN, 1000) == Erased(deleted=0, done=True)
    assert merged.erasure.erase(ContactId.user("nobody"), 1000) == Erased(deleted=0, done=True)


def test_a_small_limit_erases_in_steps_and_the_profile_goes_last(merged):
    steps = []
    for _ in range(50):
        erased = merged.erasure.erase(ANN, 2)
        steps.append(erased)
        assert erased.deleted <= 2
        if erased.done:
            break
        assert merged.store.profile(ANN) is not None, "the profile outlives the rest"
        assert merged.erasure.merged_identities(ANN) >= {ContactId.anonymous("a1")}, "its anonymous ids too"
    assert len(steps) > 2 and steps[-1].done
    assert merged.gone(ANN)
