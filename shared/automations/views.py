"""What the contact's card shows of its automations: the runs recorded for it, and the timers armed."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.automations.engine import Plan, Timer
from shared.delivery.requests import Channel, Status


class _View(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RequestView(_View):
    """One message a run handed to delivery, as the card lists it."""

    channel: Channel
    subject: str | None = None
    text: str | None = None
    status: Status


class RunView(_View):
    """One recorded run: ``status`` is the record's (``pending`` until its effects are done), ``run_status``
    the run's own (``acted``, or ``held_out`` for the control group)."""

    automation: str
    occurrence: str
    step: int
    status: Literal["pending", "done"]
    run_status: Literal["acted", "held_out"]
    at: datetime
    notes: tuple[str, ...] = ()
    requests: tuple[RequestView, ...] = ()

    @classmethod
    def of(cls, plan: Plan, status: Literal["pending", "done"], at: datetime) -> RunView:
        return cls(
            automation=plan.automation,
            occurrence=plan.occurrence,
            step=plan.step,
            status=status,
            run_status=plan.status,
            at=at,
            notes=plan.notes,
            requests=tuple(
                RequestView(channel=r.channel, subject=r.subject, text=r.text, status=r.status)
                for r in plan.requests
            ),
        )


class TimerView(_View):
    """Something armed for the contact: a series' next occurrence, the rest of a run, a follow-up."""

    automation: str
    kind: Literal["series", "continue", "follow_up"]
    due: datetime
    n: int
    values: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, timer: Timer) -> TimerView:
        return cls(
            automation=timer.automation, kind=timer.kind, due=timer.due, n=timer.n, values=dict(timer.values)
        )
