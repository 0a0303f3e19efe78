"""Verified identity through the real handlers on moto: a browser key that requires proof keeps an
unproven claim off the user it names, and a proven one works as before."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shared.tracking.proofs import user_hash
from tests.conftest import IDENTITY_SECRET, VERIFIED_KEY, VERIFIED_SOURCE, identity_secrets
from tests.integration.conftest import dump


def proof(user: str, secret: str = IDENTITY_SECRET) -> dict[str, Any]:
    return {"Lifecycle": {"userHash": user_hash(secret, user)}}


def known_customer(send) -> dict[str, Any]:
    """Ann, known to the back-end: signed up and bought (server key)."""
    assert (
        send("/v1/identify", {"userId": "ann", "messageId": "s1", "traits": {"email": "ann@example.com"}})[0]
        == 200
    )
    order = {"userId": "ann", "event": "Order Completed", "messageId": "s2", "properties": {"revenue": 30}}
    assert send("/v1/track", order)[0] == 200


def test_a_proven_browser_identify_links_the_visitor_and_counts_for_the_user(send, admin, merges) -> None:
    known_customer(send)
    page = {"anonymousId": "anon-ann", "messageId": "p1", "properties": {"url": "https://s.example/kites"}}
    assert send("/v1/p", page, key=VERIFIED_KEY)[0] == 200
    identify = {"userId": "ann", "anonymousId": "anon-ann", "messageId": "i1", "integrations": proof("ann")}
    assert send("/v1/identify", identify, key=VERIFIED_KEY)[0] == 200
    viewed = {"userId": "ann", "anonymousId": "anon-ann", "event": "Product Viewed", "messageId": "v1"}
    assert send("/v1/track", {**viewed, "integrations": proof("ann")}, key=VERIFIED_KEY)[0] == 200
    merges.drain()
    card = admin("user_id:ann")[1]
    assert card["anonymous_ids"] == ["anon-ann"]
    assert card["counts"]["product_viewed"] == 1 and card["event_count"] == 5
    trust = {e["message_id"]: e["trust"] for e in admin("user_id:ann", events=True)[1]["events"]}
    assert trust == {"s1": "server", "s2": "server", "p1": "browser", "i1": "verified", "v1": "verified"}


@pytest.mark.parametrize(
    "integrations",
    [
        None,
        proof("mallory"),  # the attacker's own valid hash, for another user
        proof("ann", secret="guessed-secret-0123456789"),
        {"Lifecycle": {"jwt": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbm4ifQ."}},
    ],
    ids=["no-proof", "borrowed", "forged", "unsigned-token"],
)
def test_an_unproven_claim_never_touches_the_user_it_names(aws, send, admin, merges, integrations) -> None:
    known_customer(send)
    before = admin("user_id:ann")[1]
    calls = [
        {
            "type": "identify",
            "userId": "ann",
            "anonymousId": "anon-m",
            "messageId": "f1",
            "traits": {"name": "M"},
        },
        *(
            {
                "type": "page",
                "userId": "ann",
                "anonymousId": "anon-m",
                "messageId": f"f{i}",
                "properties": {"url": "https://s.example/pricing"},
            }
            for i in range(2, 12)
        ),
        {"type": "track", "userId": "ann", "event": "Product Viewed", "messageId": "f12"},  # no visitor id
    ]
    body = {"batch": [{**c, **({"integrations": integrations} if integrations else {})} for c in calls]}
    status, answer, _ = send("/v1/batch", body, key=VERIFIED_KEY)
    assert (status, answer) == (200, {"success": True})  # not refused: a page must not break
    merges.drain()

    after = admin("user_id:ann")[1]
    assert after == before  # no score, stage, counter, trait or visitor moved
    visitor = admin("anonymous_id:anon-m")[1]
    assert visitor["contact_id"] == "anonymous_id:anon-m" and visitor["event_count"] == 11
    assert visitor["traits"] == {"name": "M"}
    events = admin("anonymous_id:anon-m", events=True, query={"limit": "100"})[1]["events"]
    assert {(e["trust"], e["claimed_user_id"]) for e in events} == {("unverified", "ann")}
    lone = admin("anonymous_id:unverified:ann", events=True)[1]["events"]
    assert [(e["message_id"], e["claimed_user_id"]) for e in lone] == [("f12", "ann")]
    elsewhere = [item for item in dump(aws, "EVENTS_TABLE_NAME") if item["pk"]["S"] != "C#user_id:ann"]
    assert len(elsewhere) == 12 and not any('"userId"' in item["body"]["S"] for item in elsewhere)


def test_an_expired_token_is_kept_as_unverified_and_a_fresh_one_is_verified(send, admin, clock) -> None:
    import base64
    import hashlib
    import hmac

    def jwt(expires: timedelta) -> str:
        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        exp = int((clock.now() + expires).timestamp())
        head = b64(b'{"alg":"HS256","typ":"JWT"}')
        body = b64(json.dumps({"sub": "ann", "exp": exp}).encode())
        signature = hmac.new(IDENTITY_SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{b64(signature)}"

    fresh, stale = jwt(timedelta(minutes=10)), jwt(timedelta(minutes=-10))
    call = {"userId": "ann", "anonymousId": "anon-t", "event": "Product Viewed"}
    assert (
        send(
            "/v1/track",
            {**call, "messageId": "t1", "integrations": {"Lifecycle": {"jwt": fresh}}},
            key=VERIFIED_KEY,
        )[0]
        == 200
    )
    assert (
        send(
            "/v1/track",
            {**call, "messageId": "t2", "integrations": {"Lifecycle": {"jwt": stale}}},
            key=VERIFIED_KEY,
        )[0]
        == 200
    )
    assert [e["message_id"] for e in admin("user_id:ann", events=True)[1]["events"]] == ["t1"]
    assert [e["message_id"] for e in admin("anonymous_id:anon-t", events=True)[1]["events"]] == ["t2"]


def test_a_rotated_secret_accepts_both_during_the_overlap_and_only_the_new_after(
    aws, send, admin, clock, template
) -> None:
    from shared import runtime

    old = proof("ann")
    secrets = identity_secrets(template)
    new_secret = secrets.rotate(VERIFIED_SOURCE, clock.now(), timedelta(hours=24))
    runtime.reset()  # a new instance (the secret is cached for a minute)
    new = proof("ann", secret=new_secret)
    call = {"userId": "ann", "anonymousId": "anon-r", "event": "Product Viewed"}
    assert send("/v1/track", {**call, "messageId": "r1", "integrations": old}, key=VERIFIED_KEY)[0] == 200
    assert send("/v1/track", {**call, "messageId": "r2", "integrations": new}, key=VERIFIED_KEY)[0] == 200
    clock.advance(timedelta(hours=25))
    assert send("/v1/track", {**call, "messageId": "r3", "integrations": old}, key=VERIFIED_KEY)[0] == 200
    assert send("/v1/track", {**call, "messageId": "r4", "integrations": new}, key=VERIFIED_KEY)[0] == 200
    on_user = {e["message_id"] for e in admin("user_id:ann", events=True)[1]["events"]}
    on_visitor = {e["message_id"] for e in admin("anonymous_id:anon-r", events=True)[1]["events"]}
    assert (on_user, on_visitor) == ({"r1", "r2", "r4"}, {"r3"})


def test_a_key_that_does_not_require_proof_and_a_server_key_are_trusted_as_before(send, admin) -> None:
    from tests.conftest import BROWSER_KEY

    assert (
        send("/v1/track", {"userId": "ann", "event": "Product Viewed", "messageId": "b1"}, key=BROWSER_KEY)[0]
        == 200
    )
    assert send("/v1/track", {"userId": "ann", "event": "Product Viewed", "messageId": "b2"})[0] == 200
    trust = {e["message_id"]: e["trust"] for e in admin("user_id:ann", events=True)[1]["events"]}
    assert trust == {"b1": "browser", "b2": "server"}


def test_when_the_secret_cannot_be_read_the_request_is_retried_not_misfiled(aws, send, admin) -> None:
    """Parameter Store throttling: a 503 with Retry-After and nothing written (the client resends), rather
    than the user's calls kept as a stranger's."""
    from shared.adapters import aws as clients

    def throttle(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "GetParameter":
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "injected"}}, "GetParameter"
            )

    ssm = clients.client("ssm")
    ssm.meta.events.register_first("before-parameter-build.ssm", throttle)
    try:
        call = {
            "userId": "ann",
            "anonymousId": "anon-x",
            "event": "Product Viewed",
            "messageId": "x1",
            "integrations": proof("ann"),
        }
        status, body, headers = send("/v1/track", call, key=VERIFIED_KEY)
        anonymous = {"anonymousId": "anon-y", "event": "Product Viewed", "messageId": "y1"}
        assert send("/v1/track", anonymous, key=VERIFIED_KEY)[0] == 200  # no claim: no secret needed
    finally:
        ssm.meta.events.unregister("before-parameter-build.ssm", throttle)
    assert status == 503 and "retry-after" in headers and body["code"] == "unavailable"
    assert admin("user_id:ann")[0] == 404 and admin("anonymous_id:anon-x")[0] == 404
    assert send("/v1/track", call, key=VERIFIED_KEY)[0] == 200
    assert admin("user_id:ann")[1]["event_count"] == 1


def test_the_secret_never_reaches_the_logs_or_the_event_log(aws, send, capsys) -> None:
    call = {
        "userId": "ann",
        "anonymousId": "anon-l",
        "event": "Product Viewed",
        "messageId": "l1",
        "integrations": proof("ann"),
    }
    send("/v1/track", call, key=VERIFIED_KEY)
    send(
        "/v1/track",
        {**call, "messageId": "l2", "integrations": proof("ann", "wrong-secret-0123456789")},
        key=VERIFIED_KEY,
    )
    output = capsys.readouterr()
    stored = json.dumps(dump(aws, "EVENTS_TABLE_NAME"))
    for text in (output.out, output.err, stored):
        assert IDENTITY_SECRET not in text and user_hash(IDENTITY_SECRET, "ann") not in text


def test_a_user_who_proves_identity_from_a_planted_visitor_id_gets_no_unproven_claims(
    send, admin, merges
) -> None:
    """A stranger gets Ann to open a page with ``?ajs_aid=unverified:ann``; her proven identify must not
    link the visitor that holds unproven claims for her, so later claims stay off her profile."""
    identify = {
        "userId": "ann",
        "anonymousId": "unverified:ann",
        "messageId": "i1",
        "integrations": proof("ann"),
    }
    assert send("/v1/identify", identify, key=VERIFIED_KEY)[0] == 200
    merges.drain()
    before = admin("user_id:ann")[1]
    for i in range(3):
        claim = {"userId": "ann", "event": "Product Viewed", "messageId": f"x{i}"}
        assert send("/v1/track", claim, key=VERIFIED_KEY)[0] == 200
    merges.drain()
    assert admin("user_id:ann")[1] == before
    assert before["anonymous_ids"] == ["visitor:unverified:ann"]
    assert admin("anonymous_id:unverified:ann")[1]["event_count"] == 3


def test_claims_are_counted_by_outcome_and_never_by_whom(send, metrics) -> None:
    malformed = {"Lifecycle": {"jwt": "e30.e30.AAAA"}}
    calls = [
        {"userId": "ann", "anonymousId": "v", "event": "A", "messageId": "c1", "integrations": proof("ann")},
        {"userId": "ann", "anonymousId": "v", "event": "A", "messageId": "c2"},
        {"userId": "ann", "anonymousId": "v", "event": "A", "messageId": "c3", "integrations": proof("bob")},
        {"userId": "ann", "anonymousId": "v", "event": "A", "messageId": "c4", "integrations": malformed},
        {"anonymousId": "v", "event": "A", "messageId": "c5"},  # no claim: nothing to check
    ]
    assert send("/v1/batch", {"batch": [{"type": "track", **c} for c in calls]}, key=VERIFIED_KEY)[0] == 200
    claims = {name: n for name, n in metrics.items() if name.startswith("Claims")}
    assert claims == {"ClaimsVerified": 1, "ClaimsWithoutProof": 1, "ClaimsWithInvalidProof": 2}
    assert "ann" not in str(metrics)
