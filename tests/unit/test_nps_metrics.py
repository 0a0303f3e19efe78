"""NPS reports (issue 15): answers announced on the bus and surveys sent by delivery, counted once into the
``nps`` counter, and the report read back, by period, stage, segment and survey, on hand-computed numbers."""

from __future__ import annotations

from dataclasses import dataclass, field
from dataclasses import replace as replaced
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from shared.clock import FixedClock
from shared.delivery.templates import EmailTemplate, Survey
from shared.errors import DependencyUnavailable, InvalidRequest
from shared.metrics.nps import answer_counted, survey_sent
from shared.metrics.ranges import metric_range
from shared.nps.answers import NpsAnswered, answer_event_id, category_of
from shared.nps.statistics import nps_interval, wilson_interval
from shared.usecases.delivery import deliver
from shared.usecases.metrics import MetricReading, StageMetering, stage_distribution
from shared.usecases.nps_metrics import (
    SurveyMetering,
    count_metric_signal,
    count_nps_answer,
    count_survey_sent,
    nps,
)
from tests.fakes import CountingTelemetry, MemoryEngagementConfig, MemoryMetricStore
from tests.unit.test_lifecycle_metrics import World as StageWorld
from tests.unit.test_lifecycle_metrics import at

TODAY = datetime(2026, 12, 31, 12, 0, tzinfo=UTC)
SCORES = {"promoter": 10, "passive": 8, "detractor": 3}


@dataclass
class Counting:
    store: MemoryMetricStore = field(default_factory=MemoryMetricStore)
    telemetry: CountingTelemetry = field(default_factory=CountingTelemetry)
    config: MemoryEngagementConfig = field(default_factory=MemoryEngagementConfig)
    answers: list[NpsAnswered] = field(default_factory=list)

    @property
    def metering(self) -> StageMetering:
        return StageMetering(self.store, self.telemetry)

    def answer(
        self,
        who: str,
        category: str,
        when: datetime,
        stage: str | None,
        segments: tuple[str, ...] = (),
        survey: str = "nps-q4",
    ) -> NpsAnswered:
        contact = f"user_id:{who}"
        event = NpsAnswered(
            event_id=answer_event_id(survey, contact),
            contact_id=contact,
            at=when,
            survey_id=survey,
            score=SCORES[category],
            category=category_of(SCORES[category]),
            source="link",
            stage=stage,
            segments=segments,
        )
        assert count_nps_answer(event, self.metering)
        self.answers.append(event)
        return event

    def sent(self, survey: str, when: datetime, count: int) -> None:
        for n in range(count):
            assert self.store.record(f"survey-sent:{survey}#{when}#{n}", survey_sent(survey, when))

    def report(self, period: str, start: str, end: str, **more: str):
        reading = MetricReading(store=self.store, funnels=self.config, clock=FixedClock(TODAY))
        span = metric_range({"period": period, "from": start, "to": end}, TODAY.date())
        return nps(span, reading, **more)  # type: ignore[arg-type]


def surveyed() -> Counting:
    """Answers and sends in November 2026 (the reports below, by hand):

    - Mon 2 Nov (week 45): nps-q4 sent to 10; a1, a2 (customers, vip) promoters, a3 (lead) promoter, a4 (lead,
      vip) passive, a5 (customer, vip) detractor.
    - Tue 10 Nov (week 46): nps-q4 sent to 3, nps-welcome to 2; a6 (loyal) promoter, a7 (at risk, vip)
      detractor, and a8 (customer) a detractor of nps-welcome.
    """
    world = Counting()
    monday, tuesday = at("2026-11-02"), at("2026-11-10")
    world.sent("nps-q4", monday, 10)
    world.answer("a1", "promoter", monday, "customer", ("vip",))
    world.answer("a2", "promoter", monday, "customer", ("vip",))
    world.answer("a3", "promoter", monday, "lead")
    world.answer("a4", "passive", monday, "lead", ("vip",))
    world.answer("a5", "detractor", monday, "customer", ("vip",))
    world.sent("nps-q4", tuesday, 3)
    world.sent("nps-welcome", tuesday, 2)
    world.answer("a6", "promoter", tuesday, "loyal")
    world.answer("a7", "detractor", tuesday, "at_risk", ("vip",))
    world.answer("a8", "detractor", tuesday, "customer", survey="nps-welcome")
    return world


def figures(found: Any) -> tuple:
    return (found.responses, found.promoters, found.passives, found.detractors, found.nps, found.sent)


def test_nps_by_week_with_the_response_rate() -> None:
    report = surveyed().report("week", "2026-11-02", "2026-11-15")
    week45, week46 = report.periods
    # 3 promoters, 1 passive, 1 detractor of 10 sent: (3 - 1) / 5 = 40; 5 / 10 answered
    assert (week45.period, *figures(week45), week45.response_rate) == ("2026-W45", 5, 3, 1, 1, 40.0, 10, 0.5)
    # 1 promoter, 2 detractors of 5 sent: (1 - 2) / 3 = -33.3; 3 / 5
    assert (week46.period, *figures(week46), week46.response_rate) == ("2026-W46", 3, 1, 0, 2, -33.3, 5, 0.6)
    # the range: 4 promoters, 1 passive, 3 detractors of 15 sent: (4 - 3) / 8 = 12.5; 8 / 15
    assert (*figures(report.total), report.total.response_rate) == (8, 4, 1, 3, 12.5, 15, 0.5333)
    interval, rate = nps_interval(4, 1, 3), wilson_interval(8, 15)
    assert interval is not None and rate is not None
    assert (report.total.nps_low, report.total.nps_high) == (round(interval.low, 1), round(interval.high, 1))
    assert (report.total.response_rate_low, report.total.response_rate_high) == (
        round(rate.low, 4),
        round(rate.high, 4),
    )
    assert report.total.nps_low < 12.5 < report.total.nps_high
    assert week45.groups is None, "not broken down unless asked"


def test_months_read_their_month_rows_and_agree_with_the_weeks() -> None:
    world = surveyed()
    (november,) = world.report("month", "2026-11-01", "2026-11-30").periods
    weeks = world.report("week", "2026-11-02", "2026-11-15").total
    assert figures(november) == figures(weeks) == (8, 4, 1, 3, 12.5, 15)
    (december,) = world.report("month", "2026-12-01", "2026-12-31").periods
    assert (december.responses, december.nps, december.nps_low, december.sent, december.response_rate) == (
        0,
        None,
        None,
        0,
        None,
    )


def test_nps_by_stage_segment_and_survey_over_the_range() -> None:
    report = surveyed().report("month", "2026-11-01", "2026-11-30")
    # in the funnel's order
    assert [(g.key, g.promoters, g.passives, g.detractors, g.nps) for g in report.by_stage] == [
        ("lead", 1, 1, 0, 50.0),
        ("customer", 2, 0, 2, 0.0),
        ("loyal", 1, 0, 0, 100.0),
        ("at_risk", 0, 0, 1, -100.0),
    ]
    # sends are not split by stage or segment: no response rate there
    assert {(g.sent, g.response_rate) for g in [*report.by_stage, *report.by_segment]} == {(None, None)}
    assert [(g.key, g.responses, g.nps) for g in report.by_segment] == [("vip", 5, 0.0)]
    # nps-q4: 4 promoters, 1 passive, 2 detractors of 13 sent: (4 - 2) / 7 = 28.6, 7 / 13
    assert [(g.key, *figures(g), g.response_rate) for g in report.by_survey] == [
        ("nps-q4", 7, 4, 1, 2, 28.6, 13, 0.5385),
        ("nps-welcome", 1, 0, 0, 1, -100.0, 2, 0.5),
    ]


def test_each_period_broken_down_by_stage_or_segment() -> None:
    world = surveyed()
    week45, week46 = world.report("week", "2026-11-02", "2026-11-15", by="stage").periods
    assert [(g.key, g.responses, g.nps) for g in week45.groups or []] == [
        ("lead", 2, 50.0),
        ("customer", 3, 33.3),
    ]
    assert [(g.key, g.responses, g.nps) for g in week46.groups or []] == [
        ("customer", 1, -100.0),
        ("loyal", 1, 100.0),
        ("at_risk", 1, -100.0),
    ]
    week45, week46 = world.report("week", "2026-11-02", "2026-11-15", by="segment").periods
    assert [(g.key, g.responses) for g in week45.groups or []] == [("vip", 4)]
    assert [(g.key, g.responses) for g in week46.groups or []] == [("vip", 1)]


def test_an_answer_delivered_again_counts_once() -> None:
    world = surveyed()
    for event in world.answers:
        assert not count_nps_answer(event, world.metering)
        assert not count_metric_signal(event, world.metering)
    assert world.telemetry.counts["NpsAnswersCounted"] == 8
    assert world.report("month", "2026-11-01", "2026-11-30").total.responses == 8
    # the marker is kept: recording announces the answer again whenever it meets it again
    assert {f"nps:{event.event_id}" for event in world.answers} <= world.store.kept


def test_a_failed_write_counts_nothing_and_the_retry_counts_once() -> None:
    world = Counting()
    world.store.fail_next = 1
    with pytest.raises(DependencyUnavailable):
        world.answer("a1", "promoter", at("2026-11-02"), "lead")
    world.answer("a1", "promoter", at("2026-11-02"), "lead")
    assert world.report("day", "2026-11-02", "2026-11-02").total.responses == 1


def test_the_metrics_function_still_counts_stage_moves() -> None:
    world = StageWorld()
    event = world.move("c1", "subscriber", at("2026-11-02"))
    assert not count_metric_signal(event, StageMetering(world.store, world.telemetry)), "counted by move()"
    span = metric_range({"period": "day", "from": "2026-11-02", "to": "2026-11-02"}, TODAY.date())
    (day,) = stage_distribution(span, world.reading()).periods
    assert day.entered == {"subscriber": 1}


def test_a_periods_response_rate_is_at_most_one() -> None:
    # three answers on a day with one send (the others were sent the day before)
    world = Counting()
    world.sent("nps-q4", at("2026-11-01"), 3)
    world.sent("nps-q4", at("2026-11-02"), 1)
    for who in ("a1", "a2", "a3"):
        world.answer(who, "promoter", at("2026-11-02"), "lead")
    first, second = world.report("day", "2026-11-01", "2026-11-02").periods
    assert (first.responses, first.sent, first.response_rate) == (0, 3, 0.0)
    assert (second.responses, second.sent, second.response_rate, second.response_rate_high) == (
        3,
        1,
        1.0,
        1.0,
    )
    report = world.report("day", "2026-11-01", "2026-11-02")
    assert (report.total.responses, report.total.sent, report.total.response_rate) == (3, 4, 0.75)


def test_answer_counts_name_the_category_by_stage_segment_and_survey() -> None:
    event = NpsAnswered(
        event_id="nps-x",
        contact_id="user_id:ann",
        at=at("2026-11-30", "23:59"),
        survey_id="nps:q4",  # template ids may hold colons
        score=9,
        category="promoter",
        source="track",
        stage="customer",
        segments=("vip", "vip", "eu"),
    )
    day, month = answer_counted(event)
    assert (day.counter, day.key, month.key) == ("nps", "D#2026-11-30", "M#2026-11")
    assert dict(day.values) == {
        "promoter": 1,
        "survey:nps:q4:promoter": 1,
        "stage:customer:promoter": 1,
        "segment:vip:promoter": 1,
        "segment:eu:promoter": 1,
    }
    world = Counting()
    assert count_nps_answer(event, world.metering)
    (found,) = world.report("month", "2026-11-01", "2026-11-30").by_survey
    assert (found.key, found.promoters) == ("nps:q4", 1)


def test_a_bad_breakdown_is_a_400_naming_it() -> None:
    from shared.admin.metrics import nps as route

    deps = SimpleNamespace(
        metrics=MemoryMetricStore(), funnels=MemoryEngagementConfig(), clock=FixedClock(TODAY)
    )

    def ask(**query: str) -> Any:
        return route(SimpleNamespace(query=query), deps)  # type: ignore[arg-type]

    with pytest.raises(InvalidRequest) as refused:
        ask(by="country")
    assert (refused.value.field, refused.value.code) == ("by", "invalid_parameter")
    with pytest.raises(InvalidRequest) as refused:
        ask(period="year", by="stage")
    assert refused.value.field == "period"
    assert deps.metrics.requests == 0, "nothing read"
    assert ask(period="month", by="segment").by == "segment"
    assert ask(period="month").by is None


# --- surveys sent, counted by delivery ----------------------------------------------------------------------


def survey_delivery():
    """Delivery (``tests.unit.test_delivery_use_case``) with an NPS survey template, ``nps-q4``, and the
    welcome email, which is none."""
    from tests.unit.test_delivery_use_case import World as DeliveryWorld
    from tests.unit.test_delivery_use_case import request

    world = DeliveryWorld()
    world.ann()
    question = Survey(question="How likely are you to recommend us?")
    for template in (
        EmailTemplate(
            id="nps-q4", subject="How are we doing?", text="{{ survey.question }}", survey=question
        ),
        EmailTemplate(id="welcome", subject="Welcome", text="Hello"),
    ):
        world.templates.save(template, world.clock.now(), None)
    store = MemoryMetricStore()
    deps = replaced(world.deps, surveys=SurveyMetering(store=store, telemetry=world.telemetry))
    return world, deps, store, request


def sent_count(store: MemoryMetricStore) -> dict[str, int]:
    rows = store.rows("nps", "D#", "D#~")
    return {name: int(value) for row in rows for name, value in row.values.items()}


def test_a_survey_sent_counts_once_for_the_response_rate() -> None:
    world, deps, store, request = survey_delivery()
    survey = request(template="nps-q4", subject=None, text=None, html=None)
    assert deliver(survey, deps, lambda: 25.0).status == "sent"
    assert deliver(survey, deps, lambda: 25.0).status == "done", "a redelivered message"
    assert sent_count(store) == {"sent": 1, "survey:nps-q4:sent": 1}
    assert world.telemetry.counts["SurveySendsCounted"] == 1
    # an email that is no survey (inline, or another template) counts nothing
    # (transactional: past the daily cap of two marketing emails)
    welcome = request(
        occurrence="welcome", template="welcome", subject=None, text=None, html=None, purpose="transactional"
    )
    assert deliver(request(occurrence="inline"), deps, lambda: 25.0).status == "sent"
    assert deliver(welcome, deps, lambda: 25.0).status == "sent"
    assert len(world.mailer.sent) == 3
    assert sent_count(store) == {"sent": 1, "survey:nps-q4:sent": 1}
    assert not count_survey_sent(welcome, at("2026-11-02"), world.renderer, deps.surveys)  # type: ignore[arg-type]


def test_a_survey_whose_count_failed_is_counted_when_the_message_comes_back() -> None:
    world, deps, store, request = survey_delivery()
    survey = request(template="nps-q4", subject=None, text=None, html=None)
    store.fail_next = 1
    with pytest.raises(DependencyUnavailable):
        deliver(survey, deps, lambda: 25.0)
    assert world.entry(survey).status == "sent" and len(world.mailer.sent) == 1
    assert deliver(survey, deps, lambda: 25.0).status == "done"
    assert len(world.mailer.sent) == 1
    assert sent_count(store) == {"sent": 1, "survey:nps-q4:sent": 1}


def test_the_response_rate_counts_only_answers_to_surveys_that_were_sent() -> None:
    # 10 emails of nps-q4 sent, 2 answered; 6 answers to an in-app survey (a server key's, never sent)
    world = Counting()
    monday = at("2026-11-02")
    world.sent("nps-q4", monday, 10)
    world.answer("a1", "promoter", monday, "lead")
    world.answer("a2", "detractor", monday, "lead")
    for n in range(6):
        world.answer(f"b{n}", "promoter", monday, "lead", survey="in-app")
    report = world.report("week", "2026-11-02", "2026-11-08")
    (week,) = report.periods
    for found in (report.total, week):
        assert (found.responses, found.sent, found.response_rate) == (8, 10, 0.2), "2 of 10, not 8 of 10"
        rate = wilson_interval(2, 10)
        assert rate is not None and found.response_rate_high == round(rate.high, 4)
    assert found.nps == 75.0, "the NPS counts every answer: (7 - 1) / 8"
    in_app = next(g for g in report.by_survey if g.key == "in-app")
    assert (in_app.responses, in_app.sent, in_app.response_rate) == (6, 0, None)
    # a period with answers to sent surveys only is unchanged
    assert surveyed().report("week", "2026-11-02", "2026-11-15").total.response_rate == 0.5333


def test_a_reminder_or_second_send_of_a_survey_to_a_contact_counts_once() -> None:
    world, deps, store, request = survey_delivery()
    first = request(template="nps-q4", subject=None, text=None, html=None)
    reminder = request(occurrence="reminder", template="nps-q4", subject=None, text=None, html=None)
    assert first.id != reminder.id
    assert deliver(first, deps, lambda: 25.0).status == "sent"
    assert deliver(reminder, deps, lambda: 25.0).status == "sent"
    assert len(world.mailer.sent) == 2, "both are sent"
    assert sent_count(store) == {"sent": 1, "survey:nps-q4:sent": 1}, "one contact surveyed once"
    # another contact's send of the same survey counts
    other = first.model_copy(update={"id": "user_id:bob#o#1#0", "contact_id": "user_id:bob"})
    assert count_survey_sent(other, at("2026-11-02"), world.renderer, deps.surveys)  # type: ignore[arg-type]
    assert not count_survey_sent(other, at("2026-12-02"), world.renderer, deps.surveys)  # type: ignore[arg-type]
    days = [dict(row.values) for row in store.rows("nps", "D#", "D#~")]
    assert sorted(days, key=len) == [{"sent": 1, "survey:nps-q4:sent": 1}] * 2, "ann's day, and bob's"
    assert all("bob" not in marker for marker in store.markers), "the marker holds no contact id"
    assert store.markers <= store.kept, "kept for good: a later send of the survey counts nothing"
