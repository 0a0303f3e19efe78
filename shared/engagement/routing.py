"""Lead routing: weighted round-robin over the salespeople who are available."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

SalespersonId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]


class Salesperson(BaseModel):
    """``PUT /admin/salespeople/{id}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: SalespersonId
    name: str = Field(min_length=1, max_length=200)
    email: Email
    #: share of new leads relative to the others (2 gets twice as many as 1)
    weight: int = Field(1, ge=1, le=100)
    #: unavailable salespeople (holiday, full pipeline) are skipped
    available: bool = True


def rotation(salespeople: Sequence[Salesperson]) -> list[Salesperson]:
    """One full turn of smooth weighted round-robin (nginx's): weights 3 and 1 give a, a, b, a."""
    pool = sorted((s for s in salespeople if s.available), key=lambda s: s.id)
    total = sum(s.weight for s in pool)
    current = {s.id: 0 for s in pool}
    order: list[Salesperson] = []
    for _ in range(total):
        for s in pool:
            current[s.id] += s.weight
        chosen = max(pool, key=lambda s: (current[s.id], -pool.index(s)))
        current[chosen.id] -= total
        order.append(chosen)
    return order


def pick(salespeople: Sequence[Salesperson], turn: int) -> Salesperson | None:
    """The salesperson for the ``turn``-th lead, or ``None`` when nobody is available."""
    order = rotation(salespeople)
    return order[turn % len(order)] if order else None
