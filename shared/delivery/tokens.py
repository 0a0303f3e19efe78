"""Signed link tokens: who the link is for, what it does, until when, and an HMAC-SHA256 over that.

``<payload>.<signature>``, both base64url without padding; the payload is compact JSON
(``p`` purpose, ``c`` contact id, ``ch`` channel, ``e`` expiry in Unix seconds, ``i`` when it was issued:
an unsubscribe link replayed after the contact opted in again must not undo that; issue 15: an NPS survey's
answer link also carries ``s``, the survey's id, and ``n``, the score it answers). The secret lives in
AWS (Secrets Manager) and is passed in; a token signed with another secret, changed in any byte, or
past its expiry is refused. Pure: no clock, no storage.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

Purpose = Literal["unsubscribe", "confirm", "nps"]
#: longer tokens are refused before any work (a link is never this long)
MAX_TOKEN_LENGTH = 2048


class InvalidToken(ValueError):
    """Forged, damaged or for something else."""


class ExpiredToken(ValueError):
    """Genuine, but past its expiry."""


@dataclass(frozen=True, slots=True)
class LinkClaims:
    purpose: Purpose
    contact_id: str
    channel: str
    expires: datetime
    #: when the link was made (None: a token without it, which every check treats as old)
    issued: datetime | None = None
    #: issue 15: an NPS answer link's survey (the survey template's id) and the score it answers (0 to 10)
    survey: str | None = None
    score: int | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest())


def sign(secret: bytes, claims: LinkClaims) -> str:
    body = {
        "p": claims.purpose,
        "c": claims.contact_id,
        "ch": claims.channel,
        "e": int(claims.expires.timestamp()),
        **({"i": int(claims.issued.timestamp())} if claims.issued is not None else {}),
        **({"s": claims.survey} if claims.survey is not None else {}),
        **({"n": claims.score} if claims.score is not None else {}),
    }
    payload = _b64(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    return f"{payload}.{_mac(secret, payload)}"


def verify(secret: bytes, token: str, purpose: Purpose, now: datetime) -> LinkClaims:
    """The token's claims, if ``secret`` signed it for ``purpose`` and it has not expired."""
    if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise InvalidToken("not a link token")
    payload, signature = token.split(".")
    if not hmac.compare_digest(signature, _mac(secret, payload)):
        raise InvalidToken("the link's signature does not match")
    try:
        body = json.loads(_unb64(payload))
        claims = LinkClaims(
            purpose=body["p"],
            contact_id=str(body["c"]),
            channel=str(body["ch"]),
            expires=datetime.fromtimestamp(int(body["e"]), UTC),
            issued=datetime.fromtimestamp(int(body["i"]), UTC) if "i" in body else None,
            survey=str(body["s"]) if "s" in body else None,
            score=_score(body["n"]) if "n" in body else None,
        )
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InvalidToken("the link's payload is damaged") from exc
    if claims.purpose != purpose:
        raise InvalidToken(f"the link is not for {purpose}")
    if now >= claims.expires:
        raise ExpiredToken("the link has expired")
    return claims


def _score(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("a link's score is a whole number")
    return value


def link(base_url: str, path: str, token: str) -> str:
    """``<base>/<path>?t=<token>`` (the token is URL-safe as it is)."""
    return f"{base_url.rstrip('/')}{path}?t={token}"
