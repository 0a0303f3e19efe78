"""A campaign: a template sent to a segment, split into variants, with a holdout that receives nothing.

An administrator writes one as JSON (``PUT /admin/campaigns/{id}``); pydantic validates it, so a bad one
is a 400 naming the field (``variants: the splits add up to 90, not 100``). The document is versioned
like an automation; what happens to it (scheduled, sending, sent, cancelled) is its ``CampaignState``,
kept apart, so sending never writes a new version and a version sent names one content for ever.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from shared.automations.catalogue import describe, written_field
from shared.automations.model import Conversion
from shared.errors import Conflict, InvalidRequest, invalid_field
from shared.scoring.rules import RuleId

CampaignId = RuleId
#: a segment's id, as ``/admin/segments`` names it
SegmentId = RuleId
#: a template under ``/admin/templates``
TemplateId = RuleId
VariantId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")]
#: the arm of the contacts held out of a campaign: assigned, recorded, sent nothing
HOLDOUT = "holdout"
MAX_VARIANTS = 10
#: a campaign as stored, at most
MAX_CAMPAIGN_BYTES = 16 * 1024
INVALID = "invalid_campaign"
#: what one campaign may queue per minute, at most (the delivery function's own concurrency is the
#: other throttle)
MAX_SEND_RATE = 100_000


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Variant(_Model):
    """One arm that is sent: its share of the treated contacts (``split``, whole percents; the splits of a
    campaign add up to 100) and, if it differs from the campaign's, its own template."""

    id: VariantId
    split: int = Field(ge=1, le=100)
    template: TemplateId | None = None


def _single_variant() -> tuple[Variant, ...]:
    return (Variant(id="A", split=100),)


class Campaign(_Model):
    """A campaign as an administrator writes it."""

    id: CampaignId
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: str = Field("", max_length=2000)
    segment: SegmentId
    channel: Literal["email", "sms"] = "email"
    #: the template every variant sends unless it names its own
    template: TemplateId
    variants: tuple[Variant, ...] = Field(
        default_factory=_single_variant, min_length=1, max_length=MAX_VARIANTS
    )
    #: this share of the segment (stable per contact and campaign) is held out: recorded, sent nothing
    holdout_percent: float = Field(0, ge=0, le=50)
    conversion: Conversion = Field(default_factory=Conversion)
    #: at most this many delivery requests are queued per minute
    send_rate_per_minute: int = Field(1000, ge=1, le=MAX_SEND_RATE)
    #: when sending starts; None: when sent (``POST /admin/campaigns/{id}/send``)
    send_at: datetime | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Campaign:
        ids = [v.id for v in self.variants]
        if HOLDOUT in (i.lower() for i in ids):
            raise ValueError(f"variants: {HOLDOUT!r} names the contacts held out, not a variant")
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"variants: {repeated[0]!r} is named twice")
        total = sum(v.split for v in self.variants)
        if total != 100:
            raise ValueError(f"variants: the splits add up to {total}, not 100")
        if self.send_at is not None and self.send_at.utcoffset() is None:
            raise ValueError("send_at: give a time zone (2026-12-24T09:00:00Z)")
        return self

    @property
    def subject(self) -> str:
        """What its exposures, sends and results are filed under (``campaign:<id>``)."""
        return campaign_subject(self.id)

    def variant(self, variant_id: str) -> Variant | None:
        return next((v for v in self.variants if v.id == variant_id), None)

    def template_of(self, variant_id: str) -> str:
        variant = self.variant(variant_id)
        return (variant.template if variant is not None else None) or self.template

    @property
    def arms(self) -> tuple[str, ...]:
        """Its variants, then the holdout if it has one."""
        return (*(v.id for v in self.variants), *((HOLDOUT,) if self.holdout_percent > 0 else ()))


class StoredCampaign(Campaign):
    version: int = Field(ge=1)
    updated_at: datetime | None = None


#: what a campaign's exposures are filed under, and the ``automation`` of its delivery requests
CAMPAIGN_PREFIX = "campaign:"
AUTOMATION_PREFIX = "automation:"


def campaign_subject(campaign_id: str) -> str:
    return CAMPAIGN_PREFIX + campaign_id


def automation_subject(automation_id: str) -> str:
    return AUTOMATION_PREFIX + automation_id


def parse_campaign(campaign_id: str, body: Any) -> Campaign:
    """Validate an administrator's campaign; a bad one is a 400 naming the field. ``id`` may be left out
    (the path names it); ``version`` and ``updated_at``, as a GET shows them, are ignored."""
    if not isinstance(body, Mapping):
        raise InvalidRequest("the campaign must be a JSON object", code=INVALID)
    if len(json.dumps(body, separators=(",", ":"), default=str)) > MAX_CAMPAIGN_BYTES:
        raise InvalidRequest(f"campaign: over {MAX_CAMPAIGN_BYTES // 1024} KB", code=INVALID)
    if "id" in body and body["id"] != campaign_id:
        raise InvalidRequest(
            f"id: {body['id']!r} does not match the path ({campaign_id!r})", code=INVALID, field="id"
        )
    fields = {k: v for k, v in body.items() if k not in ("version", "updated_at", "state")}
    try:
        return Campaign.model_validate({**fields, "id": campaign_id})
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        if error["loc"]:
            message = describe(error, body)
            location = written_field(error, body)
        else:  # the campaign's own checks name the field themselves ("variants: ...")
            message = str(error["msg"]).removeprefix("Value error, ")
            location = [message.partition(": ")[0]] if ": " in message else []
        raise invalid_field(error, code=INVALID, location=location, message=message) from None


def stored_campaign(campaign: Campaign, version: int, at: datetime) -> StoredCampaign:
    return StoredCampaign.model_validate({**campaign.model_dump(), "version": version, "updated_at": at})


# --- states -----------------------------------------------------------------------------------------------

Status = Literal["draft", "scheduled", "sending", "sent", "cancelled"]
#: what may follow what (a draft is a campaign without a state; ``sent`` and ``cancelled`` are final)
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "draft": frozenset({"scheduled", "sending"}),
    "scheduled": frozenset({"sending", "cancelled"}),
    "sending": frozenset({"sent", "cancelled"}),
    "sent": frozenset(),
    "cancelled": frozenset(),
}
#: states the planner advances (the live partition holds exactly these)
LIVE: frozenset[str] = frozenset({"scheduled", "sending"})


class CampaignState(BaseModel):
    """What became of a campaign once it was sent: read back from storage, validated."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    campaign_id: CampaignId
    status: Literal["scheduled", "sending", "sent", "cancelled"]
    #: the version of the campaign being sent (frozen when it was sent)
    version: int = Field(ge=1)
    #: when sending starts (the schedule, or the moment it was sent)
    send_at: datetime
    started_at: datetime | None = None
    #: the throttle's clock: up to when the allowance is spent (``started_at`` before its first page;
    #: ``shared.campaigns.planning``)
    planned_at: datetime | None = None
    #: the last member planned (the segment's order); None: from the start
    cursor: str | None = None
    #: contacts assigned (variants and holdout) and delivery requests queued so far
    planned: int = Field(0, ge=0)
    queued: int = Field(0, ge=0)
    finished_at: datetime | None = None
    cancelled_at: datetime | None = None
    #: a planner run works on the campaign until then (its lease: other runs skip it); None: none does
    leased_until: datetime | None = None
    #: counts every write: a write is conditional on the revision it read (two runs: one wins)
    revision: int = Field(0, ge=0)


def check_transition(campaign_id: str, current: Status, target: Status) -> None:
    """A move the state machine does not allow is a Conflict naming both ends."""
    if target not in TRANSITIONS[current]:
        raise Conflict(f"campaign {campaign_id} is {current}; it cannot become {target}")


def status_of(state: CampaignState | None) -> Status:
    return "draft" if state is None else state.status


def sending_state(campaign: StoredCampaign, now: datetime) -> CampaignState:
    """The state a send creates: scheduled for a ``send_at`` still to come, else sending from now."""
    if campaign.send_at is not None and campaign.send_at > now:
        return CampaignState(
            campaign_id=campaign.id, status="scheduled", version=campaign.version, send_at=campaign.send_at
        )
    return CampaignState(
        campaign_id=campaign.id,
        status="sending",
        version=campaign.version,
        send_at=now,
        started_at=now,
        planned_at=now,
    )


def leased(state: CampaignState, now: datetime) -> bool:
    """Whether a planner run holds the campaign now (another run leaves it alone)."""
    return state.leased_until is not None and state.leased_until > now


def started(state: CampaignState, now: datetime) -> CampaignState:
    """A scheduled campaign whose time has come: sending, its throttle counting from its scheduled time
    (or from now, if the planner comes to it later than a minute after)."""
    begin = max(state.send_at, now - timedelta(minutes=1))
    return state.model_copy(update={"status": "sending", "started_at": begin, "planned_at": begin})
