"""Admin reads: the contact card and the event log, by contact id."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.contacts.identity import ContactId
from shared.contacts.views import ContactCard, EventPage, LedgerPage
from shared.contacts.recording import resolve
from shared.errors import InvalidRequest, NotFound
from shared.scoring.views import Scores

if TYPE_CHECKING:
    from shared.admin import Admin
    from shared.http import HttpRequest

RECENT_EVENTS = 20
MAX_PAGE = 100
#: The stage of a contact no stage has been given yet: the first of the default funnel.
DEFAULT_STAGE = "subscriber"


def contact_card(request: HttpRequest, deps: Admin) -> ContactCard:
    contact = _contact(request, deps)
    record = deps.contacts.profile(contact)
    if record is None:
        raise NotFound(f"no contact {contact}")
    stage = record.stage or DEFAULT_STAGE
    scores = Scores.of(record.scores, deps.decay, deps.clock.now(), stage, record.stage_baseline)
    return ContactCard.of(
        record,
        deps.log.events(contact, RECENT_EVENTS),
        deps.log.ledger(contact, RECENT_EVENTS),
        scores,
        stage,
    )


def contact_events(request: HttpRequest, deps: Admin) -> EventPage:
    contact = _contact(request, deps)
    return deps.log.events(contact, _limit(request), request.query.get("before"))


def contact_ledger(request: HttpRequest, deps: Admin) -> LedgerPage:
    """Why the scores are what they are: scored events, newest first, with each rule's points."""
    contact = _contact(request, deps)
    return deps.log.ledger(contact, _limit(request), request.query.get("before"))


def _limit(request: HttpRequest) -> int:
    limit = request.query.get("limit", str(RECENT_EVENTS))
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_PAGE:
        raise InvalidRequest(f"limit must be a whole number from 1 to {MAX_PAGE}", code="invalid_limit")
    return int(limit)


def _contact(request: HttpRequest, deps: Admin) -> ContactId:
    """The contact now holding this identity: an anonymous id that identified leads to its user."""
    raw = request.path_parameters.get("contactId", "")
    contact = resolve(ContactId.parse(raw), deps.contacts)
    return contact



ROUTES = {
    "GET /admin/contacts/{contactId}": contact_card,
    "GET /admin/contacts/{contactId}/events": contact_events,
    "GET /admin/contacts/{contactId}/ledger": contact_ledger,
}
