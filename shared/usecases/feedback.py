"""Feedback: what SES and the reputation alarms report, acted on once.

EventBridge invokes the feedback function asynchronously with one event (and retries it), so every
effect here is idempotent:

- a permanent bounce suppresses each bounced address (``hard_bounce``), a complaint each complaining
  address (``complaint``) and records the contact's revocation of email consent (a ``Consent Updated``
  call, source ``complaint``, so the card shows why); a transient or undetermined bounce is counted only.
  The suppression list keeps the first reason and no address (a hash).
- an open or a click becomes the contact's behaviour (``Email Opened`` / ``Email Link Clicked`` from a
  mailing), recorded through ``record`` with the rule book and decay, as tracking records a call, so the
  scoring rules that exist score it. Its key is the open's or click's own time and a messageId derived
  from the SES event (``feedback_message_id``): a redelivered event or a retried invocation is the same
  key, which the event log refuses, so it counts once.
- an alarm on SES's complaint or bounce rate that goes to ``ALARM`` pauses marketing sends. ``OK`` does
  not resume them: an administrator does (``POST /admin/delivery/resume``).

The contact comes from the contact tag delivery set on the email; an event without one (an email
sent by something else through the configuration set) is counted and ignored, and so is one for a
contact that no longer exists (erased): an open must not bring an erased contact back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from shared.campaigns.ports import Exposures
from shared.campaigns.results import Measure
from shared.clock import Clock
from shared.contacts.identity import ContactId
from shared.delivery.feedback import (
    ALARM_STATE_CHANGE,
    EMAIL_BOUNCED,
    EMAIL_CLICKED,
    EMAIL_COMPLAINT,
    EMAIL_DELIVERED,
    EMAIL_OPENED,
)
from shared.delivery.mail_events import (
    AlarmChange,
    BusEvent,
    MailEvent,
    automation_of,
    feedback_message_id,
)
from shared.delivery.ports import DeliveryControl, SendingPause, Suppressions
from shared.errors import InvalidRequest
from shared.scoring.catalogue import RuleSource
from shared.scoring.decay import Decay
from shared.scoring.engine import ScoringContext
from shared.tracking.messages import TrackedEvent, parse_calls
from shared.tracking.proofs import Provenance, Vouched
from shared.tracking.timestamps import format_time
from shared.tracking.wire import Limits
from shared.usecases.campaigns import count_feedback
from shared.usecases.recording import EventLog, Profiles, record

#: The suppression reasons feedback writes
HARD_BOUNCE, COMPLAINT = "hard_bounce", "complaint"
#: The calls an open and a click become (``shared.tracking.behaviours``: email from a mailing)
OPENED_CALL, CLICKED_CALL = "Email Opened", "Email Link Clicked"
CONSENT_CALL = "Consent Updated"
#: What handling one event came to (the function's answer; metrics count the same)
Outcome = Literal["suppressed", "counted", "recorded", "duplicate", "paused", "ignored"]


class Telemetry(Protocol):
    def count(self, name: str, value: int) -> None: ...


@dataclass(frozen=True, slots=True)
class Feedback:
    clock: Clock
    suppressions: Suppressions
    control: DeliveryControl
    #: whether the contact a tag names still exists
    contacts: Profiles
    log: EventLog
    rules: RuleSource
    decay: Decay
    telemetry: Telemetry
    # --- issue 13: a campaign email's delivery, first open and first click count for its arm
    results: Exposures | None = None


def on_feedback(event: Mapping[str, Any], deps: Feedback) -> Outcome:
    """Act on one EventBridge event. An event that can never be read is counted and dropped (a retry
    would not make it readable); a storage failure raises, so Lambda retries the whole event."""
    try:
        envelope = BusEvent.model_validate(event)
        if envelope.detail_type == ALARM_STATE_CHANGE:
            return _alarm(AlarmChange.model_validate(envelope.detail), deps)
        mail = MailEvent.model_validate(envelope.detail)
        handle = _HANDLERS.get(envelope.detail_type)
        if handle is None:
            deps.telemetry.count("FeedbackIgnored", 1)
            return "ignored"
        return handle(mail, deps)
    except (ValidationError, InvalidRequest):
        deps.telemetry.count("FeedbackUnreadable", 1)
        return "ignored"


def _bounced(mail: MailEvent, deps: Feedback) -> Outcome:
    bounce = _part(mail.bounce)
    deps.telemetry.count(f"Bounces{bounce.bounce_type}", 1)
    if bounce.bounce_type != "Permanent":
        return "counted"
    for recipient in bounce.bounced_recipients:
        deps.suppressions.suppress("email", recipient.address, HARD_BOUNCE, bounce.timestamp)
    deps.telemetry.count("Suppressed", len(bounce.bounced_recipients))
    return "suppressed"


def _complained(mail: MailEvent, deps: Feedback) -> Outcome:
    complaint = _part(mail.complaint)
    deps.telemetry.count("Complaints", 1)
    for recipient in complaint.complained_recipients:
        deps.suppressions.suppress("email", recipient.address, COMPLAINT, complaint.timestamp)
    deps.telemetry.count("Suppressed", len(complaint.complained_recipients))
    contact = _known_contact(mail, deps)
    if contact is not None:
        properties = {"email_opt_in": False, "source": COMPLAINT, **_email_ids(mail, contact)}
        call = _call(contact, CONSENT_CALL, mail, "Complaint", complaint.timestamp, properties)
        _record(call, deps)
    return "suppressed"


def _opened(mail: MailEvent, deps: Feedback) -> Outcome:
    deps.telemetry.count("Opens", 1)
    contact = _known_contact(mail, deps)
    if contact is None:
        return "ignored"
    opened = _part(mail.open)
    _count(mail, contact, "opened", opened.timestamp, deps)
    properties = {"mailbox": "mailing", **_email_ids(mail, contact)}
    return _record(_call(contact, OPENED_CALL, mail, "Open", opened.timestamp, properties), deps)


def _clicked(mail: MailEvent, deps: Feedback) -> Outcome:
    deps.telemetry.count("Clicks", 1)
    contact = _known_contact(mail, deps)
    if contact is None:
        return "ignored"
    click = _part(mail.click)
    _count(mail, contact, "clicked", click.timestamp, deps)
    properties = {"mailbox": "mailing", "url": click.link, **_email_ids(mail, contact)}
    call = _call(contact, CLICKED_CALL, mail, "Click", click.timestamp, properties, link=click.link)
    return _record(call, deps)


def _delivered(mail: MailEvent, deps: Feedback) -> Outcome:
    deps.telemetry.count("Deliveries", 1)
    if mail.contact_id is not None:
        at = mail.delivery.timestamp if mail.delivery is not None else deps.clock.now()
        _count(mail, ContactId.parse(mail.contact_id), "delivered", at, deps)
    return "counted"


def _count(mail: MailEvent, contact: ContactId, measure: Measure, at: datetime, deps: Feedback) -> None:
    """Issue 13: count a campaign email's delivery, open or click for its arm (once per exposure)."""
    send = mail.send_id
    if (
        deps.results is not None
        and send is not None
        and count_feedback(deps.results, str(contact), send, measure, at)
    ):
        deps.telemetry.count("CampaignFeedbackCounted", 1)


_HANDLERS = {
    EMAIL_BOUNCED: _bounced,
    EMAIL_COMPLAINT: _complained,
    EMAIL_OPENED: _opened,
    EMAIL_CLICKED: _clicked,
    EMAIL_DELIVERED: _delivered,
}


def _alarm(change: AlarmChange, deps: Feedback) -> Outcome:
    """Our reputation alarms are told apart by what they watch (SES's reputation metrics), not by name:
    the wiring's rule already passes only the stack's own alarms, and any alarm on the account's SES
    reputation concerns this sender too. Only ``ALARM`` acts; the first pause stays until resumed."""
    kind = change.reputation
    if kind is None or not change.firing:
        deps.telemetry.count("AlarmsIgnored", 1)
        return "ignored"
    if deps.control.pause() is not None:
        return "counted"
    deps.control.set_pause(
        SendingPause(reason=f"{kind}: alarm {change.alarm_name}", at=change.state.timestamp)
    )
    deps.telemetry.count("SendingPaused", 1)
    return "paused"


def _part(part: Any) -> Any:
    """The event's own part (``bounce``, ``open``...); a detail type without it is unreadable."""
    if part is None:
        raise InvalidRequest("the SES event lacks the part its detail type names", code="invalid_event")
    return part


def _known_contact(mail: MailEvent, deps: Feedback) -> ContactId | None:
    text = mail.contact_id
    if text is None:
        deps.telemetry.count("FeedbackUntagged", 1)
        return None
    contact = ContactId.parse(text)
    if deps.contacts.profile(contact) is None:
        deps.telemetry.count("FeedbackUnknownContact", 1)
        return None
    return contact


def _email_ids(mail: MailEvent, contact: ContactId) -> dict[str, str]:
    """``email_id`` (the send: the delivery request's id) and ``campaign_id`` (its automation), as the
    email spec names them, so rules can match on either."""
    send_id = mail.send_id
    if send_id is None:
        return {}
    automation = automation_of(send_id, str(contact))
    return {"email_id": send_id, **({"campaign_id": automation} if automation else {})}


def _call(
    contact: ContactId,
    name: str,
    mail: MailEvent,
    event_type: str,
    at: datetime,
    properties: dict[str, Any],
    link: str | None = None,
) -> dict[str, Any]:
    """The Segment track call the event becomes: its own time, a messageId derived from the SES event."""
    identity = {"userId": contact.value} if contact.kind == "user_id" else {"anonymousId": contact.value}
    return {
        "type": "track",
        "event": name,
        "messageId": feedback_message_id(mail.mail.message_id, event_type, at, link),
        "timestamp": format_time(at),
        "properties": properties,
        **identity,
    }


def _record(call: dict[str, Any], deps: Feedback) -> Outcome:
    now = deps.clock.now()
    events: list[TrackedEvent] = parse_calls(
        "/v1/track",
        call,
        received_at=now,
        limits=Limits(),
        vouch=lambda c: Vouched(c, Provenance.SERVER),  # what SES reports is the server's own fact
    )
    recorded = record(events, deps.log, now, ScoringContext(deps.rules.book(), deps.decay))
    if recorded.duplicates:
        deps.telemetry.count("FeedbackDuplicate", recorded.duplicates)
        return "duplicate"
    return "recorded"
