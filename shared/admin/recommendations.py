"""Admin: recommendations (issue 15).

- ``GET /admin/contacts/{contactId}/recommendations?n=10``: the top ``n`` (1 to 40) products for the
  contact (merges followed), not bought, from its recent purchases and views, each with ``reason``
  (``similar`` or ``popular``), ``because`` (the contact's products it neighbours) and the catalog's facts;
- ``GET /admin/products/{productId}/recommendations?n=10``: what is bought together with a product.

Out-of-stock products and excluded categories are never offered (``shared.usecases.recommendations``).
A contact costs its profile read, one Query of what it bought (its newest 500 purchases: never offered)
and two batch reads, whatever its history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.admin.catalog import product_id_of
from shared.admin.dependencies import Admin
from shared.contacts.identity import ContactId
from shared.errors import DependencyUnavailable, NotFound
from shared.usecases.recommendations import (
    ContactRecommendations,
    ProductRecommendations,
    ServingReads,
    bought_by,
    for_contact,
    for_product,
    wanted,
)
from shared.usecases.search import holder

if TYPE_CHECKING:
    from shared.http import HttpRequest


def contact_recommendations(request: HttpRequest, deps: Admin) -> ContactRecommendations:
    n = wanted(request.query.get("n"))
    asked = request.path_parameters.get("contactId", "")
    record = holder(ContactId.parse(asked), deps.contacts)
    if record is None:
        raise NotFound(f"no contact {asked}")
    return ContactRecommendations(
        contact_id=record.contact_id,
        recommendations=for_contact(
            record.recent_products,
            n,
            _reads(deps),
            bought_by(record.contact_id, deps.purchases),
            deps.recommendation_settings,
        ),
    )


def product_recommendations(request: HttpRequest, deps: Admin) -> ProductRecommendations:
    n = wanted(request.query.get("n"))
    product_id = product_id_of(request)
    product, served = for_product(product_id, n, _reads(deps))
    return ProductRecommendations(product_id=product_id, product=product, recommendations=served)


def _reads(deps: Admin) -> ServingReads:
    if deps.recommendations is None:
        raise DependencyUnavailable("recommendations are not configured")
    return deps.recommendations


ROUTES = {
    "GET /admin/contacts/{contactId}/recommendations": contact_recommendations,
    "GET /admin/products/{productId}/recommendations": product_recommendations,
}
