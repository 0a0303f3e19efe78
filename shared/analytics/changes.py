"""What one nightly pass announces for one contact: its RFM segment and churn risk level, before and after.

Pure and numpy-free (the apply step runs it). Each announcement has a ``kind`` unique per contact and day
(``segment-left``, ``segment-entered``, ``risk``): its place in the contact's history, and part of its
stable ``event_id``, so a retried or repeated pass names the same announcements.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.analytics.events import AnalyticsOutput, ChurnRiskChanged, SegmentChanged, rfm_segment
from shared.analytics.facts import Analytics

LEFT, ENTERED, RISK = "segment-left", "segment-entered", "risk"


@dataclass(frozen=True, slots=True)
class Announcement:
    #: unique per contact and day: ``segment-left``, ``segment-entered`` or ``risk``
    kind: str
    output: AnalyticsOutput

    @property
    def key(self) -> str:
        """Where it sits in the contact's history: ``<day>#<kind>`` (days sort in time order)."""
        return f"{self.output.day.isoformat()}#{self.kind}"


def announcements(
    contact_id: str, before: Analytics | None, after: Analytics, at: datetime
) -> list[Announcement]:
    """The changes from ``before`` (the analytics the contact held; None: never scored) to ``after``.

    Segments: none -> X is ``entered X``; X -> Y is ``left X`` then ``entered Y``; X -> none (no purchase
    in the look-back window any more) is ``left X``. The risk level: any change, the first one included
    (``from`` null). All of a contact's first scoring (``before`` None) is ``initial``: what it already
    was, which automations ignore unless asked to (``shared.automations.model``). Both ends of a segment move are on both of its events, with the new cell's r, f, m
    and premium flag (none when the contact left every segment).
    """
    found: list[Announcement] = []
    old = before.rfm.segment if before is not None and before.rfm is not None else None
    new = after.rfm.segment if after.rfm is not None else None
    base = f"{contact_id}#{after.day.isoformat()}"
    initial = before is None
    if old != new:
        cell = after.rfm
        common = {
            "contact_id": contact_id,
            "at": at,
            "day": after.day,
            "initial": initial,
            "from_segment": rfm_segment(old),
            "to_segment": rfm_segment(new),
            "premium": cell.premium if cell is not None else False,
            "r": cell.r if cell is not None else None,
            "f": cell.f if cell is not None else None,
            "m": cell.m if cell is not None else None,
        }
        for kind, change, segment in ((LEFT, "left", old), (ENTERED, "entered", new)):
            if segment is not None:
                named = rfm_segment(segment)
                output = SegmentChanged(
                    event_id=f"{base}#{change}#{named}", segment=named, change=change, **common
                )
                found.append(Announcement(kind, output))
    churn = after.churn
    was = before.churn.level if before is not None and before.churn is not None else None
    if churn is not None and churn.level != was:
        output = ChurnRiskChanged(
            event_id=f"{base}#risk#{churn.level}",
            contact_id=contact_id,
            at=at,
            day=after.day,
            initial=initial,
            from_level=was,
            to_level=churn.level,
            churn_risk=churn.churn_risk,
            p_no_purchase=churn.p_no_purchase,
            expected_next_purchase=churn.expected_next_purchase,
            typical_gap_days=churn.typical_gap_days,
        )
        found.append(Announcement(RISK, output))
    return found
