"""The product catalog and the nightly model as serving reads them (issue 15), in the config table.

The catalog lives in one partition, so that listing it is a Query (never a Scan) and a page follows the
product ids: ``pk = CATALOG``, ``sk = PRODUCT#<product id>`` (``name``, ``category``, ``price``, ``url``,
``imageUrl``, ``inStock``, ``updatedAt``), and its settings at ``pk = CATALOG``, ``sk = SETTINGS``
(``excludedCategories``, a list; ``catalogOnly``; ``updatedAt``). DynamoDB splits a busy partition by sort
key ranges (split for heat), so serving's batch reads of scattered products spread out.

The nightly model's items (``shared.recommendations.stored``) are read here, never written.

Serving makes two batch reads per call (``shared.usecases.recommendations.ServingReads``): the neighbour
items of a contact's recent products with the popularity item and the catalog's settings; then the
catalog items of the candidates. Each is one BatchGetItem of at most 100 keys (more are split into
chunks of 100), unprocessed keys asked again after a pause.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from shared.adapters.dynamodb import failure, plain_item, retried, s, unavailable
from shared.recommendations.catalog import CatalogSettings, Product
from shared.recommendations.stored import (
    NEIGHBOURS_SK,
    POPULAR_KEY,
    PRODUCT_PREFIX,
    StoredList,
    neighbours_key,
)
from shared.tracking.timestamps import format_time
from shared.usecases.recommendations import CatalogPage, ModelLists

CATALOG_PK = "CATALOG"
SETTINGS_SK = "SETTINGS"
STORE = "the catalog"
#: BatchGetItem reads at most this many keys at once
BATCH_KEYS = 100
#: how often unprocessed keys are asked again before giving up (503)
BATCH_ATTEMPTS = 8


def product_key(product_id: str) -> dict[str, Any]:
    return {"pk": s(CATALOG_PK), "sk": s(f"{PRODUCT_PREFIX}{product_id}")}


SETTINGS_KEY = {"pk": s(CATALOG_PK), "sk": s(SETTINGS_SK)}


def _key(plain: dict[str, str]) -> dict[str, Any]:
    return {k: s(v) for k, v in plain.items()}


def product_item(product: Product) -> dict[str, Any]:
    item: dict[str, Any] = {
        **product_key(product.id),
        "name": s(product.name),
        "inStock": {"BOOL": product.in_stock},
    }
    if product.category is not None:
        item["category"] = s(product.category)
    if product.price is not None:
        item["price"] = {"N": str(product.price)}
    if product.url is not None:
        item["url"] = s(product.url)
    if product.image_url is not None:
        item["imageUrl"] = s(product.image_url)
    if product.updated_at is not None:
        item["updatedAt"] = s(format_time(product.updated_at))
    return item


def product_from_item(item: dict[str, Any]) -> Product:
    values = plain_item(item)
    return Product(
        id=str(values["sk"]).removeprefix(PRODUCT_PREFIX),
        name=values.get("name", ""),
        category=values.get("category"),
        price=values.get("price"),
        url=values.get("url"),
        image_url=values.get("imageUrl"),
        in_stock=values.get("inStock", True),
        updated_at=values.get("updatedAt"),
    )


def settings_from_item(item: dict[str, Any] | None) -> CatalogSettings:
    if not item:
        return CatalogSettings()
    values = plain_item(item)
    return CatalogSettings(
        excluded_categories=tuple(values.get("excludedCategories") or ()),
        catalog_only=bool(values.get("catalogOnly", False)),
    )


class DynamoCatalog:
    """The catalog (``Catalog``) and serving's reads (``ServingReads``) over the config table."""

    def __init__(self, client: Any, *, table: str, sleep: Callable[[float], None] = time.sleep) -> None:
        self._db = client
        self._table = table
        self._sleep = sleep

    # --- the catalog (the admin API) ---------------------------------------------------------------

    def product(self, product_id: str) -> Product | None:
        item = self._get(product_key(product_id))
        return product_from_item(item) if item else None

    def page(self, limit: int, after: str | None = None) -> CatalogPage:
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": s(CATALOG_PK), ":prefix": s(PRODUCT_PREFIX)},
            # one more than the page, to know whether there are more (a full page may be the last)
            "Limit": limit + 1,
        }
        if after is not None:
            request["ExclusiveStartKey"] = product_key(after)
        try:
            answer = retried(lambda: self._db.query(**request), STORE)
        except Exception as exc:
            raise failure(exc, STORE) from exc
        products = [product_from_item(item) for item in answer.get("Items", [])]
        page = products[:limit]
        return CatalogPage(products=page, after=page[-1].id if len(products) > limit else None)

    def save(self, product: Product) -> None:
        self._call(lambda: self._db.put_item(TableName=self._table, Item=product_item(product)))

    def remove(self, product_id: str) -> bool:
        answer = self._call(
            lambda: self._db.delete_item(
                TableName=self._table, Key=product_key(product_id), ReturnValues="ALL_OLD"
            )
        )
        return bool(answer.get("Attributes"))

    def settings(self) -> CatalogSettings:
        return settings_from_item(self._get(SETTINGS_KEY))

    def save_settings(self, settings: CatalogSettings, at: datetime) -> None:
        item = {
            **SETTINGS_KEY,
            "excludedCategories": {"L": [s(c) for c in settings.excluded_categories]},
            "catalogOnly": {"BOOL": settings.catalog_only},
            "updatedAt": s(format_time(at)),
        }
        self._call(lambda: self._db.put_item(TableName=self._table, Item=item))

    # --- serving -------------------------------------------------------------------------------------

    def lists(self, product_ids: Sequence[str]) -> ModelLists:
        keys = [_key(neighbours_key(p)) for p in dict.fromkeys(product_ids)]
        items = self._batch_get([*keys, _key(POPULAR_KEY), SETTINGS_KEY])
        stored: dict[str, StoredList] = {}
        popular: StoredList | None = None
        settings = CatalogSettings()
        for item in items:
            pk, sk = item["pk"]["S"], item["sk"]["S"]
            if sk == NEIGHBOURS_SK and pk.startswith(PRODUCT_PREFIX):
                stored[pk.removeprefix(PRODUCT_PREFIX)] = StoredList.model_validate(plain_item(item))
            elif (pk, sk) == (POPULAR_KEY["pk"], POPULAR_KEY["sk"]):
                popular = StoredList.model_validate(plain_item(item))
            elif pk == CATALOG_PK and sk == SETTINGS_SK:
                settings = settings_from_item(item)
        # A neighbour list more than a night older than the popularity list is a product a later night
        # found no neighbours for, whose item a skipped night left behind (the night's write deletes such
        # items only when it has the night before's parts to compare with): not served. One night older
        # is served: the night's write rewrites the popularity item first, the products' items after it.
        oldest = popular.fitted_on - timedelta(days=1) if popular is not None else None
        neighbours = {
            p: lists.neighbours()
            for p, lists in stored.items()
            if oldest is None or lists.fitted_on >= oldest
        }
        return ModelLists(
            neighbours=neighbours,
            popular=popular.neighbours() if popular is not None else (),
            settings=settings,
        )

    def products(self, product_ids: Sequence[str]) -> dict[str, Product]:
        items = self._batch_get([product_key(p) for p in dict.fromkeys(product_ids)])
        found = (product_from_item(item) for item in items)
        return {product.id: product for product in found}

    # --- plumbing ------------------------------------------------------------------------------------

    def _get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        answer = self._call(lambda: self._db.get_item(TableName=self._table, Key=key))
        return answer.get("Item")

    def _call(self, call: Callable[[], Any]) -> Any:
        try:
            return retried(call, STORE)
        except Exception as exc:
            raise failure(exc, STORE) from exc

    def _batch_get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every item of these keys that exists: one BatchGetItem per 100 keys, unprocessed keys asked
        again (a growing pause before each), 503 if some are still left after ``BATCH_ATTEMPTS``."""
        items: list[dict[str, Any]] = []
        for start in range(0, len(keys), BATCH_KEYS):
            wanted: dict[str, Any] = {self._table: {"Keys": keys[start : start + BATCH_KEYS]}}
            for attempt in range(BATCH_ATTEMPTS):
                if attempt:
                    self._sleep(min(0.05 * 2**attempt, 1.0))
                answer = self._call(lambda wanted=wanted: self._db.batch_get_item(RequestItems=wanted))
                items += answer.get("Responses", {}).get(self._table, [])
                wanted = answer.get("UnprocessedKeys") or {}
                if not wanted:
                    break
            else:
                raise unavailable(RuntimeError("BatchGetItem kept leaving keys unprocessed"), STORE)
        return items
