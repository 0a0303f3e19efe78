"""The admin API's one entry point: every route it serves, one routes module per area."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from shared.admin import (
    automations,
    backfills,
    campaigns,
    catalog,
    consent,
    contacts,
    deliveries,
    delivery,
    engagement,
    erasure,
    recommendations,
    rules,
    sales,
    scores,
    search,
    segments,
    tags,
)
from shared.admin import metrics as lifecycle_metrics
from shared.admin import templates as email_templates
from shared.admin.access import authorize
from shared.admin.dependencies import Admin
from shared.errors import NotFound

if TYPE_CHECKING:
    from shared.http import HttpRequest

__all__ = ["CONSOLE_PREFIX", "ROUTES", "Admin", "admin_route", "console_route", "dispatch"]

#: issue 14: the console's copy of every admin route, ``/console/admin/...``: in the cloud these accept the
#: console's Cognito sign-in (a JWT), the ``/admin/...`` ones IAM (SigV4). An HTTP API route has one
#: authorizer, so each admin route is declared twice; the handler serves both the same way.
CONSOLE_PREFIX = "/console"

#: Every admin route; the wiring declares them to API Gateway from here.
ROUTES: dict[str, Callable[[Any, Admin], BaseModel]] = {
    **contacts.ROUTES,
    **rules.ROUTES,
    **engagement.ROUTES,
    **automations.ROUTES,
    **email_templates.ROUTES,
    **deliveries.ROUTES,
    # issue 11: feedback (the sending pause, suppressions, erasure)
    **delivery.ROUTES,
    **erasure.ROUTES,
    **consent.ROUTES,
    # issue 13: segments
    **segments.ROUTES,
    # issue 13: campaigns, and automations' holdout reports
    **campaigns.ROUTES,
    # issue 13: lifecycle metrics
    **lifecycle_metrics.ROUTES,
    # issue 13: back-fills by hand
    **backfills.ROUTES,
    # issue 14: the console (tags by hand)
    **tags.ROUTES,
    # issue 14: the sales view (a salesperson's leads)
    **sales.ROUTES,
    # issue 14: the contact card's scores over time
    **scores.ROUTES,
    # issue 14: contact search
    **search.ROUTES,
    # issue 15: the product catalog, and recommendations per contact and per product
    **catalog.ROUTES,
    **recommendations.ROUTES,
}


def console_route(route: str) -> str:
    """The console's copy of an admin route key: ``GET /admin/rules`` -> ``GET /console/admin/rules``."""
    method, path = route.split(" ", 1)
    return f"{method} {CONSOLE_PREFIX}{path}"


def admin_route(route: str) -> str:
    """The admin route a request's route key names, whichever copy it came through (the one place the
    console's prefix is taken off)."""
    method, _, path = route.partition(" ")
    if path.startswith(f"{CONSOLE_PREFIX}/admin/"):
        return f"{method} {path.removeprefix(CONSOLE_PREFIX)}"
    return route


def dispatch(request: HttpRequest, deps: Admin) -> BaseModel:
    route = admin_route(request.route)
    operation = ROUTES.get(route)
    if operation is None:
        raise NotFound(f"no admin route {request.route}")
    authorize(route, request.groups)  # issue 14: a console user's groups (shared.admin.access)
    return operation(request, deps)
