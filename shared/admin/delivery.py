"""Admin operations on delivery's safety switches: the sending pause the reputation alarms throw, and the
suppression list (looked up or added to one address at a time: addresses are kept hashed, so there is
no list to show)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.admin.dependencies import Admin
from shared.errors import InvalidRequest, invalid_field
from shared.http import json_body

if TYPE_CHECKING:
    from shared.http import HttpRequest

#: the reason an administrator's entry is kept under, unless they give one
ADMIN_REASON = "admin"


class DeliveryState(BaseModel):
    """``GET /admin/delivery``: whether marketing sends are paused, why and since when."""

    paused: bool
    reason: str | None = None
    since: datetime | None = None


class SuppressionEntry(BaseModel):
    """``PUT /admin/suppressions``'s body."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: Literal["email", "sms"]
    address: str = Field(
        min_length=3, max_length=320, pattern=r"^\s*(\S+@\S+\.\S+|\+?[0-9][0-9 ().-]{4,30})\s*$"
    )
    reason: str = Field(ADMIN_REASON, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\- ]+$")


class Suppression(BaseModel):
    """Whether an address is suppressed on a channel, and why (the first reason recorded). The address
    itself is not repeated: the list keeps its hash only."""

    channel: Literal["email", "sms"]
    suppressed: bool
    reason: str | None = None


def delivery_state(request: HttpRequest, deps: Admin) -> DeliveryState:
    pause = deps.control.pause()
    if pause is None:
        return DeliveryState(paused=False)
    return DeliveryState(paused=True, reason=pause.reason, since=pause.at)


def resume_delivery(request: HttpRequest, deps: Admin) -> DeliveryState:
    """Clear the pause (whatever set it); harmless when not paused. An alarm still in ALARM does not pause
    again until it goes back to OK and fires anew."""
    deps.control.set_pause(None)
    return DeliveryState(paused=False)


def put_suppression(request: HttpRequest, deps: Admin) -> Suppression:
    body = json_body(request)
    try:
        entry = SuppressionEntry.model_validate(body)
    except ValidationError as exc:
        raise invalid_field(
            exc.errors(include_url=False)[0], code="invalid_suppression", whole="body"
        ) from None
    deps.suppressions.suppress(entry.channel, entry.address, entry.reason, deps.clock.now())
    return Suppression(
        channel=entry.channel,
        suppressed=True,
        reason=deps.suppressions.suppressed(entry.channel, entry.address),
    )


def get_suppression(request: HttpRequest, deps: Admin) -> Suppression:
    channel = request.path_parameters.get("channel", "")
    address = unquote(request.path_parameters.get("address", "")).strip()
    if channel not in ("email", "sms"):
        raise InvalidRequest("channel: must be email or sms", code="invalid_suppression", field="channel")
    if not address:
        raise InvalidRequest("address: missing", code="invalid_suppression", field="address")
    reason = deps.suppressions.suppressed(channel, address)  # type: ignore[arg-type]
    return Suppression(channel=channel, suppressed=reason is not None, reason=reason)  # type: ignore[arg-type]


ROUTES = {
    "GET /admin/delivery": delivery_state,
    "POST /admin/delivery/resume": resume_delivery,
    "PUT /admin/suppressions": put_suppression,
    "GET /admin/suppressions/{channel}/{address}": get_suppression,
}
