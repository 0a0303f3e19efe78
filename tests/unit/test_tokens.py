"""Signed link tokens: genuine ones verify with their claims; forged, damaged, misused or expired ones don't."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.delivery.tokens import ExpiredToken, InvalidToken, LinkClaims, link, sign, verify

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
SECRET = b"a-delivery-secret"
CLAIMS = LinkClaims("unsubscribe", "user_id:ann#1", "email", NOW + timedelta(days=60), issued=NOW)


def test_a_token_gives_back_its_claims() -> None:
    assert verify(SECRET, sign(SECRET, CLAIMS), "unsubscribe", NOW) == CLAIMS
    without_issue = LinkClaims("confirm", "user_id:ann", "sms", NOW + timedelta(days=1))
    assert verify(SECRET, sign(SECRET, without_issue), "confirm", NOW).issued is None


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: sign(b"another-secret", CLAIMS),
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
        lambda t: (
            sign(SECRET, CLAIMS.__class__("unsubscribe", "user_id:bob", "email", CLAIMS.expires)).split(".")[
                0
            ]
            + "."
            + t.split(".")[1]
        ),
        lambda t: t.replace(".", ""),
        lambda t: "x" * 3000,
        lambda t: "",
    ],
    ids=["other secret", "signature changed", "payload swapped", "no separator", "too long", "empty"],
)
def test_a_forged_or_damaged_token_is_invalid(forge) -> None:
    with pytest.raises(InvalidToken):
        verify(SECRET, forge(sign(SECRET, CLAIMS)), "unsubscribe", NOW)


def test_a_token_is_good_for_its_own_purpose_only() -> None:
    with pytest.raises(InvalidToken):
        verify(SECRET, sign(SECRET, CLAIMS), "confirm", NOW)


def test_an_expired_token_is_told_apart_from_a_forged_one() -> None:
    token = sign(SECRET, CLAIMS)
    assert verify(SECRET, token, "unsubscribe", CLAIMS.expires - timedelta(seconds=1))
    with pytest.raises(ExpiredToken):
        verify(SECRET, token, "unsubscribe", CLAIMS.expires)


def test_a_link_carries_the_token_as_it_is() -> None:
    token = sign(SECRET, CLAIMS)
    assert link("https://api.example/", "/unsubscribe", token) == f"https://api.example/unsubscribe?t={token}"
