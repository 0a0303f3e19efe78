"""Contact search's ports (issue 14): the search terms kept per contact (``SearchTerms``) and the index read
by prefix with the page's profiles (``ContactFinder``), on the fake and on moto alike; and an erased
contact's search items going with the rest of it."""

from __future__ import annotations

import pytest

from shared.contacts.identity import ContactId
from shared.usecases.recording import link
from shared.usecases.search import BACKFILLED, TermsChange, index_existing, keep_terms
from tests.contract.helpers import DECAY, NOW, change, position
from tests.fakes import MemoryContactErasure, MemoryContactSearch, MemoryContactStore

ANN, BOB, ZOE = ContactId.user("ann"), ContactId.user("bob"), ContactId.user("zoe")
VISITOR = ContactId.anonymous("v-1")


class Ports:
    def __init__(self, contacts, search, erasure) -> None:
        self.contacts, self.search, self.erasure = contacts, search, erasure


@pytest.fixture
def ports(implementation, contact_tables):
    if implementation == "fake":
        contacts = MemoryContactStore()
        search = MemoryContactSearch(contacts)
        return Ports(contacts, search, MemoryContactErasure(contacts, search))
    from shared.adapters.contact_erasure import DynamoContactErasure
    from shared.adapters.contact_search import DynamoContactSearch

    tables = contact_tables()
    return Ports(
        tables.stores(),
        DynamoContactSearch(tables.db, contacts_table=tables.contacts),
        DynamoContactErasure(
            tables.db, contacts_table=tables.contacts, events_table=tables.events, sleep=lambda _: None
        ),
    )


def identified(ports: Ports, contact: ContactId, **traits: str) -> None:
    who = {"userId": contact.value} if contact.kind == "user_id" else {"anonymousId": contact.value}
    call = {"type": "identify", **who, "messageId": f"i-{contact.value}", "traits": traits}
    assert ports.contacts.commit([change(contact, call)])[0].committed


def terms(*words: str) -> frozenset[str]:
    return frozenset(words)


def test_terms_replace_the_stored_ones_at_a_later_position_only(ports) -> None:
    identified(ports, ANN, name="Ann Lee")
    search = ports.search
    assert search.stored(ANN) is None
    assert search.replace(ANN, terms("ann", "lee"), was=terms(), position=position(5))
    held = search.stored(ANN)
    assert (held.terms, held.position) == (terms("ann", "lee"), position(5))
    # not what is stored, or not later: refused, nothing written
    assert not search.replace(ANN, terms("ann"), was=terms("ann"), position=position(6))
    assert not search.replace(ANN, terms("ann"), was=terms("ann", "lee"), position=position(5))
    assert not search.replace(ANN, terms("ann"), was=terms(), position=position(6))
    assert search.stored(ANN).terms == terms("ann", "lee")
    assert search.replace(ANN, terms("ann", "smith"), was=terms("ann", "lee"), position=position(7))
    assert search.stored(ANN) == type(held)(terms("ann", "smith"), position(7))
    assert search.find("le", 10).contacts == []
    assert search.find("sm", 10).contacts == [ANN]


def test_terms_are_added_only_to_a_contact_that_exists_and_is_not_merged_away(ports) -> None:
    search = ports.search
    assert not search.replace(BOB, terms("bob"), was=terms(), position=position(1))  # no profile
    assert search.stored(BOB) is None
    identified(ports, VISITOR, name="Kim")
    identified(ports, ZOE, name="Zoe")
    assert search.replace(VISITOR, terms("kim"), was=terms(), position=position(2))
    assert link(VISITOR, ZOE, ports.contacts, NOW, DECAY)
    assert not search.replace(VISITOR, terms("kim", "park"), was=terms("kim"), position=position(3))
    # taking them away needs no profile: a contact merged away loses its terms
    assert search.replace(VISITOR, terms(), was=terms("kim"), position=position(4))
    assert search.stored(VISITOR).terms == terms()
    assert search.find("ki", 10).contacts == []


def test_a_prefix_reads_terms_in_order_page_by_page_with_the_profiles(ports) -> None:
    search = ports.search
    for contact, words in ((ANN, ("ann", "ann@example.com")), (ZOE, ("annan", "zoe")), (BOB, ("bob",))):
        identified(ports, contact, name=contact.value)
        assert search.replace(contact, terms(*words), was=terms(), position=position(1))
    first = search.find("ann", 2)
    assert first.contacts == [ANN, ANN]  # "ann#..." then "ann@example.com#..."
    assert first.after is not None
    second = search.find("ann", 2, first.after)
    assert (second.contacts, second.after) == ([ZOE], None)
    assert search.find("ann@", 5).contacts == [ANN]
    assert search.find("annan", 5).contacts == [ZOE]
    assert search.find("bo", 5).contacts == [BOB]
    assert search.find("xy", 5).contacts == []
    found = search.profiles([ANN, BOB, ContactId.user("nobody")])
    assert sorted(found) == [ANN, BOB]
    assert found[ANN].traits == {"name": "ann"}


def test_keeping_terms_is_idempotent_and_an_old_record_never_brings_a_term_back(ports) -> None:
    identified(ports, ANN, name="Ann Lee")
    search = ports.search
    first = TermsChange(ANN, was=terms(), terms=terms("ann", "lee"), position=position(10))
    second = TermsChange(ANN, was=terms("ann", "lee"), terms=terms("ann", "smith"), position=position(20))
    assert keep_terms(first, search) == 1
    assert keep_terms(second, search) == 1
    assert keep_terms(second, search) == 0  # redelivered
    assert keep_terms(first, search) == 0  # an old record replayed after a newer one
    assert search.stored(ANN).terms == terms("ann", "smith")
    # a record whose old image is not what is stored (one was lost): the stored terms are replaced
    third = TermsChange(ANN, was=terms("ann", "jones"), terms=terms("ann", "brown"), position=position(30))
    assert keep_terms(third, search) == 1
    assert search.stored(ANN).terms == terms("ann", "brown")
    assert [c for c in search.find("sm", 5).contacts] == []


def test_the_backfill_indexes_a_contact_once_and_never_over_the_stream(ports) -> None:
    identified(ports, ANN, name="Ann Lee")
    identified(ports, BOB, name="Bob")
    search = ports.search
    record = ports.contacts.profile(ANN)
    assert index_existing(record, search) == 1
    assert index_existing(record, search) == 0
    assert search.stored(ANN).position == BACKFILLED
    # the stream's change of Bob came first: the back-fill's older view is not written over it
    assert keep_terms(TermsChange(BOB, terms(), terms("robert"), position(3)), search) == 1
    assert index_existing(ports.contacts.profile(BOB), search) == 0
    assert search.stored(BOB).terms == terms("robert")
    # and a stream change after the back-fill replaces what the back-fill wrote
    assert keep_terms(TermsChange(ANN, terms("ann", "lee"), terms("ann"), position(4)), search) == 1
    assert search.stored(ANN).terms == terms("ann")


def test_an_erased_contact_leaves_no_search_item(ports) -> None:
    identified(ports, ANN, name="Ann Lee")
    identified(ports, BOB, name="Ann Other")
    assert ports.search.replace(ANN, terms("ann", "lee"), was=terms(), position=position(1))
    assert ports.search.replace(BOB, terms("ann", "other"), was=terms(), position=position(1))
    erased = ports.erasure.erase(ANN, 1000)
    assert erased.done
    assert ports.search.stored(ANN) is None
    assert ports.search.find("ann", 10).contacts == [BOB]
    assert ports.search.find("le", 10).contacts == []
    # a record read late cannot put the terms back
    assert not ports.search.replace(ANN, terms("ann", "lee"), was=terms(), position=position(2))
    assert ports.search.find("le", 10).contacts == []
