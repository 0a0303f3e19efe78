"""Campaigns, the pure parts: the document and its checks, assignment, states, the throttle, uplift."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from shared.automations.model import Conversion
from shared.campaigns.assignment import arm_of, bucket
from shared.campaigns.model import (
    HOLDOUT,
    Campaign,
    CampaignState,
    StoredCampaign,
    check_transition,
    parse_campaign,
    sending_state,
    started,
    status_of,
)
from shared.campaigns.planning import (
    MAX_CATCH_UP,
    allowance,
    campaign_send,
    campaign_send_of,
    delivery_request,
    send_id,
    spend,
)
from shared.campaigns.results import ArmCounts, exposure, report, totals
from shared.campaigns.uplift import newcombe, points, sentence, wilson
from shared.errors import Conflict, InvalidRequest
from shared.tracking.behaviours import Behaviour

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
BODY = {
    "name": "December sale",
    "segment": "newsletter",
    "template": "december",
    "variants": [{"id": "A", "split": 50}, {"id": "B", "split": 50, "template": "december-b"}],
    "holdout_percent": 10,
}


def stored(**changes) -> StoredCampaign:
    return StoredCampaign.model_validate({**BODY, "id": "dec", "version": 3, **changes})


# --- the document -----------------------------------------------------------------------------------------


def test_a_campaign_reads_with_its_defaults() -> None:
    campaign = parse_campaign("dec", {"name": "x", "segment": "s", "template": "t"})
    assert [(v.id, v.split) for v in campaign.variants] == [("A", 100)]
    assert campaign.conversion == Conversion(behaviour=Behaviour.PURCHASE, days=7)
    assert (campaign.channel, campaign.holdout_percent, campaign.send_rate_per_minute) == ("email", 0, 1000)
    assert campaign.arms == ("A",) and campaign.subject == "campaign:dec"
    assert parse_campaign("dec", BODY).arms == ("A", "B", HOLDOUT)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"variants": [{"id": "A", "split": 50}, {"id": "B", "split": 40}]},
            "variants: the splits add up to 90, not 100",
        ),
        (
            {"variants": [{"id": "A", "split": 60}, {"id": "B", "split": 60}]},
            "variants: the splits add up to 120, not 100",
        ),
        ({"variants": [{"id": "A", "split": 50}, {"id": "A", "split": 50}]}, "variants: 'A' is named twice"),
        ({"variants": [{"id": "holdout", "split": 100}]}, "variants: 'holdout' names the contacts held out"),
        (
            {"variants": [{"id": "A", "split": 0}, {"id": "B", "split": 100}]},
            "variants.0.split: Input should be greater than or equal to 1",
        ),
        ({"variants": []}, "variants: Tuple should have at least 1 item"),
        ({"holdout_percent": 60}, "holdout_percent: Input should be less than or equal to 50"),
        ({"channel": "webhook"}, "channel: Input should be 'email' or 'sms'"),
        ({"conversion": {"behaviour": "buying"}}, "conversion.behaviour: Input should be"),
        ({"conversion": {"days": 0}}, "conversion.days: Input should be greater than or equal to 1"),
        ({"segmnt": "x"}, "segmnt: Extra inputs are not permitted"),
        ({"send_at": "2026-12-24T09:00:00"}, "send_at: give a time zone"),
        ({"send_rate_per_minute": 0}, "send_rate_per_minute: Input should be greater than or equal to 1"),
        ({"id": "other"}, "id: 'other' does not match the path ('dec')"),
    ],
)
def test_a_bad_campaign_is_refused_naming_the_problem(changes, message) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_campaign("dec", {**BODY, **changes})
    assert refused.value.code == "invalid_campaign"
    assert refused.value.message.startswith(message), refused.value.message


def test_a_missing_field_is_named() -> None:
    with pytest.raises(InvalidRequest, match="^segment: Field required"):
        parse_campaign("dec", {"name": "x", "template": "t"})
    with pytest.raises(InvalidRequest, match="must be a JSON object"):
        parse_campaign("dec", [1])


def test_what_a_get_shows_can_be_put_back() -> None:
    shown = stored().model_dump(mode="json")
    assert parse_campaign("dec", shown) == Campaign.model_validate({**BODY, "id": "dec"})


# --- assignment -------------------------------------------------------------------------------------------


def test_assignment_is_stable_per_campaign_and_contact() -> None:
    campaign = stored()
    first = [arm_of("dec", f"user_id:{i}", 10, campaign.variants) for i in range(2000)]
    again = [arm_of("dec", f"user_id:{i}", 10, campaign.variants) for i in range(2000)]
    assert first == again
    other = [arm_of("jan", f"user_id:{i}", 10, campaign.variants) for i in range(2000)]
    assert first != other  # another campaign draws again


def test_assignment_is_near_the_split() -> None:
    """20,000 contacts, 10% held out, the rest 70/30: within 1.5 points of each share (the sampling error
    of a share p of n is sqrt(p(1-p)/n), about 0.3 points here)."""
    campaign = stored(variants=[{"id": "A", "split": 70}, {"id": "B", "split": 30}])
    n = 20_000
    found = Counter(arm_of("dec", f"user_id:{i}", 10, campaign.variants) for i in range(n))
    assert abs(found[HOLDOUT] / n - 0.10) < 0.015
    assert abs(found["A"] / n - 0.63) < 0.015
    assert abs(found["B"] / n - 0.27) < 0.015


def test_the_buckets_decide_the_arm_at_the_edges() -> None:
    campaign = stored(variants=[{"id": "A", "split": 50}, {"id": "B", "split": 50}])
    by_bucket = {}
    for i in range(30_000):
        contact = f"c{i}"
        by_bucket.setdefault(bucket("dec", contact), arm_of("dec", contact, 10, campaign.variants))
    # buckets 0..999 held out, 1000..5499 A, 5500..9999 B
    assert {by_bucket[b] for b in by_bucket if b < 1000} == {HOLDOUT}
    assert {by_bucket[b] for b in by_bucket if 1000 <= b < 5500} == {"A"}
    assert {by_bucket[b] for b in by_bucket if b >= 5500} == {"B"}
    assert not any(arm_of("dec", f"c{i}", 0, campaign.variants) == HOLDOUT for i in range(1000))


# --- states -----------------------------------------------------------------------------------------------


def test_states_move_only_forward() -> None:
    check_transition("dec", "draft", "sending")
    check_transition("dec", "draft", "scheduled")
    check_transition("dec", "scheduled", "cancelled")
    check_transition("dec", "sending", "sent")
    check_transition("dec", "sending", "cancelled")
    for current, target in [
        ("draft", "sent"),
        ("draft", "cancelled"),
        ("sent", "cancelled"),
        ("cancelled", "sending"),
        ("sent", "sending"),
        ("sending", "scheduled"),
    ]:
        with pytest.raises(Conflict, match=f"campaign dec is {current}; it cannot become {target}"):
            check_transition("dec", current, target)  # type: ignore[arg-type]
    assert status_of(None) == "draft"


def test_a_send_schedules_a_campaign_for_later_or_sends_it_now() -> None:
    now_state = sending_state(stored(), AT)
    assert (now_state.status, now_state.send_at, now_state.planned_at, now_state.version) == (
        "sending",
        AT,
        AT,
        3,
    )
    later = sending_state(stored(send_at=AT + timedelta(days=1)), AT)
    assert (later.status, later.send_at, later.started_at) == ("scheduled", AT + timedelta(days=1), None)
    past = sending_state(stored(send_at=AT - timedelta(days=1)), AT)
    assert past.status == "sending"
    begun = started(later, AT + timedelta(days=1, seconds=30))
    assert (begun.status, begun.started_at) == ("sending", AT + timedelta(days=1))
    late = started(later, AT + timedelta(days=2))  # the planner came a day late: no day of catching up
    assert late.started_at == AT + timedelta(days=2) - timedelta(minutes=1)


# --- the throttle and the requests -----------------------------------------------------------------------


def test_a_run_may_queue_the_rate_times_the_minutes_since_the_last() -> None:
    state = CampaignState(
        campaign_id="dec", status="sending", version=1, send_at=AT, started_at=AT, planned_at=AT
    )
    assert allowance(state, 100, AT) == 0
    assert allowance(state, 100, AT + timedelta(seconds=30)) == 50
    assert allowance(state, 100, AT + timedelta(minutes=3)) == 300
    assert allowance(state, 7, AT + timedelta(seconds=61)) == 7
    assert allowance(state, 100, AT + timedelta(days=1)) == 100 * MAX_CATCH_UP.total_seconds() / 60
    assert allowance(state, 100, AT - timedelta(minutes=1)) == 0


def test_what_a_run_leaves_unused_is_the_next_runs() -> None:
    """A token bucket: queueing moves the allowance clock on by the requests' time at the rate, not to
    now, so the fraction a run could not use (and what it left for time) stays; the cap still holds."""
    state = CampaignState(
        campaign_id="dec", status="sending", version=1, send_at=AT, started_at=AT, planned_at=AT
    )
    now = AT + timedelta(seconds=50)
    assert allowance(state, 7, now) == 5  # 5.83 requests' worth
    after = state.model_copy(update={"planned_at": spend(state, 7, now, 5)})
    assert after.planned_at == AT + timedelta(microseconds=-(-5 * 60_000_000 // 7))  # 42.857143 s
    assert allowance(after, 7, AT + timedelta(seconds=100)) == 6  # 11.67 in all: 5 + 6
    left = state.model_copy(update={"planned_at": spend(state, 7, now, 2)})  # a run stopped for time
    assert allowance(left, 7, now) == 3
    assert spend(state, 7, now, 0) == AT
    late = AT + timedelta(hours=1)  # a stopped planner: the clock comes back to 10 minutes ago at most
    assert allowance(state, 7, late) == 70
    assert spend(state, 7, late, 70) == late
    assert spend(state, 7, late, 0) == late - MAX_CATCH_UP


def test_a_request_names_the_campaign_and_arm_for_delivery_and_feedback() -> None:
    request = delivery_request(stored(), "user_id:ann", "B", AT)
    assert request.id == "user_id:ann#campaign:dec#B#0" == send_id("user_id:ann", "dec", "B")
    assert (request.automation, request.occurrence, request.version) == ("campaign:dec", "B", 3)
    assert (request.template, request.channel, request.purpose) == ("december-b", "email", "marketing")
    assert delivery_request(stored(), "user_id:ann", "A", AT).template == "december"
    assert request.values == {"campaign": {"id": "dec", "name": "December sale", "variant": "B"}}
    assert campaign_send(request.automation, request.occurrence) == ("campaign:dec", "B")
    assert campaign_send("win-back", "o1") is None
    assert campaign_send_of(request.id, "user_id:ann") == ("campaign:dec", "B")
    assert campaign_send_of("user_id:ann#win-back#o1#0", "user_id:ann") is None
    assert campaign_send_of(request.id, "user_id:bob") is None


# --- uplift -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2", "low", "high"),
    # Newcombe (1998), "Interval estimation for the difference between independent proportions",
    # Statistics in Medicine 17:873-890, Table II, method 10 (the hybrid score interval)
    [
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (6, 7, 2, 7, 0.0582, 0.8062),
        (5, 56, 0, 29, -0.0381, 0.1926),
        (0, 10, 0, 20, -0.1611, 0.2775),
        (0, 10, 0, 10, -0.2775, 0.2775),
        (10, 10, 0, 20, 0.6791, 1.0000),
    ],
)
def test_the_interval_is_newcombes_published_one(x1, n1, x2, n2, low, high) -> None:
    found = newcombe(x1, n1, x2, n2)
    assert (round(found.low, 4), round(found.high, 4)) == (low, high)
    assert found.difference == pytest.approx(x1 / n1 - x2 / n2)


def test_wilsons_interval_by_hand() -> None:
    # 81 of 263 (Newcombe 1998, single proportion): 0.2553 to 0.3662
    assert tuple(round(b, 4) for b in wilson(81, 263)) == (0.2553, 0.3662)
    # 0 of 10 by hand: centre z²/2n / (1 + z²/n) = 0.1611 / 2, half the same: 0 to 0.2775
    assert tuple(round(b, 4) for b in wilson(0, 10)) == (0.0, 0.2775)


def test_the_sentence_says_the_rates_the_difference_and_the_verdict() -> None:
    significant = newcombe(410, 10_000, 290, 10_000)
    assert sentence("Variant A", significant) == (
        "Variant A converted 4.1% against 2.9% held out: +1.2 points (95% CI +0.7 to +1.7), significant."
    )
    # by hand: Wilson 41/1000 is 0.03037 to 0.05515, 29/1000 is 0.02027 to 0.04134; the low end is
    # 0.012 - sqrt(0.01063² + 0.01234²) = -0.0043, the high end 0.012 + sqrt(0.01415² + 0.00873²) = 0.0286
    unclear = newcombe(41, 1000, 29, 1000)
    assert sentence("Variant A", unclear) == (
        "Variant A converted 4.1% against 2.9% held out: +1.2 points (95% CI -0.4 to +2.9), not significant."
    )
    assert points(-0.0004) == "+0.0" and points(-0.012) == "-1.2"


def test_the_report_compares_each_variant_and_all_treated_with_the_holdout() -> None:
    counts = totals(
        [
            ("A", ArmCounts(assigned=5000, sent=4900, converted=205)),
            ("B", ArmCounts(assigned=3000, sent=2950, converted=90)),
            ("B", ArmCounts(assigned=2000, sent=1950, converted=60)),
            (HOLDOUT, ArmCounts(assigned=1000, converted=29)),
        ]
    )
    found = report(
        "campaign:dec", counts, ["A", "B"], HOLDOUT, Conversion(), {"A": "Variant A", "B": "Variant B"}
    )
    a, b = found.arms
    assert (a.counts.assigned, b.counts.assigned, b.counts.sent) == (5000, 5000, 4900)
    assert (a.conversion_rate, b.conversion_rate, found.holdout.conversion_rate) == (4.1, 3.0, 2.9)
    assert found.treated.counts.converted == 355 and found.treated.conversion_rate == 3.55
    expected = newcombe(205, 5000, 29, 1000)
    assert (a.uplift.points, a.uplift.low, a.uplift.high) == (
        round(expected.difference * 100, 2),
        round(expected.low * 100, 2),
        round(expected.high * 100, 2),
    )
    assert found.summary == [
        a.uplift.sentence,
        b.uplift.sentence,
        found.treated.uplift.sentence,
    ]
    assert found.summary[0].startswith("Variant A converted 4.1% against 2.9% held out: +1.2 points")
    assert found.summary[2].startswith("All treated converted 3.5% against 2.9% held out")


def test_a_report_without_a_holdout_says_uplift_cannot_be_measured() -> None:
    found = report("campaign:dec", {"A": ArmCounts(assigned=10, converted=1)}, ["A"], None, Conversion())
    assert found.holdout is None and found.arms[0].uplift is None
    assert found.summary == ["No holdout: the uplift cannot be measured (set a holdout share)."]
    empty = report("campaign:dec", {}, ["A"], HOLDOUT, Conversion())
    assert empty.arms[0].conversion_rate is None
    assert empty.summary == ["Nobody is held out yet: the uplift is measured once contacts are assigned."]


def test_an_exposure_counts_what_falls_in_its_window() -> None:
    seen = exposure("user_id:ann", "campaign:dec", "A", AT, Conversion(days=7), "email")
    assert seen.until == AT + timedelta(days=7)
    assert seen.within(AT) and seen.within(AT + timedelta(days=7))
    assert not seen.within(AT - timedelta(seconds=1)) and not seen.within(AT + timedelta(days=7, seconds=1))
