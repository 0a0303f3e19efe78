"""What delivery needs from the world, as ports (Protocols), and the views they hand back.

The delivery use case (``shared.usecases.delivery``), the feedback and preferences use cases and the
admin talk to storage and providers only through these. Each has a fake in ``tests/fakes.py`` kept
honest by the contract tests that also run against its AWS adapter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from shared.delivery.consent import ConsentChannel, ConsentRecord
from shared.delivery.ledger import SendRecord
from shared.delivery.requests import Channel, DeliveryRequest
from shared.errors import DependencyUnavailable


class Recipient(BaseModel):
    """What delivery reads of a contact's profile: where to reach them, what they agreed to, and what
    templates may show (``traits``, ``tags``, ``stage``)."""

    model_config = ConfigDict(frozen=True)

    contact_id: str
    email: str | None = None
    phone: str | None = None
    #: IANA zone (trait ``timezone``, or the one tracking saw); None: UTC
    timezone: str | None = None
    traits: dict[str, Any] = Field(default_factory=dict)
    tags: tuple[str, ...] = ()
    stage: str | None = None
    consent: dict[ConsentChannel, ConsentRecord] = Field(default_factory=dict)


class Recipients(Protocol):
    def recipient(self, contact_id: str) -> Recipient | None:
        """The contact's profile as delivery reads it (consistent read); None: unknown, merged or erased."""
        ...


@dataclass(frozen=True, slots=True)
class Claim:
    """What claiming a ledger entry found: ``claimed`` (this attempt may call the provider), ``done``
    (sent, skipped or held out already: nothing to do), ``busy`` (another attempt holds a live claim, or a
    deferral not yet due: try later)."""

    outcome: Literal["claimed", "done", "busy"]
    record: SendRecord | None = None


class SendLedger(Protocol):
    """The send ledger (``shared.delivery.ledger``): one entry per request id."""

    def claim(self, request: DeliveryRequest, now: datetime) -> Claim: ...

    def complete(self, request: DeliveryRequest, provider_id: str, now: datetime) -> None:
        """``claimed`` -> ``sent``, with the provider's message id."""
        ...

    def release(
        self, request: DeliveryRequest, reason: str, now: datetime, *, caps_taken: bool = False
    ) -> None:
        """``claimed`` -> ``failed``: the provider did not take it; the next attempt may claim it.
        ``caps_taken``: this attempt took the frequency caps; the entry keeps saying so (``caps_taken``)
        through later claims and releases."""
        ...

    def mark_in_doubt(self, request: DeliveryRequest, now: datetime, *, caps_taken: bool = False) -> None:
        """A ``claimed`` entry stays ``claimed`` (its lease runs on) with the reason ``provider_in_doubt``:
        the provider may have taken the message. ``caps_taken`` as for ``release``; anything but a
        claimed entry is left as it is."""
        ...

    def drop_claim(self, request: DeliveryRequest) -> None:
        """Delete the entry if it is ``claimed`` (the contact no longer exists: nothing is left under its
        erased partition); anything else is left as it is."""
        ...

    def settle(
        self,
        request: DeliveryRequest,
        status: Literal["skipped", "held_out"],
        reason: str | None,
        now: datetime,
    ) -> None:
        """Final without a send: a check said no (``skipped``, with its reason: only a ``claimed`` entry),
        or a control contact (``held_out``: no claim needed; an absent or open entry)."""
        ...

    def defer(self, request: DeliveryRequest, until: datetime, reason: str, now: datetime) -> None:
        """``claimed`` -> ``deferred`` until ``until`` (quiet hours, best hour), with the request kept and
        the entry on the due index, so the timer function queues it again then."""
        ...

    def record(self, request_id: str) -> SendRecord | None: ...

    def records(self, contact_id: str, limit: int = 50) -> list[SendRecord]:
        """The contact's entries, newest first (the contact card)."""
        ...


class Suppressions(Protocol):
    """Addresses that must never be sent to again (hard bounces, complaints, an administrator's entry).
    Stored by a hash of the normalised address, so the list outlives erasure without keeping PII."""

    def suppressed(self, channel: Channel, address: str) -> str | None:
        """Why the address is suppressed, or None."""
        ...

    def suppress(self, channel: Channel, address: str, reason: str, at: datetime) -> None: ...


@dataclass(frozen=True, slots=True)
class CapWindow:
    """One frequency-cap window: at most ``limit`` messages in the window named ``key`` (``d:2026-12-02``,
    ``w:2026-W49``) that ends at ``ends`` (the counter expires after it)."""

    key: str
    limit: int
    ends: datetime


class FrequencyCaps(Protocol):
    def take(self, contact_id: str, channel: Channel, windows: Sequence[CapWindow], now: datetime) -> bool:
        """Count one message in every window if each is under its limit (atomically), else count nothing
        and answer False."""
        ...


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    sender: str
    to: str
    subject: str
    text: str | None
    html: str | None
    #: extra headers, as sent (``List-Unsubscribe``, ``List-Unsubscribe-Post``)
    headers: Mapping[str, str] = field(default_factory=dict)
    #: SES message tags (the feedback function finds the ledger entry by them); values [A-Za-z0-9_.-]
    tags: Mapping[str, str] = field(default_factory=dict)


class Mailer(Protocol):
    def send(self, email: OutgoingEmail) -> str:
        """Hand the email to the provider; its message id. Raises if the provider did not take it."""
        ...


class Texter(Protocol):
    def opted_out(self, phone: str) -> bool:
        """Whether the number replied STOP (the provider's opt-out list)."""
        ...

    def send(self, phone: str, text: str) -> str: ...


class WebhookPoster(Protocol):
    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
        """The HTTP status; raises on a network failure or timeout."""
        ...


class Secrets(Protocol):
    def key(self) -> bytes:
        """The secret that signs links and webhooks (read once per instance)."""
        ...


class SendingPause(BaseModel):
    model_config = ConfigDict(frozen=True)

    reason: str
    at: datetime


class DeliveryControl(Protocol):
    """The switch the reputation alarms throw: while paused, marketing sends are skipped."""

    def pause(self) -> SendingPause | None: ...

    def set_pause(self, pause: SendingPause | None) -> None: ...


class EngagementTimes(Protocol):
    def recent_times(self, contact_id: str, limit: int) -> list[datetime]:
        """When the contact's most recent events happened (their stated times), newest first."""
        ...


class ProviderRefused(Exception):
    """The provider will never take this message (rejected address, opted-out number, a 4xx from a
    webhook): the send is settled as ``skipped`` with this reason, not retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProviderInDoubt(DependencyUnavailable):
    """The provider may have taken the message: the request went and its answer was lost (a read timeout,
    the connection closed after sending, a 5xx). Not retried at once (that could send it twice): the
    ledger entry stays ``claimed`` and the message comes back after the claim's lease."""

    code = "provider_in_doubt"


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str | None
    html: str | None


class RenderFailed(Exception):
    """A template that cannot be rendered for this contact (unknown, broken, or it tried to leave its
    sandbox): the send is skipped with this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EmailRenderer(Protocol):
    def render(self, template_id: str, context: Mapping[str, Any]) -> RenderedEmail:
        """The stored template (or a built-in one) rendered in its sandbox; raises RenderFailed."""
        ...

    def survey(self, template_id: str) -> Any | None:
        """Issue 15: the template's ``Survey`` (its ``question``) if it is an NPS survey, else None."""
        ...

    def names(self, template_id: str) -> frozenset[str]:
        """issue 15: the top-level names the template reads (``recommendations``...), so that what costs
        requests is computed only for the templates that show it; empty for an unknown template."""
        ...


# --- issue 13: campaigns ---------------------------------------------------------------------------------


class CampaignStatus(Protocol):
    """Whether a campaign was cancelled (its queued requests are then skipped): a cached read."""

    def cancelled(self, campaign_id: str) -> bool: ...
