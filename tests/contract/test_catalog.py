"""The product catalog and serving's reads (issue 15, ``shared.usecases.recommendations.Catalog`` and
``ServingReads``): the fake and ``DynamoCatalog`` on moto alike. Products round-trip, list by id a page at a
time (a Query), the settings default to nothing excluded; serving reads the nightly model's lists as
``shared.recommendations.stored`` lays them out, and the catalog's entries of any number of products."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from shared.recommendations.catalog import CatalogSettings, Product
from shared.recommendations.model import ItemModel, Neighbour
from shared.recommendations.stored import POPULAR_KEY, neighbours_key
from tests.fakes import MemoryCatalog

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
MODEL = ItemModel(
    neighbours={
        "tent": (Neighbour("stove", 0.9), Neighbour("lamp", 0.5)),
        "stove": (Neighbour("tent", 0.9),),
    },
    popular=(Neighbour("lamp", 40.0), Neighbour("tent", 30.0)),
)


def product(product_id: str, **facts: Any) -> Product:
    return Product(id=product_id, **{"name": product_id.title(), "updated_at": NOW, **facts})


def store_model(db: Any, table: str, model: ItemModel, popular_on: str = "2026-12-01") -> None:
    """The nightly model's items, as the nightly pass writes them (``shared.recommendations.stored``)."""

    def entries(neighbours: tuple[Neighbour, ...]) -> dict[str, Any]:
        return {"L": [{"M": {"p": {"S": e.product_id}, "s": {"N": str(e.score)}}} for e in neighbours]}

    for product_id, neighbours in model.neighbours.items():
        key = {k: {"S": v} for k, v in neighbours_key(product_id).items()}
        db.put_item(
            TableName=table, Item={**key, "entries": entries(neighbours), "fittedOn": {"S": "2026-12-01"}}
        )
    key = {k: {"S": v} for k, v in POPULAR_KEY.items()}
    db.put_item(
        TableName=table, Item={**key, "entries": entries(model.popular), "fittedOn": {"S": popular_on}}
    )


@pytest.fixture
def catalog(implementation, config_table):
    if implementation == "fake":
        return MemoryCatalog(MODEL)
    from shared.adapters.catalog_store import DynamoCatalog

    db, table = config_table()
    store_model(db, table, MODEL)
    return DynamoCatalog(db, table=table, sleep=lambda _: None)


def test_a_product_round_trips_and_is_removed_once(catalog) -> None:
    full = product(
        "tent-2p",
        category="Camping",
        price=Decimal("149.90"),
        url="https://shop.example/tent-2p",
        image_url="https://shop.example/tent-2p.jpg",
        in_stock=False,
    )
    bare = product("lamp")
    catalog.save(full)
    catalog.save(bare)
    assert catalog.product("tent-2p") == full
    assert catalog.product("lamp") == bare
    assert catalog.product("stove") is None
    catalog.save(product("lamp", category="Light"))
    assert catalog.product("lamp").category == "Light", "a save replaces the product"
    assert catalog.remove("lamp") is True
    assert catalog.remove("lamp") is False
    assert catalog.product("lamp") is None


def test_products_are_listed_by_id_a_page_at_a_time(catalog) -> None:
    for product_id in ("c", "a", "e", "b", "d"):
        catalog.save(product(product_id))
    catalog.save_settings(CatalogSettings(excluded_categories=("X",)), NOW)  # not a product
    first = catalog.page(2)
    assert [p.id for p in first.products] == ["a", "b"]
    second = catalog.page(2, first.after)
    assert [p.id for p in second.products] == ["c", "d"]
    last = catalog.page(2, second.after)
    assert ([p.id for p in last.products], last.after) == (["e"], None)
    exact = catalog.page(5)
    assert (len(exact.products), exact.after) == (5, None), "a full last page says there is no more"


def test_the_settings_exclude_nothing_until_saved(catalog) -> None:
    assert catalog.settings() == CatalogSettings()
    saved = CatalogSettings(excluded_categories=("Gift cards", "Tobacco"), catalog_only=True)
    catalog.save_settings(saved, NOW)
    assert catalog.settings() == saved
    catalog.save_settings(CatalogSettings(), NOW)
    assert catalog.settings() == CatalogSettings()


def test_serving_reads_the_nightly_lists_and_the_settings_at_once(catalog) -> None:
    catalog.save_settings(CatalogSettings(excluded_categories=("Tobacco",)), NOW)
    lists = catalog.lists(["tent", "kayak"])
    assert dict(lists.neighbours) == {"tent": MODEL.neighbours["tent"]}, (
        "a product without neighbours is absent"
    )
    assert lists.popular == MODEL.popular
    assert lists.settings.excluded_categories == ("Tobacco",)


def test_serving_reads_the_catalog_entries_of_any_number_of_products(catalog) -> None:
    listed = [f"p{number:03d}" for number in range(0, 240, 2)]
    for product_id in listed:
        catalog.save(product(product_id, category="Even"))
    asked = [f"p{number:03d}" for number in range(240)]  # three batch reads of 100 keys at most
    found = catalog.products(asked)
    assert sorted(found) == listed
    assert found["p010"] == product("p010", category="Even")
    assert catalog.products([]) == {}


def test_a_neighbour_list_two_nights_older_than_the_popularity_list_is_not_served(
    implementation, config_table
) -> None:
    """A night that found no neighbours for a product deletes its item only when it can compare with the
    night before; an item a skipped night left behind is two nights older than the popularity list: not
    served. A list one night older is (the night's write rewrites the popularity item first)."""
    if implementation == "fake":
        pytest.skip("the stored items' dates")
    from shared.adapters.catalog_store import DynamoCatalog

    db, table = config_table()
    store_model(db, table, MODEL, popular_on="2026-12-03")
    catalog = DynamoCatalog(db, table=table, sleep=lambda _: None)
    yesterday = {k: {"S": v} for k, v in neighbours_key("lamp").items()}
    db.put_item(
        TableName=table,
        Item={
            **yesterday,
            "entries": {"L": [{"M": {"p": {"S": "tent"}, "s": {"N": "0.4"}}}]},
            "fittedOn": {"S": "2026-12-02"},
        },
    )
    assert dict(catalog.lists(["lamp"]).neighbours) == {"lamp": (Neighbour("tent", 0.4),)}
    fresh = {k: {"S": v} for k, v in neighbours_key("stove").items()}
    db.put_item(
        TableName=table,
        Item={
            **fresh,
            "entries": {"L": [{"M": {"p": {"S": "lamp"}, "s": {"N": "0.7"}}}]},
            "fittedOn": {"S": "2026-12-03"},
        },
    )
    lists = catalog.lists(["tent", "stove"])
    assert dict(lists.neighbours) == {"stove": (Neighbour("lamp", 0.7),)}, "tent's list is from 2026-12-01"
    assert lists.popular == MODEL.popular


def test_unprocessed_keys_are_asked_again(implementation, config_table) -> None:
    """DynamoDB may leave keys of a batch read unprocessed (throttled): they are asked again."""
    if implementation == "fake":
        pytest.skip("the adapter's batching")
    from shared.adapters.catalog_store import DynamoCatalog

    db, table = config_table()
    store_model(db, table, MODEL)

    class Stingy:
        """Answers each batch read's first key only, leaving the rest unprocessed."""

        def __init__(self) -> None:
            self.batches = 0

        def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
            self.batches += 1
            keys = RequestItems[table]["Keys"]
            answer = db.batch_get_item(RequestItems={table: {"Keys": keys[:1]}})
            rest = {table: {"Keys": keys[1:]}} if keys[1:] else {}
            return {**answer, "UnprocessedKeys": rest}

        def __getattr__(self, name: str) -> Any:
            return getattr(db, name)

    stingy = Stingy()
    lists = DynamoCatalog(stingy, table=table, sleep=lambda _: None).lists(["tent", "stove"])
    assert set(lists.neighbours) == {"tent", "stove"}
    assert lists.popular == MODEL.popular
    assert stingy.batches == 4, "two neighbour items, the popularity item and the settings, one at a time"
