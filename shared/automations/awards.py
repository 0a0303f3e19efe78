"""The points a run awards, as the contact's log records them: one entry per run, with its ledger.

The entry is a call of its own kind (``LEDGER_CALL``), keyed by the run (``M#automation:<run key>``), so a
run retried or resumed awards once. The aggregation folds it into the scores like any scored call, and
into nothing else: it is not activity (``shared.contacts.changes.plan_change``).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from shared.automations.engine import Plan
from shared.scoring.engine import ScoreChange
from shared.tracking.behaviours import LEDGER_CALL
from shared.tracking.messages import TrackedEvent, rebuild_event
from shared.tracking.stored import dumps

#: the entry's event name in the contact's log
AWARD_EVENT = "Automation points"


def award_ledger(run: Plan) -> tuple[ScoreChange, ...]:
    """One ledger line per points step: the automation (at its version) as the rule."""
    return tuple(
        ScoreChange(f"automation:{run.automation}", run.version, step.points, step.dimension)
        for step in run.points
    )


def award_event(run: Plan, at: datetime) -> TrackedEvent:
    """The log's entry for the run's points, as the log gives it back."""
    body = {
        "event": AWARD_EVENT,
        "properties": {
            "automation": run.automation,
            "version": run.version,
            "run": run.key,
            "ledger": [asdict(line) for line in award_ledger(run)],
        },
    }
    return rebuild_event(
        dumps(body), message_id=f"automation:{run.key}", call=LEDGER_CALL, timestamp=at, received_at=at
    )
