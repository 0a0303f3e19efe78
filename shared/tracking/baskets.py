"""What a purchase bought: its basket, read from the call's properties (Segment's e-commerce spec).

The event log keeps it on every purchase (``basket`` on the event item, with ``purchasedAt``), so the
nightly analytics pass learns each product's and category's repurchase cycle without reading bodies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Distinct (product, category) pairs kept per purchase: an order's first ones, in its order.
MAX_BASKET = 20
#: Product and category codes are cut to this many characters.
MAX_CODE_LENGTH = 100
#: The product's code on an entry of ``products[]``, by preference.
PRODUCT_KEYS = ("product_id", "sku", "id")
#: ... and at the top level of the properties (``id`` there names the order, not a product).
TOP_LEVEL_PRODUCT_KEYS = ("product_id", "sku")

Basket = tuple[tuple[str | None, str | None], ...]


def basket(properties: Mapping[str, Any]) -> Basket:
    """(product, category) pairs, either of them None when not given.

    From ``properties.products[]`` (each entry's ``product_id``, else ``sku``, else ``id``, and its
    ``category``); when that gives nothing, from the top-level ``product_id`` (else ``sku``) and
    ``category``. Codes are strings or whole numbers; anything else is ignored. At most ``MAX_BASKET``
    distinct pairs, each code at most ``MAX_CODE_LENGTH`` characters.
    """
    found: dict[tuple[str | None, str | None], None] = {}
    products = properties.get("products")
    if isinstance(products, list):
        for entry in products:
            if len(found) >= MAX_BASKET:
                break
            if isinstance(entry, Mapping):
                _add(found, _first_code(entry, PRODUCT_KEYS), _code(entry.get("category")))
    if not found:
        _add(found, _first_code(properties, TOP_LEVEL_PRODUCT_KEYS), _code(properties.get("category")))
    return tuple(found)


def _add(found: dict[tuple[str | None, str | None], None], product: str | None, category: str | None) -> None:
    if product is not None or category is not None:
        found.setdefault((product, category), None)


def _first_code(values: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        code = _code(values.get(key))
        if code is not None:
            return code
    return None


def _code(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()[:MAX_CODE_LENGTH]
    return text or None
