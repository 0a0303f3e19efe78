"""Admin operations on automations under ``/admin/automations``: list, read with history, store a new
version, delete, pause and resume. ``If-Match: <version>`` makes a change conditional (409 otherwise)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from shared.admin.dependencies import Admin
from shared.automations.catalogue import parse_automation, with_paused
from shared.automations.model import StoredAutomation
from shared.errors import NotFound
from shared.http import if_match_version, json_body
from shared.versioning import expect_version

if TYPE_CHECKING:
    from shared.http import HttpRequest


class AutomationList(BaseModel):
    automations: list[StoredAutomation]


class AutomationDetail(BaseModel):
    automation: StoredAutomation
    #: every stored version, newest first (a deletion is marked by a newer tombstone)
    history: list[StoredAutomation]


class Deleted(BaseModel):
    deleted: str
    version: int


def list_automations(request: HttpRequest, deps: Admin) -> AutomationList:
    return AutomationList(automations=deps.automations.stored())


def get_automation(request: HttpRequest, deps: Admin) -> AutomationDetail:
    automation = _current(request, deps)
    return AutomationDetail(automation=automation, history=deps.automations.history(automation.id))


def put_automation(request: HttpRequest, deps: Admin) -> StoredAutomation:
    automation = parse_automation(_automation_id(request), json_body(request))
    return deps.automations.save(automation, deps.clock.now(), if_match_version(request))


def delete_automation(request: HttpRequest, deps: Admin) -> Deleted:
    automation_id = _automation_id(request)
    removed = deps.automations.remove(automation_id, deps.clock.now(), if_match_version(request))
    return Deleted(deleted=automation_id, version=removed.version)


def pause_automation(request: HttpRequest, deps: Admin) -> StoredAutomation:
    return _set_paused(request, deps, paused=True)


def resume_automation(request: HttpRequest, deps: Admin) -> StoredAutomation:
    return _set_paused(request, deps, paused=False)


def _set_paused(request: HttpRequest, deps: Admin, *, paused: bool) -> StoredAutomation:
    """A new version paused (or resumed); one already so is returned as it is. The change is made
    against the version read, so an edit in between is a Conflict rather than undone."""
    current = _current(request, deps)
    expected = if_match_version(request)
    expect_version("automation", current.id, current.version, expected)
    if current.paused == paused:
        return current
    return deps.automations.save(with_paused(current, paused), deps.clock.now(), current.version)


def _automation_id(request: HttpRequest) -> str:
    return request.path_parameters.get("automationId", "")


def _current(request: HttpRequest, deps: Admin) -> StoredAutomation:
    automation_id = _automation_id(request)
    found = next((a for a in deps.automations.stored() if a.id == automation_id), None)
    if found is None:
        raise NotFound(f"no automation {automation_id}")
    return found


ROUTES = {
    "GET /admin/automations": list_automations,
    "GET /admin/automations/{automationId}": get_automation,
    "PUT /admin/automations/{automationId}": put_automation,
    "DELETE /admin/automations/{automationId}": delete_automation,
    "POST /admin/automations/{automationId}/pause": pause_automation,
    "POST /admin/automations/{automationId}/resume": resume_automation,
}
