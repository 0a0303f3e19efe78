"""Net promoter score reports (issue 15): answers and surveys sent counted once, the report read back.

Two writers to the ``nps`` counter (``shared.metrics.nps``), each counting once whatever is redelivered:

- the ``metrics`` function counts each ``NpsAnswered`` announced on the bus (``count_nps_answer``): the
  adds and a marker of the event's id are one write, so a redelivered (or re-announced) answer finds its
  marker and adds nothing. The marker is kept for good: the event id is one per survey and contact, and
  recording announces the answer again whenever it meets it again (a duplicate answer, a retry);
- the ``delivery`` function counts each survey sent (``count_survey_sent``), after the send ledger
  recorded it, under a marker of the survey and the contact (``survey-sent:<survey>:<contact hash>``),
  kept for good, as answers are counted once per survey and contact: a reminder, or a second send of the
  same survey template to the contact, counts nothing more (a new wave of a survey needs a new template
  id), and a message redelivered after the count failed finds its ledger entry sent and counts then, once.

The report reads the range's ``nps`` rows: one ``MetricStore.rows`` call (a Query per shard).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.delivery.requests import DeliveryRequest
from shared.engagement.events import ContactRemoved, ContactStageChanged
from shared.metrics.counters import PREFIX
from shared.metrics.nps import Breakdown, NpsReport, answer_counted, nps_report, survey_sent
from shared.metrics.ranges import MetricRange
from shared.nps.answers import NpsAnswered
from shared.usecases.metrics import (
    MetricReading,
    MetricStore,
    StageMetering,
    Telemetry,
    count_stage_move,
)


class SurveyTemplates(Protocol):
    """Which templates are surveys: delivery's renderer (``shared.delivery.ports.EmailRenderer``)."""

    def survey(self, template_id: str) -> object | None:
        """The template's survey if it is one (a cached read), else None."""
        ...


@dataclass(frozen=True, slots=True)
class SurveyMetering:
    """The delivery function's part: surveys sent."""

    store: MetricStore
    telemetry: Telemetry


def answer_marker(event: NpsAnswered) -> str:
    return f"nps:{event.event_id}"


def count_nps_answer(event: NpsAnswered, deps: StageMetering) -> bool:
    """Count an answer once, ever; ``False`` if it was counted before."""
    counted = deps.store.record(answer_marker(event), answer_counted(event), keep=True)
    deps.telemetry.count("NpsAnswersCounted", int(counted))
    return counted


def survey_of(request: DeliveryRequest, templates: SurveyTemplates) -> str | None:
    """The survey a request sends: its template's id, when the template is a survey."""
    if request.template is None:
        return None
    return request.template if templates.survey(request.template) is not None else None


def survey_sent_marker(survey_id: str, contact_id: str) -> str:
    """Once per survey and contact, as an answer (the contact hashed: the metrics table holds no contact)."""
    contact = hashlib.sha256(contact_id.encode("utf-8")).hexdigest()[:32]
    return f"survey-sent:{survey_id}:{contact}"


def count_survey_sent(
    request: DeliveryRequest, at: datetime, templates: SurveyTemplates, deps: SurveyMetering
) -> bool:
    """Count a survey sent once per survey and contact (a reminder counts nothing more); ``False`` if the
    template is no survey, or if the contact was counted for it before."""
    survey = survey_of(request, templates)
    if survey is None:
        return False
    counted = deps.store.record(
        survey_sent_marker(survey, request.contact_id), survey_sent(survey, at), keep=True
    )
    deps.telemetry.count("SurveySendsCounted", int(counted))
    return counted


def nps(span: MetricRange, deps: MetricReading, by: Breakdown | None = None) -> NpsReport:
    """The NPS report of the range: one read of its ``nps`` rows (its months, or its days)."""
    if span.granularity == "month":
        first, last = PREFIX["month"] + span.first.key, PREFIX["month"] + span.last.key
    else:  # weeks are summed from their days
        first, last = PREFIX["day"] + span.first.first.isoformat(), PREFIX["day"] + span.last.last.isoformat()
    rows = deps.store.rows("nps", first, last)
    funnel = [stage.id for stage in deps.funnels.funnel().stages]
    return nps_report(span.granularity, span.start, span.end, span.periods, rows, funnel, by)


def count_metric_signal(
    event: ContactStageChanged | ContactRemoved | NpsAnswered, deps: StageMetering
) -> bool:
    """What the metrics function counts: a stage history entry, or (issue 15) an answer."""
    if isinstance(event, NpsAnswered):
        return count_nps_answer(event, deps)
    return count_stage_move(event, deps)
