"""Serving recommendations (issue 15, ``shared.usecases.recommendations`` and its admin routes), on a
hand-built model where the neighbours are obvious: campers buy a tent, a stove and a lamp together; readers
buy books. What the contact bought is never offered, nor what is out of stock or in an excluded category;
a new contact gets the popular products; a call costs two batch reads whatever the contact's history."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from shared.clock import FixedClock
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.errors import InvalidRequest, NotFound
from shared.http import HttpRequest
from shared.recommendations.catalog import CatalogSettings, Product
from shared.recommendations.model import ItemModel, ModelSettings, Neighbour, RecentProduct
from shared.usecases.recommendations import MAX_N, for_contact, for_product, wanted
from tests.contract.helpers import entries
from tests.fakes import MemoryCatalog, MemoryContactStore, MemoryPurchaseHistory

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
#: the nightly model of a shop where campers and readers never meet
MODEL = ItemModel(
    neighbours={
        "tent": (Neighbour("stove", 0.8), Neighbour("lamp", 0.6), Neighbour("mat", 0.3)),
        "stove": (Neighbour("tent", 0.8), Neighbour("pot", 0.7), Neighbour("lamp", 0.4)),
        "lamp": (Neighbour("tent", 0.6), Neighbour("stove", 0.4)),
        "novel": (Neighbour("poems", 0.9), Neighbour("bookmark", 0.5)),
    },
    popular=(Neighbour("novel", 90.0), Neighbour("tent", 80.0), Neighbour("gift-card", 70.0)),
)
CATALOG = [
    Product(
        id="tent", name="Tent", category="Camping", price=Decimal("149.9"), url="https://shop.example/tent"
    ),
    Product(id="stove", name="Stove", category="Camping", url="https://shop.example/stove"),
    Product(id="lamp", name="Lamp", category="Camping"),
    Product(id="pot", name="Pot", category="Kitchen"),
    Product(id="novel", name="Novel", category="Books"),
    Product(id="gift-card", name="Gift card", category="Gift cards"),
]


def bought(*products: str) -> list[RecentProduct]:
    return [
        RecentProduct(product_id=p, kind="purchase", at=NOW - timedelta(days=i))
        for i, p in enumerate(products)
    ]


def viewed(*products: str) -> list[RecentProduct]:
    return [
        RecentProduct(product_id=p, kind="view", at=NOW - timedelta(hours=i)) for i, p in enumerate(products)
    ]


@pytest.fixture
def shop() -> MemoryCatalog:
    catalog = MemoryCatalog(MODEL)
    for product in CATALOG:
        catalog.save(product)
    catalog.requests = 0
    return catalog


def ids(served: Any) -> list[str]:
    return [r.product_id for r in served]


def test_a_camper_gets_the_camping_neighbours_they_have_not_bought(shop) -> None:
    served = for_contact(bought("tent"), 3, shop)
    assert ids(served) == ["stove", "lamp", "mat"]
    assert {r.reason for r in served} == {"similar"}
    assert served[0].because == ("tent",)
    assert (served[0].name, served[0].url) == ("Stove", "https://shop.example/stove"), "the catalog's facts"
    assert served[2].name is None, "a product the catalog does not list is served with its id alone"


def test_what_the_contact_bought_is_never_offered_and_popular_products_fill_up(shop) -> None:
    served = for_contact(bought("tent", "stove"), 5, shop)
    assert "tent" not in ids(served) and "stove" not in ids(served)
    assert ids(served)[:3] == ["lamp", "pot", "mat"]
    assert [(r.product_id, r.reason) for r in served[3:]] == [("novel", "popular"), ("gift-card", "popular")]


def test_a_new_contact_gets_the_popular_products(shop) -> None:
    served = for_contact([], 2, shop)
    assert [(r.product_id, r.reason, r.because) for r in served] == [
        ("novel", "popular", ()),
        ("tent", "popular", ()),
    ]


def test_out_of_stock_and_excluded_categories_are_never_offered(shop) -> None:
    shop.save(Product(id="stove", name="Stove", category="Camping", in_stock=False))
    shop.save_settings(CatalogSettings(excluded_categories=("gift CARDS",)), NOW)
    served = for_contact(bought("tent"), 10, shop)
    assert "stove" not in ids(served), "out of stock"
    assert "gift-card" not in ids(served), "an excluded category (case aside)"
    assert ids(served)[:2] == ["lamp", "mat"]


def test_catalog_only_offers_nothing_the_catalog_does_not_list(shop) -> None:
    shop.save_settings(CatalogSettings(catalog_only=True), NOW)
    assert "mat" not in ids(for_contact(bought("tent"), 10, shop))


def test_catalog_only_with_unlisted_neighbours_still_fills_from_listed_popular_products() -> None:
    """A kayak with more neighbours than the pool takes, none of them listed: the listed popular products
    (beyond the first ranking's top) still fill the answer, in the same two batch reads."""
    model = ItemModel(
        neighbours={"kayak": tuple(Neighbour(f"paddle-{k:02d}", 1.0 - k / 100) for k in range(60))},
        popular=(Neighbour("kayak", 99.0), Neighbour("novel", 90.0), Neighbour("tent", 80.0)),
    )
    listed = MemoryCatalog(model)
    for product in CATALOG:
        listed.save(product)
    listed.save_settings(CatalogSettings(catalog_only=True), NOW)
    listed.requests = 0
    served = for_contact(bought("kayak"), 2, listed)
    assert [(r.product_id, r.reason) for r in served] == [("novel", "popular"), ("tent", "popular")]
    assert listed.requests == 2
    _, together = for_product("kayak", 2, listed)
    assert [(r.product_id, r.reason) for r in together] == [("novel", "popular"), ("tent", "popular")]


def test_a_viewed_product_leads_to_its_neighbours_and_may_itself_be_offered(shop) -> None:
    served = for_contact(viewed("novel"), 2, shop)
    assert ids(served) == ["poems", "bookmark"]
    assert served[0].because == ("novel",)


def test_a_contact_costs_two_batch_reads_whatever_its_history(shop) -> None:
    for recent in ([], bought("tent"), bought(*(f"p{n}" for n in range(50)), "tent")):
        shop.requests = 0
        for_contact(recent, MAX_N, shop)
        assert shop.requests == 2


def test_bought_together_with_a_product(shop) -> None:
    product, served = for_product("stove", 3, shop)
    assert product is not None and product.name == "Stove"
    assert ids(served) == ["tent", "pot", "lamp"]
    assert all(r.because == ("stove",) for r in served)
    assert shop.requests == 2
    unknown, fallback = for_product("kayak", 2, shop)
    assert unknown is None
    assert ids(fallback) == ["novel", "tent"], "a product without neighbours gets the popular ones"


def test_n_is_a_whole_number_within_bounds() -> None:
    assert wanted(None) == 10 and wanted("3") == 3 and wanted(str(MAX_N)) == MAX_N
    for bad in ("0", "-1", "x", str(MAX_N + 1), "²", "1²", "٣", " 3", "3.0"):
        with pytest.raises(InvalidRequest) as raised:
            wanted(bad)
        assert raised.value.field == "n"


def test_the_template_sees_plain_product_facts(shop) -> None:
    first = for_contact(bought("stove"), 1, shop)[0]
    assert first.for_template() == {
        "id": "tent",
        "name": "Tent",
        "category": "Camping",
        "price": Decimal("149.9"),
        "url": "https://shop.example/tent",
        "image_url": None,
        "reason": "similar",
        "because": ["stove"],
    }


# --- the admin routes --------------------------------------------------------------------------------


class Profiles:
    def __init__(self, *records: ContactRecord) -> None:
        self.records = {r.contact_id: r for r in records}

    def profile(self, contact: ContactId) -> ContactRecord | None:
        return self.records.get(str(contact))


def admin(
    shop: MemoryCatalog,
    *records: ContactRecord,
    log: MemoryContactStore | None = None,
    settings: ModelSettings | None = None,
) -> Any:
    return SimpleNamespace(
        contacts=Profiles(*records),
        catalog=shop,
        recommendations=shop,
        purchases=MemoryPurchaseHistory(log or MemoryContactStore()),
        recommendation_settings=settings or ModelSettings(),
        clock=FixedClock(NOW),
    )


def ordered(contact: ContactId, message_id: str, days_ago: int, *products: str) -> dict[str, Any]:
    """An ``Order Completed`` call of these products, as tracking receives it."""
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": contact.value,
        "messageId": message_id,
        "timestamp": (NOW - timedelta(days=days_ago)).isoformat(),
        "properties": {"order_id": message_id, "products": [{"product_id": p} for p in products]},
    }


def call(
    deps: Any, method: str, route: str, parameters: dict[str, str], body: Any = None, **query: str
) -> Any:
    from shared.admin import ROUTES

    request = HttpRequest(
        method=method,
        path=route.format(**parameters),
        route=f"{method} {route}",
        path_parameters=parameters,
        query=query,
        body=None if body is None else json.dumps(body),
    )
    return ROUTES[f"{method} {route}"](request, deps).model_dump(mode="json")


def test_a_contacts_recommendations_follow_merges(shop) -> None:
    merged = ContactRecord(contact_id="anonymous_id:a1", merged_into="user_id:ann")
    ann = ContactRecord(contact_id="user_id:ann", recent_products=tuple(bought("tent")))
    deps = admin(shop, merged, ann)
    answer = call(
        deps, "GET", "/admin/contacts/{contactId}/recommendations", {"contactId": "anonymous_id:a1"}, n="2"
    )
    assert answer["contact_id"] == "user_id:ann"
    assert [(r["product_id"], r["reason"], r["because"]) for r in answer["recommendations"]] == [
        ("stove", "similar", ["tent"]),
        ("lamp", "similar", ["tent"]),
    ]
    with pytest.raises(NotFound):
        call(deps, "GET", "/admin/contacts/{contactId}/recommendations", {"contactId": "user_id:nobody"})


def test_what_the_contact_ever_bought_is_never_offered_though_no_longer_recent(shop) -> None:
    """The profile keeps 50 recent products; the purchase index knows the older purchases: a stove bought
    long ago (out of the recent list), by the contact the merged-away one now is, is not offered."""
    ann = ContactId.user("ann")
    log = MemoryContactStore()
    log.append(entries(ann, ordered(ann, "o1", 400, "stove", "pot")))
    deps = admin(
        shop,
        ContactRecord(contact_id="anonymous_id:a1", merged_into="user_id:ann"),
        ContactRecord(contact_id="user_id:ann", recent_products=tuple(bought("tent"))),
        log=log,
    )
    answer = call(
        deps, "GET", "/admin/contacts/{contactId}/recommendations", {"contactId": "anonymous_id:a1"}, n="3"
    )
    assert [r["product_id"] for r in answer["recommendations"]] == ["lamp", "mat", "novel"]
    assert deps.purchases.requests == 1
    # without the purchase history, the stove would be the first offered
    assert ids(for_contact(bought("tent"), 1, shop)) == ["stove"]
    assert ids(for_contact(bought("tent"), 1, shop, bought={"stove"})) == ["lamp"]


def test_serving_weighs_the_contacts_products_with_the_deployed_settings(shop) -> None:
    """``RECOMMENDATIONS_RECENCY`` (and the other model settings) reach serving as they reach the fit: with
    a steep recency the newest product's neighbours come first, in the use case and through the route."""
    recent = bought("lamp", "novel")  # the lamp is the newer
    assert ids(for_contact(recent, 4, shop)) == ["poems", "tent", "bookmark", "stove"]
    steep = ModelSettings(recency=0.1)
    assert ids(for_contact(recent, 4, shop, settings=steep)) == ["tent", "stove", "poems", "bookmark"]
    deps = admin(shop, ContactRecord(contact_id="user_id:ann", recent_products=tuple(recent)), settings=steep)
    answer = call(
        deps, "GET", "/admin/contacts/{contactId}/recommendations", {"contactId": "user_id:ann"}, n="2"
    )
    assert [r["product_id"] for r in answer["recommendations"]] == ["tent", "stove"]


def test_the_admin_and_delivery_read_the_model_settings_the_fit_reads() -> None:
    from shared import settings
    from shared.runtime import _model_settings

    for function in (settings.AdminSettings, settings.DeliverySettings, settings.RecommendationsFitSettings):
        assert issubclass(function, settings.RecommendationModelSettings), function
    config = settings.RecommendationModelSettings.model_validate(
        {"RECOMMENDATIONS_RECENCY": "0.5", "RECOMMENDATIONS_VIEW_WEIGHT": "0.1"}
    )
    assert _model_settings(config) == ModelSettings(recency=0.5, view_weight=0.1)


def test_a_products_bought_together_route(shop) -> None:
    answer = call(
        admin(shop), "GET", "/admin/products/{productId}/recommendations", {"productId": "lamp"}, n="1"
    )
    assert answer["product"]["name"] == "Lamp"
    assert [r["product_id"] for r in answer["recommendations"]] == ["tent"]
