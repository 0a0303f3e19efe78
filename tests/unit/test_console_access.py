"""issue 14: the console's roles. Every admin route is classified: ``marketers`` may use all of them,
``sales`` only the read-only routes about contacts and leads plus accepting a lead and tagging; a signed-in
user in neither group nothing. Requests without JWT claims (IAM, loopback) are not checked."""

from __future__ import annotations

import pytest

from shared.admin import ROUTES
from shared.admin.access import SALES_ROUTES, allowed_groups, authorize
from shared.errors import Forbidden
from shared.http import HttpRequest

#: What a ``sales`` user may do, as the issue's review asked.
SALES = {
    "GET /admin/contacts",
    "GET /admin/contacts/{contactId}",
    "GET /admin/contacts/{contactId}/automations",
    "GET /admin/contacts/{contactId}/deliveries",
    "GET /admin/contacts/{contactId}/events",
    "GET /admin/contacts/{contactId}/ledger",
    "GET /admin/contacts/{contactId}/scores",
    # issue 15: the card's recommended products
    "GET /admin/contacts/{contactId}/recommendations",
    "POST /admin/contacts/{contactId}/accept",
    "POST /admin/contacts/{contactId}/tags",
    "DELETE /admin/contacts/{contactId}/tags/{tag}",
    "GET /admin/salespeople",
    "GET /admin/salespeople/{salespersonId}/leads",
    "GET /admin/segments",
    "GET /admin/segments/{segmentId}/members",
}
#: Everything else: only ``marketers``. A new admin route must be added to one of these two sets.
MARKETERS_ONLY = {
    "GET /admin/automations",
    "GET /admin/automations/{automationId}",
    "PUT /admin/automations/{automationId}",
    "DELETE /admin/automations/{automationId}",
    "POST /admin/automations/{automationId}/pause",
    "GET /admin/automations/{automationId}/results",
    "POST /admin/automations/{automationId}/resume",
    "POST /admin/backfills/{workflow}",
    "GET /admin/backfills/{workflow}/{name}",
    "GET /admin/campaigns",
    "GET /admin/campaigns/{campaignId}",
    "PUT /admin/campaigns/{campaignId}",
    "DELETE /admin/campaigns/{campaignId}",
    "POST /admin/campaigns/{campaignId}/cancel",
    "GET /admin/campaigns/{campaignId}/results",
    "POST /admin/campaigns/{campaignId}/send",
    "DELETE /admin/contacts/{contactId}",
    "PUT /admin/contacts/{contactId}/consent",
    "GET /admin/delivery",
    "POST /admin/delivery/resume",
    "GET /admin/funnel",
    "PUT /admin/funnel",
    "GET /admin/metrics/cohorts",
    "GET /admin/metrics/customers",
    "GET /admin/metrics/funnel",
    "GET /admin/metrics/nps",
    "GET /admin/metrics/revenue",
    "GET /admin/metrics/stages",
    "GET /admin/rules",
    "GET /admin/rules/{ruleId}",
    "PUT /admin/rules/{ruleId}",
    "DELETE /admin/rules/{ruleId}",
    "PUT /admin/salespeople/{salespersonId}",
    "DELETE /admin/salespeople/{salespersonId}",
    "GET /admin/segments/{segmentId}",
    "PUT /admin/segments/{segmentId}",
    "DELETE /admin/segments/{segmentId}",
    "GET /admin/segments/{segmentId}/count",
    "POST /admin/segments/{segmentId}/pause",
    "POST /admin/segments/{segmentId}/resume",
    "PUT /admin/suppressions",
    "GET /admin/suppressions/{channel}/{address}",
    "GET /admin/templates",
    "GET /admin/templates/{templateId}",
    "PUT /admin/templates/{templateId}",
    "DELETE /admin/templates/{templateId}",
    "POST /admin/templates/{templateId}/preview",
    # issue 15: the catalog, and a product's "bought together"
    "GET /admin/catalog/products",
    "GET /admin/catalog/products/{productId}",
    "PUT /admin/catalog/products/{productId}",
    "DELETE /admin/catalog/products/{productId}",
    "GET /admin/catalog/settings",
    "PUT /admin/catalog/settings",
    "GET /admin/products/{productId}/recommendations",
}


def test_every_admin_route_is_classified() -> None:
    assert not SALES & MARKETERS_ONLY
    assert set(ROUTES) == SALES | MARKETERS_ONLY, "classify a new admin route in shared/admin/access.py"
    assert SALES_ROUTES == SALES  # and nothing in the policy names a route that does not exist


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_marketers_may_use_every_route_and_sales_only_theirs(route: str) -> None:
    authorize(route, ("marketers",))
    authorize(route, ("sales", "marketers"))
    if route in SALES:
        authorize(route, ("sales",))
        assert allowed_groups(route) == ("marketers", "sales")
    else:
        with pytest.raises(Forbidden) as refused:
            authorize(route, ("sales",))
        assert refused.value.code == "forbidden"
        assert "needs the console group marketers;" in refused.value.message


@pytest.mark.parametrize("groups", [(), ("admins",), ("Marketers",)])
def test_a_user_in_neither_group_may_do_nothing(groups: tuple[str, ...]) -> None:
    for route in ROUTES:
        with pytest.raises(Forbidden) as refused:
            authorize(route, groups)
        assert route in refused.value.message
    with pytest.raises(Forbidden) as refused:
        authorize("GET /admin/contacts/{contactId}", groups)
    assert "marketers or sales" in refused.value.message


def test_a_request_without_a_token_is_not_checked() -> None:
    for route in ROUTES:
        authorize(route, None)


def event(claims: dict | None) -> dict:
    context: dict = {"http": {"method": "GET", "path": "/console/admin/rules"}}
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": claims, "scopes": ["openid"]}}
    return {"routeKey": "GET /console/admin/rules", "requestContext": context}


@pytest.mark.parametrize(
    ("claim", "groups"),
    [
        ("[marketers sales]", ("marketers", "sales")),  # how an HTTP API renders a list claim
        ("[sales]", ("sales",)),
        ("[]", ()),
        ("", ()),
        ('["marketers","sales"]', ("marketers", "sales")),
        ("marketers,sales", ("marketers", "sales")),
        (["sales", "marketers"], ("sales", "marketers")),
        ("[sales sales]", ("sales",)),
    ],
)
def test_the_groups_claim_is_read_however_it_is_rendered(claim: object, groups: tuple[str, ...]) -> None:
    request = HttpRequest.from_api_gateway(event({"sub": "u-1", "cognito:groups": claim}))
    assert request.groups == groups


def test_a_token_without_groups_and_a_request_without_a_token_differ() -> None:
    assert HttpRequest.from_api_gateway(event({"sub": "u-1", "username": "u-1"})).groups == ()
    assert HttpRequest.from_api_gateway(event(None)).groups is None
