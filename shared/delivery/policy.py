"""When a message may go: the checks before every send, quiet hours, the best hour and the cap windows.

Pure but for the ports ``check`` asks (the sending pause, the suppression list, the SMS opt-out list, the
contact's event times): no storage of its own, time passed in. Local times are the contact's (an IANA
zone); a local hour that does not exist on a DST day (spring forward) moves forward by the gap, and a
repeated one (autumn) is its first instant, as the automations' calendar does.

Every skip and deferral carries a stable reason code (documented in docs/sending.md); the ledger keeps
it and the contact card shows it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.delivery.consent import ConsentChannel, state
from shared.delivery.ports import (
    CampaignStatus,
    CapWindow,
    DeliveryControl,
    EngagementTimes,
    Recipient,
    Suppressions,
    Texter,
)
from shared.delivery.requests import Channel, DeliveryRequest, campaign_of

# --- reason codes: skips ---------------------------------------------------------------------------
#: no profile for the contact (never known, merged away without a trace, or erased)
UNKNOWN_CONTACT = "unknown_contact"
#: no email address or phone number on the profile, or a webhook request without a URL
NO_ADDRESS = "no_address"
#: the reputation alarms paused marketing sends
SENDING_PAUSED = "sending_paused"
#: granted from a double opt-in source, not yet confirmed through the confirmation link
CONSENT_PENDING = "consent_pending"
#: no marketing consent on the channel (never given, or revoked)
NO_CONSENT = "no_consent"
#: ``suppressed:<why>`` (``hard_bounce``, ``complaint``, an administrator's reason)
SUPPRESSED = "suppressed"
#: the number replied STOP (the provider's opt-out list)
OPTED_OUT = "opted_out"
#: the contact had the channel's daily or weekly number of marketing messages (skipped, not deferred)
FREQUENCY_CAP = "frequency_cap"
#: the SMS takes more segments than allowed
SMS_TOO_LONG = "sms_too_long"
#: nothing to send: no text or html (email), no text (SMS)
NO_CONTENT = "no_content"
#: emails without a configured sender identity
NO_SENDER = "no_sender"
#: ``render_failed:<why>``: the template cannot be rendered for this contact
RENDER_FAILED = "render_failed"
#: the request's campaign was cancelled after it was queued (issue 13)
CAMPAIGN_CANCELLED = "campaign_cancelled"
# --- reason codes: deferrals -----------------------------------------------------------------------
#: inside the contact's quiet hours: deferred to the end of them
QUIET_HOURS = "quiet_hours"
#: deferred to the hour this contact usually engages
BEST_HOUR = "best_hour"

SKIP_REASONS: tuple[str, ...] = (
    UNKNOWN_CONTACT,
    NO_ADDRESS,
    SENDING_PAUSED,
    CONSENT_PENDING,
    NO_CONSENT,
    SUPPRESSED,
    OPTED_OUT,
    FREQUENCY_CAP,
    SMS_TOO_LONG,
    NO_CONTENT,
    NO_SENDER,
    RENDER_FAILED,
    CAMPAIGN_CANCELLED,
)
DEFER_REASONS: tuple[str, ...] = (QUIET_HOURS, BEST_HOUR)

#: the best hour is learned from at most this many of the contact's newest events...
BEST_HOUR_EVENTS = 200
#: ...and only from this many in allowed hours: with fewer, the message goes at once
BEST_HOUR_MIN_EVENTS = 5

UTC_ZONE = ZoneInfo("UTC")


def zone_named(name: str | None) -> ZoneInfo:
    """The contact's zone; none, or a name the zone database does not know, is UTC."""
    if not name or len(name) > 64:
        return UTC_ZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC_ZONE


def local_instant(day: date, hour: int, zone: ZoneInfo) -> datetime:
    """``hour``:00 local on ``day``, as a UTC instant. In a spring-forward gap it is the instant the
    pre-change offset names (02:00 that does not exist is 03:00 after the change); in an autumn fold it
    is the first of the two."""
    return datetime.combine(day, time(hour)).replace(tzinfo=zone, fold=0).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class QuietHours:
    """No marketing message from ``start``:00 to ``end``:00 local (start inclusive, end exclusive).
    21 and 8: quiet from 21:00 to 08:00 the next morning; 1 and 6: 01:00 to 06:00; equal: never quiet."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not (0 <= self.start <= 23 and 0 <= self.end <= 23):
            raise ValueError("quiet hours are hours of the day, 0 to 23")

    def allows(self, hour: int) -> bool:
        """Whether a message may go in this local hour of the day."""
        if self.start == self.end:
            return True
        if self.start < self.end:
            return not (self.start <= hour < self.end)
        return self.end <= hour < self.start

    def next_allowed(self, now: datetime, zone: ZoneInfo) -> datetime:
        """``now`` if its local hour is allowed, else the end of these quiet hours (the next ``end``:00
        local), correct across DST changes."""
        local = now.astimezone(zone)
        if self.allows(local.hour):
            return now
        day = local.date()
        # quiet since the evening before midnight: the window opens tomorrow
        if local.hour >= self.end:
            day += timedelta(days=1)
        opens = local_instant(day, self.end, zone)
        return opens if opens > now else local_instant(day + timedelta(days=1), self.end, zone)


def next_at_hour(now: datetime, zone: ZoneInfo, hour: int) -> datetime:
    """``now`` if it is within local ``hour`` already, else the next ``hour``:00 local (today or
    tomorrow; a day on which that hour does not exist moves forward by the gap)."""
    local = now.astimezone(zone)
    if local.hour == hour:
        return now
    day = local.date()
    for offset in range(3):
        at = local_instant(day + timedelta(days=offset), hour, zone)
        if at > now:
            return at
    raise AssertionError("unreachable: an hour of the day comes within two days")


def best_hour(
    times: Sequence[datetime], zone: ZoneInfo, quiet: QuietHours, min_events: int = BEST_HOUR_MIN_EVENTS
) -> int | None:
    """The local hour of the day in which most of these events happened, among the hours quiet hours
    allow; ties go to the earliest hour. None with fewer than ``min_events`` events in allowed hours."""
    hours = Counter(h for h in (t.astimezone(zone).hour for t in times) if quiet.allows(h))
    if sum(hours.values()) < min_events:
        return None
    return min(hours, key=lambda h: (-hours[h], h))


def cap_windows(now: datetime, zone: ZoneInfo, per_day: int, per_week: int) -> list[CapWindow]:
    """The contact's local day (``d:YYYY-MM-DD``, ending at the next local midnight) and ISO week
    (``w:YYYY-Www``, ending on the next Monday 00:00 local) that ``now`` falls in."""
    local = now.astimezone(zone)
    today = local.date()
    year, week, weekday = today.isocalendar()
    monday = today + timedelta(days=8 - weekday)
    return [
        CapWindow(
            key=f"d:{today.isoformat()}",
            limit=per_day,
            ends=local_instant(today + timedelta(days=1), 0, zone),
        ),
        CapWindow(key=f"w:{year:04d}-W{week:02d}", limit=per_week, ends=local_instant(monday, 0, zone)),
    ]


@dataclass(frozen=True, slots=True)
class Caps:
    """At most this many marketing messages per contact on one channel, across all automations."""

    per_day: int
    per_week: int


@dataclass(frozen=True, slots=True)
class SendingPolicy:
    """The deployment's rules for marketing messages."""

    quiet: QuietHours
    #: consent sources that need the contact's confirmation (double opt-in)
    double_opt_in: Collection[str]
    #: per channel (``email``, ``sms``); a channel without caps (webhooks) counts in no window
    caps: Mapping[str, Caps]
    best_hour_min_events: int = BEST_HOUR_MIN_EVENTS

    def windows(self, channel: Channel, now: datetime, zone: ZoneInfo) -> list[CapWindow]:
        """The cap windows a marketing message on ``channel`` counts in (none for webhooks)."""
        caps = self.caps.get(channel)
        return [] if caps is None else cap_windows(now, zone, caps.per_day, caps.per_week)


@dataclass(frozen=True, slots=True)
class Decision:
    """What the checks say: ``send``, ``skip`` (final, with its reason) or ``defer`` (until a time, with
    its reason: the send is queued again then)."""

    action: Literal["send", "skip", "defer"]
    reason: str | None = None
    until: datetime | None = None


SEND = Decision("send")


def skip(reason: str) -> Decision:
    return Decision("skip", reason)


def defer(until: datetime, reason: str) -> Decision:
    return Decision("defer", reason, until)


def address_of(request: DeliveryRequest, recipient: Recipient) -> str | None:
    """Where the message goes: the profile's email or phone, or the webhook's URL."""
    if request.channel == "email":
        return recipient.email or None
    if request.channel == "sms":
        return recipient.phone or None
    return request.url or None


def reason_code(reason: str) -> str:
    """The stable part of a reason (``suppressed:hard_bounce`` -> ``suppressed``): a metric's name."""
    return reason.split(":", 1)[0]


def check(
    request: DeliveryRequest,
    recipient: Recipient | None,
    now: datetime,
    policy: SendingPolicy,
    *,
    control: DeliveryControl,
    suppressions: Suppressions,
    texter: Texter,
    times: EngagementTimes,
    campaigns: CampaignStatus | None = None,
) -> Decision:
    """The checks before a send, in order, each asked only when the ones before it passed. The frequency
    cap is not among them: it is taken right before the provider call (``SendingPolicy.windows``).

    Marketing messages: unknown contact, a cancelled campaign's, no address, the sending pause, consent (double opt-in pending),
    suppression, the SMS opt-out list, quiet hours (defer), the best hour (defer). Transactional messages
    (a consent confirmation) skip the pause, consent, quiet hours and the best hour, never suppression.
    Webhooks are not messages to the contact: only the pause applies to them.
    """
    if recipient is None:
        return skip(UNKNOWN_CONTACT)
    campaign = campaign_of(request)
    if campaign is not None and campaigns is not None and campaigns.cancelled(campaign):
        return skip(CAMPAIGN_CANCELLED)
    address = address_of(request, recipient)
    if address is None:
        return skip(NO_ADDRESS)
    marketing = request.purpose == "marketing"
    if marketing and control.pause() is not None:
        return skip(SENDING_PAUSED)
    if request.channel == "webhook":
        return SEND
    channel: ConsentChannel = request.channel
    if marketing:
        consent = state(recipient.consent.get(channel), policy.double_opt_in)
        if consent == "pending":
            return skip(CONSENT_PENDING)
        if consent != "granted":
            return skip(NO_CONSENT)
    suppressed = suppressions.suppressed(channel, address)
    if suppressed is not None:
        return skip(f"{SUPPRESSED}:{suppressed}")
    if channel == "sms" and texter.opted_out(address):
        return skip(OPTED_OUT)
    if not marketing:
        return SEND
    zone = zone_named(recipient.timezone)
    allowed = policy.quiet.next_allowed(now, zone)
    if allowed != now:
        return defer(allowed, QUIET_HOURS)
    if request.best_hour:
        hour = best_hour(
            times.recent_times(recipient.contact_id, BEST_HOUR_EVENTS),
            zone,
            policy.quiet,
            policy.best_hour_min_events,
        )
        if hour is not None:
            at = next_at_hour(now, zone, hour)
            if at != now:
                return defer(at, BEST_HOUR)
    return SEND
