"""Scoring through the real handlers on moto: rules API, a visitor journey, limits, decay and the ledger."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import BROWSER_KEY

KITES = {
    "behaviour": "product_viewed",
    "points": 4,
    "match": {"product": "kite-3"},
    "tag": "kites",
    "description": "interest in kites",
}
PRICING = {
    "behaviour": "visit",
    "points": 10,
    "match": {"url": "https://shop.example/pricing*"},
    "limit": {"per_contact": 1},
}
NEWSLETTER = {"behaviour": "email_clicked_mailing", "points": 3, "match": {"campaign_id": "nov-newsletter"}}
SEARCH = {"behaviour": "visit_from_search", "points": 2, "match": {"search_phrase": "*kite*"}, "tag": "kites"}


def test_rules_api_lists_defaults_validates_and_versions(rules_api) -> None:
    status, listing, _ = rules_api("GET")
    assert status == 200
    defaults = {r["id"]: r for r in listing["rules"]}
    assert (
        defaults["general.purchase"]["points"] == 20 and defaults["general.purchase"]["origin"] == "default"
    )

    status, body, _ = rules_api("PUT", "kites", {**KITES, "points": "many"})
    assert status == 400 and body["code"] == "invalid_rule" and body["message"].startswith("points")
    status, body, _ = rules_api("PUT", "kites", {**KITES, "limit": {"per_day": 1}})
    assert status == 400 and body["message"].startswith("limit.per_day")

    status, first, _ = rules_api("PUT", "kites", KITES)
    assert status == 200 and (first["version"], first["origin"]) == (1, "stored")
    status, second, _ = rules_api("PUT", "kites", {**KITES, "points": 5}, {"if-match": "1"})
    assert status == 200 and second["version"] == 2
    status, body, _ = rules_api("PUT", "kites", {**KITES, "points": 6}, {"if-match": "1"})
    assert status == 409 and body["code"] == "conflict"
    status, detail, _ = rules_api("GET", "kites")
    assert detail["rule"]["points"] == 5 and [v["version"] for v in detail["history"]] == [2, 1]

    status, overridden, _ = rules_api("PUT", "general.visit", {"behaviour": "visit", "points": 2})
    assert overridden["version"] == 2  # the shipped default was version 1
    status, deleted, _ = rules_api("DELETE", "general.visit")
    assert status == 200 and deleted == {"deleted": "general.visit", "version": 2, "default_applies": True}
    assert rules_api("GET", "general.visit")[1]["rule"]["points"] == 1
    status, again, _ = rules_api("PUT", "general.visit", {"behaviour": "visit", "points": 3})
    assert again["version"] == 4, "after v2 and its deletion (v3), versions never repeat"
    versions = [v["version"] for v in rules_api("GET", "general.visit")[1]["history"]]
    assert versions == [4, 3, 2]
    assert rules_api("DELETE", "nothing-here")[0] == 404
    assert rules_api("GET", "nothing-here")[0] == 404


def journey(send) -> None:
    """Anonymous search visit, pricing page twice, a kite, sign-up, newsletter click, purchase."""
    browser = [
        {
            "type": "page",
            "anonymousId": "a1",
            "messageId": "s1",
            "timestamp": "2026-11-23T10:00:00Z",
            "properties": {
                "url": "https://shop.example/",
                "referrer": "https://www.google.com/search?q=red+kites",
            },
        },
        {
            "type": "page",
            "anonymousId": "a1",
            "messageId": "p1",
            "timestamp": "2026-11-23T10:01:00Z",
            "properties": {"url": "https://shop.example/pricing"},
        },
        {
            "type": "page",
            "anonymousId": "a1",
            "messageId": "p2",
            "timestamp": "2026-11-23T10:02:00Z",
            "properties": {"url": "https://shop.example/pricing?plan=pro"},
        },
        {
            "type": "track",
            "anonymousId": "a1",
            "event": "Product Viewed",
            "messageId": "v1",
            "timestamp": "2026-11-23T10:03:00Z",
            "properties": {"product_id": "kite-3"},
        },
        {
            "type": "identify",
            "anonymousId": "a1",
            "userId": "ann",
            "messageId": "i1",
            "timestamp": "2026-11-23T10:04:00Z",
            "traits": {"email": "ann@example.com"},
        },
    ]
    assert send("/v1/b", {"batch": browser}, key=BROWSER_KEY)[0] == 200
    assert (
        send(
            "/v1/t",
            {
                "userId": "ann",
                "event": "Email Link Clicked",
                "messageId": "e1",
                "timestamp": "2026-11-23T11:00:00Z",
                "properties": {"campaign_id": "nov-newsletter"},
            },
            key=BROWSER_KEY,
        )[0]
        == 200
    )
    assert (
        send(
            "/v1/track",
            {
                "userId": "ann",
                "event": "Order Completed",
                "messageId": "o1",
                "timestamp": "2026-11-23T11:30:00Z",
                "properties": {"revenue": 30},
            },
        )[0]
        == 200
    )


EXPECTED_LEDGER = {
    "s1": [
        ("general.visit_from_search", 3, "global"),
        ("kite-search", 2, "global"),
        ("kite-search", 2, "tag:kites"),
    ],
    "p1": [("general.visit", 1, "global"), ("pricing", 10, "global")],
    "p2": [("general.visit", 1, "global")],  # the pricing bonus counts once per contact
    "v1": [("general.product_viewed", 2, "global"), ("kites", 4, "global"), ("kites", 4, "tag:kites")],
    "e1": [("general.email_clicked_mailing", 3, "global"), ("newsletter", 3, "global")],
    "o1": [("general.purchase", 20, "global")],
}


def install_rules(rules_api) -> None:
    for rule_id, rule in (
        ("kites", KITES),
        ("pricing", PRICING),
        ("newsletter", NEWSLETTER),
        ("kite-search", SEARCH),
    ):
        assert rules_api("PUT", rule_id, rule)[0] == 200


def test_a_visitor_journey_gives_exactly_the_expected_scores_tags_and_ledger(
    send, admin, rules_api, state, merges
) -> None:
    install_rules(rules_api)
    journey(send)
    merges.drain()
    status, card, _ = admin("user_id:ann")
    assert status == 200
    lifetime = sum(
        points for lines in EXPECTED_LEDGER.values() for _, points, dim in lines if dim == "global"
    )
    assert lifetime == 49
    assert card["scores"]["global"]["lifetime"] == lifetime
    half_life_minutes = 30 * 24 * 60
    kites_now = 2 * 2 ** (-120 / half_life_minutes) + 4 * 2 ** (
        -117 / half_life_minutes
    )  # 10:00 and 10:03, read at 12:00
    assert card["scores"]["tags"] == {
        "kites": {"lifetime": 6, "current": pytest.approx(kites_now, abs=1e-6), "trend": "rising"}
    }
    assert card["scores"]["stages"]["subscriber"]["lifetime"] == lifetime
    assert card["tags"] == ["kites"]
    ledger = {
        e["message_id"]: [(c["rule_id"], c["points"], c["dimension"]) for c in e["changes"]]
        for e in card["ledger"]
    }
    assert {k: sorted(v) for k, v in ledger.items()} == {k: sorted(v) for k, v in EXPECTED_LEDGER.items()}
    versions = {c["rule_id"]: c["rule_version"] for e in card["ledger"] for c in e["changes"]}
    assert versions["kites"] == 1 and versions["general.purchase"] == 1

    once = state()
    journey(send)  # the whole journey replayed: nothing changes
    assert merges.drain() == 0
    assert state() == once


def test_ledger_is_newest_first_and_pages(send, admin, rules_api, merges) -> None:
    install_rules(rules_api)
    journey(send)
    merges.drain()
    seen: list[str] = []
    cursor = None
    while True:
        status, page, _ = admin(
            "ann", ledger=True, query={"limit": "2", **({"before": cursor} if cursor else {})}
        )
        assert status == 200
        seen += [e["message_id"] for e in page["entries"]]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert seen == ["o1", "e1", "v1", "p2", "p1", "s1"]


def test_a_per_contact_limit_holds_across_requests(send, admin, rules_api) -> None:
    assert rules_api("PUT", "pricing", PRICING)[0] == 200
    for i in range(3):
        send(
            "/v1/page",
            {"userId": "ann", "messageId": f"p{i}", "properties": {"url": "https://shop.example/pricing"}},
        )
    card = admin("ann")[1]
    assert card["scores"]["global"]["lifetime"] == 3 * 1 + 10
    bonus = [e for e in card["ledger"] if any(c["rule_id"] == "pricing" for c in e["changes"])]
    assert [e["message_id"] for e in bonus] == ["p0"]


def test_current_engagement_decays_and_lifetime_stays(send, admin, clock) -> None:
    send("/v1/track", {"userId": "ann", "event": "Order Completed", "messageId": "o1"})
    now = admin("ann")[1]["scores"]["global"]
    assert (now["lifetime"], now["current"]) == (20, pytest.approx(20, rel=1e-9))
    clock.advance(timedelta(days=30))
    later = admin("ann")[1]["scores"]["global"]
    assert later["lifetime"] == 20
    assert later["current"] == pytest.approx(10, rel=1e-9)
    assert later["trend"] == "falling"


def test_merged_contacts_keep_their_scores(send, admin, merges) -> None:
    send("/v1/p", {"anonymousId": "a9", "messageId": "p1"}, key=BROWSER_KEY)
    send("/v1/t", {"anonymousId": "a9", "event": "Product Added", "messageId": "c1"}, key=BROWSER_KEY)
    send("/v1/i", {"anonymousId": "a9", "userId": "bo", "messageId": "i1"}, key=BROWSER_KEY)
    merges.drain()
    card = admin("bo")[1]
    assert card["scores"]["global"]["lifetime"] == 1 + 5
    assert card["scores"]["global"]["current"] == pytest.approx(6)
    assert {e["message_id"] for e in card["ledger"]} == {"p1", "c1"}
