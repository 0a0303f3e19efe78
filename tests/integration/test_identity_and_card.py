"""Identity resolution and the contact card, through the real handlers on moto."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import BROWSER_KEY, as_function


def journey(send, merges) -> None:
    """An anonymous visitor browses, signs up in the browser, then buys (reported by the back-end); the
    merge function then runs (the identify asked for the merge)."""
    browser = [
        {
            "type": "page",
            "anonymousId": "anon-1",
            "messageId": "p1",
            "properties": {"url": "https://s.example/?gclid=1"},
        },
        {
            "type": "page",
            "anonymousId": "anon-1",
            "messageId": "p2",
            "context": {"page": {"referrer": "https://www.bing.com/search?q=kites"}},
        },
        {
            "type": "track",
            "anonymousId": "anon-1",
            "event": "Product Viewed",
            "messageId": "v1",
            "properties": {"sku": "kite"},
        },
        {
            "type": "identify",
            "userId": "ann",
            "anonymousId": "anon-1",
            "messageId": "i1",
            "traits": {"email": "ann@example.com", "tags": ["kites"]},
        },
        {
            "type": "track",
            "userId": "ann",
            "anonymousId": "anon-1",
            "event": "Product Added",
            "messageId": "c1",
        },
    ]
    assert send("/v1/b", {"batch": browser}, key=BROWSER_KEY)[0] == 200
    order = {
        "userId": "ann",
        "event": "Order Completed",
        "messageId": "o1",
        "properties": {"revenue": 30, "order_id": "o-1"},
    }
    assert send("/v1/track", order)[0] == 200
    merges.drain()


def test_anonymous_history_merges_into_the_known_contact(send, admin, merges) -> None:
    journey(send, merges)
    status, card, _ = admin("user_id:ann")
    assert status == 200
    assert card["contact_id"] == "user_id:ann"
    assert card["anonymous_ids"] == ["anon-1"]
    assert card["traits"] == {"email": "ann@example.com"}
    assert card["tags"] == ["kites"]
    assert card["counts"] == {
        "visit_from_ads": 1,
        "visit_from_search": 1,
        "product_viewed": 1,
        "identified": 1,
        "added_to_cart": 1,
        "purchase": 1,
    }
    assert card["event_count"] == 6
    assert card["revenue_total"] == 30
    assert {e["message_id"] for e in card["recent_events"]} == {"p1", "p2", "v1", "i1", "c1", "o1"}


def test_the_anonymous_id_leads_to_the_known_contact(send, admin, merges) -> None:
    journey(send, merges)
    status, card, _ = admin("anonymous_id:anon-1")
    assert status == 200 and card["contact_id"] == "user_id:ann"


def test_anonymous_events_after_identify_land_on_the_known_contact(send, admin, clock, merges) -> None:
    journey(send, merges)
    clock.advance(timedelta(minutes=5))
    send("/v1/p", {"anonymousId": "anon-1", "messageId": "late"}, key=BROWSER_KEY)
    card = admin("ann")[1]
    assert card["event_count"] == 7
    assert card["recent_events"][0]["message_id"] == "late"


def test_replayed_anonymous_event_after_the_merge_is_not_double_counted(send, admin, merges) -> None:
    journey(send, merges)
    send("/v1/p", {"anonymousId": "anon-1", "messageId": "p1"}, key=BROWSER_KEY)
    assert admin("ann")[1]["event_count"] == 6


def test_alias_merges_two_known_contacts_server_side(send, admin, merges) -> None:
    send("/v1/track", {"userId": "old-id", "event": "Liked", "messageId": "l1"})
    send("/v1/identify", {"userId": "old-id", "traits": {"name": "Ann", "plan": "free"}, "messageId": "i0"})
    send("/v1/identify", {"userId": "ann", "traits": {"plan": "pro"}, "messageId": "i1"})
    assert send("/v1/alias", {"userId": "ann", "previousId": "old-id"}, key=BROWSER_KEY)[0] == 403
    assert send("/v1/alias", {"userId": "ann", "previousId": "old-id", "messageId": "a1"})[0] == 200
    merges.drain()
    card = admin("ann")[1]
    assert card["traits"] == {"name": "Ann", "plan": "pro"}  # the surviving contact's own values win
    assert card["counts"] == {"like": 1, "identified": 2, "aliased": 1}
    assert admin("old-id")[1]["contact_id"] == "user_id:ann"


def test_card_of_an_unknown_contact_is_404(admin) -> None:
    status, body, _ = admin("user_id:nobody")
    assert status == 404 and body["code"] == "not_found"


def test_event_log_pages_newest_first(send, admin) -> None:
    batch = [
        {"type": "page", "userId": "ann", "messageId": f"m{i:02}", "timestamp": f"2026-11-01T00:{i:02}:00Z"}
        for i in range(45)
    ]
    send("/v1/import", {"batch": batch})
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": "20", **({"before": cursor} if cursor else {})}
        status, page, _ = admin("ann", events=True, query=query)
        assert status == 200
        seen += [e["message_id"] for e in page["events"]]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert seen == [f"m{i:02}" for i in reversed(range(45))]


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "1000"}, {"limit": "x"}, {"before": "garbage"}])
def test_event_log_rejects_bad_paging(send, admin, query) -> None:
    send("/v1/page", {"userId": "ann"})
    status, body, _ = admin("ann", events=True, query=query)
    assert status == 400 and body["code"] in ("invalid_limit", "invalid_cursor")


def test_a_big_identify_fits_one_write_and_a_big_history_merges(send, admin, merges) -> None:
    """Up to the per-call limits an identify fits DynamoDB's 4 KB expressions (checked on every call
    here); a visitor who sent hundreds of traits still merges completely, in several writes."""
    big = {f"field_{i:03}": i for i in range(149)} | {"tags": [f"interest-{i:02}" for i in range(50)]}
    assert send("/v1/identify", {"userId": "ann", "traits": big})[0] == 200
    card = admin("ann")[1]
    assert len(card["traits"]) == 149 and len(card["tags"]) == 50
    for batch in range(3):
        traits = {f"anon_{batch}_{i:03}": i for i in range(150)}
        assert (
            send("/v1/identify", {"anonymousId": "a-big", "traits": traits, "messageId": f"t{batch}"})[0]
            == 200
        )
    assert send("/v1/identify", {"anonymousId": "a-big", "userId": "bo", "messageId": "link"})[0] == 200
    merges.drain()
    card = admin("bo")[1]
    assert len(card["traits"]) == 450
    assert card["counts"] == {"identified": 4} and card["event_count"] == 4


def test_imported_history_moves_first_seen_back_and_never_the_last_purchase(send, admin) -> None:
    send(
        "/v1/track",
        {"userId": "ann", "event": "Order Completed", "properties": {"revenue": 5}, "messageId": "live"},
    )
    live = admin("ann")[1]
    send(
        "/v1/import",
        {
            "batch": [
                {
                    "type": "page",
                    "userId": "ann",
                    "messageId": "old-visit",
                    "timestamp": "2024-03-01T10:00:00Z",
                },
                {
                    "type": "track",
                    "userId": "ann",
                    "event": "Order Completed",
                    "messageId": "old-order",
                    "timestamp": "2024-05-01T10:00:00Z",
                    "properties": {"revenue": 7},
                },
            ]
        },
    )
    card = admin("ann")[1]
    assert card["first_seen_at"].startswith("2024-03-01")
    assert card["last_purchase_at"] == live["last_purchase_at"]
    assert card["revenue_total"] == 12 and card["counts"]["purchase"] == 2


def test_opposite_aliases_cannot_both_win(aws, send) -> None:
    """alias b->a commits first; a stale view then tries a->b: the claim checks b is not merged."""
    from datetime import UTC, datetime

    from shared import runtime
    from shared.contacts.identity import ContactId
    from shared.scoring.decay import Decay
    from shared.usecases import recording

    send("/v1/page", {"userId": "a"})
    send("/v1/page", {"userId": "b"})
    with as_function("merge"):
        store = runtime.merging().contacts
    now = datetime(2026, 11, 23, tzinfo=UTC)
    assert recording.link(ContactId.user("b"), ContactId.user("a"), store, now, Decay())
    stale = recording.resolve
    views = []

    def first_view_is_stale(contact, store, max_hops=8):  # a view from before b was merged
        views.append(contact)
        return contact if len(views) == 1 else stale(contact, store, max_hops)

    try:
        recording.resolve = first_view_is_stale
        assert not recording.link(ContactId.user("a"), ContactId.user("b"), store, now, Decay())
    finally:
        recording.resolve = stale
    assert store.profile(ContactId.user("a")).merged_into is None
    assert store.profile(ContactId.user("b")).merged_into == "user_id:a"


def test_admin_reads_never_fail_on_odd_stored_data(aws, send, admin) -> None:
    """Data stored before ingestion bounded it (or written by hand) still renders: deep values are cut
    at 32 levels, non-finite numbers are shown as text, an unreadable body shows no fields."""
    import json
    import os

    def deep(levels: int) -> object:
        value: object = 1
        for _ in range(levels):
            value = {"a": value}
        return value

    assert send("/v1/identify", {"userId": "odd", "traits": {"email": "o@example.com"}})[0] == 200
    for message_id in ("m1", "m2", "m3"):
        track = {"userId": "odd", "event": "Product Viewed", "messageId": message_id}
        assert send("/v1/track", track)[0] == 200
    pk = {"S": "C#user_id:odd"}
    aws.update_item(
        TableName=os.environ["CONTACTS_TABLE_NAME"],
        Key={"pk": pk, "sk": {"S": "PROFILE"}},
        UpdateExpression="SET #deep = :deep, #inf = :inf",
        ExpressionAttributeNames={"#deep": "trait:prefs", "#inf": "trait:score"},
        ExpressionAttributeValues={":deep": {"S": json.dumps(deep(300))}, ":inf": {"S": "-Infinity"}},
    )
    bodies = {
        "m1": json.dumps({"type": "track", "properties": {"tree": deep(300), "n": float("inf")}}),
        "m2": "[" * 100_000 + "]" * 100_000,  # more than any JSON reader recurses into
        "m3": "[1, 2]",  # not an object
    }
    for message_id, body in bodies.items():
        aws.update_item(
            TableName=os.environ["EVENTS_TABLE_NAME"],
            Key={"pk": pk, "sk": {"S": f"M#{message_id}"}},
            UpdateExpression="SET body = :b",
            ExpressionAttributeValues={":b": {"S": body}},
        )

    status, card, _ = admin("odd")
    assert status == 200, card
    assert card["traits"]["score"] == "-Infinity" and card["traits"]["email"] == "o@example.com"
    shown = card["traits"]["prefs"]  # level 2: the traits object is level 1, as in a call
    for _ in range(31):
        shown = shown["a"]
    assert isinstance(shown, str) and "32 levels" in shown
    status, page, _ = admin("odd", events=True)
    assert status == 200, page
    events = {e["message_id"]: e for e in page["events"]}
    assert events["m1"]["properties"]["n"] == "Infinity"
    assert events["m2"]["properties"] is None and events["m3"]["properties"] is None
    status, _, _ = admin("odd", ledger=True)
    assert status == 200


def test_an_event_on_both_contacts_before_the_merge_counts_once(send, admin, merges) -> None:
    """The same messageId stored on the visitor and on the user: after the merge, counters and scores
    are the sum over the distinct events stored (one Product Viewed, one identify)."""
    assert send("/v1/t", {"anonymousId": "a1", "event": "Product Viewed", "messageId": "m1"})[0] == 200
    assert (
        send("/v1/t", {"anonymousId": "a1", "userId": "bob", "event": "Product Viewed", "messageId": "m1"})[0]
        == 200
    )
    single = admin("bob")[1]["scores"]["global"]
    assert send("/v1/identify", {"anonymousId": "a1", "userId": "bob", "messageId": "i1"})[0] == 200
    merges.drain()
    card = admin("bob")[1]
    assert sorted(e["message_id"] for e in card["recent_events"]) == ["i1", "m1"]
    assert card["event_count"] == 2
    assert card["counts"] == {"product_viewed": 1, "identified": 1}
    ledger = admin("bob", ledger=True)[1]["entries"]
    points = sum(c["points"] for entry in ledger for c in entry["changes"] if c["dimension"] == "global")
    assert card["scores"]["global"]["lifetime"] == points == single["lifetime"] > 0
    assert card["scores"]["global"]["current"] == pytest.approx(single["current"])
