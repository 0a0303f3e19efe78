from datetime import UTC, datetime, timedelta
from decimal import Decimal

from shared.contacts.changes import plan_change
from shared.contacts.identity import ContactId
from shared.tracking.messages import parse_calls
from shared.tracking.wire import Limits

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ANN = ContactId.user("ann")


def calls(*batch):
    return parse_calls("/v1/batch", {"batch": list(batch)}, received_at=NOW, limits=Limits())


def at(minutes: int) -> str:
    return (NOW - timedelta(minutes=minutes)).isoformat()


def test_traits_fold_in_time_order_and_null_removes() -> None:
    change = plan_change(
        ANN,
        calls(
            {
                "type": "identify",
                "userId": "ann",
                "timestamp": at(1),
                "traits": {"plan": "pro", "phone": None},
            },
            {
                "type": "identify",
                "userId": "ann",
                "timestamp": at(5),
                "traits": {"plan": "free", "name": "Ann"},
            },
        ),
    )
    assert change.traits_set == {"plan": "pro", "name": "Ann"}
    assert change.traits_unset == {"phone"}


def test_tags_add_and_remove_with_the_last_word_winning() -> None:
    change = plan_change(
        ANN,
        calls(
            {"type": "identify", "userId": "ann", "timestamp": at(5), "traits": {"tags": ["vip", "trial"]}},
            {"type": "identify", "userId": "ann", "timestamp": at(1), "traits": {"tags": ["-trial", "kids"]}},
        ),
    )
    assert change.tags_add == {"vip", "kids"}
    assert change.tags_remove == {"trial"}
    assert "tags" not in change.traits_set


def test_counts_revenue_and_times() -> None:
    change = plan_change(
        ANN,
        calls(
            {"type": "page", "userId": "ann", "timestamp": at(30)},
            {
                "type": "track",
                "userId": "ann",
                "event": "Order Completed",
                "properties": {"revenue": 10},
                "timestamp": at(20),
            },
            {
                "type": "track",
                "userId": "ann",
                "event": "Order Completed",
                "properties": {"revenue": "5.5"},
                "timestamp": at(10),
            },
            {
                "type": "track",
                "userId": "ann",
                "event": "Order Refunded",
                "properties": {"revenue": 3},
                "timestamp": at(5),
            },
        ),
    )
    assert change.counts == {"visit": 1, "purchase": 2, "refund": 1}
    assert change.revenue == Decimal("12.5")
    assert change.first_seen == NOW - timedelta(minutes=30)
    assert change.last_purchase_at == NOW - timedelta(minutes=10)
    assert change.last_seen == NOW


def test_context_timezone_is_only_a_hint() -> None:
    hinted = plan_change(
        ANN, calls({"type": "page", "userId": "ann", "context": {"timezone": "Europe/Warsaw"}})
    )
    assert hinted.timezone_hint == "Europe/Warsaw"
    explicit = plan_change(
        ANN,
        calls(
            {"type": "page", "userId": "ann", "context": {"timezone": "Europe/Warsaw"}},
            {"type": "identify", "userId": "ann", "traits": {"timezone": "UTC"}},
        ),
    )
    assert explicit.timezone_hint is None and explicit.traits_set["timezone"] == "UTC"


def test_the_last_visit_is_the_latest_page_view_for_inactivity_automations() -> None:
    change = plan_change(
        ANN,
        calls(
            {"type": "page", "userId": "ann", "timestamp": at(30), "properties": {"url": "https://x.test/a"}},
            {"type": "page", "userId": "ann", "timestamp": at(10), "properties": {"url": "https://x.test/b"}},
            {"type": "track", "event": "Order Completed", "userId": "ann", "timestamp": at(1)},
        ),
    )
    assert change.last_times["visit"] == NOW - timedelta(minutes=10)
    assert change.last_times["purchase"] == NOW - timedelta(minutes=1)
    only_orders = plan_change(
        ANN, calls({"type": "track", "event": "Order Completed", "userId": "ann", "timestamp": at(1)})
    )
    assert "visit" not in only_orders.last_times
