"""The tracking endpoint's use case: accept a request, record its calls once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel

from shared.clock import Clock
from shared.errors import NotFound, Unauthorized
from shared.scoring.catalogue import RuleSource
from shared.scoring.decay import Decay
from shared.scoring.engine import ScoringContext
from shared.tracking.messages import BATCH, CALLS_BY_PATH, IGNORED_PATHS, parse_calls
from shared.tracking.proofs import ProofResult, SourceSecret, Vouched, vouch
from shared.tracking.trust import Source, Trust, authorise, refuse_reserved_ids
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
    voucher = _Voucher(source, deps, now)
    events = parse_calls(request.path, payload, received_at=now, limits=deps.limits, vouch=voucher)
    authorise(source, events)
    refuse_reserved_ids(events, batch=CALLS_BY_PATH[request.path] == BATCH)
    recorded = record(events, deps.log, now, ScoringContext(deps.rules.book(), deps.decay))
    voucher.count(deps.telemetry)
    deps.telemetry.count("EventsAccepted", recorded.accepted)
    deps.telemetry.count("EventsDuplicate", recorded.duplicates)
    deps.telemetry.count("MergesRequested", recorded.merges)
    return Accepted()


class _Voucher:
    """How each call's identity is taken for its source; the source's secret is read only if a call has
    to prove a claim. Keeps how the claims it checked came out, for the metrics."""

    #: the metric each outcome of a claim is counted in (never who made it)
    METRICS: ClassVar[Mapping[ProofResult, str]] = {
        ProofResult.VERIFIED: "ClaimsVerified",
        ProofResult.MISSING: "ClaimsWithoutProof",
        ProofResult.INVALID: "ClaimsWithInvalidProof",
        ProofResult.EXPIRED: "ClaimsWithExpiredProof",
    }

    def __init__(self, source: Source, deps: Tracking, now: datetime) -> None:
        self._source, self._deps, self._now = source, deps, now
        self._secret: list[SourceSecret | None] = []
        self.results: Counter[ProofResult] = Counter()

    def __call__(self, call: Mapping[str, Any]) -> Vouched:
        server = self._source.trust is Trust.SERVER
        if server or not self._source.requires_proof:
            return vouch(call, server=server, requires_proof=False, secret=None, now=self._now)
        if not self._secret and call.get("userId") is not None:
            self._secret.append(self._deps.identity_secrets.secret_for(self._source.name))
            if self._secret[0] is None:
                self._deps.telemetry.count("IdentitySecretMissing", 1)
        secret = self._secret[0] if self._secret else None
        vouched = vouch(call, server=False, requires_proof=True, secret=secret, now=self._now)
        if vouched.result is not None:
            self.results[vouched.result] += 1
        return vouched

    def count(self, telemetry: Telemetry) -> None:
        for result, n in self.results.items():
            telemetry.count(self.METRICS[result], n)
