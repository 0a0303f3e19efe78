from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.errors import InvalidRequest
from shared.scoring.catalogue import effective, parse_rule
from shared.scoring.defaults import GENERAL_POINTS
from shared.scoring.rules import RuleBook, StoredRule, matches
from shared.tracking.behaviours import Behaviour
from shared.tracking.messages import parse_calls
from shared.tracking.wire import Limits

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def event(payload: dict, path: str = "/v1/track"):
    (parsed,) = parse_calls(path, {"userId": "ann", **payload}, received_at=NOW, limits=Limits())
    return parsed


def rule(**fields) -> StoredRule:
    return StoredRule.model_validate(
        {"id": "r1", "behaviour": "product_viewed", "points": 5, "version": 1, **fields}
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"behaviour": "visit"}, "points"),
        ({"behaviour": "flying", "points": 1}, "behaviour"),
        ({"behaviour": "visit", "points": "lots"}, "points"),
        ({"behaviour": "visit", "points": 1, "limit": {"per_contact": 0}}, "limit.per_contact"),
        ({"behaviour": "visit", "points": 1, "match": {}}, "match"),
        (
            {
                "behaviour": "visit",
                "points": 1,
                "match": {"properties": [{"path": "properties.x", "op": "gt", "value": "a"}]},
            },
            "match.properties.0",
        ),
        (
            {
                "behaviour": "visit",
                "points": 1,
                "match": {"properties": [{"path": "price", "op": "eq", "value": 1}]},
            },
            "match.properties.0.path",
        ),
        ({"behaviour": "visit", "points": 1, "tag": "a", "tag_from": "properties.c"}, "rule"),
        ({"behaviour": "visit", "points": 1, "surprise": True}, "surprise"),
        (
            {
                "behaviour": "visit",
                "points": 1,
                "valid_from": "2027-01-01T00:00:00Z",
                "valid_to": "2026-01-01T00:00:00Z",
            },
            "rule",
        ),
    ],
)
def test_a_bad_rule_is_a_400_naming_the_field(body, field) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_rule("r1", body)
    assert refused.value.code == "invalid_rule"
    assert refused.value.message.startswith(field), refused.value.message


def test_rule_ids_are_slugs_and_must_match_the_path() -> None:
    with pytest.raises(InvalidRequest, match="id"):
        parse_rule("Has Spaces", {"behaviour": "visit", "points": 1})
    with pytest.raises(InvalidRequest, match="does not match"):
        parse_rule("a", {"id": "b", "behaviour": "visit", "points": 1})


def test_every_mapped_behaviour_has_a_documented_default() -> None:
    defaulted = {b for b, _, _ in GENERAL_POINTS}
    scored = set(Behaviour) - {
        Behaviour.IDENTIFIED,
        Behaviour.ALIASED,
        Behaviour.GROUPED,
        Behaviour.CUSTOM,
        Behaviour.CONSENT_CHANGED,
    }
    assert defaulted == scored
    assert all(r.general and r.origin == "default" for r in effective([]))


def test_matching_conditions() -> None:
    viewed = event(
        {"event": "Product Viewed", "properties": {"product_id": "kite-3", "price": 120, "category": "toys"}}
    )
    assert matches(rule(match={"product": "kite-3"}), viewed)
    assert not matches(rule(match={"product": "kite-4"}), viewed)
    assert matches(
        rule(match={"properties": [{"path": "properties.price", "op": "gte", "value": 100}]}), viewed
    )
    assert not matches(
        rule(match={"properties": [{"path": "properties.price", "op": "lt", "value": 100}]}), viewed
    )
    assert matches(
        rule(match={"properties": [{"path": "properties.category", "op": "in", "value": ["toys", "books"]}]}),
        viewed,
    )
    assert matches(rule(match={"properties": [{"path": "properties.colour", "op": "missing"}]}), viewed)
    in_basket = event({"event": "Order Completed", "properties": {"products": [{"sku": "A"}, {"sku": "B"}]}})
    assert matches(rule(behaviour="purchase", match={"product": "B"}), in_basket)


def test_url_referrer_and_search_phrase() -> None:
    visit = event(
        {
            "properties": {
                "url": "https://shop.example/pricing?plan=pro",
                "referrer": "https://www.google.com/search?q=cheap+kites",
            }
        },
        path="/v1/page",
    )
    assert visit.behaviour is Behaviour.VISIT_FROM_SEARCH
    base = {"behaviour": "visit_from_search"}
    assert matches(rule(**base, match={"url": "https://shop.example/pricing*"}), visit)
    assert not matches(rule(**base, match={"url": "https://shop.example/pricing"}), visit)
    assert matches(rule(**base, match={"referrer": "google"}), visit)
    assert matches(rule(**base, match={"referrer": "*.google.com"}), visit)
    assert matches(rule(**base, match={"search_phrase": "*KITES*"}), visit)
    assert not matches(rule(**base, match={"search_phrase": "*shoes*"}), visit)


def test_email_and_campaign() -> None:
    opened = event({"event": "Email Opened", "properties": {"campaign_id": "nov", "email_id": "e-7"}})
    base = {"behaviour": "email_opened_mailing"}
    assert matches(rule(**base, match={"campaign_id": "nov"}), opened)
    assert matches(rule(**base, match={"email_id": "e-7"}), opened)
    assert not matches(rule(**base, match={"email_id": "e-8"}), opened)


def test_validity_window_and_switch() -> None:
    viewed = event({"event": "Product Viewed", "timestamp": "2026-11-01T00:00:00Z"})
    assert matches(rule(valid_from="2026-10-01T00:00:00Z", valid_to="2026-12-01T00:00:00Z"), viewed)
    assert not matches(rule(valid_from="2026-11-02T00:00:00Z"), viewed)
    assert not matches(rule(valid_to="2026-11-01T00:00:00Z"), viewed)
    assert not matches(rule(enabled=False), viewed)


products = st.sampled_from(["p1", "p2", "p3"])
rule_strategy = st.builds(
    lambda i, behaviour, product, campaign, url, min_price, op: StoredRule.model_validate(
        {
            "id": f"r{i}",
            "behaviour": behaviour,
            "points": 1,
            "version": 1,
            **(
                {
                    "match": {
                        k: v
                        for k, v in {
                            "product": product,
                            "campaign_id": campaign,
                            "url": url,
                            "properties": [{"path": "properties.price", "op": op, "value": min_price}]
                            if min_price is not None
                            else (),
                        }.items()
                        if v
                    }
                }
                if any(x is not None for x in (product, campaign, url, min_price))
                else {}
            ),
        }
    ),
    st.integers(0, 10**6),
    st.sampled_from(["product_viewed", "visit", "email_opened_mailing"]),
    st.none() | products,
    st.none() | st.sampled_from(["c1", "c2"]),
    st.none()
    | st.sampled_from(
        [
            "https://s.example/a",
            "https://s.example/*",
            "https://s.example/a*",
            "https://s.example/ab*",
            "*/a",
            "https://other.example/*",
        ]
    ),
    st.none() | st.integers(0, 200),
    st.sampled_from(["gte", "gt", "lte", "lt", "eq"]),
)


@settings(max_examples=200)
@given(
    rules=st.lists(rule_strategy, max_size=30, unique_by=lambda r: r.id),
    product=products,
    campaign=st.sampled_from(["c1", "c2", "c3"]),
    price=st.integers(0, 200),
    kind=st.sampled_from(["Product Viewed", "Email Opened", None]),
    url=st.sampled_from(
        ["https://s.example/a", "https://s.example/ab", "https://s.example/", "https://other.example/x"]
    ),
)
def test_the_index_finds_exactly_what_a_full_scan_finds(rules, product, campaign, price, kind, url) -> None:
    properties = {"product_id": product, "campaign_id": campaign, "price": price, "url": url}
    call = (
        event({"properties": properties}, path="/v1/page")
        if kind is None
        else event({"event": kind, "properties": properties})
    )
    book = RuleBook(rules)
    assert [r.id for r in book.matching(call)] == sorted(r.id for r in rules if matches(r, call))
