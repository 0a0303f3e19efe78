"""What automations hand to delivery: one request per message, on the delivery queue.

The delivery function (SES, SNS, webhooks) sends them, exactly once: a request's ``id`` is stable per
(contact, automation, occurrence, step), and the send ledger (``shared.delivery.ledger``) is keyed by
it, so a request queued or received twice is one send.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Channel = Literal["email", "sms", "webhook"]
#: ``queued``: to send; ``held_out``: the contact is in the automation's control group, recorded only.
#: Delivery adds ``sent``, ``skipped`` and ``deferred`` (with a reason).
Status = Literal["queued", "sent", "skipped", "deferred", "held_out"]
#: ``marketing``: consent, suppression, caps, quiet hours and the sending pause apply, and emails carry
#: the unsubscribe headers; ``transactional`` (a consent confirmation): only suppression applies.
Purpose = Literal["marketing", "transactional"]


class DeliveryRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: ``<contact>#<automation>#<occurrence>#<step>``: the send's idempotency key
    id: str = Field(min_length=1, max_length=1024)
    contact_id: str
    automation: str
    version: int = Field(ge=1)
    occurrence: str
    step: int = Field(ge=0)
    channel: Channel
    status: Status = "queued"
    reason: str | None = None
    #: when the automation decided it (the injected clock)
    at: datetime
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    #: webhooks: where, and the JSON body
    url: str | None = None
    body: dict[str, Any] | None = None
    #: a template to render at delivery (``/admin/templates``), with the values computed for it
    template: str | None = None
    values: dict[str, Any] = Field(default_factory=dict)
    purpose: Purpose = "marketing"
    #: send at the hour this contact usually engages (learned from their events), within the allowed hours
    best_hour: bool = False


# --- issue 13: campaigns ---------------------------------------------------------------------------------
#: a campaign's requests have ``automation`` ``campaign:<id>`` (``shared.campaigns.planning``)
CAMPAIGN_PREFIX = "campaign:"


def campaign_of(request: DeliveryRequest) -> str | None:
    """The campaign a request sends for (None: an automation's)."""
    if not request.automation.startswith(CAMPAIGN_PREFIX):
        return None
    return request.automation.removeprefix(CAMPAIGN_PREFIX) or None
