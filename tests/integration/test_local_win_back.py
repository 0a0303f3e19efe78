"""A win-back email with recommended products, end to end in the local stack (issue 15): the nightly
model's items and the catalog in the config table, a win-back template that loops over
``recommendations``, the delivery function (with its own grants) sending it: the products come with their
names and links from the catalog, ranked from what the contact bought (its recent products, kept by the
aggregation), what is out of stock or in an excluded category left out."""

from __future__ import annotations

from typing import Any

from tests.contract.test_catalog import store_model
from tests.integration.test_local_delivery import SERVER, call, daytime, identify, outbox, request_delivery

WIN_BACK = {
    "subject": "We miss you, {{ contact.traits.first_name }}",
    "text": "{% for p in recommendations %}{{ p.name }} {{ p.url }}\n{% endfor %}",
    "html": (
        '<ul>{% for p in recommendations %}<li><a href="{{ p.url }}">{{ p.name }}</a></li>'
        "{% else %}<li>Our best-sellers</li>{% endfor %}</ul>"
    ),
}


def admin(stack: Any, method: str, path: str, body: Any = None) -> Any:
    status, answer = call(stack, method, path, body)
    assert status == 200, (path, answer)
    return answer


def test_a_win_back_email_is_sent_with_the_products_recommended_to_the_contact(local_stack) -> None:
    from shared.adapters import aws
    from shared.adapters.tables import CONFIG
    from shared.recommendations.model import ItemModel, Neighbour

    # First the clock, then the model: moving to 10:00 may pass 03:00, when the local stack's nightly
    # recommendations pass fits what the profiles hold (nothing yet) and replaces the model stored here.
    daytime(local_stack)
    store_model(
        aws.client("dynamodb"),
        local_stack.table_names[CONFIG.id],
        ItemModel(
            neighbours={"tent": (Neighbour("lamp", 0.9), Neighbour("stove", 0.8), Neighbour("pipe", 0.7))},
            popular=(
                Neighbour("stove", 9.0),
                Neighbour("pipe", 8.0),
                Neighbour("lamp", 7.0),
                Neighbour("mat", 6.0),
            ),
        ),
    )
    admin(
        local_stack,
        "PUT",
        "/admin/catalog/products/stove",
        {"name": "Camp stove", "url": "https://shop.example/stove"},
    )
    admin(
        local_stack,
        "PUT",
        "/admin/catalog/products/lamp",
        {"name": "Lamp", "url": "https://shop.example/lamp"},
    )
    admin(local_stack, "PUT", "/admin/catalog/products/pipe", {"name": "Pipe", "category": "Tobacco"})
    admin(local_stack, "PUT", "/admin/catalog/products/mat", {"name": "Mat", "in_stock": False})
    admin(local_stack, "PUT", "/admin/catalog/settings", {"excluded_categories": ["tobacco"]})
    admin(local_stack, "PUT", "/admin/templates/win-back", WIN_BACK)

    identify(local_stack, "ann", email="ann@example.com", email_opt_in=True, first_name="Ann")
    status, _ = call(
        local_stack,
        "POST",
        "/v1/track",
        {"userId": "ann", "event": "Order Completed", "properties": {"products": [{"product_id": "tent"}]}},
        {"authorization": SERVER},
    )
    assert status == 200
    local_stack.drain_streams()

    delivery = "user_id:ann#win-back#o1#0"
    request_delivery(local_stack, delivery, template="win-back")
    sent = outbox(local_stack, delivery)
    assert (sent["status"], sent["subject"]) == ("sent", "We miss you, Ann"), sent
    assert '<a href="https://shop.example/stove">Camp stove</a>' in sent["html"]
    assert '<a href="https://shop.example/lamp">Lamp</a>' in sent["html"]
    assert "Pipe" not in sent["html"], "an excluded category"
    assert "Mat" not in sent["html"], "out of stock"
    assert "best-sellers" not in sent["html"]
    # from what she bought (the tent's neighbours, best first), not the best-sellers' order
    assert sent["text"].splitlines()[:2] == [
        "Lamp https://shop.example/lamp",
        "Camp stove https://shop.example/stove",
    ]
    assert sent["text"].count("https://shop.example/") == 2
