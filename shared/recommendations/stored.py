"""How the nightly model is stored (issue 15), in the config table: written by the nightly pass, read by
serving. One item per product with neighbours, and one popularity item:

- ``pk = PRODUCT#<product id>``, ``sk = NEIGHBOURS``: ``entries``, a list of ``{"p": <product id>,
  "s": <similarity, a number>}`` best first; ``fittedOn``, the night's day (``YYYY-MM-DD``).
- ``pk = RECOMMENDATIONS``, ``sk = POPULAR``: ``entries``, the same kind of list (``s``: popularity);
  ``fittedOn``.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from shared.recommendations.model import Neighbour

PRODUCT_PREFIX = "PRODUCT#"
NEIGHBOURS_SK = "NEIGHBOURS"
POPULAR_PK = "RECOMMENDATIONS"
POPULAR_SK = "POPULAR"


def neighbours_key(product_id: str) -> dict[str, str]:
    return {"pk": f"{PRODUCT_PREFIX}{product_id}", "sk": NEIGHBOURS_SK}


POPULAR_KEY = {"pk": POPULAR_PK, "sk": POPULAR_SK}


class StoredNeighbour(BaseModel):
    model_config = ConfigDict(frozen=True)

    p: str
    s: Decimal

    def neighbour(self) -> Neighbour:
        return Neighbour(product_id=self.p, score=float(self.s))


class StoredList(BaseModel):
    """A product's neighbours item, or the popularity item, as read back (other attributes ignored)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    entries: tuple[StoredNeighbour, ...] = ()
    fitted_on: date = Field(validation_alias="fittedOn")

    def neighbours(self) -> tuple[Neighbour, ...]:
        return tuple(e.neighbour() for e in self.entries)
