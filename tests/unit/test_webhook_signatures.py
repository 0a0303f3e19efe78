"""Webhook signatures as receivers verify them, and the retries' backoff."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from shared.delivery.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    receiver_key,
    retry_delay,
    signature_headers,
    verify,
)

KEY = b"receiver-key"
BODY = b'{"order":"o-1","lifecycle":{"delivery_id":"c#a#o#0"}}'
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TS = int(NOW.timestamp())


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    headers = signature_headers(KEY, BODY, TS, "c#a#o#0")
    expected = hmac.new(KEY, f"{TS}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert headers == {SIGNATURE_HEADER: f"t={TS},v1={expected}", DELIVERY_HEADER: "c#a#o#0"}


def test_receivers_verify_it_whatever_the_header_case() -> None:
    headers = {k.lower(): v for k, v in signature_headers(KEY, BODY, TS, "c#a#o#0").items()}
    assert verify(KEY, headers, BODY, NOW)
    assert verify(KEY, headers, BODY, NOW + timedelta(seconds=299))


def test_a_changed_body_another_key_or_a_stale_timestamp_fail() -> None:
    headers = signature_headers(KEY, BODY, TS, "c#a#o#0")
    assert not verify(KEY, headers, BODY + b" ", NOW)
    assert not verify(b"other", headers, BODY, NOW)
    assert not verify(KEY, headers, BODY, NOW + timedelta(seconds=301))
    assert not verify(KEY, headers, BODY, NOW - timedelta(seconds=301))
    assert not verify(KEY, {}, BODY, NOW)
    # the timestamp is signed: moving it forward breaks the signature
    moved = headers[SIGNATURE_HEADER].replace(f"t={TS}", f"t={TS + 100}")
    assert not verify(KEY, {SIGNATURE_HEADER: moved}, BODY, NOW)
    assert not verify(KEY, {SIGNATURE_HEADER: "t=abc,v1=00"}, BODY, NOW)


def test_one_matching_signature_of_several_is_enough() -> None:
    good = signature_headers(KEY, BODY, TS, "x")[SIGNATURE_HEADER].split(",")[1]
    assert verify(KEY, {SIGNATURE_HEADER: f"t={TS},v1={'0' * 64},{good}"}, BODY, NOW)


def test_the_receivers_key_is_derived_not_the_link_secret() -> None:
    key = receiver_key(b"delivery-secret")
    assert key != b"delivery-secret" and len(key) == 64
    assert key == receiver_key(b"delivery-secret") != receiver_key(b"another-secret")


def test_retries_back_off_exponentially_up_to_15_minutes() -> None:
    assert [retry_delay(n) for n in range(1, 8)] == [30, 60, 120, 240, 480, 900, 900]
    assert retry_delay(0) == 30
    assert retry_delay(10_000) == 900


def test_the_receivers_snippet_in_the_docs_verifies_our_signature() -> None:
    import re
    import time

    from tests.conftest import ROOT

    text = (ROOT / "docs" / "sending.md").read_text()
    (snippet,) = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    scope: dict = {}
    exec(snippet, scope)  # noqa: S102 - our own documentation
    stamp = int(time.time())
    header = signature_headers(KEY, BODY, stamp, "x")[SIGNATURE_HEADER]
    assert scope["verify"](KEY, header, BODY)
    assert not scope["verify"](KEY, header, BODY + b"x")
    assert not scope["verify"](b"other", header, BODY)
