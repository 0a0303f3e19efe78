"""Admin reads: the contact card and the event log, by contact id."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from shared.admin.dependencies import Admin
from shared.automations.views import RunView, TimerView
from shared.contacts.identity import ContactId
from shared.contacts.views import ContactCard, EngagementView, EventPage, LedgerPage
from shared.engagement.index import index, quarter
from shared.errors import InvalidRequest, NotFound
from shared.scoring.views import Scores
from shared.usecases.recording import resolve

if TYPE_CHECKING:
    from shared.http import HttpRequest

RECENT_EVENTS = 20
MAX_PAGE = 100


def contact_card(request: HttpRequest, deps: Admin) -> ContactCard:
    contact = _contact(request, deps)
    record = deps.contacts.profile(contact)
    if record is None:
        raise NotFound(f"no contact {contact}")
    now = deps.clock.now()
    funnel = deps.funnels.funnel()
    stage = funnel.stage(record.stage).id
    scores = Scores.of(record.scores, deps.decay, now, stage, record.stage_baseline)
    current = scores.global_.current
    purchased = record.counts.get("purchase", 0) > 0 or funnel.post_purchase(stage)
    engagement = EngagementView(
        quarter=quarter(current, purchased, funnel.thresholds).value,
        index=round(index(current, purchased, funnel.thresholds), 4),
        direction=scores.global_.trend.value,
        current=current,
    )
    history = [
        o.model_dump(mode="json", by_alias=True) | {"type": o.detail_type}
        for o in deps.engagement.stages.history(contact, RECENT_EVENTS)
    ]
    analytics_history = [
        o.model_dump(mode="json", by_alias=True) | {"type": o.detail_type}
        for o in deps.analytics.history(contact, RECENT_EVENTS)
    ]
    return ContactCard.of(
        record,
        deps.log.events(contact, RECENT_EVENTS),
        deps.log.ledger(contact, RECENT_EVENTS),
        scores,
        stage,
        engagement,
        history,
        deps.double_opt_in,
        analytics_history,
    )


def contact_events(request: HttpRequest, deps: Admin) -> EventPage:
    contact = _contact(request, deps)
    return deps.log.events(contact, _limit(request), request.query.get("before"))


def contact_ledger(request: HttpRequest, deps: Admin) -> LedgerPage:
    """Why the scores are what they are: scored events, newest first, with each rule's points."""
    contact = _contact(request, deps)
    return deps.log.ledger(contact, _limit(request), request.query.get("before"))


class AutomationsPage(BaseModel):
    """What automations did and will do for the contact: runs recorded (newest first, with the messages
    they handed to delivery) and timers armed (soonest first)."""

    contact_id: str
    runs: list[RunView]
    timers: list[TimerView]


def contact_automations(request: HttpRequest, deps: Admin) -> AutomationsPage:
    contact = _contact(request, deps)
    return AutomationsPage(
        contact_id=str(contact),
        runs=deps.runs.runs(contact, _limit(request)),
        timers=deps.runs.timers(contact),
    )


def _limit(request: HttpRequest) -> int:
    limit = request.query.get("limit", str(RECENT_EVENTS))
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_PAGE:
        raise InvalidRequest(
            f"limit must be a whole number from 1 to {MAX_PAGE}", code="invalid_limit", field="limit"
        )
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
    "GET /admin/contacts/{contactId}/automations": contact_automations,
}
