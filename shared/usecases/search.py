"""Contact search (issue 14): the terms each contact is found by, kept up to date, and searching them.

Keeping the terms: the stage function sees every profile write on the contacts table's stream with the
profile before and after (``TermsChange``). When the searched traits give the same terms before and after
(almost every write: events, scores, stages) nothing is read or written. Otherwise the contact's terms are
replaced in one conditional write (``SearchTerms.replace``): the terms it had (the old image's) become the
new image's, at the stream position of the record, on condition that

- the stored terms are the old image's, written at an earlier stream position: a redelivered record, or an
  old one replayed after a newer one (a retried batch, a redrive), finds a later position and writes
  nothing, so an old term is never put back;
- a term added belongs to a contact that exists, is not merged away and is not being erased (its profile
  is not marked removed from its stage): a record read late cannot put terms back under an erased contact.

A write refused because the stored terms differ from the old image's (a record lost, a contact indexed by
the back-fill) reads the stored terms and replaces those instead. A contact merged away (or being erased)
has no terms: its write removes them all.

Back-fill: contacts stored before the search existed get their terms from the contacts back-fill
(``index_existing``), written only where none are stored (a contact the stream indexed meanwhile keeps
its own, newer, terms).

Searching: ``search`` reads one page of the index (a Query of the terms starting with the query's longest
word) and the page's profiles in one batch, keeping the contacts whose current terms match every word of
the query (the index may lag a moment behind the profiles). A query that is a contact id names that
contact (merges followed, as the card does); any other query is also tried as a user id, read in the same
batch as the page's profiles.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel

from shared.contacts.identity import KINDS, ContactId
from shared.contacts.model import ContactRecord
from shared.contacts.search import (
    MIN_QUERY,
    display_email,
    display_name,
    leading_word,
    matches,
    query_words,
    search_terms,
)
from shared.errors import InvalidRequest
from shared.usecases.recording import Profiles

#: Attempts at replacing a contact's terms when the stored ones differ from what the record showed.
MAX_ATTEMPTS = 3
#: The stream position a back-fill writes at: before any record's, so the stream's next change wins.
BACKFILLED = "0" * 40
#: Results per page: default and most.
DEFAULT_LIMIT, MAX_LIMIT = 20, 50


# --- keeping the terms -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredTerms:
    terms: frozenset[str]
    #: the stream position of the change that wrote them (text in stream order)
    position: str


@dataclass(frozen=True, slots=True)
class TermsChange:
    """A profile write that changes the contact's terms, as its stream record shows it."""

    contact: ContactId
    #: the terms before the write (none for a new profile)
    was: frozenset[str]
    #: the terms after it (none for a contact merged away or being erased)
    terms: frozenset[str]
    #: the record's stream position (text in stream order)
    position: str


class SearchTerms(Protocol):
    """The contacts' search terms (the stage function's and the back-fill's port)."""

    def replace(
        self, contact: ContactId, terms: frozenset[str], *, was: frozenset[str], position: str
    ) -> bool:
        """Store ``terms`` as the contact's, in place of ``was``, at stream ``position``, on condition that
        the stored terms are ``was`` (none stored: ``was`` is empty) written at an earlier position, and,
        if a term is added, that the profile exists, not merged away nor removed from its stage; ``False``
        (nothing written) otherwise."""
        ...

    def stored(self, contact: ContactId) -> StoredTerms | None:
        """The contact's terms as stored (read consistently), ``None`` if none ever were."""
        ...


def record_terms(record: ContactRecord) -> frozenset[str]:
    """The terms a profile is found by: none once merged away or removed (being erased)."""
    if record.merged_into or record.stage_removed_at is not None:
        return frozenset()
    return search_terms(record.traits)


def keep_terms(change: TermsChange, store: SearchTerms) -> int:
    """Replace the contact's terms as the change shows them; returns the writes made (0 or 1)."""
    if change.was == change.terms:
        return 0
    was = change.was
    for _ in range(MAX_ATTEMPTS):
        if store.replace(change.contact, change.terms, was=was, position=change.position):
            return 1
        held = store.stored(change.contact)
        if held is not None and held.position >= change.position:
            return 0  # this change, or a later one, is stored already: a redelivery, or an old record
        stored = held.terms if held is not None else frozenset()
        if stored == was:
            return 0  # the terms were as expected: the contact refused them (erased, merged away)
        was = stored
    raise RuntimeError(f"the contact's search terms kept changing during {MAX_ATTEMPTS} attempts; retry")


def index_existing(record: ContactRecord, store: SearchTerms) -> int:
    """The back-fill: a contact stored before the search existed gets its terms, unless it has some
    already (indexed by the stream since); returns the writes made (0 or 1)."""
    terms = record_terms(record)
    if not terms:
        return 0
    contact = ContactId.parse(record.contact_id)
    return 1 if store.replace(contact, terms, was=frozenset(), position=BACKFILLED) else 0


# --- searching ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FoundPage:
    """Contacts whose terms start with a word, in term order (a contact once per matching term)."""

    contacts: list[ContactId]
    #: where the next page starts (opaque to the use case), ``None`` at the end
    after: str | None


class ContactFinder(Protocol):
    """Reading the search index and the profiles it leads to (the admin's port)."""

    def find(self, word: str, limit: int, after: str | None = None) -> FoundPage:
        """Up to ``limit`` contacts having a term that starts with ``word`` (normalised, at least
        ``MIN_QUERY`` characters), from ``after`` on: one Query."""
        ...

    def profiles(self, contacts: Sequence[ContactId]) -> Mapping[ContactId, ContactRecord]:
        """The profiles of these contacts that exist (at most 100): one batch read."""
        ...


class ContactSummary(BaseModel):
    """One contact found: how the console lists it."""

    contact_id: str
    user_id: str | None
    email: str | None
    name: str | None
    stage: str | None


class ContactSearchPage(BaseModel):
    """``GET /admin/contacts?q=``'s answer: a page of contacts, and the cursor of the next (none: the end)."""

    contacts: list[ContactSummary]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Search:
    finder: ContactFinder
    #: the profile reads the card uses (a contact id's merges followed)
    profiles: Profiles
    #: a stored stage id -> the funnel's stage id (a stage the funnel no longer has reads as its first)
    stage_of: Callable[[str | None], str | None]


def search(q: str | None, limit: int, cursor: str | None, deps: Search) -> ContactSearchPage:
    """One page of the contacts ``q`` finds (see the module's docstring)."""
    text = (q or "").strip()
    if len(text) < MIN_QUERY:
        raise InvalidRequest(
            f"q: type at least {MIN_QUERY} characters of an id, an email or a name",
            code="invalid_request",
            field="q",
        )
    kind, sep, value = text.partition(":")
    if sep and kind in KINDS and value:  # a contact id: that contact, or nobody
        if cursor:
            return ContactSearchPage(contacts=[], next_cursor=None)
        record = holder(ContactId.parse(text), deps.profiles)
        found = [summary(record, deps)] if record is not None else []
        return ContactSearchPage(contacts=found, next_cursor=None)
    words = query_words(text)
    if not words or len(leading_word(words)) < MIN_QUERY:
        raise InvalidRequest(
            f"q: type at least {MIN_QUERY} letters or digits of an id, an email or a name",
            code="invalid_request",
            field="q",
        )
    word = leading_word(words)
    page = deps.finder.find(word, limit, decode_cursor(cursor, word))
    as_user = ContactId.user(text) if cursor is None else None
    wanted = list(dict.fromkeys([*([as_user] if as_user else []), *page.contacts]))
    records = dict(deps.finder.profiles(wanted)) if wanted else {}
    found: list[ContactSummary] = []
    seen: set[str] = set()
    if as_user is not None and (direct := records.get(as_user)) is not None:
        if direct.merged_into:  # an alias merged into another user: the one holding it now (the card's)
            direct = holder(ContactId.parse(direct.merged_into), deps.profiles)
        if direct is not None:
            found.append(summary(direct, deps))
            seen.add(direct.contact_id)
    for contact in page.contacts:
        record = records.get(contact)
        if record is None or record.contact_id in seen or not matches(record_terms(record), words):
            continue  # erased or merged away since it was indexed, found twice, or no longer matching
        found.append(summary(record, deps))
        seen.add(record.contact_id)
    return ContactSearchPage(contacts=found, next_cursor=encode_cursor(word, page.after))


def holder(contact: ContactId, profiles: Profiles, max_hops: int = 8) -> ContactRecord | None:
    """The profile of the contact now holding this identity (merges followed, as ``resolve`` does for the
    card), read once per hop; ``None`` if there is none."""
    for _ in range(max_hops):
        record = profiles.profile(contact)
        if record is None or record.merged_into is None:
            return record
        contact = ContactId.parse(record.merged_into)
    return None


def summary(record: ContactRecord, deps: Search) -> ContactSummary:
    return ContactSummary(
        contact_id=record.contact_id,
        user_id=record.user_id,
        email=display_email(record.traits),
        name=display_name(record.traits),
        stage=deps.stage_of(record.stage),
    )


def encode_cursor(word: str, after: str | None) -> str | None:
    """The next page's cursor: where the index read stopped, and for which word (opaque to callers)."""
    if after is None:
        return None
    raw = json.dumps({"w": word, "a": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, word: str) -> str | None:
    if not cursor:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        data = None
    if not isinstance(data, dict) or data.get("w") != word or not isinstance(data.get("a"), str):
        raise InvalidRequest(
            "cursor: not a cursor this search gave (start again without one)",
            code="invalid_request",
            field="cursor",
        )
    return data["a"]


def page_limit(raw: str | None) -> int:
    """``limit``: 1 to ``MAX_LIMIT``, ``DEFAULT_LIMIT`` when absent."""
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidRequest(
            f"limit: a whole number from 1 to {MAX_LIMIT}", code="invalid_request", field="limit"
        )
    return int(raw)
