"""Admin reads: the contact card and the event log, by contact id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.contacts.identity import ContactId
from shared.contacts.model import ContactCard, EventPage
from shared.contacts.recording import ContactStore, resolve
from shared.errors import InvalidRequest, NotFound

if TYPE_CHECKING:
    from shared.http import HttpRequest

RECENT_EVENTS = 20
MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class Admin:
    contacts: ContactStore


def contact_card(request: HttpRequest, deps: Admin) -> ContactCard:
    contact = _contact(request, deps)
    record = deps.contacts.profile(contact)
    if record is None:
        raise NotFound(f"no contact {contact}")
    return ContactCard.of(record, deps.contacts.events(contact, RECENT_EVENTS))


def contact_events(request: HttpRequest, deps: Admin) -> EventPage:
    contact = _contact(request, deps)
    limit = request.query.get("limit", str(RECENT_EVENTS))
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_PAGE:
        raise InvalidRequest(f"limit must be a whole number from 1 to {MAX_PAGE}", code="invalid_limit")
    return deps.contacts.events(contact, int(limit), request.query.get("before"))


def _contact(request: HttpRequest, deps: Admin) -> ContactId:
    """The contact now holding this identity: an anonymous id that identified leads to its user."""
    raw = request.path_parameters.get("contactId", "")
    contact = resolve(ContactId.parse(raw), deps.contacts)
    return contact


#: The admin routes this module serves; the wiring declares them to API Gateway from here.
ROUTES = {
    "GET /admin/contacts/{contactId}": contact_card,
    "GET /admin/contacts/{contactId}/events": contact_events,
}


def dispatch(request: HttpRequest, deps: Admin) -> ContactCard | EventPage:
    operation = ROUTES.get(request.route)
    if operation is None:
        raise NotFound(f"no admin route {request.route}")
    return operation(request, deps)
