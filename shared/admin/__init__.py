"""The admin API's one entry point: every route it serves, one routes module per area."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from shared.admin import (
    automations,
    backfills,
    campaigns,
    consent,
    contacts,
    deliveries,
    delivery,
    engagement,
    erasure,
    rules,
    search,
    segments,
)
from shared.admin import metrics as lifecycle_metrics
from shared.admin import templates as email_templates
from shared.admin.dependencies import Admin
from shared.errors import NotFound

if TYPE_CHECKING:
    from shared.http import HttpRequest

__all__ = ["ROUTES", "Admin", "dispatch"]

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
    # issue 14: contact search
    **search.ROUTES,
}


def dispatch(request: HttpRequest, deps: Admin) -> BaseModel:
    operation = ROUTES.get(request.route)
    if operation is None:
        raise NotFound(f"no admin route {request.route}")
    return operation(request, deps)
