"""A salesperson's leads as the console's sales view shows them (issue 14), hottest first. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from shared.contacts.model import ContactRecord
from shared.engagement.funnel import Funnel
from shared.scoring.decay import Decay
from shared.scoring.model import DimensionScore


class Lead(BaseModel):
    contact_id: str
    user_id: str | None
    name: str | None
    email: str | None
    stage: str
    #: the current (decayed) global score, as the card shows it
    score: float
    quarter: str | None
    routed_at: datetime | None
    #: accepted by the salesperson (``POST /admin/contacts/{id}/accept``): the contact has reached the
    #: funnel's accepted stage, or a later one
    accepted: bool


def display_name(traits: Mapping[str, Any]) -> str | None:
    """``name``, else first and last name (``first_name`` / ``firstName``, ``last_name`` / ``lastName``)."""
    name = traits.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    parts = [
        value.strip()
        for value in (
            traits.get("first_name", traits.get("firstName")),
            traits.get("last_name", traits.get("lastName")),
        )
        if isinstance(value, str) and value.strip()
    ]
    return " ".join(parts) or None


def accepted(funnel: Funnel, stage: str) -> bool:
    """Accepting a lead moves it to the funnel's accepted stage; later stages come after it."""
    order = [s.id for s in funnel.stages]
    return stage in order and funnel.accepted in order and order.index(stage) >= order.index(funnel.accepted)


def hottest_first(
    records: Iterable[ContactRecord], funnel: Funnel, decay: Decay, now: datetime
) -> list[Lead]:
    """The leads, the highest current global score first (then the most recently routed)."""
    leads = []
    for record in records:
        stage = funnel.stage(record.stage).id
        email = record.traits.get("email")
        leads.append(
            Lead(
                contact_id=record.contact_id,
                user_id=record.user_id,
                name=display_name(record.traits),
                email=email if isinstance(email, str) else None,
                stage=stage,
                score=round(record.scores.get("global", DimensionScore()).value(decay, now), 6),
                quarter=record.quarter,
                routed_at=record.routed_at,
                accepted=accepted(funnel, stage),
            )
        )
    leads.sort(
        key=lambda lead: (lead.routed_at.isoformat() if lead.routed_at else "", lead.contact_id), reverse=True
    )
    leads.sort(key=lambda lead: lead.score, reverse=True)  # stable: equal scores keep the newest first
    return leads
