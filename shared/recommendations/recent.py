"""A contact's recent products (issue 15): what it bought or viewed lately, kept on its profile.

Serving recommends from them (``shared.recommendations.model.recommend``) and the nightly pass learns
from them (every profile's list is one contact's interactions). The aggregation takes them from the
events it folds: an ``Order Completed`` call's basket (``shared.tracking.baskets``) as purchases, a
``Product Viewed`` call's product as a view. The profile keeps one entry per product, newest first, at
most ``MAX_RECENT``: a product bought within the list stays a purchase (a later view does not make it a
view again), and its time is its last interaction.

The profile is written blindly (``shared.contacts.changes``), so the stored list may hold the same
product more than once between compactions; ``merged`` folds any number of lists, in any order, into
the one list: a union, so folding the same entries twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.recommendations.model import RecentProduct
from shared.tracking.baskets import basket
from shared.tracking.behaviours import Behaviour
from shared.tracking.messages import TrackedEvent

#: Products kept on a profile.
MAX_RECENT = 50
#: The behaviours a contact's products come from, and the kind each gives.
KINDS = {Behaviour.PURCHASE: "purchase", Behaviour.PRODUCT_VIEWED: "view"}


def products_of(event: TrackedEvent) -> tuple[RecentProduct, ...]:
    """The products a call bought (an order's basket) or viewed; none for any other call."""
    kind = KINDS.get(event.behaviour)
    if kind is None or event.call != "track":
        return ()
    products = dict.fromkeys(product for product, _ in basket(event.properties) if product is not None)
    return tuple(RecentProduct(product_id=p, kind=kind, at=event.timestamp) for p in products)


def recent_products(events: Iterable[TrackedEvent]) -> tuple[RecentProduct, ...]:
    """The products of these calls, one entry per product, newest first, at most ``MAX_RECENT``."""
    return merged(p for event in events for p in products_of(event))


def merged(*lists: Iterable[RecentProduct], limit: int = MAX_RECENT) -> tuple[RecentProduct, ...]:
    """One list from any number (a profile's stored entries, a change's, a merged-away contact's): one
    entry per product, a purchase if any entry bought it, at its latest time; newest first (ties by
    product id, so the result never depends on the order of the input); the newest ``limit``."""
    kinds: dict[str, str] = {}
    times: dict[str, RecentProduct] = {}
    for entries in lists:
        for entry in entries:
            p = entry.product_id
            if kinds.get(p) != "purchase":
                kinds[p] = entry.kind
            if p not in times or entry.at > times[p].at:
                times[p] = entry
    ordered = sorted(times.values(), key=lambda e: (-e.at.timestamp(), e.product_id))[:limit]
    return tuple(
        e if e.kind == kinds[e.product_id] else e.model_copy(update={"kind": kinds[e.product_id]})
        for e in ordered
    )
