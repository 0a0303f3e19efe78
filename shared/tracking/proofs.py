"""Verified identity: a browser call's proof that the site's back-end vouches for its ``userId``.

A browser write key is public, so a page can claim any ``userId``. A source that requires verified
identity has a secret shared with its back-end, which proves each signed-in user to the page in one of
two standard forms (Intercom's "user hash", Braze's SDK authentication):

- ``userHash``: the lower-case hex HMAC-SHA256 of the ``userId`` under the secret; it does not expire,
  so rotating the secret is what retires it;
- ``jwt``: a JSON Web Token signed with HS256 under the secret, whose ``sub`` is the ``userId``, with an
  ``exp`` at most ``MAX_TOKEN_LIFETIME`` after it was issued.

The page attaches the proof to each call as Segment's per-destination option
``integrations.Lifecycle`` (``{"userHash": ...}`` or ``{"jwt": ...}``), which every Segment and
RudderStack SDK passes through unchanged and which the event log never stores (docs/tracking.md,
"Verified identity").

A call whose claim is not proven is kept, under its ``anonymousId`` only: its ``userId`` is recorded as
unverified and never used (``vouch``). Pure: no I/O, time is passed in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

#: Where a proof rides on a call: Segment's per-destination options, ``integrations.<name>``.
DESTINATION = "Lifecycle"
#: How much longer than issued a token may live: a token is a short-lived credential.
MAX_TOKEN_LIFETIME = timedelta(hours=24)
#: Clock difference tolerated between the site's back-end and Lifecycle.
LEEWAY = timedelta(seconds=60)
#: The prefix of the visitor id under which a claim without an ``anonymousId`` is kept: reserved, so a
#: call's own ``anonymousId`` with it is moved under ``ESCAPED_VISITOR``.
UNVERIFIED_VISITOR = "unverified:"
ESCAPED_VISITOR = "visitor:"
_MAX_TOKEN_BYTES = 4096
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
#: An id's limit (``shared.tracking.messages.MAX_ID_BYTES``).
_MAX_VISITOR_BYTES = 512


class Provenance(StrEnum):
    """How far a call's identity can be trusted; kept on each event for automations to check."""

    #: sent with a server write key (the site's back-end)
    SERVER = "server"
    #: a browser call whose ``userId`` carried a valid proof
    VERIFIED = "verified"
    #: a browser call whose identity was not checked: anonymous, or the key does not require proof
    BROWSER = "browser"
    #: a browser call whose ``userId`` claim had no valid proof: kept on the visitor only
    UNVERIFIED = "unverified"


class ProofResult(StrEnum):
    VERIFIED = "verified"
    MISSING = "missing"
    INVALID = "invalid"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class SourceSecret:
    """A source's identity secret; after a rotation the previous one is accepted until ``previous_until``."""

    current: str
    previous: str | None = None
    previous_until: datetime | None = None

    def accepted(self, now: datetime) -> tuple[bytes, ...]:
        keys = [self.current.encode()]
        if self.previous and self.previous_until is not None and now < self.previous_until:
            keys.append(self.previous.encode())
        return tuple(keys)


def user_hash(secret: str, user_id: str) -> str:
    """The ``userHash`` proof of ``user_id``: what the site's back-end computes for its signed-in user."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def proof_of(call: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The proof options a call carries (``integrations.Lifecycle``), if any."""
    integrations = call.get("integrations")
    if not isinstance(integrations, Mapping):
        return None
    options = integrations.get(DESTINATION)
    return options if isinstance(options, Mapping) else None


def check(
    user_id: str, proof: Mapping[str, Any] | None, secret: SourceSecret | None, now: datetime
) -> ProofResult:
    """Whether ``proof`` proves ``user_id`` under the source's secret at ``now``."""
    if not proof:
        return ProofResult.MISSING
    if secret is None:
        return ProofResult.INVALID
    keys = secret.accepted(now)
    hashed = proof.get("userHash")
    if isinstance(hashed, str) and hashed:
        given = hashed.strip().lower().encode()
        for key in keys:
            if hmac.compare_digest(
                hmac.new(key, user_id.encode(), hashlib.sha256).hexdigest().encode(), given
            ):
                return ProofResult.VERIFIED
        return ProofResult.INVALID
    token = proof.get("jwt")
    if isinstance(token, str) and token:
        return _check_token(user_id, token, keys, now)
    return ProofResult.MISSING


def _check_token(user_id: str, token: str, keys: tuple[bytes, ...], now: datetime) -> ProofResult:
    if len(token) > _MAX_TOKEN_BYTES or token.count(".") != 2:
        return ProofResult.INVALID
    header_part, claims_part, signature_part = token.split(".")
    header, claims, signature = _json_part(header_part), _json_part(claims_part), _bytes_part(signature_part)
    if not isinstance(header, dict) or not isinstance(claims, dict) or signature is None:
        return ProofResult.INVALID
    # HS256 only: a token naming another algorithm ("none", or RS256 to be checked with a public key)
    # is refused, not reinterpreted.
    typ = header.get("typ", "JWT")
    if header.get("alg") != "HS256" or not isinstance(typ, str) or typ.upper() != "JWT" or "crit" in header:
        return ProofResult.INVALID
    signed = f"{header_part}.{claims_part}".encode("ascii")
    if not any(
        hmac.compare_digest(hmac.new(key, signed, hashlib.sha256).digest(), signature) for key in keys
    ):
        return ProofResult.INVALID
    if claims.get("sub") != user_id:
        return ProofResult.INVALID
    at = now.timestamp()
    exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf")
    if not _is_time(exp) or any(value is not None and not _is_time(value) for value in (iat, nbf)):
        return ProofResult.INVALID
    leeway, longest = LEEWAY.total_seconds(), MAX_TOKEN_LIFETIME.total_seconds()
    if exp - (iat if iat is not None else at) > longest + leeway or (iat is not None and iat > at + leeway):
        return ProofResult.INVALID  # not short-lived, or issued in the future
    if nbf is not None and at + leeway < nbf:
        return ProofResult.INVALID
    return ProofResult.VERIFIED if at <= exp + leeway else ProofResult.EXPIRED


def _is_time(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1e11


def _bytes_part(part: str) -> bytes | None:
    if not part or not _BASE64URL.fullmatch(part):
        return None
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        return None


def _json_part(part: str) -> Any:
    raw = _bytes_part(part)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


@dataclass(frozen=True, slots=True)
class Vouched:
    """A call as it will be recorded: its identity fields, provenance and the unproven claim, if any."""

    call: Mapping[str, Any]
    provenance: Provenance
    claimed_user_id: str | None = None
    result: ProofResult | None = None


def unchecked(call: Mapping[str, Any]) -> Vouched:
    """A call taken as a browser call whose identity is not checked."""
    return Vouched(call, Provenance.BROWSER)


def vouch(
    call: Mapping[str, Any],
    *,
    server: bool,
    requires_proof: bool,
    secret: SourceSecret | None,
    now: datetime,
) -> Vouched:
    """The call as recorded for its source.

    A server key's calls are trusted. A browser key's call naming a ``userId`` is checked when its key
    requires proof; without a valid one the call is kept under its ``anonymousId`` only (a visitor
    ``unverified:<userId>`` when it has none), with the claim recorded and never used.
    """
    call = _unreserved(call)
    if server:
        return Vouched(call, Provenance.SERVER)
    user_id = _text(call.get("userId"))
    if not requires_proof or user_id is None:
        return Vouched(call, Provenance.BROWSER)
    result = check(user_id, proof_of(call), secret, now)
    if result is ProofResult.VERIFIED:
        return Vouched(call, Provenance.VERIFIED, result=result)
    anonymous = call.get("anonymousId")
    if anonymous is None or (isinstance(anonymous, str) and not anonymous.strip()):
        anonymous = _unverified_visitor(user_id)  # (an id of the wrong type stays, to be refused)
    kept = {**call, "userId": None, "anonymousId": anonymous}
    return Vouched(kept, Provenance.UNVERIFIED, claimed_user_id=user_id, result=result)


def _unreserved(call: Mapping[str, Any]) -> Mapping[str, Any]:
    """The call with an ``anonymousId`` in the reserved ``unverified:`` namespace moved out of it (to
    ``visitor:unverified:...``): only an unproven claim may be kept there, so no call can join, or
    be linked to, the visitor that holds a user's unproven claims."""
    anonymous = call.get("anonymousId")
    if isinstance(anonymous, str) and anonymous.strip().startswith(UNVERIFIED_VISITOR):
        return {**call, "anonymousId": ESCAPED_VISITOR + anonymous.strip()}
    return call


def unverified_visitor(user_id: str) -> str:
    """The visitor that keeps the calls claiming ``user_id`` without proof that came without an
    anonymousId (erasure of the user erases it too)."""
    return _unverified_visitor(user_id)


def _unverified_visitor(user_id: str) -> str:
    visitor = UNVERIFIED_VISITOR + user_id
    if len(visitor.encode("utf-8", "surrogatepass")) <= _MAX_VISITOR_BYTES:
        return visitor
    return UNVERIFIED_VISITOR + hashlib.sha256(user_id.encode("utf-8", "surrogatepass")).hexdigest()


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value).strip() or None
