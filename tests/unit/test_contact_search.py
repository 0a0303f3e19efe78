"""Contact search (issue 14): the terms a contact is found by (normalisation, accents, names, emails), the
changes of terms a stream record shows, and searching (ids, emails, names, several words, pages, refusals)
over the fakes."""

from __future__ import annotations

import pytest

from shared.adapters.contact_search import image_terms, terms_change_from_stream
from shared.contacts.identity import ContactId
from shared.contacts.search import (
    MAX_TERM,
    MAX_TERMS,
    display_name,
    matches,
    normalise,
    query_words,
    search_terms,
)
from shared.errors import InvalidRequest
from shared.usecases.search import (
    BACKFILLED,
    Search,
    TermsChange,
    decode_cursor,
    keep_terms,
    page_limit,
    record_terms,
    search,
)
from tests.contract.helpers import change, position
from tests.fakes import MemoryContactSearch, MemoryContactStore

# --- terms ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ann LEE", "ann lee"),
        ("  Zoé   Ångström ", "zoe angstrom"),
        ("Straße", "strasse"),
        ("Ｆｕｌｌ", "full"),  # compatibility forms
        ("Łukasz Żółć", "łukasz zołc"),  # a stroke is a letter of its own, not an accent
        ("a#b", "ab"),
    ],
)
def test_normalising_ignores_case_accents_and_spacing(text, expected) -> None:
    assert normalise(text) == expected


def test_a_contact_is_found_by_its_email_whole_and_the_words_of_its_name() -> None:
    traits = {"email": " Ann.Lee@Example.COM ", "name": "Ann Lee", "plan": "pro", "company": "Acme"}
    assert search_terms(traits) == {"ann.lee@example.com", "ann", "lee"}


def test_first_and_last_names_in_either_spelling_are_searched() -> None:
    assert search_terms({"firstName": "Zoé", "last_name": "Annan"}) == {"zoe", "annan"}
    assert search_terms({"first_name": "Bob", "lastName": "Émile-Durand"}) == {
        "bob",
        "emile-durand",
        "emile",
        "durand",
    }


def test_punctuation_around_a_word_goes_and_inside_it_the_parts_are_kept_too() -> None:
    assert search_terms({"name": "(Mary) O'Brien, Jr."}) == {"mary", "o'brien", "brien", "jr"}
    assert search_terms({"name": "J. K. Lo"}) == {"lo"}  # one letter: too short to search by


def test_what_is_not_text_makes_no_term_and_terms_are_bounded() -> None:
    assert search_terms({"email": 42, "name": None, "firstName": ["x"]}) == frozenset()
    many = search_terms({"name": " ".join(f"w{n:03d}" for n in range(100))})
    assert len(many) == MAX_TERMS
    assert all(len(t) <= MAX_TERM for t in search_terms({"name": "x" * 500}))


def test_a_contact_merged_away_or_being_erased_has_no_terms() -> None:
    store = MemoryContactStore()
    ann = ContactId.user("ann")
    call = {"type": "identify", "userId": "ann", "messageId": "i1", "traits": {"name": "Ann"}}
    assert store.commit([change(ann, call)])[0].committed
    record = store.profile(ann)
    assert record_terms(record) == {"ann"}
    assert record_terms(record.model_copy(update={"merged_into": "user_id:x"})) == frozenset()
    assert record_terms(record.model_copy(update={"stage_removed_at": record.last_seen_at})) == frozenset()


@pytest.mark.parametrize(
    ("q", "words"),
    [
        ("Ann", ["ann"]),
        ("  ann   LEE ", ["ann", "lee"]),
        ("Ann.Lee@Example.com", ["ann.lee@example.com"]),
        ("ann lee@x", ["annlee@x"]),  # an email: spaces ignored
        ("o'bri", ["o'bri"]),
        ("(émile)", ["emile"]),
        ("!!", []),
    ],
)
def test_a_query_is_normalised_into_words(q, words) -> None:
    assert query_words(q) == words


def test_every_word_must_start_a_term() -> None:
    terms = frozenset({"ann", "lee", "ann.lee@example.com"})
    assert matches(terms, ["an", "le"])
    assert matches(terms, ["ann.lee@"])
    assert not matches(terms, ["ann", "smith"])
    assert not matches(terms, ["nn"])  # a prefix, not any part


def test_the_name_shown_is_the_name_or_the_first_and_last_names() -> None:
    assert display_name({"name": " Ann Lee "}) == "Ann Lee"
    assert display_name({"first_name": "Zoé", "lastName": "Annan"}) == "Zoé Annan"
    assert display_name({"email": "x@y"}) is None


# --- the stream records ----------------------------------------------------------------------------------------


def image(**traits: str) -> dict:
    import json

    return {
        "pk": {"S": "C#user_id:ann"},
        "sk": {"S": "PROFILE"},
        "eventCount": {"N": "3"},
        **{f"trait:{k}": {"S": json.dumps(v)} for k, v in traits.items()},
    }


def record(old: dict | None, new: dict | None, event: str = "MODIFY", sequence: str = "123") -> dict:
    change = {"Keys": {"pk": {"S": "C#user_id:ann"}, "sk": {"S": "PROFILE"}}, "SequenceNumber": sequence}
    if old is not None:
        change["OldImage"] = old
    if new is not None:
        change["NewImage"] = new
    return {"eventName": event, "dynamodb": change}


def test_a_record_that_changes_no_searched_trait_changes_no_terms() -> None:
    old = image(name="Ann Lee", plan="free")
    new = {**image(name="ann  lee", plan="pro"), "eventCount": {"N": "4"}}
    assert terms_change_from_stream(record(old, new)) is None


def test_a_record_that_changes_the_name_changes_the_terms_at_its_position() -> None:
    found = terms_change_from_stream(record(image(name="Ann Lee"), image(name="Ann Smith"), sequence="4200"))
    assert found == TermsChange(
        contact=ContactId.user("ann"),
        was=frozenset({"ann", "lee"}),
        terms=frozenset({"ann", "smith"}),
        position="4200".zfill(40),
    )
    assert found.position > BACKFILLED


def test_a_new_contact_and_a_merged_away_one() -> None:
    new = terms_change_from_stream(record(None, image(email="a@b.co"), event="INSERT"))
    assert new is not None and (new.was, new.terms) == (frozenset(), {"a@b.co"})
    merged = {**image(email="a@b.co"), "mergedInto": {"S": "user_id:x"}}
    gone = terms_change_from_stream(record(image(email="a@b.co"), merged))
    assert gone is not None and (gone.was, gone.terms) == ({"a@b.co"}, frozenset())


def test_other_records_are_not_term_changes() -> None:
    assert terms_change_from_stream(record(image(name="Ann"), None, event="REMOVE")) is None
    other = record(None, {**image(name="Ann"), "sk": {"S": "SEARCH#ann"}}, event="INSERT")
    other["dynamodb"]["Keys"]["sk"] = {"S": "SEARCH#ann"}
    assert terms_change_from_stream(other) is None
    assert image_terms({**image(name="Ann"), "trait:name": {"S": "not json"}}) == frozenset()


# --- searching ------------------------------------------------------------------------------------------------


class World:
    def __init__(self) -> None:
        self.store = MemoryContactStore()
        self.index = MemoryContactSearch(self.store)
        self.seq = 0

    def identify(self, contact: ContactId, **traits: str) -> None:
        who = {"userId": contact.value} if contact.kind == "user_id" else {"anonymousId": contact.value}
        self.seq += 1
        call = {"type": "identify", **who, "messageId": f"m{self.seq}", "traits": traits}
        was = self.store.profile(contact)
        assert self.store.commit([change(contact, call)])[0].committed
        now = self.store.profile(contact)
        keep_terms(
            TermsChange(
                contact, record_terms(was) if was else frozenset(), record_terms(now), position(self.seq)
            ),
            self.index,
        )

    def search(self, q: str | None, limit: int = 20, cursor: str | None = None):
        deps = Search(finder=self.index, profiles=self.store, stage_of=lambda stage: stage or "subscriber")
        return search(q, limit, cursor, deps)


@pytest.fixture
def world() -> World:
    w = World()
    w.identify(ContactId.user("ann"), email="ann@example.com", name="Ann Lee")
    w.identify(ContactId.user("zoe"), email="zoe@example.org", firstName="Zoé", lastName="Annan")
    w.identify(ContactId.user("bob"), email="bob@example.com", name="Bob Stone")
    return w


def contact_ids(page) -> list[str]:
    return [c.contact_id for c in page.contacts]


def test_a_search_is_one_query_and_one_batch_read(world) -> None:
    world.index.requests = 0
    page = world.search("ann")
    assert contact_ids(page) == ["user_id:ann", "user_id:zoe"]  # Ann once, though two of her terms match
    assert world.index.requests == 2
    assert page.contacts[0].model_dump() == {
        "contact_id": "user_id:ann",
        "user_id": "ann",
        "email": "ann@example.com",
        "name": "Ann Lee",
        "stage": "subscriber",
    }


def test_a_user_id_is_found_exactly_and_first(world) -> None:
    world.identify(ContactId.user("stone"), name="Nobody")
    assert contact_ids(world.search("stone")) == ["user_id:stone", "user_id:bob"]
    assert contact_ids(world.search("user_id:bob")) == ["user_id:bob"]
    assert contact_ids(world.search("user_id:nobody")) == []


def test_several_words_all_match_and_pages_follow_in_a_stable_order(world) -> None:
    assert contact_ids(world.search("zoe ann")) == ["user_id:zoe"]
    assert contact_ids(world.search("ann lee")) == ["user_id:ann"]
    assert contact_ids(world.search("ann stone")) == []
    first = world.search("ann", limit=1)
    assert contact_ids(first) == ["user_id:ann"] and first.next_cursor
    found = contact_ids(first)
    cursor = first.next_cursor
    while cursor:
        page = world.search("ann", limit=1, cursor=cursor)
        found += [c for c in contact_ids(page) if c not in found]
        cursor = page.next_cursor
    assert found == ["user_id:ann", "user_id:zoe"]


def test_a_stale_term_finds_nobody(world) -> None:
    """The index a moment behind a profile: the contact's current traits decide."""
    ann = ContactId.user("ann")
    world.store.profiles[ann].traits["name"] = "Ann Smith"  # not yet seen by the stream
    assert contact_ids(world.search("lee")) == []


@pytest.mark.parametrize("q", [None, "", "  ", "a", "é", "!!", "a."])
def test_too_short_a_query_is_refused_for_field_q(world, q) -> None:
    with pytest.raises(InvalidRequest) as refused:
        world.search(q)
    assert refused.value.field == "q"


def test_limits_and_cursors_are_checked() -> None:
    assert page_limit(None) == 20
    assert page_limit("50") == 50
    for bad in ("0", "51", "x", "-1"):
        with pytest.raises(InvalidRequest) as refused:
            page_limit(bad)
        assert refused.value.field == "limit"
    with pytest.raises(InvalidRequest) as refused:
        decode_cursor("%%%", "ann")
    assert refused.value.field == "cursor"


def test_a_cursor_of_another_search_is_refused(world) -> None:
    cursor = world.search("ann", limit=1).next_cursor
    with pytest.raises(InvalidRequest) as refused:
        world.search("bob", cursor=cursor)
    assert refused.value.field == "cursor"
