"""Results per arm, and the uplift report: what ``GET /admin/campaigns/{id}/results`` (and an automation's
``/results``) shows. Pure: built from the counters the stores keep.

Every contact a campaign plans is **exposed** once: assigned an arm (a variant, or the holdout), at a
time. Counts are per exposure and counted once each: ``assigned`` when planned; ``sent`` when delivery
sent its message, ``delivered``, ``opened`` and ``clicked`` when SES reported it (unique: the first
open of a contact counts, a second does not); ``unsubscribed`` when the contact revoked consent on the
campaign's channel, and ``converted`` when they did the conversion behaviour, within the conversion
window after exposure, holdout included.

Conversion rates are over everyone **assigned** to the arm (intention to treat), not over those sent
to: the holdout cannot be narrowed to "who would have been sent", so neither may the treated be, or
consent and caps would bias the comparison.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.automations.model import Conversion
from shared.campaigns.uplift import METHOD, newcombe, percent, sentence
from shared.tracking.behaviours import Behaviour

#: what is counted per exposure after its assignment
Measure = Literal["sent", "delivered", "opened", "clicked", "unsubscribed", "converted"]
MEASURES: tuple[Measure, ...] = ("sent", "delivered", "opened", "clicked", "unsubscribed", "converted")
#: an automation's arms: the contacts it acted on, and those it held out
ACTED, HELD_OUT = "acted", "held_out"


class Exposure(BaseModel):
    """A contact's assignment to an arm of a campaign (``campaign:<id>``) or an automation with a holdout
    (``automation:<id>``): stored once, in the contact's partition. It carries what decides later counts
    (the conversion behaviour and window, the channel an unsubscribe counts on)."""

    model_config = ConfigDict(frozen=True)

    contact_id: str
    subject: str
    arm: str
    at: datetime
    behaviour: Behaviour = Behaviour.PURCHASE
    #: a conversion or an unsubscribe counts up to this time (``at`` + the conversion window)
    until: datetime
    #: the channel an unsubscribe is counted on (None: any)
    channel: Literal["email", "sms"] | None = None
    #: the measures already counted for it
    counted: frozenset[str] = frozenset()

    def within(self, at: datetime) -> bool:
        """Whether something done ``at`` falls in the window after the exposure."""
        return self.at <= at <= self.until


def exposure(
    contact_id: str,
    subject: str,
    arm: str,
    at: datetime,
    conversion: Conversion,
    channel: Literal["email", "sms"] | None = None,
) -> Exposure:
    return Exposure(
        contact_id=contact_id,
        subject=subject,
        arm=arm,
        at=at,
        behaviour=conversion.behaviour,
        until=at + timedelta(days=conversion.days),
        channel=channel,
    )


class ArmCounts(BaseModel):
    """The counters of one arm, summed over their shards."""

    model_config = ConfigDict(frozen=True)

    assigned: int = 0
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    unsubscribed: int = 0
    converted: int = 0

    def __add__(self, other: ArmCounts) -> ArmCounts:
        return ArmCounts(**{k: getattr(self, k) + getattr(other, k) for k in ArmCounts.model_fields})


class Uplift(BaseModel):
    """The arm's conversion rate minus the holdout's, in percentage points, with its 95% interval."""

    points: float
    low: float
    high: float
    significant: bool
    sentence: str


class ArmReport(BaseModel):
    arm: str
    counts: ArmCounts
    #: converted / assigned, in percent (None: nobody assigned yet)
    conversion_rate: float | None
    uplift: Uplift | None = None


class ResultsReport(BaseModel):
    """Per arm, the treated together, and the plain sentences; ``uplift`` is None without a holdout."""

    subject: str
    conversion: Conversion
    method: str = METHOD
    arms: list[ArmReport] = Field(default_factory=list)
    treated: ArmReport
    holdout: ArmReport | None = None
    summary: list[str] = Field(default_factory=list)


def _rate(counts: ArmCounts) -> float | None:
    return None if counts.assigned == 0 else round(counts.converted / counts.assigned * 100, 2)


def _uplift(label: str, counts: ArmCounts, holdout: ArmCounts | None) -> Uplift | None:
    if holdout is None or holdout.assigned == 0 or counts.assigned == 0:
        return None
    found = newcombe(counts.converted, counts.assigned, holdout.converted, holdout.assigned)
    return Uplift(
        points=round(found.difference * 100, 2),
        low=round(found.low * 100, 2),
        high=round(found.high * 100, 2),
        significant=found.significant,
        sentence=sentence(label, found),
    )


def report(
    subject: str,
    counts: Mapping[str, ArmCounts],
    treated_arms: Sequence[str],
    holdout_arm: str | None,
    conversion: Conversion,
    labels: Mapping[str, str] | None = None,
) -> ResultsReport:
    """The report of ``counts`` (by arm; arms never counted are zeros): each treated arm against the
    holdout, then all treated together. ``labels`` name arms in sentences (``Variant A``)."""
    names = dict(labels or {})
    holdout = counts.get(holdout_arm, ArmCounts()) if holdout_arm is not None else None
    arms: list[ArmReport] = []
    summary: list[str] = []
    for arm in treated_arms:
        arm_counts = counts.get(arm, ArmCounts())
        uplift = _uplift(names.get(arm, arm), arm_counts, holdout)
        arms.append(ArmReport(arm=arm, counts=arm_counts, conversion_rate=_rate(arm_counts), uplift=uplift))
    together = sum((counts.get(arm, ArmCounts()) for arm in treated_arms), ArmCounts())
    treated_uplift = _uplift("All treated", together, holdout) if len(treated_arms) > 1 else arms[0].uplift
    treated = ArmReport(
        arm="treated", counts=together, conversion_rate=_rate(together), uplift=treated_uplift
    )
    holdout_report = (
        None
        if holdout_arm is None or holdout is None
        else ArmReport(arm=holdout_arm, counts=holdout, conversion_rate=_rate(holdout))
    )
    if holdout is None:
        summary.append("No holdout: the uplift cannot be measured (set a holdout share).")
    elif holdout.assigned == 0:
        summary.append("Nobody is held out yet: the uplift is measured once contacts are assigned.")
    else:
        summary += [a.uplift.sentence for a in arms if a.uplift is not None]
        if len(treated_arms) > 1 and treated_uplift is not None:
            summary.append(treated_uplift.sentence)
        if not any(a.counts.assigned for a in arms):
            summary.append("Nobody is treated yet.")
    return ResultsReport(
        subject=subject,
        conversion=conversion,
        arms=arms,
        treated=treated,
        holdout=holdout_report,
        summary=summary,
    )


def totals(rows: Iterable[tuple[str, ArmCounts]]) -> dict[str, ArmCounts]:
    """Shards summed per arm."""
    found: dict[str, ArmCounts] = {}
    for arm, counts in rows:
        found[arm] = found.get(arm, ArmCounts()) + counts
    return found


__all__ = ["ArmCounts", "Exposure", "Measure", "ResultsReport", "exposure", "percent", "report", "totals"]
