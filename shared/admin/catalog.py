"""Admin: the product catalog (issue 15) under ``/admin/catalog``, what recommendations show of a product
and what they may not offer (``shared.recommendations.catalog``).

- ``GET /admin/catalog/products?limit=50&cursor=<opaque>``: products by id, a page at a time (a Query of
  the catalog's partition); ``next_cursor`` continues;
- ``GET|PUT|DELETE /admin/catalog/products/{productId}``: one product (``name``, ``category``, ``price``,
  ``url``, ``image_url``, ``in_stock``); a PUT replaces it whole;
- ``GET|PUT /admin/catalog/settings``: ``excluded_categories`` (never recommended) and ``catalog_only``
  (recommend only the products the catalog lists).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from shared.admin.dependencies import Admin
from shared.errors import DependencyUnavailable, InvalidRequest, NotFound, invalid_field
from shared.http import json_body
from shared.recommendations.catalog import CatalogSettings, Product, ProductFacts, ProductId
from shared.tracking.baskets import MAX_CODE_LENGTH
from shared.usecases.recommendations import Catalog

if TYPE_CHECKING:
    from shared.http import HttpRequest

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
INVALID_PRODUCT = "invalid_product"
_PRODUCT_ID = TypeAdapter(ProductId)


class CatalogList(BaseModel):
    products: list[Product]
    next_cursor: str | None = None


class ProductDeleted(BaseModel):
    deleted: str


def list_products(request: HttpRequest, deps: Admin) -> CatalogList:
    raw = request.query.get("limit")
    if raw in (None, ""):
        limit = DEFAULT_LIMIT
    # ASCII digits alone: ``"²".isdigit()`` is true and ``int("²")`` raises
    elif re.fullmatch(r"[0-9]+", raw) and 1 <= int(raw) <= MAX_LIMIT:
        limit = int(raw)
    else:
        raise InvalidRequest(
            f"limit: a whole number from 1 to {MAX_LIMIT}", code="invalid_request", field="limit"
        )
    page = _catalog(deps).page(limit, _decoded(request.query.get("cursor") or None))
    return CatalogList(products=page.products, next_cursor=_encoded(page.after))


def get_product(request: HttpRequest, deps: Admin) -> Product:
    product_id = product_id_of(request)
    found = _catalog(deps).product(product_id)
    if found is None:
        raise NotFound(f"no product {product_id} in the catalog", code="product_not_found")
    return found


def put_product(request: HttpRequest, deps: Admin) -> Product:
    product_id = product_id_of(request)
    body = json_body(request)
    if isinstance(body, dict):  # what a GET shows can be PUT back as it is
        body = {k: v for k, v in body.items() if k not in ("id", "updated_at")}
    facts = _validated(ProductFacts, body, INVALID_PRODUCT, "product")
    product = Product.of(product_id, facts, deps.clock.now())
    _catalog(deps).save(product)
    return product


def delete_product(request: HttpRequest, deps: Admin) -> ProductDeleted:
    product_id = product_id_of(request)
    if not _catalog(deps).remove(product_id):
        raise NotFound(f"no product {product_id} in the catalog", code="product_not_found")
    return ProductDeleted(deleted=product_id)


def get_settings(request: HttpRequest, deps: Admin) -> CatalogSettings:
    return _catalog(deps).settings()


def put_settings(request: HttpRequest, deps: Admin) -> CatalogSettings:
    settings = _validated(CatalogSettings, json_body(request), "invalid_catalog_settings", "settings")
    _catalog(deps).save_settings(settings, deps.clock.now())
    return settings


def _catalog(deps: Admin) -> Catalog:
    if deps.catalog is None:
        raise DependencyUnavailable("the catalog is not configured")
    return deps.catalog


def product_id_of(request: HttpRequest) -> str:
    raw = request.path_parameters.get("productId", "")
    try:
        return _PRODUCT_ID.validate_python(raw)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        raise invalid_field(
            error,
            code=INVALID_PRODUCT,
            location=("productId",),
            message=f"productId: 1 to {MAX_CODE_LENGTH} characters, no '#', not starting with a space",
        ) from None


def _validated(model: Any, body: Any, code: str, whole: str) -> Any:
    if not isinstance(body, dict):
        raise InvalidRequest(f"the {whole} must be a JSON object", code=code)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise invalid_field(exc.errors(include_url=False)[0], code=code, whole=whole) from None


def _encoded(after: str | None) -> str | None:
    """The next page's cursor: the last product id read, opaque to callers."""
    if after is None:
        return None
    return base64.urlsafe_b64encode(after.encode()).decode().rstrip("=")


def _decoded(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        after = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        return _PRODUCT_ID.validate_python(after)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidRequest(
            "cursor: not a cursor this list gave (start again without one)",
            code="invalid_request",
            field="cursor",
        ) from None


ROUTES = {
    "GET /admin/catalog/products": list_products,
    "GET /admin/catalog/products/{productId}": get_product,
    "PUT /admin/catalog/products/{productId}": put_product,
    "DELETE /admin/catalog/products/{productId}": delete_product,
    "GET /admin/catalog/settings": get_settings,
    "PUT /admin/catalog/settings": put_settings,
}
