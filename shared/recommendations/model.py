"""Item-to-item collaborative filtering (issue 15): who bought or viewed this also bought that.

Pure: no AWS, no clock (times are passed in). ``fit`` learns, once a night, each product's nearest
neighbours from every contact's purchases and views (a view weighs less than a purchase), with the
co-occurrence normalised (cosine) so that best-sellers do not swamp everything, and a minimum support;
and the popularity list, the fallback for new contacts and new products. ``recommend`` serves one contact
from its recent products and the neighbour lists of those products alone (what serving reads: O(1)
requests); ``bought_together`` serves one product.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

Kind = Literal["purchase", "view"]
Reason = Literal["similar", "popular"]


class RecentProduct(BaseModel):
    """A product a contact bought or viewed, and when last (a contact's profile keeps its newest ones)."""

    model_config = ConfigDict(frozen=True)

    product_id: str
    kind: Kind
    at: datetime


@dataclass(frozen=True, slots=True)
class Interaction:
    """One contact's purchase or view of one product: what the model learns from."""

    contact_id: str
    product_id: str
    kind: Kind
    at: datetime


@dataclass(frozen=True, slots=True)
class ModelSettings:
    #: a view counts this much of a purchase
    view_weight: float = 0.25
    #: two products are neighbours only if at least this many contacts interacted with both
    min_support: int = 2
    #: neighbours kept per product, best first
    neighbours: int = 50
    #: products kept in the popularity list, best first
    popular: int = 200


@dataclass(frozen=True, slots=True)
class Neighbour:
    product_id: str
    #: similarity (in a neighbour list) or popularity (in the popularity list): higher is better
    score: float


@dataclass(frozen=True, slots=True)
class ItemModel:
    #: product -> its neighbours, best first (products with none are absent)
    neighbours: Mapping[str, tuple[Neighbour, ...]] = field(default_factory=dict)
    #: the most popular products, best first
    popular: tuple[Neighbour, ...] = ()


@dataclass(frozen=True, slots=True)
class Recommendation:
    product_id: str
    score: float
    #: ``similar``: a neighbour of the contact's (or product's) products; ``popular``: the fallback
    reason: Reason
    #: the products it is a neighbour of (empty for ``popular``)
    because: tuple[str, ...] = ()


def fit(interactions: Iterable[Interaction], settings: ModelSettings = ModelSettings()) -> ItemModel:
    """The neighbours of every product and the popularity list, from every contact's interactions."""
    raise NotImplementedError


def recommend(
    recent: Sequence[RecentProduct],
    neighbours: Mapping[str, Sequence[Neighbour]],
    popular: Sequence[Neighbour],
    *,
    n: int = 10,
    exclude: Container[str] = frozenset(),
) -> tuple[Recommendation, ...]:
    """The top ``n`` products for a contact with these recent products (newest first), from the neighbour
    lists of those products (``neighbours``: product -> its neighbours; products missing have none),
    filled up from ``popular``. Never a product the contact bought (a ``purchase`` among ``recent``), nor
    one in ``exclude`` (out of stock, an excluded category...)."""
    raise NotImplementedError


def bought_together(
    product_id: str,
    neighbours: Sequence[Neighbour],
    popular: Sequence[Neighbour],
    *,
    n: int = 10,
    exclude: Container[str] = frozenset(),
) -> tuple[Recommendation, ...]:
    """The top ``n`` products bought with this one (its neighbours), filled up from ``popular``; never the
    product itself nor one in ``exclude``."""
    raise NotImplementedError
