"""The product catalog (issue 15): what recommendations show of a product, and what they may not offer.
Pure.

An administrator keeps it under ``/admin/catalog``: per product its name, category, price, links and
whether it is in stock; and the catalog's settings: the categories never recommended. Serving filters with
both: a product out of stock, or in an excluded category, is never offered.

A product the model knows (from tracked purchases and views) but the catalog does not is served with its
id alone (no facts to filter it on), unless the settings say ``catalog_only``: shops that keep their whole
catalog here can refuse anything else (a product withdrawn and deleted, say).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from shared.tracking.baskets import MAX_CODE_LENGTH

#: a product's id, as tracked calls name it (``properties.product_id`` or ``sku``): no ``#`` (key layout),
#: at most as long as tracking keeps a product's code (``shared.tracking.baskets.MAX_CODE_LENGTH``): a longer
#: id could never match a tracked product
ProductId = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_CODE_LENGTH, pattern=r"^[^#\s][^#]*$")
]
Category = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
#: the most categories the settings may exclude
MAX_EXCLUDED = 200


class ProductFacts(BaseModel):
    """A product as an administrator writes it (``PUT /admin/catalog/products/{productId}``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    category: Category | None = None
    price: Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=4)] | None = None
    url: AnyHttpUrl | None = None
    image_url: AnyHttpUrl | None = None
    in_stock: bool = True


class Product(BaseModel):
    """A catalog product, as stored and shown (``url`` and ``image_url`` as text)."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    category: str | None = None
    price: Decimal | None = None
    url: str | None = None
    image_url: str | None = None
    in_stock: bool = True
    updated_at: datetime | None = None

    @classmethod
    def of(cls, product_id: str, facts: ProductFacts, at: datetime) -> Product:
        return cls(
            id=product_id,
            name=facts.name,
            category=facts.category,
            price=facts.price,
            url=str(facts.url) if facts.url else None,
            image_url=str(facts.image_url) if facts.image_url else None,
            in_stock=facts.in_stock,
            updated_at=at,
        )


class CatalogSettings(BaseModel):
    """What serving never offers: products in these categories (compared case-insensitively); with
    ``catalog_only``, products the catalog does not list either."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    excluded_categories: tuple[Category, ...] = Field((), max_length=MAX_EXCLUDED)
    catalog_only: bool = False

    @field_validator("excluded_categories")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(value))

    def excludes(self, category: str | None) -> bool:
        return category is not None and category.casefold() in {
            c.casefold() for c in self.excluded_categories
        }


def unavailable(
    candidates: Iterable[str], products: Mapping[str, Product], settings: CatalogSettings
) -> frozenset[str]:
    """The candidates serving may not offer: out of stock, in an excluded category, or (``catalog_only``)
    not in the catalog (``products``: the catalog's entries for the candidates it lists)."""
    barred = set()
    for product_id in candidates:
        product = products.get(product_id)
        if product is None:
            if settings.catalog_only:
                barred.add(product_id)
        elif not product.in_stock or settings.excludes(product.category):
            barred.add(product_id)
    return frozenset(barred)
