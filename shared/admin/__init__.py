"""The admin API's one entry point: its dependencies and every route it serves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from shared.admin import contacts, engagement, rules
from shared.clock import Clock
from shared.contacts.views import ContactLog
from shared.errors import NotFound
from shared.scoring.catalogue import RuleRepository
from shared.scoring.decay import Decay
from shared.usecases.engagement import Engagement
from shared.usecases.recording import ContactStore

if TYPE_CHECKING:
    from shared.http import HttpRequest


@dataclass(frozen=True, slots=True)
class Admin:
    contacts: ContactStore
    log: ContactLog
    rules: RuleRepository
    clock: Clock
    decay: Decay
    engagement: Engagement


#: Every admin route; the wiring declares them to API Gateway from here.
ROUTES: dict[str, Callable[[Any, Admin], BaseModel]] = {
    **contacts.ROUTES,
    **rules.ROUTES,
    **engagement.ROUTES,
}


def dispatch(request: HttpRequest, deps: Admin) -> BaseModel:
    operation = ROUTES.get(request.route)
    if operation is None:
        raise NotFound(f"no admin route {request.route}")
    return operation(request, deps)
