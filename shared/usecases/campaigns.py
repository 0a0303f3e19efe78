"""Campaigns: sending one to a segment through delivery, throttled and resumable, and counting its results.

**Planning** (the ``campaigns`` function, every minute): the live campaigns (a Query of the partition that
holds only scheduled and sending ones); for each that is due, pages of the segment's members from the
saved cursor, each contact assigned an arm (``shared.campaigns.assignment``) and **exposed** (an item in
their partition, written once, counted ``assigned`` in the same write), a delivery request queued per
treated contact (``<contact>#campaign:<id>#<arm>#0``: the send ledger makes it one send), then the cursor
saved on condition the state is still the one read. So:

- a run queues at most the campaign's rate times the minutes its allowance clock is behind, and moves
  that clock on by what it queued, so unused allowance carries over (``shared.campaigns.planning``);
- a crash leaves the cursor before the page it was on: the next run plans that page again, and finds the
  exposures written (skipped) and the requests sent (the ledger's);
- a run first claims the campaign: a **lease** in its state (a conditional write; until the run's
  deadline, when Lambda would stop it), given back with the run's last save. Another run skips a leased
  campaign, so overlapping runs (one a minute, each up to 300 s) plan different campaigns, never the
  same page twice; a run that dies holds it until its deadline;
- should two runs plan at once all the same (a lease that ran out under a run still working), the
  second cursor save fails its condition and that run stops: one effect;
- a cancel writes the state (revision + 1): the planner's next save fails and it stops; requests already
  queued are skipped by delivery (``campaign_cancelled``, a cached read of the state).

**Counting**: delivery counts ``sent``, feedback ``delivered``, ``opened`` and ``clicked`` (from the
request's id, which names the campaign and arm), and the events stream ``converted`` and
``unsubscribed`` (``count_conversions``); each once per exposure (``Exposures.count``). Automations with
a holdout expose their contacts too (``acted`` or ``held_out``), and their conversions count the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from pydantic import BaseModel

from shared.automations.book import AutomationBook
from shared.automations.model import Conversion, StoredAutomation
from shared.campaigns.assignment import arm_of
from shared.campaigns.model import (
    HOLDOUT,
    LIVE,
    Campaign,
    CampaignState,
    StoredCampaign,
    automation_subject,
    check_transition,
    leased,
    sending_state,
    started,
    status_of,
)
from shared.campaigns.planning import allowance, campaign_send, campaign_send_of, delivery_request, spend
from shared.campaigns.ports import CampaignRepository, CampaignStates, DeliveryQueue, Exposures, Templates
from shared.campaigns.results import ACTED, HELD_OUT, Exposure, Measure, ResultsReport, exposure, report
from shared.clock import Clock
from shared.contacts.consent import consent_changes
from shared.contacts.identity import ContactId
from shared.delivery.requests import DeliveryRequest
from shared.errors import Conflict, InvalidRequest, NotFound
from shared.segments.members import SegmentMembers
from shared.tracking.behaviours import LEDGER_CALL
from shared.tracking.messages import TrackedEvent
from shared.versioning import expect_version

#: members read per page (and planned per transaction batch); a page is saved before the next is read
PAGE_SIZE = 500
#: the planner stops taking pages with this much of its run's time left (the rest is the next run's)
SAFETY_SECONDS = 20.0
#: tries of a cancel that races the planner's cursor saves
CANCEL_TRIES = 5
#: a run's lease outlasts its deadline by this much (clocks of two runs may differ a little)
LEASE_MARGIN = timedelta(seconds=10)
#: a run's lease when it has no deadline (called without ``time_left``): the function's timeout, and more
LEASE_WITHOUT_DEADLINE = timedelta(minutes=6)
INVALID = "invalid_campaign"


class Telemetry(Protocol):
    def count(self, name: str, value: int) -> None: ...

    def failure(self, what: str) -> None: ...


# --- planning ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Campaigning:
    """The campaigns function: what it plans from and hands to."""

    clock: Clock
    campaigns: CampaignRepository
    states: CampaignStates
    members: SegmentMembers
    exposures: Exposures
    queue: DeliveryQueue
    telemetry: Telemetry
    page_size: int = PAGE_SIZE


@dataclass(frozen=True, slots=True)
class Advanced:
    """What one planner run did: campaigns looked at, contacts planned, requests queued, finished."""

    campaigns: int = 0
    planned: int = 0
    queued: int = 0
    finished: int = 0

    def __add__(self, other: Advanced) -> Advanced:
        return Advanced(
            self.campaigns + other.campaigns,
            self.planned + other.planned,
            self.queued + other.queued,
            self.finished + other.finished,
        )


def advance_campaigns(deps: Campaigning, time_left: Callable[[], float] | None = None) -> Advanced:
    """Every live campaign that is due, each on its own: one that fails is logged and left to the next run."""
    done = Advanced()
    for live in deps.states.live():
        if time_left is not None and time_left() < SAFETY_SECONDS:
            deps.telemetry.count("CampaignsLeftForNextRun", 1)
            break
        try:
            done += advance(live.campaign_id, deps, time_left)
        except Exception:  # noqa: BLE001 - isolate the failure to this campaign; its cursor is where it was
            deps.telemetry.count("CampaignRunsFailed", 1)
            deps.telemetry.failure("a campaign's planning failed; the next run resumes it")
    deps.telemetry.count("CampaignContactsPlanned", done.planned)
    deps.telemetry.count("CampaignRequestsQueued", done.queued)
    return done


def advance(campaign_id: str, deps: Campaigning, time_left: Callable[[], float] | None = None) -> Advanced:
    """Plan as much of one campaign as its throttle allows now, under a lease on its state (see the
    module's docstring)."""
    now = deps.clock.now()
    state = deps.states.state(campaign_id)
    if state is None or state.status not in LIVE:
        return Advanced()
    if state.status == "scheduled" and state.send_at > now:
        return Advanced()
    if leased(state, now):
        deps.telemetry.count("CampaignRunsSkippedLeased", 1)  # another run is planning it
        return Advanced(campaigns=1)
    campaign = deps.campaigns.version(campaign_id, state.version)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} version {state.version} is not stored")
    begun = started(state, now) if state.status == "scheduled" else state
    budget = allowance(begun, campaign.send_rate_per_minute, now)
    if budget == 0:
        if begun is not state and not deps.states.write(begun, state.revision):
            deps.telemetry.count("CampaignRunsSuperseded", 1)  # another run started it
        return Advanced(campaigns=1)  # nothing to queue yet: no lease taken
    lease = now + lease_length(time_left)
    claimed = begun.model_copy(update={"leased_until": lease})
    if not deps.states.write(claimed, state.revision):
        deps.telemetry.count("CampaignRunsSuperseded", 1)  # another run claimed it first, or a cancel
        return Advanced(campaigns=1)
    state = claimed.model_copy(update={"revision": state.revision + 1})
    try:
        done, held = _plan(campaign, state, budget, deps, now, time_left)
    except Exception:
        _release_after_failure(campaign_id, lease, deps)
        raise
    if held is not None:  # it stopped for its allowance or time: the next run need not wait for the lease
        deps.states.write(held.model_copy(update={"leased_until": None}), held.revision)
    return done


def lease_length(time_left: Callable[[], float] | None) -> timedelta:
    """How long a run holds a campaign: until the function's timeout stops it (so a run that dies holding
    it holds it no longer than it could have lived), and a margin for clocks."""
    if time_left is None:
        return LEASE_WITHOUT_DEADLINE
    return timedelta(seconds=max(time_left(), 0.0)) + LEASE_MARGIN


def _plan(
    campaign: StoredCampaign,
    state: CampaignState,
    budget: int,
    deps: Campaigning,
    now: datetime,
    time_left: Callable[[], float] | None,
) -> tuple[Advanced, CampaignState | None]:
    """Pages of the segment from the cursor until the allowance is spent, time runs out or the segment
    ends; what it did, and the state it last saved if it still holds the lease (None: the send finished,
    which released it, or the state changed under it)."""
    planned = queued = 0
    while budget > 0:
        if time_left is not None and time_left() < SAFETY_SECONDS:
            break
        cursor = state.cursor
        # a page may come back short, or empty with a cursor further on (the members adapter reads its
        # index partitions in turn): the loop goes on until the allowance is spent or the segment ends
        page = deps.members.page(campaign.segment, cursor, min(deps.page_size, budget))
        arms = [
            (contact, arm_of(campaign.id, contact, campaign.holdout_percent, campaign.variants))
            for contact in page.contact_ids
        ]
        if arms:
            deps.exposures.expose(
                [
                    exposure(contact, campaign.subject, arm, now, campaign.conversion, campaign.channel)
                    for contact, arm in arms
                ]
            )
        requests = [delivery_request(campaign, contact, arm, now) for contact, arm in arms if arm != HOLDOUT]
        if requests:
            deps.queue.enqueue(requests)
        finished = page.after is None
        saved = state.model_copy(
            update={
                "cursor": page.after if not finished else state.cursor,
                "planned": state.planned + len(arms),
                "queued": state.queued + len(requests),
                "planned_at": spend(state, campaign.send_rate_per_minute, now, len(requests)),
                **({"status": "sent", "finished_at": now, "leased_until": None} if finished else {}),
            }
        )
        if not deps.states.write(saved, state.revision):
            # cancelled, or another run saved first (its lease outlived): it (or nobody) goes on from there
            deps.telemetry.count("CampaignRunsSuperseded", 1)
            return Advanced(1, planned + len(arms), queued + len(requests)), None
        state = saved.model_copy(update={"revision": state.revision + 1})
        planned += len(arms)
        queued += len(requests)
        budget -= len(requests)
        if finished:
            return Advanced(1, planned, queued, 1), None
        if not page.contact_ids and page.after == cursor:
            break  # a page that neither planned nor moved on: nothing more to read now
    return Advanced(1, planned, queued), state


def _release_after_failure(campaign_id: str, lease: datetime, deps: Campaigning) -> None:
    """A run that failed gives its lease back if it still holds it (the next minute's run need not wait
    for it to run out); if that fails too, the lease runs out."""
    try:
        held = deps.states.state(campaign_id)
        if held is not None and held.status in LIVE and held.leased_until == lease:
            deps.states.write(held.model_copy(update={"leased_until": None}), held.revision)
    except Exception:  # noqa: BLE001 - the failure that matters is the one being raised
        deps.telemetry.count("CampaignLeasesLeftToRunOut", 1)


# --- the admin's actions -----------------------------------------------------------------------------------


class CampaignView(BaseModel):
    """A campaign with its status and what its send did so far (``GET /admin/campaigns/{id}``)."""

    campaign: StoredCampaign
    status: Literal["draft", "scheduled", "sending", "sent", "cancelled"]
    state: CampaignState | None = None


class CampaignResults(BaseModel):
    campaign: StoredCampaign
    status: Literal["draft", "scheduled", "sending", "sent", "cancelled"]
    results: ResultsReport


def view(campaign: StoredCampaign, states: CampaignStates) -> CampaignView:
    state = states.state(campaign.id)
    return CampaignView(campaign=campaign, status=status_of(state), state=state)


def check_audience(campaign: Campaign, members: SegmentMembers, templates: Templates) -> None:
    """A campaign may only go to a segment with members, with templates that exist: else a 400 naming
    which (nothing is stored or sent)."""
    for template in dict.fromkeys(
        [campaign.template, *(v.template for v in campaign.variants if v.template)]
    ):
        if templates.template(template) is None:
            raise InvalidRequest(
                f"template: no template {template!r} (store it under /admin/templates first)", code=INVALID
            )
    if not has_members(members, campaign.segment):
        raise InvalidRequest(
            f"segment: {campaign.segment!r} has no members: a campaign to an empty segment sends nothing",
            code="empty_segment",
        )


def has_members(members: SegmentMembers, segment_id: str) -> bool:
    """Whether the segment has at least one member: pages of one from the start until a member or the
    end (the admin function's path: never a count of every member, which takes O(members) requests). A
    page may come back empty with a cursor further on (the adapter reads its index partitions in turn):
    that is followed, so long as it moves."""
    after: str | None = None
    while True:
        page = members.page(segment_id, after, 1)
        if page.contact_ids:
            return True
        if page.after is None or page.after == after:
            return False
        after = page.after


def save_campaign(
    campaign: Campaign,
    expected_version: int | None,
    *,
    campaigns: CampaignRepository,
    states: CampaignStates,
    members: SegmentMembers,
    templates: Templates,
    now: datetime,
) -> StoredCampaign:
    """Store a new version of a draft (a campaign once sent keeps the version it sent)."""
    state = states.state(campaign.id)
    if state is not None:
        raise Conflict(f"campaign {campaign.id} is {state.status}; only a draft can be changed")
    check_audience(campaign, members, templates)
    return campaigns.save(campaign, now, expected_version)


def delete_campaign(
    campaign_id: str,
    expected_version: int | None,
    *,
    campaigns: CampaignRepository,
    states: CampaignStates,
    now: datetime,
) -> StoredCampaign:
    state = states.state(campaign_id)
    if state is not None:
        raise Conflict(f"campaign {campaign_id} is {state.status}; only a draft can be deleted")
    return campaigns.remove(campaign_id, now, expected_version)


def send_campaign(
    campaign_id: str,
    expected_version: int | None,
    *,
    campaigns: CampaignRepository,
    states: CampaignStates,
    members: SegmentMembers,
    templates: Templates,
    now: datetime,
) -> CampaignView:
    """Schedule the current version (its ``send_at`` still to come) or start sending it now. Sending a
    campaign already scheduled or sending answers its state as it is; a sent or cancelled one is a
    Conflict; a campaign to an empty segment a 400 that changes nothing."""
    campaign = _current(campaign_id, campaigns)
    expect_version("campaign", campaign_id, campaign.version, expected_version)
    state = states.state(campaign_id)
    if state is not None and state.status in LIVE:
        return CampaignView(campaign=campaign, status=state.status, state=state)
    first = sending_state(campaign, now)
    check_transition(campaign_id, status_of(state), first.status)
    check_audience(campaign, members, templates)
    if not states.create(first):
        raise Conflict(f"campaign {campaign_id} was sent meanwhile; read it again")
    return view(campaign, states)


def cancel_campaign(
    campaign_id: str, *, campaigns: CampaignRepository, states: CampaignStates, now: datetime
) -> CampaignView:
    """Stop a scheduled or sending campaign: the planner plans no more of it, and delivery skips what it
    had queued (``campaign_cancelled``). Cancelling a cancelled one answers it as it is."""
    for _ in range(CANCEL_TRIES):
        state = states.state(campaign_id)
        if state is None:
            _current(campaign_id, campaigns)
            raise Conflict(f"campaign {campaign_id} is a draft; there is nothing to cancel")
        stored = campaigns.version(campaign_id, state.version) or _current(campaign_id, campaigns)
        if state.status == "cancelled":
            return CampaignView(campaign=stored, status="cancelled", state=state)
        check_transition(campaign_id, state.status, "cancelled")
        cancelled = state.model_copy(update={"status": "cancelled", "cancelled_at": now})
        if states.write(cancelled, state.revision):
            return view(stored, states)
    raise Conflict(f"campaign {campaign_id} kept changing; try again")


def campaign_results(
    campaign_id: str, *, campaigns: CampaignRepository, states: CampaignStates, exposures: Exposures
) -> CampaignResults:
    """Per variant, all treated and the holdout, with the uplift, for the version sent (or the draft)."""
    state = states.state(campaign_id)
    campaign = (campaigns.version(campaign_id, state.version) if state else None) or _current(
        campaign_id, campaigns
    )
    found = report(
        campaign.subject,
        exposures.counts(campaign.subject),
        [v.id for v in campaign.variants],
        HOLDOUT if campaign.holdout_percent > 0 else None,
        campaign.conversion,
        {v.id: f"Variant {v.id}" for v in campaign.variants},
    )
    return CampaignResults(campaign=campaign, status=status_of(state), results=found)


class AutomationResults(BaseModel):
    automation: str
    holdout_percent: float
    results: ResultsReport


def automation_results(automation: StoredAutomation, exposures: Exposures) -> AutomationResults:
    """Contacts acted on against those held out, with the uplift (``GET /admin/automations/{id}/results``)."""
    subject = automation_subject(automation.id)
    counts = exposures.counts(subject)
    holdout = HELD_OUT if automation.holdout_percent > 0 or HELD_OUT in counts else None
    found = report(
        subject, counts, [ACTED], holdout, automation.conversion or Conversion(), {ACTED: "Acted on"}
    )
    return AutomationResults(
        automation=automation.id, holdout_percent=automation.holdout_percent, results=found
    )


def _current(campaign_id: str, campaigns: CampaignRepository) -> StoredCampaign:
    found = campaigns.campaign(campaign_id)
    if found is None:
        raise NotFound(f"no campaign {campaign_id}")
    return found


# --- counting ----------------------------------------------------------------------------------------------


def count_send(exposures: Exposures, request: DeliveryRequest, measure: Measure, at: datetime) -> bool:
    """Count a campaign's send (delivery: ``sent``), once; anything else is not a campaign's."""
    found = campaign_send(request.automation, request.occurrence)
    if found is None:
        return False
    subject, arm = found
    return exposures.count(request.contact_id, subject, arm, measure, at)


def count_feedback(
    exposures: Exposures, contact_id: str, send_id: str, measure: Measure, at: datetime
) -> bool:
    """Count what SES reported of a campaign's email (``delivered``, ``opened``, ``clicked``), once."""
    found = campaign_send_of(send_id, contact_id)
    if found is None:
        return False
    subject, arm = found
    return exposures.count(contact_id, subject, arm, measure, at)


class AutomationSource(Protocol):
    def book(self) -> AutomationBook: ...


class CampaignSource(Protocol):
    def book(self) -> object: ...


@dataclass(frozen=True, slots=True)
class Converting:
    """The events stream's look at conversions and unsubscribes (in the automation_events function)."""

    campaigns: CampaignRepository
    automations: AutomationSource
    exposures: Exposures
    telemetry: Telemetry


def measured_behaviours(deps: Converting) -> frozenset[str]:
    """Behaviours some campaign or holdout automation counts as a conversion (both books are cached)."""
    found = set(deps.campaigns.book().behaviours)
    for automation in deps.automations.book():
        if automation.holdout_percent > 0:
            found.add((automation.conversion or Conversion()).behaviour)
    return frozenset(found)


def count_conversions(contact: ContactId, event: TrackedEvent, deps: Converting) -> int:
    """A recorded event: a conversion for each of the contact's exposures whose behaviour it is, within
    their windows, and an unsubscribe for those on a channel it revokes; each counted once. Only events
    that can count read the contact's exposures (one Query)."""
    if event.call == LEDGER_CALL:
        return 0
    revoked = {c.channel for c in consent_changes(event) if c.kind == "revoked"}
    converts = event.behaviour in measured_behaviours(deps)
    if not converts and not revoked:
        return 0
    counted = 0
    for seen in deps.exposures.exposures(str(contact)):
        if not seen.within(event.timestamp):
            continue
        if converts and seen.behaviour == event.behaviour and "converted" not in seen.counted:
            counted += _count(deps, seen, "converted", event.timestamp)
        if (
            revoked
            and (seen.channel is None or seen.channel in revoked)
            and "unsubscribed" not in seen.counted
        ):
            counted += _count(deps, seen, "unsubscribed", event.timestamp)
    if counted:
        deps.telemetry.count("CampaignResultsCounted", counted)
    return counted


def _count(deps: Converting, seen: Exposure, measure: Measure, at: datetime) -> int:
    return int(deps.exposures.count(seen.contact_id, seen.subject, seen.arm, measure, at, windowed=True))


def automation_exposure(
    contact_id: str, automation: StoredAutomation, status: str, now: datetime
) -> Exposure:
    """An automation run's contact, exposed to it (``acted`` or ``held_out``): its first run counts."""
    arm = HELD_OUT if status == "held_out" else ACTED
    return exposure(
        contact_id, automation_subject(automation.id), arm, now, automation.conversion or Conversion()
    )
