"""The checks before a send: quiet hours and the best hour across DST changes, cap windows, and every
check's reason in its order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.delivery.consent import ConsentFact, ConsentRecord
from shared.delivery.policy import (
    BEST_HOUR,
    CONSENT_PENDING,
    NO_ADDRESS,
    NO_CONSENT,
    OPTED_OUT,
    QUIET_HOURS,
    SEND,
    SENDING_PAUSED,
    UNKNOWN_CONTACT,
    Caps,
    QuietHours,
    SendingPolicy,
    best_hour,
    cap_windows,
    check,
    next_at_hour,
    zone_named,
)
from shared.delivery.ports import Recipient, SendingPause
from shared.delivery.requests import DeliveryRequest
from tests.fakes import MemoryDeliveryControl, MemorySuppressions

WARSAW = ZoneInfo("Europe/Warsaw")
NEW_YORK = ZoneInfo("America/New_York")
NIGHTS = QuietHours(21, 8)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def local(zone: ZoneInfo, *parts: int, fold: int = 0) -> datetime:
    return datetime(*parts, tzinfo=zone, fold=fold)  # type: ignore[misc]


# --- quiet hours ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quiet", "hour", "allowed"),
    [
        (NIGHTS, 20, True),
        (NIGHTS, 21, False),
        (NIGHTS, 23, False),
        (NIGHTS, 0, False),
        (NIGHTS, 7, False),
        (NIGHTS, 8, True),
        (QuietHours(1, 6), 0, True),
        (QuietHours(1, 6), 1, False),
        (QuietHours(1, 6), 5, False),
        (QuietHours(1, 6), 6, True),
        (QuietHours(9, 9), 9, True),
        (QuietHours(9, 9), 3, True),
    ],
)
def test_quiet_hours_are_start_inclusive_end_exclusive(quiet: QuietHours, hour: int, allowed: bool) -> None:
    assert quiet.allows(hour) is allowed


def test_quiet_hours_refuse_hours_outside_a_day() -> None:
    with pytest.raises(ValueError):
        QuietHours(24, 8)


@pytest.mark.parametrize(
    ("zone", "now", "expected"),
    [
        # Warsaw springs forward on 29 March 2026 (02:00 CET -> 03:00 CEST): 9 real hours to 08:00
        (WARSAW, local(WARSAW, 2026, 3, 28, 22, 0), utc(2026, 3, 29, 6, 0)),
        (WARSAW, local(WARSAW, 2026, 3, 29, 1, 30), utc(2026, 3, 29, 6, 0)),
        # ...and falls back on 25 October (03:00 CEST -> 02:00 CET): 11 real hours to 08:00
        (WARSAW, local(WARSAW, 2026, 10, 24, 22, 0), utc(2026, 10, 25, 7, 0)),
        # New York springs forward on 8 March 2026 and falls back on 1 November
        (NEW_YORK, local(NEW_YORK, 2026, 3, 7, 23, 0), utc(2026, 3, 8, 12, 0)),
        (NEW_YORK, local(NEW_YORK, 2026, 10, 31, 23, 0), utc(2026, 11, 1, 13, 0)),
        # inside the repeated hour (the second 01:30, EST): still 08:00 EST
        (NEW_YORK, local(NEW_YORK, 2026, 11, 1, 1, 30, fold=1), utc(2026, 11, 1, 13, 0)),
    ],
)
def test_a_quiet_hour_defers_to_the_windows_start_across_dst(
    zone: ZoneInfo, now: datetime, expected: datetime
) -> None:
    now = now.astimezone(UTC)
    allowed = NIGHTS.next_allowed(now, zone)
    assert allowed == expected
    assert allowed.astimezone(zone).hour == 8
    # the first allowed moment: a minute earlier is still quiet
    assert not NIGHTS.allows((allowed - timedelta(minutes=1)).astimezone(zone).hour)


def test_an_allowed_moment_is_sent_now_and_no_quiet_hours_never_defer() -> None:
    now = local(WARSAW, 2026, 3, 29, 12, 15).astimezone(UTC)
    assert NIGHTS.next_allowed(now, WARSAW) == now
    midnight = local(WARSAW, 2026, 3, 29, 0, 15).astimezone(UTC)
    assert QuietHours(0, 0).next_allowed(midnight, WARSAW) == midnight


def test_a_window_start_that_does_not_exist_that_day_moves_forward() -> None:
    """Quiet 22:00 to 02:00: on Warsaw's spring-forward night 02:00 does not exist; the window opens at
    03:00 CEST, the first moment after the gap."""
    quiet = QuietHours(22, 2)
    allowed = quiet.next_allowed(local(WARSAW, 2026, 3, 28, 23, 0).astimezone(UTC), WARSAW)
    assert allowed == utc(2026, 3, 29, 1, 0)
    assert allowed.astimezone(WARSAW).hour == 3


def test_a_repeated_window_start_takes_its_first_instant() -> None:
    """Quiet 22:00 to 01:00: on New York's fall-back night 01:00 happens twice; the first (EDT) it is."""
    quiet = QuietHours(22, 1)
    allowed = quiet.next_allowed(local(NEW_YORK, 2026, 10, 31, 23, 0).astimezone(UTC), NEW_YORK)
    assert allowed == utc(2026, 11, 1, 5, 0)
    assert allowed.astimezone(NEW_YORK).utcoffset() == timedelta(hours=-4)


def test_daytime_quiet_hours_open_the_same_day() -> None:
    quiet = QuietHours(1, 6)
    assert quiet.next_allowed(local(NEW_YORK, 2026, 3, 8, 1, 30).astimezone(UTC), NEW_YORK) == utc(
        2026, 3, 8, 10
    )


def test_unknown_zones_are_utc() -> None:
    assert zone_named(None) == ZoneInfo("UTC")
    assert zone_named("Mars/Olympus_Mons") == ZoneInfo("UTC")
    assert zone_named("../../etc/passwd") == ZoneInfo("UTC")
    assert zone_named("Europe/Warsaw") == WARSAW


# --- the best hour ----------------------------------------------------------------------------------


def at_hours(zone: ZoneInfo, hours: list[int]) -> list[datetime]:
    return [local(zone, 2026, 5, 1 + n, h, 20).astimezone(UTC) for n, h in enumerate(hours)]


def test_the_best_hour_is_the_local_hour_with_most_events() -> None:
    times = at_hours(NEW_YORK, [19, 19, 19, 10, 10, 12])
    assert best_hour(times, NEW_YORK, NIGHTS) == 19
    # the same instants seen from Warsaw fall in other hours (19:20 in New York is 01:20 there: quiet,
    # so only three events count there)
    assert best_hour(times, WARSAW, NIGHTS) is None
    assert best_hour(times, WARSAW, NIGHTS, min_events=3) == 16


def test_best_hour_ties_go_to_the_earliest_hour() -> None:
    assert best_hour(at_hours(WARSAW, [18, 18, 11, 11, 15]), WARSAW, NIGHTS) == 11


def test_best_hour_ignores_quiet_hours_and_needs_enough_events() -> None:
    assert best_hour(at_hours(WARSAW, [23, 23, 23, 23, 23, 23, 10, 10, 10, 10, 10]), WARSAW, NIGHTS) == 10
    assert best_hour(at_hours(WARSAW, [10, 10, 10, 10]), WARSAW, NIGHTS) is None
    assert best_hour(at_hours(WARSAW, [23, 23, 23, 23, 23, 23, 10]), WARSAW, NIGHTS) is None
    assert best_hour(at_hours(WARSAW, [10, 10]), WARSAW, NIGHTS, min_events=2) == 10


def test_next_at_hour_is_now_within_that_hour_else_its_next_start() -> None:
    now = local(WARSAW, 2026, 6, 1, 10, 30).astimezone(UTC)
    assert next_at_hour(now, WARSAW, 10) == now
    assert next_at_hour(now, WARSAW, 19) == local(WARSAW, 2026, 6, 1, 19, 0).astimezone(UTC)
    assert next_at_hour(now, WARSAW, 9) == local(WARSAW, 2026, 6, 2, 9, 0).astimezone(UTC)


def test_next_at_hour_across_dst() -> None:
    # 02:00 does not exist in New York on 8 March 2026: 03:00 EDT, the first moment after the gap
    before = local(NEW_YORK, 2026, 3, 8, 1, 0).astimezone(UTC)
    assert next_at_hour(before, NEW_YORK, 2) == utc(2026, 3, 8, 7, 0)
    # 19:00 the day after Warsaw falls back is 18:00 UTC (CET), not 17:00
    assert next_at_hour(local(WARSAW, 2026, 10, 25, 20, 0).astimezone(UTC), WARSAW, 19) == utc(
        2026, 10, 26, 18
    )


# --- cap windows ------------------------------------------------------------------------------------


def test_cap_windows_are_the_local_day_and_iso_week() -> None:
    # Sunday 23:30 in Warsaw (21:30 UTC): the day and the week both end at Monday 00:00 local
    day, week = cap_windows(local(WARSAW, 2026, 6, 7, 23, 30).astimezone(UTC), WARSAW, 2, 6)
    assert (day.key, day.limit, day.ends) == ("d:2026-06-07", 2, utc(2026, 6, 7, 22))
    assert (week.key, week.limit, week.ends) == ("w:2026-W23", 6, utc(2026, 6, 7, 22))
    # half an hour later it is Monday there (still Sunday in UTC): a new day and a new week
    day, week = cap_windows(local(WARSAW, 2026, 6, 8, 0, 30).astimezone(UTC), WARSAW, 2, 6)
    assert (day.key, week.key) == ("d:2026-06-08", "w:2026-W24")
    assert week.ends == local(WARSAW, 2026, 6, 15).astimezone(UTC)


def test_cap_weeks_are_iso_weeks_at_the_years_end() -> None:
    # 1 January 2027 is a Friday of 2026's 53rd ISO week, which ends on Monday 4 January
    day, week = cap_windows(utc(2027, 1, 1, 12), ZoneInfo("UTC"), 1, 3)
    assert (day.key, week.key, week.ends) == ("d:2027-01-01", "w:2026-W53", utc(2027, 1, 4))


def test_a_cap_week_over_a_dst_change_ends_at_local_midnight() -> None:
    _, week = cap_windows(local(WARSAW, 2026, 10, 24, 12).astimezone(UTC), WARSAW, 1, 3)
    assert (week.key, week.ends) == ("w:2026-W43", utc(2026, 10, 25, 23))


def test_the_policy_caps_email_and_sms_never_webhooks() -> None:
    policy = SendingPolicy(quiet=NIGHTS, double_opt_in=(), caps={"email": Caps(2, 6), "sms": Caps(1, 3)})
    now = utc(2026, 6, 3, 12)
    assert [w.limit for w in policy.windows("email", now, WARSAW)] == [2, 6]
    assert [w.limit for w in policy.windows("sms", now, WARSAW)] == [1, 3]
    assert policy.windows("webhook", now, WARSAW) == []


# --- the checks, in order ---------------------------------------------------------------------------

NOON = local(WARSAW, 2026, 6, 3, 12, 0).astimezone(UTC)
GRANTED = ConsentRecord(granted=ConsentFact(source="backend", at=utc(2026, 1, 1)))


@dataclass
class Texter:
    opted: set[str] = field(default_factory=set)

    def opted_out(self, phone: str) -> bool:
        return phone in self.opted

    def send(self, phone: str, text: str) -> str:
        raise AssertionError("checks never send")


@dataclass
class Times:
    times: list[datetime] = field(default_factory=list)
    asked: int = 0

    def recent_times(self, contact_id: str, limit: int) -> list[datetime]:
        self.asked += 1
        return self.times[:limit]


@dataclass
class Checks:
    control: MemoryDeliveryControl = field(default_factory=MemoryDeliveryControl)
    suppressions: MemorySuppressions = field(default_factory=MemorySuppressions)
    texter: Texter = field(default_factory=Texter)
    times: Times = field(default_factory=Times)
    policy: SendingPolicy = field(
        default_factory=lambda: SendingPolicy(
            quiet=NIGHTS, double_opt_in=frozenset({"newsletter"}), caps={"email": Caps(2, 6)}
        )
    )

    def __call__(self, request: DeliveryRequest, recipient: Recipient | None, now: datetime = NOON):
        return check(
            request,
            recipient,
            now,
            self.policy,
            control=self.control,
            suppressions=self.suppressions,
            texter=self.texter,
            times=self.times,
        )


def request(channel: str = "email", **fields) -> DeliveryRequest:
    return DeliveryRequest(
        id=f"user_id:ann#a#o#{channel}",
        contact_id="user_id:ann",
        automation="a",
        version=1,
        occurrence="o",
        step=0,
        channel=channel,
        at=NOON,
        text="hi",
        **fields,
    )


def ann(**fields) -> Recipient:
    values = {
        "contact_id": "user_id:ann",
        "email": "ann@example.com",
        "phone": "+48600100200",
        "timezone": "Europe/Warsaw",
        "consent": {"email": GRANTED, "sms": GRANTED},
    }
    return Recipient(**{**values, **fields})


def test_a_consenting_contact_at_noon_is_sent_to() -> None:
    checks = Checks()
    assert checks(request(), ann()) == SEND
    assert checks(request("sms"), ann()) == SEND


def test_unknown_contact_and_no_address() -> None:
    checks = Checks()
    assert checks(request(), None).reason == UNKNOWN_CONTACT
    assert checks(request(), ann(email=None)).reason == NO_ADDRESS
    assert checks(request("sms"), ann(phone="")).reason == NO_ADDRESS
    assert checks(request("webhook"), ann()).reason == NO_ADDRESS
    assert checks(request("webhook", url="https://hooks.example/x"), None).reason == UNKNOWN_CONTACT


def test_the_pause_stops_marketing_before_consent_is_looked_at() -> None:
    checks = Checks()
    checks.control.set_pause(SendingPause(reason="complaint rate", at=NOON))
    for decision in (checks(request(), ann()), checks(request(), ann(consent={}))):
        assert (decision.action, decision.reason) == ("skip", SENDING_PAUSED)
    assert checks(request("webhook", url="https://hooks.example/x"), ann()).reason == SENDING_PAUSED
    assert checks(request(purpose="transactional"), ann()) == SEND


def test_consent_none_revoked_and_double_opt_in_pending() -> None:
    checks = Checks()
    assert checks(request(), ann(consent={})).reason == NO_CONSENT
    assert checks(request("sms"), ann(consent={"email": GRANTED})).reason == NO_CONSENT
    revoked = ConsentRecord(
        granted=GRANTED.granted, revoked=ConsentFact(source="unsubscribe link", at=utc(2026, 2, 1))
    )
    assert checks(request(), ann(consent={"email": revoked})).reason == NO_CONSENT
    pending = ConsentRecord(granted=ConsentFact(source="newsletter", at=utc(2026, 5, 1)))
    assert checks(request(), ann(consent={"email": pending})).reason == CONSENT_PENDING
    confirmed = pending.model_copy(update={"confirmed_at": utc(2026, 5, 2)})
    assert checks(request(), ann(consent={"email": confirmed})) == SEND


def test_suppression_applies_to_every_message_with_its_reason() -> None:
    checks = Checks()
    checks.suppressions.suppress("email", " Ann@Example.com", "hard_bounce", NOON)
    assert checks(request(), ann()).reason == "suppressed:hard_bounce"
    assert checks(request(purpose="transactional"), ann(consent={})).reason == "suppressed:hard_bounce"
    # consent is looked at first: without it, the reason is the consent
    assert checks(request(), ann(consent={})).reason == NO_CONSENT
    checks.suppressions.suppress("sms", "+48 600 100 200", "complaint", NOON)
    assert checks(request("sms"), ann()).reason == "suppressed:complaint"


def test_sms_opt_outs_are_asked_of_the_texter() -> None:
    checks = Checks()
    checks.texter.opted.add("+48600100200")
    assert checks(request("sms"), ann()).reason == OPTED_OUT
    assert checks(request("sms", purpose="transactional"), ann()).reason == OPTED_OUT
    assert checks(request(), ann()) == SEND


def test_quiet_hours_defer_marketing_only_and_webhooks_never() -> None:
    checks = Checks()
    late = local(WARSAW, 2026, 6, 3, 22, 15).astimezone(UTC)
    decision = checks(request(), ann(), late)
    assert (decision.action, decision.reason) == ("defer", QUIET_HOURS)
    assert decision.until == local(WARSAW, 2026, 6, 4, 8, 0).astimezone(UTC)
    # in New York it is still the afternoon
    assert checks(request(), ann(timezone="America/New_York"), late) == SEND
    assert checks(request(purpose="transactional"), ann(), late) == SEND
    assert checks(request("webhook", url="https://hooks.example/x"), ann(), late) == SEND


def test_the_best_hour_defers_to_the_contacts_usual_hour_when_known() -> None:
    checks = Checks()
    checks.times.times = at_hours(WARSAW, [19, 19, 19, 9, 10])
    decision = checks(request(best_hour=True), ann())
    assert (decision.action, decision.reason) == ("defer", BEST_HOUR)
    assert decision.until == local(WARSAW, 2026, 6, 3, 19, 0).astimezone(UTC)
    # within that hour it goes at once; without the flag the events are not even read
    assert checks(request(best_hour=True), ann(), local(WARSAW, 2026, 6, 3, 19, 40).astimezone(UTC)) == SEND
    asked = checks.times.asked
    assert checks(request(), ann()) == SEND
    assert checks.times.asked == asked
    # too few events: at once
    checks.times.times = checks.times.times[:3]
    assert checks(request(best_hour=True), ann()) == SEND


def test_every_reason_code_is_documented() -> None:
    from shared.delivery.policy import DEFER_REASONS, SKIP_REASONS
    from tests.conftest import ROOT

    text = (ROOT / "docs" / "sending.md").read_text()
    for code in (*SKIP_REASONS, *DEFER_REASONS):
        assert f"| `{code}" in text, code
