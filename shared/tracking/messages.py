"""Segment calls: the wire model and its translation into domain events."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from shared.errors import InvalidRequest, PayloadTooLarge
from shared.tracking.behaviours import Behaviour, classify
from shared.tracking.proofs import Provenance, Vouched, unchecked
from shared.tracking.stored import compact, dumps, expanded, kept, provenance_of, with_provenance
from shared.tracking.timestamps import corrected_timestamp, parse_time
from shared.tracking.values import check_values
from shared.tracking.wire import KB, Limits

BATCH = "batch"
#: Every tracking route and what it carries; ``/v1/m`` (client metrics) is accepted and ignored.
CALLS_BY_PATH: Mapping[str, str] = {
    "/v1/identify": "identify",
    "/v1/track": "track",
    "/v1/page": "page",
    "/v1/screen": "screen",
    "/v1/group": "group",
    "/v1/alias": "alias",
    "/v1/batch": BATCH,
    "/v1/import": BATCH,
    "/v1/b": BATCH,
    "/v1/i": "identify",
    "/v1/t": "track",
    "/v1/p": "page",
    "/v1/s": "screen",
    "/v1/g": "group",
    "/v1/a": "alias",
}
IGNORED_PATHS = frozenset({"/v1/m"})
TRACKING_PATHS: tuple[str, ...] = (*CALLS_BY_PATH, *sorted(IGNORED_PATHS))
CALL_TYPES = frozenset(c for c in CALLS_BY_PATH.values() if c != BATCH)
#: Ids become DynamoDB keys (1 KB sort-key limit): 512 bytes of UTF-8 leaves room for prefixes.
MAX_ID_BYTES = 512
MAX_REVENUE = Decimal("1e12")
MAX_TRAIT_NAME = 255
MAX_TAG_LENGTH = 100
#: One call's traits and tags must fit one DynamoDB update expression (4 KB) with room to spare.
MAX_TRAITS = 150
MAX_TAGS = 50
#: Amounts are kept to the millionth: DynamoDB numbers hold 38 digits and nothing below 1e-130.
CENT_FRACTION = Decimal("0.000001")


def _identifier(value: Any) -> str | None:
    """Ids are strings; SDKs sometimes send numbers. Blank means absent."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("must be a string")
    text = str(value).strip()
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode") from None
    if size > MAX_ID_BYTES:
        raise ValueError(f"must be at most {MAX_ID_BYTES} bytes")
    return text or None


Identifier = Annotated[str | None, BeforeValidator(_identifier)]


class SegmentMessage(BaseModel):
    """One Segment call as it arrives. Unknown fields are kept, explicit nulls allowed."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str | None = None
    messageId: Identifier = None
    userId: Identifier = None
    anonymousId: Identifier = None
    previousId: Identifier = None
    groupId: Identifier = None
    event: str | None = None
    name: str | None = None
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    timestamp: str | None = None
    originalTimestamp: str | None = None
    sentAt: str | None = None


@dataclass(frozen=True, slots=True)
class TrackedEvent:
    """A validated call: who, what behaviour, when (in server time), and the stored body."""

    message_id: str
    call: str
    behaviour: Behaviour
    event: str | None
    user_id: str | None
    anonymous_id: str | None
    previous_id: str | None
    group_id: str | None
    timestamp: datetime
    received_at: datetime
    traits: Mapping[str, Any]
    properties: Mapping[str, Any]
    context: Mapping[str, Any]
    context_timezone: str | None
    attributes: Mapping[str, str]
    revenue: Decimal | None
    #: The call as JSON text in its stored form (``shared.tracking.stored``): what the event log keeps.
    body: str
    #: The client's own time for the call (``timestamp``, else ``originalTimestamp``) as sent, not
    #: corrected for clock skew; None if it sent none. Unlike ``timestamp`` it is the same on every
    #: retry of the call.
    stated_time: datetime | None = None
    #: How far its identity can be trusted (``shared.tracking.proofs``).
    provenance: Provenance = Provenance.BROWSER
    #: A ``userId`` the call claimed without proof: recorded, never used (the call is the visitor's).
    claimed_user_id: str | None = None


def parse_calls(
    path: str,
    payload: dict[str, Any],
    *,
    received_at: datetime,
    limits: Limits,
    vouch: Callable[[Mapping[str, Any]], Vouched] = unchecked,
) -> list[TrackedEvent]:
    """Validate every call in the request; raise on the first bad one, naming it.

    ``vouch`` decides how far each call's identity is trusted, and keeps an unproven claim off it."""
    call = CALLS_BY_PATH[path]
    if call != BATCH:
        return [
            _event(
                payload, call, "body", received_at=received_at, batch_sent_at=None, limits=limits, vouch=vouch
            )
        ]
    batch = payload.get("batch")
    if not isinstance(batch, list):
        raise InvalidRequest("batch: must be a list of calls", code="invalid_batch")
    if len(batch) > limits.max_batch_events:
        raise PayloadTooLarge(f"batch: {len(batch)} calls is over the limit of {limits.max_batch_events}")
    check_values({k: v for k, v in payload.items() if k != "batch"}, "body")
    sent_at = _time(payload.get("sentAt"), "sentAt")
    events: list[TrackedEvent] = []
    for index, message in enumerate(batch):
        where = f"batch[{index}]"
        if not isinstance(message, dict):
            raise InvalidRequest(f"{where}: must be a JSON object", code="invalid_event")
        kind = message.get("type")
        if kind not in CALL_TYPES:
            raise InvalidRequest(
                f"{where}.type: must be one of {', '.join(sorted(CALL_TYPES))}, got {str(kind)[:40]!r}",
                code="invalid_event",
            )
        events.append(
            _event(
                message,
                kind,
                where,
                received_at=received_at,
                batch_sent_at=sent_at,
                limits=limits,
                vouch=vouch,
            )
        )
    return events


def _event(
    raw: dict[str, Any],
    call: str,
    where: str,
    *,
    received_at: datetime,
    batch_sent_at: datetime | None,
    limits: Limits,
    vouch: Callable[[Mapping[str, Any]], Vouched],
) -> TrackedEvent:
    sent_call = raw
    vouched = vouch(raw)
    raw = dict(vouched.call)  # what is recorded: an unproven claim is off it
    try:
        message = SegmentMessage.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in error["loc"])
        raise InvalidRequest(f"{where}.{field}: {error['msg']}", code="invalid_event") from None
    _require_identity(message, call, where)
    if call == "track" and not (message.event or "").strip():
        raise InvalidRequest(f"{where}.event: a track call needs an event name", code="invalid_event")
    if call == "group" and not message.groupId:
        raise InvalidRequest(f"{where}.groupId: a group call needs a groupId", code="invalid_event")

    check_values(sent_call, where)
    sent = {k: v for k, v in sent_call.items() if k not in ("writeKey", "sentAt")}
    sent["type"] = call
    # The size limit and the content id are the call as sent (ids stay those of older releases).
    text = dumps(sent)
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidRequest(
            f"{where}: contains invalid Unicode (a lone surrogate)", code="invalid_event"
        ) from None
    if size > limits.max_event_bytes:
        raise PayloadTooLarge(
            f"{where}: the call is over the {limits.max_event_bytes // KB} KB limit per event"
        )

    stated_time = _time(message.timestamp or message.originalTimestamp, f"{where}.timestamp")
    sent_at = _time(message.sentAt, f"{where}.sentAt") or batch_sent_at
    read = kept(raw)
    return _tracked(
        message,
        call,
        where,
        context=read.get("context") or {},
        message_id=message.messageId or _content_id(text),
        timestamp=corrected_timestamp(received_at=received_at, timestamp=stated_time, sent_at=sent_at),
        received_at=received_at,
        stated_time=stated_time,
        body=dumps(with_provenance(compact(read), vouched.provenance, vouched.claimed_user_id)),
        provenance=vouched.provenance,
        claimed_user_id=vouched.claimed_user_id,
    )


def rebuild_event(
    body: str,
    *,
    message_id: str,
    call: str,
    timestamp: datetime,
    received_at: datetime,
    stated_time: datetime | None = None,
) -> TrackedEvent:
    """The event ``parse_calls`` made of a call, from what the event log stored of it.

    ``body`` is the stored body (the compact form, or a call stored whole by an older release); the
    other fields come from the event item. ``stated_time`` is read from the body when it is not given
    and the body still has it. Raises ``ValueError`` when the body is not a stored call.
    """
    try:
        stored = json.loads(body)
    except (ValueError, RecursionError):
        raise ValueError("the stored body is not JSON") from None
    if not isinstance(stored, dict):
        raise ValueError("the stored body is not a JSON object")
    where = f"stored event {message_id[:80]}"
    read = expanded(stored)
    provenance, claimed_user_id = provenance_of(stored)
    try:
        message = SegmentMessage.model_validate(read)
    except ValidationError as exc:
        raise ValueError(f"{where}: {exc.errors(include_url=False)[0]['msg']}") from None
    try:
        if stated_time is None:
            stated = stored.get("timestamp") or stored.get("originalTimestamp")
            stated_time = _time(stated, f"{where}.timestamp") if isinstance(stated, str) else None
        return _tracked(
            message,
            call,
            where,
            context=message.context or {},
            message_id=message_id,
            timestamp=timestamp,
            received_at=received_at,
            stated_time=stated_time,
            body=body,
            provenance=provenance,
            claimed_user_id=claimed_user_id,
        )
    except InvalidRequest as exc:  # a body stored before a check that refuses it now
        raise ValueError(str(exc)) from None


def _tracked(
    message: SegmentMessage,
    call: str,
    where: str,
    *,
    context: dict[str, Any],
    message_id: str,
    timestamp: datetime,
    received_at: datetime,
    stated_time: datetime | None,
    body: str,
    provenance: Provenance = Provenance.BROWSER,
    claimed_user_id: str | None = None,
) -> TrackedEvent:
    """The domain event of a validated call; ``context`` is the one the product reads (``kept``)."""
    properties = message.properties or {}
    classification = classify(call, message.event, properties, context)
    return TrackedEvent(
        message_id=message_id,
        call=call,
        behaviour=classification.behaviour,
        event=(message.event or "").strip() or message.name,
        user_id=message.userId,
        anonymous_id=message.anonymousId,
        previous_id=message.previousId,
        group_id=message.groupId,
        timestamp=timestamp,
        received_at=received_at,
        traits=_traits(call, message, context, where),
        properties=properties,
        context=context,
        context_timezone=context["timezone"] if isinstance(context.get("timezone"), str) else None,
        attributes=classification.attributes,
        revenue=_revenue(classification.behaviour, properties, where),
        body=body,
        stated_time=stated_time,
        provenance=provenance,
        claimed_user_id=claimed_user_id,
    )


def _require_identity(message: SegmentMessage, call: str, where: str) -> None:
    if call == "alias":
        if not (message.userId and message.previousId):
            raise InvalidRequest(
                f"{where}: an alias call needs userId and previousId", code="missing_identity"
            )
    elif not (message.userId or message.anonymousId):
        raise InvalidRequest(f"{where}: one of userId or anonymousId is required", code="missing_identity")


def _traits(call: str, message: SegmentMessage, context: dict[str, Any], where: str) -> Mapping[str, Any]:
    """Identify traits: ``context.traits`` (RudderStack puts them there) overlaid by top-level ``traits``."""
    if call not in ("identify", "group"):
        return {}
    merged: dict[str, Any] = {}
    context_traits = context.get("traits")
    if call == "identify" and context_traits is not None:
        if not isinstance(context_traits, dict):
            raise InvalidRequest(f"{where}.context.traits: must be an object", code="invalid_event")
        merged.update(context_traits)
    merged.update(message.traits or {})
    if len(merged) > MAX_TRAITS:
        raise InvalidRequest(f"{where}.traits: at most {MAX_TRAITS} traits per call", code="invalid_event")
    for name in merged:
        if len(name) > MAX_TRAIT_NAME:
            raise InvalidRequest(
                f"{where}.traits: trait names must be at most {MAX_TRAIT_NAME} characters",
                code="invalid_event",
            )
    tags = merged.get("tags")
    if (
        call == "identify"
        and tags is not None
        and not (
            isinstance(tags, list)
            and len(tags) <= MAX_TAGS
            and all(isinstance(t, str) and 0 < len(t) <= MAX_TAG_LENGTH for t in tags)
        )
    ):
        raise InvalidRequest(
            f"{where}.traits.tags: must be a list of at most {MAX_TAGS} tag names "
            f"(1-{MAX_TAG_LENGTH} characters; '-name' removes)",
            code="invalid_event",
        )
    return merged


def _time(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise InvalidRequest(f"{where}: {exc}", code="invalid_timestamp") from None


def _revenue(behaviour: Behaviour, properties: dict[str, Any], where: str) -> Decimal | None:
    if behaviour not in (Behaviour.PURCHASE, Behaviour.REFUND, Behaviour.ORDER_CANCELLED):
        return None
    for key in ("revenue", "total", "value"):
        value = properties.get(key)
        if value is None or isinstance(value, bool):
            continue
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise InvalidRequest(
                f"{where}.properties.{key}: must be a number", code="invalid_event"
            ) from None
        if not amount.is_finite() or abs(amount) >= MAX_REVENUE:
            raise InvalidRequest(
                f"{where}.properties.{key}: must be a finite amount below 1e12", code="invalid_event"
            )
        amount = amount.quantize(CENT_FRACTION)
        return amount if amount else Decimal(0)
    return None


def _content_id(body: str) -> str:
    """A stable id for a call sent without messageId, so identical replays still dedupe."""
    return "sha256-" + hashlib.sha256(body.encode("utf-8")).hexdigest()[:40]
