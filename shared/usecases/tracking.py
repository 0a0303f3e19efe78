"""The tracking endpoint's use case: accept a request, record its calls once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from shared.clock import Clock
from shared.errors import NotFound, Unauthorized
from shared.scoring.catalogue import RuleSource
from shared.scoring.decay import Decay
from shared.scoring.engine import ScoringContext
from shared.tracking.messages import CALLS_BY_PATH, IGNORED_PATHS, TrackedEvent, parse_calls
from shared.tracking.proofs import Provenance, SourceSecret, Vouched, vouch
from shared.tracking.trust import Source, Trust, authorise
from shared.tracking.wire import Limits, decode_body, parse_json_object, write_key_from
from shared.usecases.rate_limiting import RequestLimiter
from shared.usecases.recording import EventLog, record


class WriteKeyDirectory(Protocol):
    def lookup(self, write_key: str) -> Source | None: ...


class IdentitySecrets(Protocol):
    def secret_for(self, source: str) -> SourceSecret | None: ...


class Telemetry(Protocol):
    def count(self, name: str, value: int) -> None: ...


@dataclass(frozen=True, slots=True)
class Tracking:
    clock: Clock
    write_keys: WriteKeyDirectory
    identity_secrets: IdentitySecrets
    log: EventLog
    rules: RuleSource
    decay: Decay
    telemetry: Telemetry
    limits: Limits = field(default_factory=Limits)
    #: per-key and per-address rate limits; None: none (the runtime always builds one)
    limiter: RequestLimiter | None = None


@dataclass(frozen=True, slots=True)
class TrackingRequest:
    """What tracking reads of a request; the HTTP boundary builds it, so no HTTP type reaches here."""

    path: str
    body: str | None = None
    is_base64: bool = False
    content_type: str | None = None
    content_encoding: str | None = None
    authorization: str | None = None
    #: the address the request came from (never stored or logged; the rate limits hash it)
    client_ip: str | None = None


class Accepted(BaseModel):
    """Exactly what Segment answers: real clients retry anything else."""

    success: Literal[True] = True


def track(request: TrackingRequest, deps: Tracking) -> Accepted:
    """Validate everything first, then write: a rejected request writes nothing."""
    if request.path in IGNORED_PATHS:
        return Accepted()
    if request.path not in CALLS_BY_PATH:
        raise NotFound(f"no tracking route {request.path}")
    raw = decode_body(
        request.body,
        is_base64=request.is_base64,
        content_type=request.content_type,
        content_encoding=request.content_encoding,
        limits=deps.limits,
    )
    payload = parse_json_object(raw)
    write_key = write_key_from(request.authorization, payload)
    source = deps.write_keys.lookup(write_key)
    if source is None:
        raise Unauthorized("unknown or disabled write key")
    now = deps.clock.now()
    if deps.limiter is not None:
        deps.limiter.admit(write_key, source, request.client_ip, now)
    events = parse_calls(
        request.path, payload, received_at=now, limits=deps.limits, vouch=_voucher(source, deps, now)
    )
    authorise(source, events)
    recorded = record(events, deps.log, now, ScoringContext(deps.rules.book(), deps.decay))
    _count_claims(events, deps.telemetry)
    deps.telemetry.count("EventsAccepted", recorded.accepted)
    deps.telemetry.count("EventsDuplicate", recorded.duplicates)
    deps.telemetry.count("MergesRequested", recorded.merges)
    return Accepted()


def _voucher(source: Source, deps: Tracking, now: datetime) -> Callable[[Mapping[str, Any]], Vouched]:
    """How each call's identity is taken: the source's secret is read only if a call has to prove one."""
    server = source.trust is Trust.SERVER
    if server or not source.requires_proof:
        return partial(vouch, server=server, requires_proof=False, secret=None, now=now)
    secret: list[SourceSecret | None] = []

    def checked(call: Mapping[str, Any]) -> Vouched:
        if not secret and call.get("userId") is not None:
            secret.append(deps.identity_secrets.secret_for(source.name))
            if secret[0] is None:
                deps.telemetry.count("IdentitySecretMissing", 1)
        return vouch(call, server=False, requires_proof=True, secret=secret[0] if secret else None, now=now)

    return checked


def _count_claims(events: list[TrackedEvent], telemetry: Telemetry) -> None:
    """Metrics of how many claims were proven and how many were not (never who made them)."""
    verified = sum(event.provenance is Provenance.VERIFIED for event in events)
    unverified = sum(event.provenance is Provenance.UNVERIFIED for event in events)
    if verified:
        telemetry.count("ClaimsVerified", verified)
    if unverified:
        telemetry.count("ClaimsUnverified", unverified)
