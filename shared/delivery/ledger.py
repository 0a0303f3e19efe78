"""The send ledger: one entry per delivery request, keyed by its id, that makes each send happen once.

Before a provider call the delivery function *claims* the entry with a condition (absent, retryable, a
deferral that has come due, or a claim older than its lease); after the call it *completes* it with the
provider's message id. A failure before the provider accepted *releases* it (retryable, never ``sent``;
``capsTaken`` kept once an attempt took the frequency caps, so a retry does not take them again).
Checks that say no *settle* it (``skipped`` with a reason) or *defer* it (``deferred`` until a time,
on the due index, which the timer function reads and queues again). A claimed entry whose contact no
longer exists is *dropped* (deleted), so a late request never recreates an erased contact's partition.
Every transition after a claim requires the entry to be there and ``claimed``: an erasure in between is
never undone.

Entries keep no PII: ids, channel, status, reason, times and the provider's message id. A deferred entry
also keeps the request itself until it is queued again (erasure deletes the contact's entries).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.delivery.requests import Channel

#: ``claimed``: a provider call is (or was) under way; ``failed``: a call that did not go through, to retry
SendStatus = Literal["claimed", "sent", "skipped", "deferred", "held_out", "failed"]
#: a claim older than this is taken for a crashed attempt (longer than the delivery function's timeout)
CLAIM_LEASE_SECONDS = 300
#: final: a claim finds these ``done``
FINAL_STATUSES: frozenset[str] = frozenset({"sent", "skipped", "held_out"})


def entry_key(request_id: str, contact_id: str) -> str:
    """The entry's key within its contact: the request id without its ``<contact>#`` prefix (every id
    the engine makes has it; one without it is kept whole)."""
    return request_id.removeprefix(f"{contact_id}#")


class SendRecord(BaseModel):
    """A ledger entry as read back from storage."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    #: the delivery request's id: ``<contact>#<automation>#<occurrence>#<step>``
    id: str
    contact_id: str
    automation: str
    channel: Channel
    status: SendStatus
    reason: str | None = None
    attempts: int = Field(0, ge=0)
    #: when the entry last changed (the injected clock)
    at: datetime
    claimed_at: datetime | None = None
    sent_at: datetime | None = None
    #: SES's or SNS's message id, or the webhook's HTTP status
    provider_id: str | None = None
    #: deferred: when it may be sent
    due_at: datetime | None = None
    #: an attempt took the frequency caps for this send (and failed at the provider): its retries do not
    #: take them again
    caps_taken: bool = False
