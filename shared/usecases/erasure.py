"""Erasure: a contact, everything kept under it, and every identity merged into it, deleted.

A contact's data lives in its partitions: the profile and everything keyed under it in the contacts
table (stage history and its outbox, automation runs and timers, the send ledger, merge markers: their
due-index entries are attributes of those items, so they go with them), and its event log in the
events table (the score ledgers are on the events). Identities merged into it (anonymous visitors,
aliased users) keep partitions of their own (a merged-away profile, events that arrived late), found
from its merge markers and its anonymous ids, and, for their own merges, from theirs.

Safe to repeat after a crash at any step, and bounded per request: identities are erased deepest
first and the contact asked for last (so the pointers that find the rest outlive them); within one,
its events go first and its profile last. A request that runs out of its budget answers
``complete: false``; asking again goes on where it stopped. Asking for a contact that is gone erases
nothing and answers 0 items.

Each identity in a stage first leaves it, through the stage function's own use case
(``shared.usecases.engagement.remove_from_funnel``): its removal (``ContactRemoved``, reason ``erased``) is
written to its outbox with a mark that refuses any later stage write, then everything it has pending is
published, before any of its items go. The lifecycle metrics thus count it out of the stage it is really
in, once: a move racing with the erasure is refused, a move written but not yet announced goes out first,
a request asked again finds the mark, and a contact merged away carries the same removal id. An identity
whose announcements the bus refuses is not erased (the request fails; ask again).

What stays, and why, is in docs/decisions.md ("Erasure").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel

from shared.contacts.identity import ContactId
from shared.tracking.proofs import unverified_visitor
from shared.usecases.engagement import Engagement, remove_from_funnel
from shared.usecases.recording import Profiles, resolve

#: Items deleted per request at most (about 3,000 per second in batches of 25: well inside the API's
#: 30 s); a bigger contact takes a few requests (``complete: false``)
ITEMS_PER_REQUEST = 20_000
#: Identities merged into one contact that one erasure follows at most (the tree of merges)
MAX_IDENTITIES = 1_000


@dataclass(frozen=True, slots=True)
class Erased:
    deleted: int
    #: nothing of the contact is left
    done: bool


class ContactErasure(Protocol):
    def merged_identities(self, contact: ContactId) -> frozenset[ContactId]:
        """The identities merged into ``contact``: its merge markers' sources and its anonymous ids."""
        ...

    def erase(self, contact: ContactId, limit: int) -> Erased:
        """Delete up to ``limit`` items of the contact's partitions, in both tables: its events first, its
        profile last; ``done`` when none is left."""
        ...


class Telemetry(Protocol):
    def count(self, name: str, value: int) -> None: ...


@dataclass(frozen=True, slots=True)
class Erasure:
    contacts: Profiles
    erasure: ContactErasure
    telemetry: Telemetry
    #: None: ``ITEMS_PER_REQUEST``
    items_per_request: int | None = None
    #: issue 13: the stage function's use case, through which each identity leaves its stage before its
    #: items go (the lifecycle metrics); none: not announced
    engagement: Engagement | None = None


class ErasureResult(BaseModel):
    """``DELETE /admin/contacts/{contactId}``'s answer: the contact erased (the one the identity asked
    for belongs to), how many items went, and whether anything is left to erase (ask again)."""

    erased: str
    items: int
    identities: int
    complete: bool


def erase(asked: ContactId, deps: Erasure) -> ErasureResult:
    """Erase the contact ``asked`` belongs to now (an anonymous id that identified: its user), with every
    identity merged into it."""
    contact = resolve(asked, deps.contacts)
    order = erasure_order(contact, asked, deps.erasure)
    budget, deleted = deps.items_per_request or ITEMS_PER_REQUEST, 0
    for identity in order:
        announce_removal(identity, deps)
        erased = deps.erasure.erase(identity, budget)
        deleted += erased.deleted
        budget -= erased.deleted
        if not erased.done:
            break
    else:
        deps.telemetry.count("ContactsErased", 1)
        deps.telemetry.count("ItemsErased", deleted)
        return ErasureResult(erased=str(contact), items=deleted, identities=len(order), complete=True)
    deps.telemetry.count("ItemsErased", deleted)
    return ErasureResult(erased=str(contact), items=deleted, identities=len(order), complete=False)


def announce_removal(identity: ContactId, deps: Erasure) -> int:
    """``identity`` leaves its stage, announced, before its items go (``remove_from_funnel``); the writes
    made. ``DependencyUnavailable`` if the bus did not take its announcements (nothing of it is erased)."""
    if deps.engagement is None:
        return 0
    return remove_from_funnel(identity, deps.engagement)


def erasure_order(contact: ContactId, asked: ContactId, erasure: ContactErasure) -> list[ContactId]:
    """Every identity to erase, those merged deepest first, ``contact`` next to last and ``asked`` last:
    a crash leaves the identity asked for, whose profile leads to the rest again."""
    found: list[ContactId] = [contact]
    seen = {contact}
    for identity in found:  # breadth first; grows while read
        if len(found) >= MAX_IDENTITIES:
            break
        for merged in sorted(erasure.merged_identities(identity)):
            if merged not in seen:
                seen.add(merged)
                found.append(merged)
    if contact.kind == "user_id":  # the visitor that holds calls which claimed this user without proof
        visitor = ContactId.anonymous(unverified_visitor(contact.value))
        if visitor not in seen:
            found.insert(1, visitor)
    return [*(c for c in reversed(found) if c != asked), asked]
