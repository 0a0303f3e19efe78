"""Serving recommendations (issue 15): per contact, the top N products they have not bought, from their recent
purchases and views; per product, what is bought together with it. Products out of stock or in an
excluded category (``shared.recommendations.catalog``) are never offered.

The nightly model (``shared.recommendations.stored``) and the catalog are read through ``ServingReads`` in
a fixed number of requests, whatever the contact: the neighbour lists of the contact's recent products, the
popularity list and the catalog's settings in one batch read; then the catalog entries of a pool of
candidates in a second one. What the contact ever bought (beyond the recent products a profile keeps) comes
from ``PurchaseHistory``: one Query of the purchase index, its newest ``MAX_PURCHASES`` purchases. The model ranks the pool (``shared.recommendations.model.recommend``); the
catalog's facts bar some of it; the model ranks again without them, within the pool (pure, no request).
The pool (one batch read, at most 100 keys) is the first ranking's top ``n + 10`` neighbours plus the top
``n + 10`` popular products the contact has not bought (``pool_size``: at most 49 each), so that when the
catalog bars the neighbours (out of stock, unlisted with ``catalog_only``) the popular fallback is still
there; when more than that are barred, fewer than ``n`` come back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Container, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from shared.contacts.identity import ContactId
from shared.errors import InvalidRequest
from shared.recommendations.catalog import CatalogSettings, Product, unavailable
from shared.recommendations.model import (
    ModelSettings,
    Neighbour,
    Reason,
    RecentProduct,
    Recommendation,
    bought_together,
    recommend,
)
from shared.usecases.recording import Profiles
from shared.usecases.search import holder

DEFAULT_N = 10
MAX_N = 40
#: how many products a template's ``recommendations`` holds (it may show fewer: ``recommendations[:3]``)
FOR_TEMPLATES = 6
#: a batch read's keys, at most (DynamoDB's BatchGetItem)
MAX_POOL = 100
#: a contact's purchases read to know what it bought, newest first: one Query page of the purchase index
#: (some 100 bytes a purchase: about 7 read units for 500, an index read being eventually consistent). An
#: older purchase is not known as bought, unless its product is among the recent products the profile keeps
MAX_PURCHASES = 500
#: the model's code defaults; deployed functions pass the settings of their environment (``RECOMMENDATIONS_*``)
DEFAULT_SETTINGS = ModelSettings()


# -- the ports ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelLists:
    """What serving reads of the nightly model and the catalog's settings, in one batch."""

    #: product -> its neighbours, best first (products without any are absent)
    neighbours: Mapping[str, tuple[Neighbour, ...]] = field(default_factory=dict)
    popular: tuple[Neighbour, ...] = ()
    settings: CatalogSettings = field(default_factory=CatalogSettings)


class ServingReads(Protocol):
    def lists(self, product_ids: Sequence[str]) -> ModelLists:
        """The neighbour lists of these products (at most 98), the popularity list and the catalog's
        settings: one batch read."""
        ...

    def products(self, product_ids: Sequence[str]) -> dict[str, Product]:
        """The catalog's entries for these products (at most 100; the ones it lists): one batch read."""
        ...


class PurchaseHistory(Protocol):
    """What a contact bought, from the event log's purchase index (``byPurchase``)."""

    def bought(self, contact: ContactId, limit: int = MAX_PURCHASES) -> frozenset[str]:
        """The products of the contact's newest ``limit`` purchases (their baskets): one Query."""
        ...


@dataclass(frozen=True, slots=True)
class CatalogPage:
    products: list[Product]
    #: the last product id read, when there may be more (the next page starts after it)
    after: str | None = None


class Catalog(Protocol):
    """The catalog an administrator keeps (``/admin/catalog``)."""

    def product(self, product_id: str) -> Product | None: ...

    def page(self, limit: int, after: str | None = None) -> CatalogPage:
        """Products by id, ``limit`` at most, after the ``after`` one (a Query, never a Scan)."""
        ...

    def save(self, product: Product) -> None:
        """Store the product, replacing any with its id."""
        ...

    def remove(self, product_id: str) -> bool:
        """Delete the product; False if the catalog had none with this id."""
        ...

    def settings(self) -> CatalogSettings: ...

    def save_settings(self, settings: CatalogSettings, at: datetime) -> None: ...


# -- what is served -----------------------------------------------------------------------------------


class RecommendedProduct(BaseModel):
    """A recommendation with what the catalog knows of the product (the facts are None for a product the
    catalog does not list)."""

    model_config = ConfigDict(frozen=True)

    product_id: str
    score: float
    #: ``similar``: a neighbour of the contact's (or the product's) products; ``popular``: the fallback
    reason: Reason
    #: the contact's products (or the product) it is a neighbour of; empty for ``popular``
    because: tuple[str, ...] = ()
    name: str | None = None
    category: str | None = None
    price: Decimal | None = None
    url: str | None = None
    image_url: str | None = None

    def for_template(self) -> dict[str, Any]:
        """What an email template gets for it (``recommendations`` in the rendering context)."""
        return {
            "id": self.product_id,
            "name": self.name,
            "category": self.category,
            "price": self.price,
            "url": self.url,
            "image_url": self.image_url,
            "reason": self.reason,
            "because": list(self.because),
        }


class ContactRecommendations(BaseModel):
    contact_id: str
    recommendations: list[RecommendedProduct]


class ProductRecommendations(BaseModel):
    product_id: str
    #: the product's own catalog entry, if it has one
    product: Product | None
    recommendations: list[RecommendedProduct]


def wanted(raw: str | None) -> int:
    """``n``: 1 to ``MAX_N``, ``DEFAULT_N`` when absent; anything else is a 400 naming ``n``."""
    if raw is None or raw == "":
        return DEFAULT_N
    # ASCII digits alone: ``"²".isdigit()`` is true and ``int("²")`` raises
    if not re.fullmatch(r"[0-9]+", raw) or not 1 <= int(raw) <= MAX_N:
        raise InvalidRequest(f"n: a whole number from 1 to {MAX_N}", code="invalid_request", field="n")
    return int(raw)


def pool_size(n: int) -> int:
    """Candidates of each kind in the pool (neighbours, popular products): ``n + 10``, so that both kinds
    and a product's own entry fit one batch read."""
    return min((MAX_POOL - 1) // 2, n + 10)


def for_contact(
    recent: Sequence[RecentProduct],
    n: int,
    reads: ServingReads,
    bought: Collection[str] = frozenset(),
    settings: ModelSettings = DEFAULT_SETTINGS,
) -> list[RecommendedProduct]:
    """The top ``n`` products for a contact with these recent products (newest first), never one it
    ``bought`` (``PurchaseHistory.bought``) nor a recent purchase, weighed with the deployed model's
    ``settings`` (views, recency): two batch reads."""
    recent = tuple(recent)[: MAX_POOL - 2]
    lists = reads.lists(list(dict.fromkeys(r.product_id for r in recent)))
    owned = frozenset(bought) | {r.product_id for r in recent if r.kind == "purchase"}

    def ranked(count: int, exclude: Container[str]) -> tuple[Recommendation, ...]:
        return recommend(
            recent,
            lists.neighbours,
            lists.popular,
            n=count,
            exclude=_AnyOf(owned, exclude),
            settings=settings,
        )

    served, _ = _served(ranked, n, lists, reads, owned)
    return served


def for_product(
    product_id: str, n: int, reads: ServingReads
) -> tuple[Product | None, list[RecommendedProduct]]:
    """The product's own catalog entry and the top ``n`` bought together with it: two batch reads."""
    lists = reads.lists([product_id])
    neighbours = lists.neighbours.get(product_id, ())

    def ranked(count: int, exclude: Container[str]) -> tuple[Recommendation, ...]:
        return bought_together(product_id, neighbours, lists.popular, n=count, exclude=exclude)

    served, products = _served(ranked, n, lists, reads, frozenset([product_id]), also=product_id)
    return products.get(product_id), served


class _AnyOf:
    """The products in either container (what the contact owns, or what a ranking may not offer)."""

    def __init__(self, first: Container[str], second: Container[str]) -> None:
        self._first, self._second = first, second

    def __contains__(self, product_id: object) -> bool:
        return product_id in self._first or product_id in self._second


class _Barred:
    """What the second ranking may not offer: what the catalog bars, and whatever is outside the pool
    (its catalog entry was not read)."""

    def __init__(self, pool: frozenset[str], barred: frozenset[str]) -> None:
        self._pool, self._barred = pool, barred

    def __contains__(self, product_id: object) -> bool:
        return product_id not in self._pool or product_id in self._barred


def _served(
    ranked: Callable[[int, Container[str]], tuple[Recommendation, ...]],
    n: int,
    lists: ModelLists,
    reads: ServingReads,
    owned: Container[str],
    also: str | None = None,
) -> tuple[list[RecommendedProduct], dict[str, Product]]:
    """The pool (the top neighbours and the top popular products not ``owned``), its catalog entries (and
    ``also``'s) read at once, the pool ranked again without what the catalog bars; with the entries read."""
    size = pool_size(n)
    neighbours = [r.product_id for r in ranked(size, frozenset()) if r.reason != "popular"]
    popular = [
        item.product_id
        for item in sorted(lists.popular, key=lambda p: (-p.score, p.product_id))
        if item.product_id not in owned
    ]
    pool = list(dict.fromkeys([*neighbours, *popular[:size]]))
    wanted_ids = list(dict.fromkeys([*pool, *([also] if also else [])]))[:MAX_POOL]
    products = reads.products(wanted_ids) if wanted_ids else {}
    if not pool:
        return [], products
    barred = unavailable(pool, products, settings=lists.settings)
    chosen = ranked(n, _Barred(frozenset(pool), barred))
    return [_with_facts(r, products.get(r.product_id)) for r in chosen], products


def _with_facts(recommendation: Recommendation, product: Product | None) -> RecommendedProduct:
    facts = (
        {}
        if product is None
        else {
            "name": product.name,
            "category": product.category,
            "price": product.price,
            "url": product.url,
            "image_url": product.image_url,
        }
    )
    return RecommendedProduct(
        product_id=recommendation.product_id,
        score=recommendation.score,
        reason=recommendation.reason,
        because=recommendation.because,
        **facts,
    )


@dataclass(frozen=True, slots=True)
class Recommender:
    """Serving a contact named by id (delivery's templates): its profile read (merges followed), what the
    contact holding it bought (``purchases``), then ``for_contact``: one GetItem, one Query and two batch
    reads."""

    profiles: Profiles
    reads: ServingReads
    purchases: PurchaseHistory | None = None
    #: the deployed model's settings (``RECOMMENDATIONS_*``, as the nightly fit reads them)
    settings: ModelSettings = DEFAULT_SETTINGS

    def for_contact(self, contact_id: str, n: int = FOR_TEMPLATES) -> list[RecommendedProduct]:
        record = holder(ContactId.parse(contact_id), self.profiles)
        if record is None:
            return for_contact((), n, self.reads, settings=self.settings)
        bought = bought_by(record.contact_id, self.purchases)
        return for_contact(record.recent_products, n, self.reads, bought, self.settings)


def bought_by(contact_id: str, purchases: PurchaseHistory | None) -> frozenset[str]:
    """What the contact bought (its newest ``MAX_PURCHASES`` purchases); nothing known without the port."""
    return purchases.bought(ContactId.parse(contact_id)) if purchases is not None else frozenset()
