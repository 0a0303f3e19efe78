"""What one run of the campaign planner may do, and what it hands delivery: pure, time passed in.

**The throttle** is a token bucket. A campaign queues at most ``send_rate_per_minute`` delivery requests
per minute. Its allowance clock (``CampaignState.planned_at``; the send's start before the first page)
stands at the moment up to which the allowance is spent: a run may queue ``rate x the minutes from that
clock to now``, rounded down, and each page moves the clock on by the time its requests take at the rate
(``spend``), not to now: what a run leaves unused (a fraction of a request, a run that stopped for time) is
the next run's, so over any stretch the campaign queues the rate times its minutes, never more. The clock
is never further back than ``MAX_CATCH_UP`` (a planner that was stopped for an hour does not send an
hour's worth at once). Held-out contacts are planned too but queue nothing, so they take none of it.

**The request.** One per treated contact, its id ``<contact>#campaign:<id>#<variant>#0``: stable, so the
send ledger makes a page planned twice (a crash before the cursor was saved, two overlapping runs) one
send each; ``automation`` ``campaign:<id>`` and ``occurrence`` the variant, so delivery and feedback know
whose result a send is (``campaign_send``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.campaigns.model import CAMPAIGN_PREFIX, CampaignState, StoredCampaign
from shared.delivery.requests import DeliveryRequest

#: the most minutes of sending one run catches up on
MAX_CATCH_UP = timedelta(minutes=10)


#: the throttle counts in whole microseconds (what a datetime holds): no rounding of floats
MICROSECOND = timedelta(microseconds=1)
MICROSECONDS_PER_MINUTE = 60_000_000


def allowance_clock(state: CampaignState, now: datetime) -> datetime:
    """Up to when the campaign's allowance is spent, brought no further back than ``MAX_CATCH_UP``."""
    since = state.planned_at or state.started_at or state.send_at
    return max(since, now - MAX_CATCH_UP)


def allowance(state: CampaignState, rate_per_minute: int, now: datetime) -> int:
    """How many delivery requests this run may queue: the rate times the minutes from the allowance clock
    to now, rounded down."""
    elapsed = max(now - allowance_clock(state, now), timedelta(0))
    return rate_per_minute * (elapsed // MICROSECOND) // MICROSECONDS_PER_MINUTE


def spend(state: CampaignState, rate_per_minute: int, now: datetime, queued: int) -> datetime:
    """The allowance clock once ``queued`` more requests are queued: moved on by their time at the rate
    (rounded up to the microsecond, so the clock never runs ahead of the rate; ``queued`` within this
    run's ``allowance`` keeps it at or before ``now``)."""
    used = -(-queued * MICROSECONDS_PER_MINUTE // rate_per_minute)
    return allowance_clock(state, now) + used * MICROSECOND


def send_id(contact_id: str, campaign_id: str, arm: str) -> str:
    return f"{contact_id}#{CAMPAIGN_PREFIX}{campaign_id}#{arm}#0"


def delivery_request(campaign: StoredCampaign, contact_id: str, arm: str, now: datetime) -> DeliveryRequest:
    """The request that sends the arm's template to the contact (marketing: consent, suppression, caps,
    quiet hours and the sending pause apply at delivery)."""
    return DeliveryRequest(
        id=send_id(contact_id, campaign.id, arm),
        contact_id=contact_id,
        automation=campaign.subject,
        version=campaign.version,
        occurrence=arm,
        step=0,
        channel=campaign.channel,
        at=now,
        template=campaign.template_of(arm),
        values={"campaign": {"id": campaign.id, "name": campaign.name, "variant": arm}},
        purpose="marketing",
    )


def campaign_send(automation: str, occurrence: str) -> tuple[str, str] | None:
    """(subject, arm) of a campaign's send, from its request's ``automation`` and ``occurrence``; None
    for anything else (an automation's message)."""
    if not automation.startswith(CAMPAIGN_PREFIX) or not occurrence:
        return None
    return automation, occurrence


def campaign_send_of(send_id: str, contact_id: str) -> tuple[str, str] | None:
    """(subject, arm) of a campaign's send, from its request id (what SES events carry back)."""
    prefix = contact_id + "#"
    if not send_id.startswith(prefix):
        return None
    parts = send_id[len(prefix) :].split("#")
    if len(parts) != 3:
        return None
    return campaign_send(parts[0], parts[1])
