from datetime import UTC, datetime, timedelta

from shared.contacts.changes import plan_change
from shared.contacts.identity import ContactId
from shared.scoring.catalogue import effective
from shared.scoring.decay import Decay
from shared.scoring.engine import RuleUse, ScoreChange, ScoringContext, score
from shared.scoring.rules import RuleBook, StoredRule
from shared.tracking.messages import parse_calls
from shared.tracking.wire import Limits

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def calls(*batch):
    return parse_calls(
        "/v1/batch", {"batch": [{"userId": "ann", **c} for c in batch]}, received_at=NOW, limits=Limits()
    )


def book(*extra: dict) -> RuleBook:
    stored = [StoredRule.model_validate({"version": 3, **r}) for r in extra]
    return RuleBook(effective(stored))


def context(*extra: dict, known=None) -> ScoringContext:
    return ScoringContext(book(*extra), Decay(), known or {})


def test_general_and_detailed_rules_add_up_with_a_ledger_line_each() -> None:
    events = calls(
        {"type": "track", "event": "Product Viewed", "messageId": "m1", "properties": {"product_id": "kite"}}
    )
    result = score(
        events,
        context(
            {
                "id": "kites",
                "behaviour": "product_viewed",
                "points": 4,
                "match": {"product": "kite"},
                "tag": "kites",
            }
        ),
        NOW,
    )
    assert result.ledger["m1"] == (
        ScoreChange("general.product_viewed", 1, 2, "global"),
        ScoreChange("kites", 3, 4, "global"),
        ScoreChange("kites", 3, 4, "tag:kites"),
    )
    assert result.totals == {"global": 6, "tag:kites": 4}
    assert result.tags == {"kites": events[0].timestamp}


def test_negative_points_and_overrides_of_defaults() -> None:
    events = calls(
        {"type": "track", "event": "Disliked", "messageId": "d1"}, {"type": "page", "messageId": "p1"}
    )
    assert score(events, context(), NOW).totals == {"global": -2 + 1}
    overridden = score(events, context({"id": "general.visit", "behaviour": "visit", "points": 0}), NOW)
    assert overridden.totals == {"global": -2}


def test_tag_from_a_property() -> None:
    events = calls(
        {"type": "track", "event": "Product Viewed", "messageId": "m1", "properties": {"category": "Toys"}}
    )
    result = score(
        events,
        context(
            {"id": "interest", "behaviour": "product_viewed", "points": 1, "tag_from": "properties.category"}
        ),
        NOW,
    )
    assert result.totals["tag:Toys"] == 1


def test_per_contact_limit_within_a_batch_and_with_what_the_store_said() -> None:
    limited = {
        "id": "webinar-bonus",
        "behaviour": "webinar_attended",
        "points": 50,
        "limit": {"per_contact": 2},
    }
    events = calls(*({"type": "track", "event": "Webinar Attended", "messageId": f"w{i}"} for i in range(4)))
    fresh = score(events, context(limited), NOW)
    assert [m for m, lines in fresh.ledger.items() if any(c.rule_id == "webinar-bonus" for c in lines)] == [
        "w0",
        "w1",
    ]
    (claim,) = fresh.limits
    assert (claim.rule_id, claim.count, claim.per_contact) == ("webinar-bonus", 2, 2)
    used_once = score(events, context(limited, known={"webinar-bonus": RuleUse(count=1)}), NOW)
    assert sum(1 for lines in used_once.ledger.values() for c in lines if c.rule_id == "webinar-bonus") == 1
    used_up = score(events, context(limited, known={"webinar-bonus": RuleUse(count=2)}), NOW)
    assert used_up.limits == ()


def test_once_per_day() -> None:
    daily = {"id": "daily-visit", "behaviour": "visit", "points": 3, "limit": {"once_per_day": True}}
    events = calls(
        {"type": "page", "messageId": "a", "timestamp": "2026-11-21T09:00:00Z"},
        {"type": "page", "messageId": "b", "timestamp": "2026-11-21T18:00:00Z"},
        {"type": "page", "messageId": "c", "timestamp": "2026-11-22T09:00:00Z"},
    )
    result = score(events, context(daily), NOW)
    credited = [m for m, lines in result.ledger.items() if any(c.rule_id == "daily-visit" for c in lines)]
    assert credited == ["a", "c"]
    (claim,) = result.limits
    assert (claim.first_day, claim.last_day) == ("2026-11-21", "2026-11-22")
    later = score(events, context(daily, known={"daily-visit": RuleUse(count=5, last_day="2026-11-21")}), NOW)
    assert [m for m, lines in later.ledger.items() if any(c.rule_id == "daily-visit" for c in lines)] == ["c"]


def test_decayed_sums_read_back_to_the_points_at_the_event_time() -> None:
    decay = Decay(timedelta(days=30))
    events = calls(
        {
            "type": "track",
            "event": "Order Completed",
            "messageId": "o1",
            "timestamp": (NOW - timedelta(days=30)).isoformat(),
        }
    )
    result = score(events, ScoringContext(book(), decay), NOW)
    current = {k[2]: v for k, v in result.sums.items() if k[0] == "global" and k[1] == decay.current.key}
    assert abs(decay.current.value(current, NOW) - 10.0) < 1e-9  # 20 points, one half-life ago


def test_rule_tags_join_the_contact_unless_the_batch_removes_them_later() -> None:
    kites = {"id": "kites", "behaviour": "product_viewed", "points": 1, "tag": "kites"}
    events = calls(
        {"type": "track", "event": "Product Viewed", "messageId": "v1", "timestamp": "2026-11-23T10:00:00Z"},
        {
            "type": "identify",
            "messageId": "i1",
            "timestamp": "2026-11-23T11:00:00Z",
            "traits": {"tags": ["-kites", "vip"]},
        },
    )
    change = plan_change(ContactId.user("ann"), events, context(kites))
    assert change.tags_add == {"vip"} and change.tags_remove == {"kites"}
    change = plan_change(ContactId.user("ann"), events[:1], context(kites))
    assert change.tags_add == {"kites"}
