"""Admin operations on campaigns under ``/admin/campaigns``: list, read with history and state, store a new
version of a draft, delete a draft, send (now, or at its ``send_at``), cancel, and the results with the
uplift; and an automation's holdout report (``/admin/automations/{id}/results``). ``If-Match: <version>``
makes a change or a send conditional on the version read (409 otherwise)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from shared.admin.dependencies import Admin
from shared.campaigns.model import StoredCampaign, parse_campaign, status_of
from shared.errors import NotFound
from shared.http import if_match_version, json_body
from shared.usecases.campaigns import (
    AutomationResults,
    CampaignResults,
    CampaignView,
    automation_results,
    campaign_results,
    cancel_campaign,
    delete_campaign,
    save_campaign,
    send_campaign,
    view,
)

if TYPE_CHECKING:
    from shared.http import HttpRequest


class CampaignList(BaseModel):
    campaigns: list[CampaignView]


class CampaignDetail(CampaignView):
    #: every stored version, newest first (a deletion is marked by a newer tombstone)
    history: list[StoredCampaign]


class Deleted(BaseModel):
    deleted: str
    version: int


def list_campaigns(request: HttpRequest, deps: Admin) -> CampaignList:
    return CampaignList(campaigns=[view(c, deps.campaign_states) for c in deps.campaigns.stored()])


def get_campaign(request: HttpRequest, deps: Admin) -> CampaignDetail:
    campaign = _current(request, deps)
    state = deps.campaign_states.state(campaign.id)
    return CampaignDetail(
        campaign=campaign,
        status=status_of(state),
        state=state,
        history=deps.campaigns.history(campaign.id),
    )


def put_campaign(request: HttpRequest, deps: Admin) -> StoredCampaign:
    campaign = parse_campaign(_campaign_id(request), json_body(request))
    return save_campaign(campaign, if_match_version(request), **_ports(deps))


def delete(request: HttpRequest, deps: Admin) -> Deleted:
    campaign_id = _campaign_id(request)
    removed = delete_campaign(
        campaign_id,
        if_match_version(request),
        campaigns=deps.campaigns,
        states=deps.campaign_states,
        now=deps.clock.now(),
    )
    return Deleted(deleted=campaign_id, version=removed.version)


def send(request: HttpRequest, deps: Admin) -> CampaignView:
    return send_campaign(_campaign_id(request), if_match_version(request), **_ports(deps))


def cancel(request: HttpRequest, deps: Admin) -> CampaignView:
    return cancel_campaign(
        _campaign_id(request), campaigns=deps.campaigns, states=deps.campaign_states, now=deps.clock.now()
    )


def results(request: HttpRequest, deps: Admin) -> CampaignResults:
    return campaign_results(
        _campaign_id(request),
        campaigns=deps.campaigns,
        states=deps.campaign_states,
        exposures=deps.campaign_results,
    )


def automation_report(request: HttpRequest, deps: Admin) -> AutomationResults:
    automation_id = request.path_parameters.get("automationId", "")
    automation = next((a for a in deps.automations.stored() if a.id == automation_id), None)
    if automation is None:
        raise NotFound(f"no automation {automation_id}")
    return automation_results(automation, deps.campaign_results)


def _ports(deps: Admin) -> dict:
    return {
        "campaigns": deps.campaigns,
        "states": deps.campaign_states,
        "members": deps.segment_members,
        "templates": deps.templates,
        "now": deps.clock.now(),
    }


def _campaign_id(request: HttpRequest) -> str:
    return request.path_parameters.get("campaignId", "")


def _current(request: HttpRequest, deps: Admin) -> StoredCampaign:
    campaign_id = _campaign_id(request)
    found = deps.campaigns.campaign(campaign_id)
    if found is None:
        raise NotFound(f"no campaign {campaign_id}")
    return found


ROUTES = {
    "GET /admin/campaigns": list_campaigns,
    "GET /admin/campaigns/{campaignId}": get_campaign,
    "PUT /admin/campaigns/{campaignId}": put_campaign,
    "DELETE /admin/campaigns/{campaignId}": delete,
    "POST /admin/campaigns/{campaignId}/send": send,
    "POST /admin/campaigns/{campaignId}/cancel": cancel,
    "GET /admin/campaigns/{campaignId}/results": results,
    "GET /admin/automations/{automationId}/results": automation_report,
}
