"""Contact search terms (issue 14): what a contact is found by, and what a search asks for.

A contact is found by its email (exact or a prefix, case-insensitive) and by the words of its name (a
prefix of any word, case- and accent-insensitive). Both are kept as *terms*: normalised text, one per
searchable word or address, which the search index holds under the first ``TERM_HEAD`` characters. A
search for ``q`` is then a range read of the terms that start with ``q``'s own normalised word.

Normalising: Unicode compatibility decomposition (NFKD), combining marks dropped (``é`` -> ``e``), case
folded (``ß`` -> ``ss``). A name is cut into words at white space; a word is stripped of the punctuation
around it, and a word with punctuation inside (``anne-marie``, ``o'brien``) is kept whole *and* as its
parts (``anne``, ``marie``; ``brien``), so either form finds it. An email is one term, whole.

Pure: no storage, no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

#: The traits searched: the email, and the name's parts (Segment's spec names, and snake_case forms).
EMAIL_TRAITS: tuple[str, ...] = ("email",)
NAME_TRAITS: tuple[str, ...] = ("name", "firstName", "first_name", "lastName", "last_name")
SEARCHED_TRAITS: tuple[str, ...] = (*EMAIL_TRAITS, *NAME_TRAITS)
#: A search needs at least this many characters (once normalised): the index partitions terms by them.
MIN_QUERY = 2
#: The characters of a term that name its index partition (``SEARCH#<head>``).
TERM_HEAD = MIN_QUERY
#: A term is cut to this many characters (an index key is at most 1 KB; nobody types more to search).
MAX_TERM = 64
#: At most this many terms per contact (a name of a few words and an email need a handful; a trait
#: stuffed with words must not make a contact's index write unbounded).
MAX_TERMS = 24
#: Punctuation that joins the parts of one word (hyphens, apostrophes, dots, ...): anything not a letter
#: nor a digit.
_PARTS = re.compile(r"[^\w]+|_+")


def normalise(text: str) -> str:
    """Case- and accent-insensitive form: NFKD, combining marks dropped, case folded, spaces collapsed;
    ``#`` dropped (the index separates a term from its contact with it)."""
    decomposed = unicodedata.normalize("NFKD", text.replace("#", ""))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().split())


def word_terms(word: str) -> list[str]:
    """One normalised word's terms: the word without the punctuation around it, and, when punctuation
    joins parts inside it, each part of ``MIN_QUERY`` characters or more."""
    parts = [p for p in _PARTS.split(word) if p]
    if not parts:
        return []
    whole = word[word.find(parts[0]) : word.rfind(parts[-1]) + len(parts[-1])]
    terms = [whole] if len(whole) >= MIN_QUERY else []
    if len(parts) > 1:
        terms += [p for p in parts if len(p) >= MIN_QUERY]
    return terms


def name_terms(text: str) -> list[str]:
    return [term for word in normalise(text).split(" ") for term in word_terms(word)]


def search_terms(traits: Mapping[str, Any]) -> frozenset[str]:
    """The terms a contact with these traits is found by: its email whole, and its name's words."""
    terms: list[str] = []
    for name in EMAIL_TRAITS:
        value = traits.get(name)
        if isinstance(value, str) and len(email := "".join(normalise(value).split())) >= MIN_QUERY:
            terms.append(email)
    for name in NAME_TRAITS:
        value = traits.get(name)
        if isinstance(value, str):
            terms += name_terms(value)
    kept: dict[str, None] = {}
    for term in terms:
        kept.setdefault(term[:MAX_TERM])
        if len(kept) == MAX_TERMS:
            break
    return frozenset(kept)


def searched_traits(traits: Mapping[str, Any]) -> dict[str, Any]:
    """The traits that make the terms (two profiles with equal ones have equal terms)."""
    return {name: traits[name] for name in SEARCHED_TRAITS if name in traits}


def query_words(q: str) -> list[str]:
    """What a search asks for: its normalised words, each to be the start of a term of the contact.
    A query with ``@`` is an email (one word, spaces ignored). Words shorter than ``MIN_QUERY`` are kept
    (``ann l`` narrows ``ann`` to contacts with a word starting ``l``), but the longest must reach it."""
    text = normalise(q)
    if "@" in text:
        return ["".join(text.split())]
    words: list[str] = []
    for word in text.split(" "):
        parts = [p for p in _PARTS.split(word) if p]
        if parts:
            words.append(word[word.find(parts[0]) : word.rfind(parts[-1]) + len(parts[-1])])
    return words


def leading_word(words: list[str]) -> str:
    """The word the index is read by: the longest (the fewest terms start with it), the first of equals."""
    return max(words, key=len)[:MAX_TERM]


def matches(terms: frozenset[str], words: list[str]) -> bool:
    """Every word of the query starts some term of the contact."""
    return all(any(term.startswith(word[:MAX_TERM]) for term in terms) for word in words)


def display_name(traits: Mapping[str, Any]) -> str | None:
    """The name to show: the ``name`` trait, else the first and last names joined."""
    name = traits.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    parts = [
        value.strip()
        for value in (
            traits.get("firstName") or traits.get("first_name"),
            traits.get("lastName") or traits.get("last_name"),
        )
        if isinstance(value, str) and value.strip()
    ]
    return " ".join(parts) or None


def display_email(traits: Mapping[str, Any]) -> str | None:
    email = traits.get("email")
    return email.strip() if isinstance(email, str) and email.strip() else None
