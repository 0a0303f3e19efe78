"""What a contact bought (issue 15, serving's ``PurchaseHistory``): the products of the baskets of its
newest purchases, from the events table's purchase index, the same on the fake and on moto. Views,
refunds and other contacts' purchases are not purchases of this contact; the bound is the newest ones."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shared.contacts.identity import ContactId
from tests.contract.helpers import NOW, entries
from tests.fakes import MemoryContactStore, MemoryPurchaseHistory

ANN, BOB = ContactId.user("ann"), ContactId.user("bob")


@pytest.fixture
def ports(implementation, contact_tables):
    """(event log, purchase history) over the same log."""
    if implementation == "fake":
        contacts = MemoryContactStore()
        return contacts, MemoryPurchaseHistory(contacts)
    from shared.adapters.purchase_history import DynamoPurchaseHistory

    tables = contact_tables()
    return tables.stores(), DynamoPurchaseHistory(tables.db, events_table=tables.events)


def track(contact: ContactId, message_id: str, event: str, hours_ago: float, **properties: Any) -> dict:
    return {
        "type": "track",
        "event": event,
        "userId": contact.value,
        "messageId": message_id,
        "timestamp": (NOW - timedelta(hours=hours_ago)).isoformat(),
        "properties": properties,
    }


def order(contact: ContactId, message_id: str, hours_ago: float, *products: str) -> dict:
    return track(
        contact,
        message_id,
        "Order Completed",
        hours_ago,
        order_id=message_id,
        revenue=10,
        products=[{"product_id": p, "category": "camping"} for p in products],
    )


def test_the_products_of_every_basket_bought_and_nothing_else(ports) -> None:
    log, history = ports
    log.append(entries(ANN, order(ANN, "o1", 30, "tent", "stove"), order(ANN, "o2", 5, "lamp")))
    log.append(entries(ANN, track(ANN, "v1", "Product Viewed", 1, product_id="kayak")))
    log.append(entries(ANN, track(ANN, "r1", "Order Refunded", 2, order_id="o1", products=[{"sku": "mat"}])))
    log.append(entries(ANN, track(ANN, "o3", "Order Completed", 3, sku="rope", revenue=5)))
    log.append(entries(BOB, order(BOB, "b1", 1, "canoe")))
    assert history.bought(ANN) == {"tent", "stove", "lamp", "rope"}
    assert history.bought(BOB) == {"canoe"}
    assert history.bought(ContactId.user("nobody")) == frozenset()


def test_only_the_newest_purchases_up_to_the_limit(ports) -> None:
    log, history = ports
    log.append(entries(ANN, *(order(ANN, f"o{h}", h, f"p{h}") for h in (40, 3, 20, 7))))
    assert history.bought(ANN, 2) == {"p3", "p7"}
    assert history.bought(ANN, 3) == {"p3", "p7", "p20"}
    assert history.bought(ANN, 0) == frozenset()
