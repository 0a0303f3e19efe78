import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shared.errors import InvalidRequest, PayloadTooLarge
from shared.tracking.behaviours import Behaviour
from shared.tracking.messages import parse_calls
from shared.tracking.wire import Limits, parse_json_object

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def parse(path, payload, limits=Limits()):
    return parse_calls(path, payload, received_at=NOW, limits=limits)


def test_single_call_takes_its_type_from_the_path() -> None:
    (event,) = parse(
        "/v1/t", {"type": "identify", "userId": "u1", "event": "Product Viewed", "messageId": "m1"}
    )
    assert (event.call, event.behaviour, event.user_id, event.message_id) == (
        "track",
        Behaviour.PRODUCT_VIEWED,
        "u1",
        "m1",
    )


def test_batch_reads_every_call_and_top_level_sent_at() -> None:
    sent = NOW + timedelta(hours=2)  # device clock two hours fast
    events = parse(
        "/v1/batch",
        {
            "sentAt": sent.isoformat(),
            "batch": [
                {
                    "type": "page",
                    "anonymousId": "a1",
                    "timestamp": (sent - timedelta(seconds=30)).isoformat(),
                },
                {
                    "type": "identify",
                    "userId": "u1",
                    "anonymousId": "a1",
                    "traits": {"email": "ann@example.com"},
                },
            ],
        },
    )
    assert [e.call for e in events] == ["page", "identify"]
    assert events[0].timestamp == NOW - timedelta(seconds=30)
    assert events[1].timestamp == NOW


def test_identity_is_required_and_errors_name_the_call() -> None:
    with pytest.raises(InvalidRequest, match=r"batch\[1\]: one of userId or anonymousId"):
        parse("/v1/batch", {"batch": [{"type": "page", "userId": "u"}, {"type": "page", "userId": "  "}]})
    with pytest.raises(InvalidRequest, match="alias call needs userId and previousId"):
        parse("/v1/alias", {"userId": "u"})
    with pytest.raises(InvalidRequest, match="groupId"):
        parse("/v1/group", {"userId": "u"})
    with pytest.raises(InvalidRequest, match="event name"):
        parse("/v1/track", {"userId": "u", "event": " "})


def test_field_errors_name_the_field() -> None:
    with pytest.raises(InvalidRequest, match=r"batch\[0\]\.properties"):
        parse("/v1/batch", {"batch": [{"type": "track", "userId": "u", "event": "X", "properties": [1]}]})
    with pytest.raises(InvalidRequest, match=r"body\.timestamp"):
        parse("/v1/track", {"userId": "u", "event": "X", "timestamp": "last tuesday"})
    with pytest.raises(InvalidRequest, match=r"batch\[0\]\.type"):
        parse("/v1/batch", {"batch": [{"type": "purchase", "userId": "u"}]})
    with pytest.raises(InvalidRequest, match="batch: must be a list"):
        parse("/v1/batch", {"batch": {"type": "page"}})


def test_explicit_nulls_and_numeric_ids_are_accepted() -> None:
    (event,) = parse(
        "/v1/page",
        {
            "userId": 42,
            "anonymousId": None,
            "properties": None,
            "context": None,
            "integrations": None,
            "name": None,
        },
    )
    assert event.user_id == "42"
    assert event.behaviour is Behaviour.VISIT


def test_limits() -> None:
    big = {"userId": "u", "event": "X", "properties": {"blob": "x" * (32 * 1024)}}
    with pytest.raises(PayloadTooLarge, match="32 KB"):
        parse("/v1/track", big)
    with pytest.raises(PayloadTooLarge, match="2500"):
        parse("/v1/batch", {"batch": [{"type": "page", "userId": "u"}] * 2501})
    assert len(parse("/v1/batch", {"batch": [{"type": "page", "userId": "u"}] * 2500})) == 2500


def test_traits_merge_context_traits_under_top_level() -> None:
    (event,) = parse(
        "/v1/identify",
        {
            "userId": "u",
            "traits": {"name": "Ann"},
            "context": {"traits": {"name": "Old", "email": "a@example.com"}},
        },
    )
    assert event.traits == {"name": "Ann", "email": "a@example.com"}


def test_tags_must_be_names() -> None:
    with pytest.raises(InvalidRequest, match="tags"):
        parse("/v1/identify", {"userId": "u", "traits": {"tags": "vip"}})
    (event,) = parse("/v1/identify", {"userId": "u", "traits": {"tags": ["vip", "-trial"]}})
    assert event.traits["tags"] == ["vip", "-trial"]


def test_stored_body_drops_the_write_key_and_what_the_item_holds_and_keeps_everything_else() -> None:
    (event,) = parse(
        "/v1/track",
        {
            "userId": "u",
            "event": "X",
            "writeKey": "secret",
            "sentAt": NOW.isoformat(),
            "timestamp": NOW.isoformat(),
            "messageId": "m1",
            "type": "track",
            "custom": 1,
        },
    )
    assert json.loads(event.body) == {"userId": "u", "event": "X", "custom": 1}


def test_missing_message_id_gets_a_stable_content_id() -> None:
    a = parse("/v1/track", {"userId": "u", "event": "X", "timestamp": "2026-11-22T10:00:00Z"})[0]
    b = parse(
        "/v1/track",
        {"userId": "u", "event": "X", "timestamp": "2026-11-22T10:00:00Z", "sentAt": NOW.isoformat()},
    )[0]
    c = parse("/v1/track", {"userId": "u", "event": "Y", "timestamp": "2026-11-22T10:00:00Z"})[0]
    assert a.message_id == b.message_id != c.message_id


def test_purchase_revenue() -> None:
    (event,) = parse(
        "/v1/track", {"userId": "u", "event": "Order Completed", "properties": {"revenue": 12.5}}
    )
    assert event.revenue == Decimal("12.5")
    (event,) = parse(
        "/v1/track", {"userId": "u", "event": "Order Completed", "properties": {"total": "99.90"}}
    )
    assert event.revenue == Decimal("99.90")
    (event,) = parse(
        "/v1/track", {"userId": "u", "event": "Order Completed", "properties": {"revenue": "1e-200"}}
    )
    assert event.revenue == 0  # DynamoDB stores nothing below 1e-130
    long = "1.123456789012345678901234567890123456789"
    (event,) = parse(
        "/v1/track", {"userId": "u", "event": "Order Completed", "properties": {"revenue": long}}
    )
    assert len(event.revenue.as_tuple().digits) <= 38
    with pytest.raises(InvalidRequest, match="revenue"):
        parse("/v1/track", {"userId": "u", "event": "Order Completed", "properties": {"revenue": "lots"}})
    (event,) = parse(
        "/v1/track", {"userId": "u", "event": "Product Viewed", "properties": {"revenue": "lots"}}
    )
    assert event.revenue is None


def test_lone_surrogates_are_rejected_not_stored() -> None:
    payload = json.loads('{"userId": "u", "event": "X", "properties": {"a": "\\ud800"}}')
    with pytest.raises(InvalidRequest, match="Unicode"):
        parse("/v1/track", payload)


def nested(levels: int, leaf: object = 1, key: str = "a") -> object:
    """``levels`` objects inside each other: ``nested(2)`` is ``{"a": {"a": 1}}``."""
    value = leaf
    for _ in range(levels):
        value = {key: value}
    return value


@pytest.mark.parametrize("field", ["properties", "traits", "context"])
def test_nesting_is_bounded_at_32_levels_and_the_error_names_the_field(field: str) -> None:
    call = {"type": "identify", "userId": "u"}
    (event,) = parse("/v1/batch", {"batch": [call | {field: nested(32)}]})  # the field itself is level 1
    assert json.loads(event.body)[field] == nested(32)
    with pytest.raises(InvalidRequest, match=rf"batch\[0\]\.{field}(\.a){{32}}: .*32 levels") as caught:
        parse("/v1/batch", {"batch": [call | {field: nested(256)}]})
    assert caught.value.code == "invalid_event"


def test_arrays_count_as_levels_too() -> None:
    deep: object = 1
    for _ in range(33):
        deep = [deep]
    with pytest.raises(InvalidRequest, match=r"body\.properties\.x(\[0\]){31}: .*32 levels"):
        parse("/v1/track", {"userId": "u", "event": "X", "properties": {"x": deep}})


@pytest.mark.parametrize("literal", ["1e400", "-1e400", "NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_rejected_naming_the_field(literal: str) -> None:
    call = f'{{"type": "track", "userId": "u", "event": "X", "properties": {{"p": [0, {literal}]}}}}'
    payload = parse_json_object(f'{{"batch": [{call}]}}'.encode())
    with pytest.raises(InvalidRequest, match=r"batch\[0\]\.properties\.p\[1\]: .*finite") as caught:
        parse("/v1/batch", payload)
    assert caught.value.code == "invalid_event"
    identify = parse_json_object(f'{{"userId": "u", "traits": {{"score": {literal}}}}}'.encode())
    with pytest.raises(InvalidRequest, match=r"body\.traits\.score: "):
        parse("/v1/identify", identify)


@pytest.mark.parametrize(
    "number",
    ["1e126", "-9.9e200", "1e308", "1e-131", "5e-324", "123456789012345678901234567890123456789"],
)
def test_numbers_dynamodb_cannot_hold_are_rejected(number: str) -> None:
    payload = parse_json_object(f'{{"userId": "u", "event": "X", "properties": {{"n": {number}}}}}'.encode())
    with pytest.raises(InvalidRequest, match=r"body\.properties\.n: .*DynamoDB"):
        parse("/v1/track", payload)


@pytest.mark.parametrize(
    "number",
    ["0", "-0.0", "9.99e125", "1e-130", "-1e-130", "12345678901234567890123456789012345678", "1e40", "0.1"],
)
def test_numbers_dynamodb_holds_are_kept(number: str) -> None:
    payload = parse_json_object(f'{{"userId": "u", "event": "X", "properties": {{"n": {number}}}}}'.encode())
    (event,) = parse("/v1/track", payload)
    assert json.loads(event.body)["properties"]["n"] == json.loads(number)


def test_envelope_of_a_batch_is_checked_too() -> None:
    payload = parse_json_object(b'{"batch": [{"type": "page", "userId": "u"}], "context": {"x": NaN}}')
    with pytest.raises(InvalidRequest, match=r"body\.context\.x: "):
        parse("/v1/batch", payload)
