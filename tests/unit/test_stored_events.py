"""What the event log keeps of a call, and the event rebuilt from it."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.contacts.views import EventView, StoredEvent
from shared.errors import PayloadTooLarge
from shared.scoring.rules import StoredRule, lookup, matches
from shared.tracking.behaviours import Behaviour
from shared.tracking.messages import TrackedEvent, parse_calls, rebuild_event
from shared.tracking.stored import PAGE_MARK, compact, expanded, kept
from shared.tracking.wire import Limits

NOW = datetime(2026, 11, 22, 10, 44, tzinfo=UTC)
PAGE = {
    "path": "/products/42",
    "referrer": "https://www.google.com/search?q=wooden+toys",
    "search": "?utm_source=google&utm_medium=cpc",
    "title": "Wooden kites – Shop",
    "url": "https://shop.example.com/products/42?utm_source=google&utm_medium=cpc",
}
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def analytics_js(kind: str, **fields: Any) -> dict[str, Any]:
    """A call as @segment/analytics-next 1.84 sends it from Chrome."""
    return {
        "timestamp": "2026-11-22T10:43:49.326Z",
        "integrations": {"Segment.io": True},
        "type": kind,
        "context": {
            "page": dict(PAGE),
            "userAgent": CHROME,
            "userAgentData": {
                "brands": [
                    {"brand": "Google Chrome", "version": "131"},
                    {"brand": "Chromium", "version": "131"},
                    {"brand": "Not_A Brand", "version": "24"},
                ],
                "mobile": False,
                "platform": "Windows",
            },
            "locale": "en-GB",
            "library": {"name": "analytics.js", "version": "npm:next-1.84.3"},
            "campaign": {"source": "google", "medium": "cpc"},
            "timezone": "Europe/London",
        },
        "messageId": "ajs-next-1795344229326-f599d727-db5a-4e1a-bce2-6aa4c052cfe7",
        "anonymousId": "99d727db-5a7e-4afc-a26a-a4c052cfe706",
        "writeKey": "BROWSER_WK",
        "userId": None,
        "sentAt": "2026-11-22T10:43:49.374Z",
        "_metadata": {"bundled": ["Segment.io"], "unbundled": [], "bundledIds": []},
        **fields,
    }


PAGE_CALL = analytics_js("page", properties=dict(PAGE))
TRACK_CALL = analytics_js(
    "track", event="Product Viewed", properties={"product_id": "p-42", "sku": "K-42", "price": 24.99}
)


def parse(path: str, call: dict[str, Any]) -> TrackedEvent:
    (event,) = parse_calls(path, call, received_at=NOW, limits=Limits())
    return event


def rebuilt(event: TrackedEvent, body: str | None = None) -> TrackedEvent:
    return rebuild_event(
        event.body if body is None else body,
        message_id=event.message_id,
        call=event.call,
        timestamp=event.timestamp,
        received_at=event.received_at,
        stated_time=event.stated_time,
    )


def sent_size(call: dict[str, Any]) -> int:
    """What an older release stored: the call without writeKey and sentAt."""
    sent = {k: v for k, v in call.items() if k not in ("writeKey", "sentAt")}
    return len(json.dumps(sent, separators=(",", ":"), ensure_ascii=False).encode())


def test_a_page_call_keeps_what_is_read_and_names_the_page_fields_its_properties_repeat() -> None:
    event = parse("/v1/p", PAGE_CALL)
    stored = json.loads(event.body)
    assert stored == {
        "anonymousId": PAGE_CALL["anonymousId"],
        "context": {
            "userAgentData": {"mobile": False, "platform": "Windows"},
            "locale": "en-GB",
            "campaign": {"source": "google", "medium": "cpc"},
            "timezone": "Europe/London",
        },
        "properties": PAGE,
        PAGE_MARK: ["path", "referrer", "search", "title", "url"],
    }
    assert event.context["page"] == PAGE and "library" not in event.context
    assert (event.behaviour, event.context_timezone) == (Behaviour.VISIT_FROM_ADS, "Europe/London")
    assert len(event.body.encode()) < 0.45 * sent_size(PAGE_CALL)  # 510 bytes of 1,265


def test_a_track_call_keeps_its_page_context_and_drops_the_rest() -> None:
    event = parse("/v1/t", TRACK_CALL)
    stored = json.loads(event.body)
    assert set(stored) == {"anonymousId", "context", "event", "properties"}
    assert set(stored["context"]) == {"page", "userAgentData", "locale", "campaign", "timezone"}
    assert len(event.body.encode()) < 0.6 * sent_size(TRACK_CALL)


def test_a_page_field_properties_change_is_kept_in_the_context() -> None:
    call = analytics_js("page", properties={**PAGE, "url": "https://shop.example.com/kites", "x": 1})
    stored = json.loads(parse("/v1/p", call).body)
    assert stored["context"]["page"] == {"url": PAGE["url"]}
    assert stored[PAGE_MARK] == ["path", "referrer", "search", "title"]
    assert expanded(stored)["context"]["page"] == PAGE


@pytest.mark.parametrize("sent", [1.0, True, "1", [1], {"a": 1}])
def test_only_values_equal_as_json_are_taken_from_properties(sent: Any) -> None:
    call = {"anonymousId": "a", "properties": {"n": 1}, "context": {"page": {"n": sent}}}
    event = parse("/v1/p", call)
    assert json.loads(event.body)["context"]["page"] == {"n": sent}
    again = rebuilt(event)
    assert json.dumps(again.context) == json.dumps(event.context) == json.dumps({"page": {"n": sent}})


def test_a_page_mark_sent_by_the_client_is_dropped_and_cannot_fake_a_page() -> None:
    call = {"anonymousId": "a", "properties": {"url": "https://x/"}, PAGE_MARK: ["url"]}
    event = parse("/v1/p", call)
    assert PAGE_MARK not in json.loads(event.body) and "page" not in event.context
    assert rebuilt(event).context == {}


def test_rules_on_context_fields_match_the_rebuilt_event_as_the_parsed_one() -> None:
    rule = StoredRule.model_validate(
        {
            "id": "kite-pages",
            "behaviour": "visit_from_ads",
            "points": 5,
            "version": 1,
            "match": {
                "properties": [
                    {"path": "context.page.url", "op": "like", "value": "*/products/*"},
                    {"path": "context.locale", "op": "eq", "value": "en-GB"},
                    {"path": "context.userAgentData.mobile", "op": "eq", "value": False},
                ]
            },
        }
    )
    event = parse("/v1/p", PAGE_CALL)
    assert matches(rule, event) and matches(rule, rebuilt(event))
    assert lookup(rebuilt(event), "context.page.title") == PAGE["title"]
    assert lookup(event, "context.userAgent") is None  # dropped: rules never see it


def test_stated_time_is_the_clients_own_and_survives_a_retry() -> None:
    first = parse("/v1/t", TRACK_CALL)
    later = NOW + timedelta(minutes=5)
    retry = parse_calls(
        "/v1/t", {**TRACK_CALL, "sentAt": "2026-11-22T10:48:49.374Z"}, received_at=later, limits=Limits()
    )[0]
    assert first.stated_time == retry.stated_time == datetime(2026, 11, 22, 10, 43, 49, 326000, tzinfo=UTC)
    assert first.timestamp != first.stated_time  # corrected for the client's clock
    original = {"userId": "u", "event": "X", "originalTimestamp": "2026-11-20T08:00:00+02:00"}
    assert parse("/v1/t", original).stated_time == datetime(2026, 11, 20, 6, tzinfo=UTC)
    assert parse("/v1/t", {"userId": "u", "event": "X"}).stated_time is None


def test_without_a_stated_time_the_rebuild_reads_it_from_a_body_stored_whole() -> None:
    event = parse("/v1/t", TRACK_CALL)
    whole = json.dumps({k: v for k, v in TRACK_CALL.items() if k not in ("writeKey", "sentAt")})
    older = rebuild_event(
        whole, message_id=event.message_id, call="track", timestamp=event.timestamp, received_at=NOW
    )
    assert older.stated_time == event.stated_time
    assert (older.context, older.properties, older.behaviour) == (
        event.context,
        event.properties,
        event.behaviour,
    )
    compact_body = rebuild_event(
        event.body, message_id=event.message_id, call="track", timestamp=event.timestamp, received_at=NOW
    )
    assert compact_body.stated_time is None  # the event item's key holds it


def test_identify_traits_from_the_context_are_rebuilt() -> None:
    call = {"userId": "u", "traits": {"email": "new@example.com"}, "context": {"traits": {"name": "Ann"}}}
    event = parse("/v1/identify", call)
    assert rebuilt(event).traits == event.traits == {"name": "Ann", "email": "new@example.com"}


@pytest.mark.parametrize("body", ["not json", "[1]", '"text"'])
def test_a_body_that_is_no_stored_call_is_a_value_error(body: str) -> None:
    event = parse("/v1/t", TRACK_CALL)
    with pytest.raises(ValueError, match="stored body"):
        rebuilt(event, body)


def test_content_ids_are_those_of_the_call_as_sent() -> None:
    call = {"userId": "u", "event": "X", "context": {"library": {"name": "analytics-python"}}}
    sent = json.dumps({**call, "type": "track"}, separators=(",", ":"), ensure_ascii=False)
    assert parse("/v1/t", call).message_id == "sha256-" + hashlib.sha256(sent.encode()).hexdigest()[:40]


def test_the_size_limit_counts_the_call_as_sent() -> None:
    call = {"userId": "u", "event": "X", "context": {"userAgent": "x" * 40_000}}
    with pytest.raises(PayloadTooLarge, match="32 KB"):
        parse("/v1/t", call)


def test_expanding_gives_what_the_product_reads_and_storing_that_again_changes_nothing() -> None:
    for call in (PAGE_CALL, TRACK_CALL):
        assert expanded(compact(call)) == kept(call) == expanded(kept(call)) == kept(kept(call))
        assert compact(expanded(compact(call))) == compact(call)


def test_the_admin_view_shows_the_page_context_whole() -> None:
    event = parse("/v1/p", PAGE_CALL)
    view = EventView.of(
        StoredEvent(
            message_id=event.message_id,
            call="page",
            behaviour=event.behaviour.value,
            timestamp=event.timestamp,
            received_at=NOW,
            body=event.body,
        )
    )
    assert view.context is not None and view.context["page"] == PAGE and view.properties == PAGE
