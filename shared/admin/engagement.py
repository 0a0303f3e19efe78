"""Admin operations on engagement: the funnel, the sales team, and accepting a routed lead (SAL)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from shared.admin.dependencies import Admin
from shared.contacts.identity import ContactId
from shared.engagement.funnel import Funnel
from shared.engagement.routing import Salesperson
from shared.errors import Conflict, InvalidRequest, invalid_field
from shared.http import if_match_version, json_body
from shared.usecases.engagement import accept
from shared.usecases.recording import resolve

if TYPE_CHECKING:
    from shared.http import HttpRequest


class FunnelView(BaseModel):
    funnel: Funnel
    #: 0 while the shipped default applies
    version: int


class Team(BaseModel):
    salespeople: list[Salesperson]


class Accepted(BaseModel):
    contact_id: str
    stage: str


def get_funnel(request: HttpRequest, deps: Admin) -> FunnelView:
    funnel, version = deps.funnels.stored_funnel()
    return FunnelView(funnel=funnel, version=version)


def put_funnel(request: HttpRequest, deps: Admin) -> FunnelView:
    funnel = _validated(Funnel, json_body(request), "invalid_funnel")
    _, version = deps.funnels.stored_funnel()
    expected = if_match_version(request)
    if expected is not None and expected != version:
        raise Conflict(f"the funnel is at version {version}, not {expected}")
    deps.funnels.save_funnel(funnel, version + 1, deps.clock.now())
    return FunnelView(funnel=funnel, version=version + 1)


def list_salespeople(request: HttpRequest, deps: Admin) -> Team:
    return Team(salespeople=deps.team.salespeople())


def put_salesperson(request: HttpRequest, deps: Admin) -> Salesperson:
    body = json_body(request)
    person_id = request.path_parameters.get("salespersonId", "")
    if not isinstance(body, dict):
        raise InvalidRequest("the salesperson must be a JSON object", code="invalid_salesperson")
    person = _validated(Salesperson, {**body, "id": person_id}, "invalid_salesperson")
    deps.team.save_salesperson(person, deps.clock.now())
    return person


def delete_salesperson(request: HttpRequest, deps: Admin) -> Team:
    deps.team.remove_salesperson(request.path_parameters.get("salespersonId", ""))
    return Team(salespeople=deps.team.salespeople())


def accept_lead(request: HttpRequest, deps: Admin) -> Accepted:
    """``POST /admin/contacts/{contactId}/accept`` with ``{"salesperson": "<id>"}``."""
    body = json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("salesperson"), str):
        raise InvalidRequest(
            'salesperson: send {"salesperson": "<id>"}', code="invalid_request", field="salesperson"
        )
    contact = resolve(ContactId.parse(request.path_parameters.get("contactId", "")), deps.contacts)
    stage = accept(contact, body["salesperson"], deps.engagement)
    return Accepted(contact_id=str(contact), stage=stage)


def _validated(model: Any, body: Any, code: str) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise invalid_field(exc.errors(include_url=False)[0], code=code, whole="body") from None


ROUTES = {
    "GET /admin/funnel": get_funnel,
    "PUT /admin/funnel": put_funnel,
    "GET /admin/salespeople": list_salespeople,
    "PUT /admin/salespeople/{salespersonId}": put_salesperson,
    "DELETE /admin/salespeople/{salespersonId}": delete_salesperson,
    "POST /admin/contacts/{contactId}/accept": accept_lead,
}
