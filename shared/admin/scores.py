"""Scores over time (issue 14, the contact card's chart): ``GET /admin/contacts/{contactId}/scores?days=90``.

The decayed scores (global, the current stage's, per tag) as they stood at the start of the window, after
each scored event in it, and now, oldest first (``shared.scoring.history``): replayed from the window's
ledger alone (a bounded read, ``ContactLog.ledger_since``) and the scores stored now, so the last point is
the card's ``scores``. ``days``: 1 to 730 (90 unless given). A window with more than ``MAX_SCORED_EVENTS``
scored events is cut to the newest of them: the series then starts at the oldest one read and
``complete`` is false.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel

from shared.admin.dependencies import Admin
from shared.contacts.identity import ContactId
from shared.errors import InvalidRequest, NotFound
from shared.scoring.history import ScoredAt, ScorePoint, replay
from shared.scoring.views import Scores
from shared.usecases.recording import resolve

if TYPE_CHECKING:
    from shared.http import HttpRequest

DEFAULT_DAYS = 90
MAX_DAYS = 730
#: the most scored events one chart reads (a page of the log's ledger is 100 at most)
MAX_SCORED_EVENTS = 2000


class ScoreHistory(BaseModel):
    contact_id: str
    days: int
    #: the stage the ``stage`` series is about (the contact's current stage)
    stage: str
    #: False when the window held more scored events than are read: the series starts at the oldest read
    complete: bool
    points: list[ScorePoint]


def contact_scores(request: HttpRequest, deps: Admin) -> ScoreHistory:
    days = _days(request)
    contact = resolve(ContactId.parse(request.path_parameters.get("contactId", "")), deps.contacts)
    record = deps.contacts.profile(contact)
    if record is None:
        raise NotFound(f"no contact {contact}")
    now = deps.clock.now()
    stage = deps.funnels.funnel().stage(record.stage).id
    current = Scores.of(record.scores, deps.decay, now, stage, record.stage_baseline)
    start = now - timedelta(days=days)
    entries, complete = deps.log.ledger_since(contact, start, MAX_SCORED_EVENTS)
    if not complete and entries:
        start = max(start, entries[-1].timestamp - timedelta(microseconds=1))
    events = [_scored(e.timestamp, [(c.dimension, c.points) for c in e.changes]) for e in entries]
    points = replay(
        record.scores, current, record.stage_baseline, record.stage_entered_at, events, deps.decay, start, now
    )
    return ScoreHistory(contact_id=str(contact), days=days, stage=stage, complete=complete, points=points)


def _scored(at: datetime, lines: list[tuple[str, int]]) -> ScoredAt:
    points: dict[str, float] = {}
    for dimension, value in lines:
        points[dimension] = points.get(dimension, 0.0) + value
    return ScoredAt(at=at, points=points)


def _days(request: HttpRequest) -> int:
    days = request.query.get("days", str(DEFAULT_DAYS))
    if not days.isdigit() or not 1 <= int(days) <= MAX_DAYS:
        raise InvalidRequest(
            f"days must be a whole number from 1 to {MAX_DAYS}", code="invalid_days", field="days"
        )
    return int(days)


ROUTES = {
    "GET /admin/contacts/{contactId}/scores": contact_scores,
}
