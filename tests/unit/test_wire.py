import base64
import gzip
import math

import pytest

from shared.errors import InvalidRequest, PayloadTooLarge, Unauthorized, UnsupportedMediaType
from shared.tracking.wire import Limits, decode_body, parse_json_object, write_key_from

LIMITS = Limits()


def decode(body, *, b64=False, ctype="application/json", encoding=None, limits=LIMITS):
    return decode_body(body, is_base64=b64, content_type=ctype, content_encoding=encoding, limits=limits)


def test_plain_text_and_json_bodies() -> None:
    assert decode('{"a":1}') == b'{"a":1}'
    assert decode('{"a":1}', ctype="text/plain;charset=UTF-8") == b'{"a":1}'
    assert decode(None) == b""


def test_base64_gzip_as_api_gateway_hands_it_over() -> None:
    body = base64.b64encode(gzip.compress(b'{"batch":[]}')).decode()
    assert decode(body, b64=True, encoding="gzip") == b'{"batch":[]}'


def test_unsupported_types_and_encodings() -> None:
    with pytest.raises(UnsupportedMediaType):
        decode("a=b", ctype="application/x-www-form-urlencoded")
    with pytest.raises(UnsupportedMediaType):
        decode("{}", encoding="br")


def test_broken_encodings_are_client_errors() -> None:
    with pytest.raises(InvalidRequest):
        decode("%%%", b64=True)
    with pytest.raises(InvalidRequest):
        decode(base64.b64encode(b"not gzip").decode(), b64=True, encoding="gzip")
    truncated = gzip.compress(b'{"a": 1}' * 100)[:-12]
    with pytest.raises(InvalidRequest):
        decode(base64.b64encode(truncated).decode(), b64=True, encoding="gzip")


def test_request_limit_applies_after_decompression_and_a_bomb_costs_nothing() -> None:
    bomb = gzip.compress(b" " * (50 * 1024 * 1024))  # 50 MB of spaces, ~50 KB compressed
    with pytest.raises(PayloadTooLarge):
        decode(base64.b64encode(bomb).decode(), b64=True, encoding="gzip")
    with pytest.raises(PayloadTooLarge):
        decode("x" * (500 * 1024 + 1))
    assert len(decode("x" * (500 * 1024))) == 500 * 1024


def test_json_must_be_an_object() -> None:
    assert parse_json_object(b'{"a": null}') == {"a": None}
    for bad in (b"[]", b"1", b"{", b"\xff\xfe{", b"[" * 100000):
        with pytest.raises(InvalidRequest):
            parse_json_object(bad)


def test_non_finite_numbers_are_left_for_the_call_checks_to_name() -> None:
    """``NaN`` and ``1e400`` are refused per call (``values.check_values``), where the field is known."""
    parsed = parse_json_object(b'{"a": NaN, "b": -Infinity, "c": 1e400}')
    assert math.isnan(parsed["a"]) and parsed["b"] == -math.inf and parsed["c"] == math.inf


def test_write_key_from_basic_auth_or_body() -> None:
    header = "Basic " + base64.b64encode(b"wk-123:").decode()
    assert write_key_from(header, {}) == "wk-123"
    assert write_key_from(None, {"writeKey": "wk-body"}) == "wk-body"
    assert write_key_from(header, {"writeKey": "other"}) == "wk-123"
    assert write_key_from(None, {"batch": [{"writeKey": "wk-m"}, {"writeKey": "wk-m"}]}) == "wk-m"


def test_missing_or_garbled_write_key_is_unauthorized() -> None:
    with pytest.raises(Unauthorized):
        write_key_from(None, {})
    with pytest.raises(Unauthorized):
        write_key_from("Basic !!!", {})
    with pytest.raises(Unauthorized):
        write_key_from(None, {"batch": [{"writeKey": "a"}, {"writeKey": "b"}]})
