"""Identity proofs: HMAC user hashes and HS256 tokens, rotation, and what an unproven claim becomes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.tracking.messages import parse_calls
from shared.tracking.proofs import (
    MAX_TOKEN_LIFETIME,
    ProofResult,
    Provenance,
    SourceSecret,
    check,
    user_hash,
    vouch,
)
from shared.tracking.stored import provenance_of
from shared.tracking.wire import Limits

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
SECRET = SourceSecret("the-source-secret-0123456789")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(claims: dict[str, Any], secret: str = SECRET.current, header: dict[str, Any] | None = None) -> str:
    head = b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def at(delta: timedelta = timedelta()) -> int:
    return int((NOW + delta).timestamp())


def test_user_hash_is_the_hex_hmac_sha256_of_the_user_id() -> None:
    expected = hmac.new(b"the-source-secret-0123456789", b"ann", hashlib.sha256).hexdigest()
    assert user_hash(SECRET.current, "ann") == expected
    assert check("ann", {"userHash": expected}, SECRET, NOW) is ProofResult.VERIFIED
    assert check("ann", {"userHash": expected.upper()}, SECRET, NOW) is ProofResult.VERIFIED


@pytest.mark.parametrize(
    "proof",
    [
        {"userHash": user_hash(SECRET.current, "bob")},  # another user's hash
        {"userHash": user_hash("another-secret-0123456789", "ann")},  # forged with a guessed secret
        {"userHash": "00" * 32},
        {"userHash": "not hex"},
    ],
)
def test_a_forged_or_borrowed_hash_is_invalid(proof: dict[str, str]) -> None:
    assert check("ann", proof, SECRET, NOW) is ProofResult.INVALID


def test_no_proof_or_no_secret() -> None:
    assert check("ann", None, SECRET, NOW) is ProofResult.MISSING
    assert check("ann", {}, SECRET, NOW) is ProofResult.MISSING
    assert check("ann", {"other": 1}, SECRET, NOW) is ProofResult.MISSING
    assert check("ann", {"userHash": user_hash(SECRET.current, "ann")}, None, NOW) is ProofResult.INVALID


def test_a_short_lived_token_for_the_user_is_verified() -> None:
    claims = {"sub": "ann", "iat": at(), "exp": at(timedelta(minutes=15))}
    assert check("ann", {"jwt": token(claims)}, SECRET, NOW) is ProofResult.VERIFIED
    assert check("ann", {"jwt": token({"sub": "ann", "exp": at(timedelta(hours=1))})}, SECRET, NOW) is (
        ProofResult.VERIFIED
    )


def test_an_expired_token_is_expired_after_the_leeway() -> None:
    claims = {"sub": "ann", "iat": at(timedelta(hours=-2)), "exp": at(timedelta(hours=-1))}
    assert check("ann", {"jwt": token(claims)}, SECRET, NOW) is ProofResult.EXPIRED
    just = {"sub": "ann", "iat": at(timedelta(minutes=-10)), "exp": at(timedelta(seconds=-30))}
    assert check("ann", {"jwt": token(just)}, SECRET, NOW) is ProofResult.VERIFIED  # within 60 s of skew


@pytest.mark.parametrize(
    "make",
    [
        lambda: token({"sub": "bob", "exp": at(timedelta(minutes=5))}),  # another user
        lambda: token({"sub": "ann", "exp": at(timedelta(minutes=5))}, secret="guessed-secret-0123456789"),
        lambda: token({"sub": "ann"}),  # no expiry
        lambda: token({"sub": "ann", "exp": "tomorrow"}),
        lambda: token({"sub": "ann", "exp": at(MAX_TOKEN_LIFETIME + timedelta(hours=1))}),  # not short-lived
        lambda: token({"sub": "ann", "iat": at(timedelta(days=-2)), "exp": at(timedelta(minutes=5))}),
        lambda: token({"sub": "ann", "iat": at(timedelta(hours=1)), "exp": at(timedelta(hours=2))}),
        lambda: token({"sub": "ann", "nbf": at(timedelta(hours=1)), "exp": at(timedelta(hours=2))}),
        lambda: token({"sub": "ann", "exp": at(timedelta(minutes=5))}, header={"alg": "none"}),
        lambda: token({"sub": "ann", "exp": at(timedelta(minutes=5))}, header={"alg": "HS512"}),
        lambda: token(
            {"sub": "ann", "exp": at(timedelta(minutes=5))}, header={"alg": "HS256", "crit": ["x"]}
        ),
        lambda: token({"sub": "ann", "exp": at(timedelta(minutes=5))}).rsplit(".", 1)[0] + ".",  # unsigned
        lambda: "a.b",
        lambda: "x" * 5000,
        lambda: token({"sub": "ann", "exp": at(timedelta(minutes=5))}) + "=",
    ],
    ids=[
        "other-user",
        "wrong-secret",
        "no-exp",
        "exp-not-a-number",
        "too-long-lived",
        "issued-long-ago",
        "issued-in-the-future",
        "not-yet-valid",
        "alg-none",
        "other-alg",
        "critical-header",
        "unsigned",
        "malformed",
        "oversized",
        "padded",
    ],
)
def test_a_forged_or_unusable_token_is_invalid(make) -> None:
    assert check("ann", {"jwt": make()}, SECRET, NOW) is ProofResult.INVALID


def test_after_a_rotation_the_old_secret_is_accepted_only_during_the_overlap() -> None:
    rotated = SourceSecret(
        "the-new-secret-0123456789", previous=SECRET.current, previous_until=NOW + timedelta(hours=24)
    )
    old, new = user_hash(SECRET.current, "ann"), user_hash(rotated.current, "ann")
    assert check("ann", {"userHash": new}, rotated, NOW) is ProofResult.VERIFIED
    assert check("ann", {"userHash": old}, rotated, NOW + timedelta(hours=23)) is ProofResult.VERIFIED
    assert check("ann", {"userHash": old}, rotated, NOW + timedelta(hours=24)) is ProofResult.INVALID
    assert check("ann", {"userHash": new}, rotated, NOW + timedelta(days=400)) is ProofResult.VERIFIED
    old_token = token({"sub": "ann", "exp": at(timedelta(minutes=5))})
    assert check("ann", {"jwt": old_token}, rotated, NOW) is ProofResult.VERIFIED


def verified_by(secret: SourceSecret | None, *, requires_proof: bool = True, server: bool = False):
    return lambda call: vouch(call, server=server, requires_proof=requires_proof, secret=secret, now=NOW)


def parsed(call: dict[str, Any], voucher) -> Any:
    (event,) = parse_calls(
        "/v1/" + call.pop("path", "track"), call, received_at=NOW, limits=Limits(), vouch=voucher
    )
    return event


def test_an_unproven_claim_is_kept_on_the_visitor_with_the_claim_recorded() -> None:
    call = {"userId": "ann", "anonymousId": "visitor-1", "event": "Product Viewed", "messageId": "m1"}
    event = parsed(dict(call), verified_by(SECRET))
    assert (event.user_id, event.anonymous_id) == (None, "visitor-1")
    assert (event.provenance, event.claimed_user_id) == (Provenance.UNVERIFIED, "ann")
    stored = json.loads(event.body)
    assert "userId" not in stored and provenance_of(stored) == (Provenance.UNVERIFIED, "ann")


def test_an_unproven_identify_links_nothing() -> None:
    call = {"path": "identify", "userId": "ann", "anonymousId": "v", "traits": {"name": "Mallory"}}
    event = parsed(call, verified_by(SECRET))
    assert event.user_id is None and event.anonymous_id == "v" and event.claimed_user_id == "ann"


def test_an_unproven_claim_without_a_visitor_gets_an_unverified_visitor_of_its_own() -> None:
    event = parsed({"userId": "ann", "event": "Clicked"}, verified_by(SECRET))
    assert (event.user_id, event.anonymous_id, event.claimed_user_id) == (None, "unverified:ann", "ann")
    long = "u" * 510
    event = parsed({"userId": long, "event": "Clicked"}, verified_by(SECRET))
    assert event.anonymous_id == "unverified:" + hashlib.sha256(long.encode()).hexdigest()


def test_a_proven_claim_keeps_its_user_and_the_proof_is_not_stored() -> None:
    proof = user_hash(SECRET.current, "ann")
    call = {
        "userId": "ann",
        "anonymousId": "v",
        "event": "Clicked",
        "integrations": {"Lifecycle": {"userHash": proof}},
    }
    event = parsed(call, verified_by(SECRET))
    assert (event.user_id, event.provenance, event.claimed_user_id) == ("ann", Provenance.VERIFIED, None)
    assert proof not in event.body and "integrations" not in event.body


def test_what_is_not_checked() -> None:
    claim = {"userId": "ann", "event": "Clicked"}
    assert parsed(dict(claim), verified_by(SECRET, requires_proof=False)).provenance is Provenance.BROWSER
    assert parsed(dict(claim), verified_by(None, server=True)).provenance is Provenance.SERVER
    anonymous = parsed({"anonymousId": "v", "event": "Clicked"}, verified_by(SECRET))
    assert anonymous.provenance is Provenance.BROWSER and json.loads(anonymous.body) == {
        "anonymousId": "v",
        "event": "Clicked",
    }


def test_a_call_cannot_state_its_own_trust() -> None:
    call = {"userId": "ann", "event": "Clicked", "_trust": "server", "_claimedUserId": "x"}
    event = parsed(call, verified_by(SECRET))
    assert provenance_of(json.loads(event.body)) == (Provenance.UNVERIFIED, "ann")
    plain = parsed({"anonymousId": "v", "event": "Clicked", "_trust": "server"}, verified_by(SECRET))
    assert provenance_of(json.loads(plain.body)) == (Provenance.BROWSER, None)


def test_the_unverified_namespace_is_reserved_for_unproven_claims() -> None:
    """A call's own anonymousId cannot name the visitor that holds a user's unproven claims: otherwise a
    proven identify could link that visitor (a page can be given any anonymousId, analytics.js's
    ?ajs_aid=) and every later unproven claim would reach the user."""
    proof = {"Lifecycle": {"userHash": user_hash(SECRET.current, "ann")}}
    sent = {"path": "identify", "userId": "ann", "anonymousId": "unverified:ann", "integrations": proof}
    identify = parsed(sent, verified_by(SECRET))
    assert identify.user_id == "ann" and identify.anonymous_id == "visitor:unverified:ann"
    for server in (True, False):
        call = {"anonymousId": " unverified:bob", "event": "Clicked"}
        assert parsed(call, verified_by(SECRET, server=server)).anonymous_id == "visitor:unverified:bob"
    claim = parsed({"userId": "ann", "event": "Clicked"}, verified_by(SECRET))
    assert claim.anonymous_id == "unverified:ann"  # only an unproven claim is kept there


def test_calls_without_a_message_id_keep_the_id_of_the_call_as_sent() -> None:
    """Two unproven calls that differ only in the user they claim are two calls, not a retry of one."""
    first = parsed({"userId": "ann", "anonymousId": "v", "event": "Clicked"}, verified_by(SECRET))
    second = parsed({"userId": "bob", "anonymousId": "v", "event": "Clicked"}, verified_by(SECRET))
    assert first.message_id != second.message_id
    unchecked = parsed(
        {"userId": "ann", "anonymousId": "v", "event": "Clicked"}, verified_by(None, server=True)
    )
    assert unchecked.message_id == first.message_id  # the id of the call as sent, whoever it is kept for


def test_a_claim_with_an_anonymous_id_of_the_wrong_type_is_refused_as_before() -> None:
    from shared.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="anonymousId"):
        parsed({"userId": "ann", "anonymousId": {"x": 1}, "event": "Clicked"}, verified_by(SECRET))


def test_token_details_the_standard_allows_and_those_it_does_not() -> None:
    claims = {"sub": "ann", "exp": at(timedelta(minutes=5))}
    assert check("ann", {"jwt": token(claims, header={"alg": "HS256", "typ": "jwt"})}, SECRET, NOW) is (
        ProofResult.VERIFIED
    )
    head, body, signature = token(claims).split(".")
    for forged in (f"{head}.{body}.{signature}!", f"{head}.{body}.{signature[:-2]}\n{signature[-2:]}"):
        assert check("ann", {"jwt": forged}, SECRET, NOW) is ProofResult.INVALID
