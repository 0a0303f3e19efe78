"""Consent to marketing on a channel: the facts recorded, and whether they let a message go.

Facts arrive as events (identify traits ``email_opt_in`` and ``sms_consent``, a ``Consent Updated``
track call, the admin API, the unsubscribe link) and the aggregation folds them into the profile: per
channel the latest grant and the latest revocation, each with its source and time, and the time the
contact confirmed through the confirmation link (double opt-in). Pure: no storage, no clock.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

ConsentChannel = Literal["email", "sms"]
CONSENT_CHANNELS: tuple[ConsentChannel, ...] = ("email", "sms")
#: the identify traits that carry consent, by channel
CONSENT_TRAITS: dict[ConsentChannel, str] = {"email": "email_opt_in", "sms": "sms_consent"}
ConsentState = Literal["granted", "pending", "revoked", "none"]


class ConsentFact(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    at: datetime


class ConsentRecord(BaseModel):
    """What the profile holds for one channel."""

    model_config = ConfigDict(frozen=True)

    granted: ConsentFact | None = None
    revoked: ConsentFact | None = None
    #: when the contact confirmed through the link in the confirmation email
    confirmed_at: datetime | None = None


def state(record: ConsentRecord | None, double_opt_in: Collection[str]) -> ConsentState:
    """``granted`` lets marketing go; ``pending`` waits for the contact's confirmation (double opt-in:
    the grant's source is in ``double_opt_in``). A confirmation holds until the next revocation, so a
    confirmed contact who opts in again from the same form is not asked again."""
    if record is None or record.granted is None:
        return "revoked" if record is not None and record.revoked is not None else "none"
    revoked_at = record.revoked.at if record.revoked is not None else None
    if revoked_at is not None and revoked_at >= record.granted.at:
        return "revoked"
    if record.granted.source not in double_opt_in:
        return "granted"
    confirmed = record.confirmed_at is not None and (revoked_at is None or record.confirmed_at > revoked_at)
    return "granted" if confirmed else "pending"
