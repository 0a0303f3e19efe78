"""Admin views render whatever is stored: nothing in an event body or a trait can make a read fail."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.contacts.views import MAX_SHOWN_DEPTH, NOT_SHOWN, EventView, StoredEvent, shown

AT = datetime(2026, 11, 23, tzinfo=UTC)


def stored(body: object) -> StoredEvent:
    return StoredEvent(
        message_id="m1", call="track", behaviour="custom", timestamp=AT, received_at=AT, body=body
    )


def nested(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


def test_values_deeper_than_ingestion_allows_are_cut_there() -> None:
    assert shown(nested(MAX_SHOWN_DEPTH)) == nested(MAX_SHOWN_DEPTH)
    cut = shown(nested(300))
    for _ in range(MAX_SHOWN_DEPTH - 1):
        (cut,) = cut
    assert cut == [NOT_SHOWN]


def test_non_finite_numbers_and_broken_text_show_as_text() -> None:
    assert shown({"a": [float("inf"), float("-inf"), float("nan"), 10**50, "ok\ud800"]}) == {
        "a": ["Infinity", "-Infinity", "NaN", 10**50, "ok?"]
    }


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,  # deeper than the JSON reader recurses
        "[1, 2]",
        "not json",
        '"text"',
        json.dumps({"properties": [1], "traits": "x", "context": None}),
    ],
)
def test_unreadable_or_odd_bodies_show_no_fields(body: str) -> None:
    view = EventView.of(stored(body))
    assert (view.properties, view.traits, view.context) == (None, None, None)
    json.loads(view.model_dump_json())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(properties=st.dictionaries(st.text(max_size=4), json_values, max_size=4), depth=st.integers(0, 400))
def test_any_stored_body_renders(properties: dict, depth: int) -> None:
    body = json.dumps({"properties": properties | {"deep": nested(depth)}, "traits": properties})
    rendered = json.loads(EventView.of(stored(body)).model_dump_json())
    assert rendered["properties"] is not None and rendered["traits"] is not None
