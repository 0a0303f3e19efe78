"""The contact's deliveries card: what delivery did with each message an automation asked for (the send
ledger: sent, skipped or deferred with the reason, held out, failed and retried), newest first, and per
channel whether marketing may go (consent, with double opt-in)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel

from shared.admin.contacts import _contact, _limit
from shared.admin.dependencies import Admin
from shared.delivery.consent import (
    CONSENT_CHANNELS,
    ConsentChannel,
    ConsentFact,
    ConsentRecord,
    ConsentState,
    state,
)
from shared.delivery.ledger import SendRecord
from shared.errors import NotFound

if TYPE_CHECKING:
    from shared.http import HttpRequest


class ConsentView(BaseModel):
    """``state``: ``granted`` lets marketing go; ``pending`` waits for the contact's confirmation (double
    opt-in); ``revoked``; ``none`` (never given)."""

    state: ConsentState
    granted: ConsentFact | None = None
    revoked: ConsentFact | None = None
    confirmed_at: datetime | None = None

    @classmethod
    def of(cls, record: ConsentRecord | None, double_opt_in: frozenset[str]) -> ConsentView:
        held = record or ConsentRecord()
        return cls(
            state=state(record, double_opt_in),
            granted=held.granted,
            revoked=held.revoked,
            confirmed_at=held.confirmed_at,
        )


class DeliveriesPage(BaseModel):
    contact_id: str
    consent: dict[ConsentChannel, ConsentView]
    #: the send ledger's entries, newest change first
    deliveries: list[SendRecord]


def contact_deliveries(request: HttpRequest, deps: Admin) -> DeliveriesPage:
    limit = _limit(request)
    contact = _contact(request, deps)
    record = deps.contacts.profile(contact)
    if record is None:
        raise NotFound(f"no contact {contact}")
    return DeliveriesPage(
        contact_id=str(contact),
        consent={
            channel: ConsentView.of(record.consent.get(channel), deps.double_opt_in)
            for channel in CONSENT_CHANNELS
        },
        deliveries=deps.ledger.records(str(contact), limit),
    )


ROUTES = {
    "GET /admin/contacts/{contactId}/deliveries": contact_deliveries,
}
