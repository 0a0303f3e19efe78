"""``recommendations`` in a template's rendering context (issue 15): a win-back email rendered by delivery
with the products recommended to the contact, links and prices from the catalog; a template that does not
name them costs no read; the admin preview shows them as delivery would."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.delivery.templates import EmailTemplate
from shared.errors import DependencyUnavailable
from shared.http import HttpRequest
from shared.recommendations.catalog import CatalogSettings, Product
from shared.recommendations.model import ItemModel, ModelSettings, Neighbour, RecentProduct
from shared.usecases.delivery import Delivered, deliver
from shared.usecases.recommendations import FOR_TEMPLATES, Recommender
from tests.contract.helpers import entries
from tests.fakes import MemoryCatalog, MemoryContactStore, MemoryPurchaseHistory, MemoryTemplateRepository
from tests.unit.test_delivery_use_case import NOON, World, request

MODEL = ItemModel(
    neighbours={"tent": (Neighbour("stove", 0.8), Neighbour("lamp", 0.6), Neighbour("tobacco", 0.5))},
    popular=(Neighbour("tent", 50.0), Neighbour("novel", 40.0)),
)
WIN_BACK = EmailTemplate(
    id="win-back",
    subject="We miss you, {{ contact.traits.first_name }}",
    text="{% for p in recommendations[:2] %}{{ p.name }}: {{ p.url }}\n{% endfor %}",
    html=(
        "<ul>{% for p in recommendations %}"
        '<li><a href="{{ p.url }}">{{ p.name }}</a> {{ p.price }}</li>'
        "{% else %}<li>Our best-sellers</li>{% endfor %}</ul>"
    ),
)


class Profiles:
    """Ann's profile as the contacts table holds it: she bought a tent last month."""

    def profile(self, contact: ContactId) -> ContactRecord | None:
        if contact != ContactId.user("ann"):
            return None
        bought = RecentProduct(product_id="tent", kind="purchase", at=NOON - timedelta(days=30))
        return ContactRecord(
            contact_id="user_id:ann", traits={"first_name": "Ann"}, recent_products=(bought,)
        )


@pytest.fixture
def shop() -> MemoryCatalog:
    catalog = MemoryCatalog(MODEL)
    catalog.save(Product(id="stove", name="Stove", price=Decimal("39.5"), url="https://shop.example/stove"))
    catalog.save(Product(id="lamp", name="Lamp <LED>", price=Decimal(12), url="https://shop.example/lamp"))
    catalog.save(Product(id="tobacco", name="Pipe tobacco", category="Tobacco"))
    catalog.save_settings(CatalogSettings(excluded_categories=("Tobacco",)), NOON)
    catalog.requests = 0
    return catalog


@pytest.fixture
def world() -> World:
    found = World()
    found.ann()
    found.templates.save(WIN_BACK, NOON, None)
    return found


def send(world: World, shop: MemoryCatalog, template: str) -> Delivered:
    deps = replace(world.deps, recommender=Recommender(profiles=Profiles(), reads=shop))
    email = request(template=template, subject=None, text=None, html=None)
    return deliver(email, deps, lambda: world.time_left)


def test_a_win_back_email_shows_the_products_recommended_to_the_contact(
    world: World, shop: MemoryCatalog
) -> None:
    assert send(world, shop, "win-back").status == "sent"
    (context,) = world.contexts
    assert [p["id"] for p in context["recommendations"]] == ["stove", "lamp", "novel"]
    assert context["recommendations"][0] == {
        "id": "stove",
        "name": "Stove",
        "category": None,
        "price": 39.5,
        "url": "https://shop.example/stove",
        "image_url": None,
        "reason": "similar",
        "because": ["tent"],
    }
    (sent,) = world.mailer.sent
    assert sent.text is not None
    assert sent.text.startswith("Stove: https://shop.example/stove\nLamp <LED>: https://shop.example/lamp\n")
    assert sent.html is not None
    assert '<a href="https://shop.example/stove">Stove</a> 39.5' in sent.html
    assert "Lamp &lt;LED&gt;" in sent.html, "escaped in the HTML part"
    assert "tobacco" not in sent.html.lower(), "an excluded category is never offered"
    assert "Tent" not in sent.html, "what she bought is not offered again"
    assert shop.requests == 2, "two batch reads (and her profile's GetItem) for the whole email"


def test_a_win_back_email_never_offers_what_the_contact_bought_long_ago(
    world: World, shop: MemoryCatalog
) -> None:
    """Her stove was bought a year ago (no longer among her recent products): the purchase index says so,
    in one Query, and the email offers the lamp first."""
    ann = ContactId.user("ann")
    log = MemoryContactStore()
    order = {
        "type": "track",
        "event": "Order Completed",
        "userId": "ann",
        "messageId": "o-old",
        "timestamp": (NOON - timedelta(days=365)).isoformat(),
        "properties": {"order_id": "o-old", "products": [{"product_id": "stove"}]},
    }
    log.append(entries(ann, order))
    purchases = MemoryPurchaseHistory(log)
    deps = replace(world.deps, recommender=Recommender(profiles=Profiles(), reads=shop, purchases=purchases))
    email = request(template="win-back", subject=None, text=None, html=None)
    assert deliver(email, deps, lambda: world.time_left).status == "sent"
    (context,) = world.contexts
    assert [p["id"] for p in context["recommendations"]] == ["lamp", "novel"]
    assert (purchases.requests, shop.requests) == (1, 2)


def test_a_template_without_recommendations_reads_nothing_for_them(world: World, shop: MemoryCatalog) -> None:
    world.templates.save(
        EmailTemplate(id="hello", subject="Hi {{ contact.traits.first_name }}", text="Hi"), NOON, None
    )
    assert send(world, shop, "hello").status == "sent"
    assert world.contexts[0]["recommendations"] == []
    assert shop.requests == 0


def test_a_preview_shows_the_recommendations_as_delivery_would(shop: MemoryCatalog) -> None:
    from shared.admin.templates import preview_template

    templates = MemoryTemplateRepository()
    templates.save(WIN_BACK, NOON, None)
    deps = SimpleNamespace(
        templates=templates,
        contacts=Profiles(),
        postal_address="Shop",
        recommendations=shop,
        purchases=None,
        recommendation_settings=ModelSettings(),
    )

    def preview(body: dict[str, Any]) -> Any:
        return preview_template(
            HttpRequest(
                method="POST",
                path="/admin/templates/win-back/preview",
                route="POST /admin/templates/{templateId}/preview",
                path_parameters={"templateId": "win-back"},
                body=json.dumps(body),
            ),
            deps,
        )

    for_ann = preview({"contact_id": "user_id:ann"})
    assert [p["id"] for p in for_ann.context["recommendations"]] == ["stove", "lamp", "novel"]
    assert for_ann.html is not None and "https://shop.example/lamp" in for_ann.html
    sample = preview({})
    assert [p["reason"] for p in sample.context["recommendations"]] == ["popular", "popular"], "a new contact"
    assert len(for_ann.context["recommendations"]) <= FOR_TEMPLATES


class ThrottledCatalog(MemoryCatalog):
    """The catalog fake whose next ``failures`` batch reads are throttled."""

    failures = 1

    def lists(self, product_ids: Any) -> Any:
        if self.failures:
            self.failures -= 1
            raise DependencyUnavailable("the config table throttled")
        return super().lists(product_ids)


def test_a_failure_reading_the_recommendations_is_retried_without_sending(world: World) -> None:
    shop = ThrottledCatalog(MODEL)
    email = request(template="win-back", subject=None, text=None, html=None)
    deps = replace(world.deps, recommender=Recommender(profiles=Profiles(), reads=shop))
    with pytest.raises(DependencyUnavailable):
        deliver(email, deps, lambda: world.time_left)
    assert world.status(email) == ("failed", "unavailable")
    assert world.mailer.sent == []
    assert deliver(email, deps, lambda: world.time_left).status == "sent"
    assert len(world.mailer.sent) == 1
