"""The lifecycle counters (``MetricStore``): fake and adapter alike (adds once per marker, claims once per
customer, rows read back summed, in key order); the adapter's shards under write conflicts, its item sizes
and its lack of personal data, on moto."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shared.adapters.tables import METRICS
from shared.engagement.funnel import default_funnel
from shared.errors import DependencyUnavailable
from shared.metrics.counters import FIRST, MAX_DAYS_IN_STAGE, Add, Claim, CustomerFacts
from shared.usecases.metrics import ClaimTaken
from tests.contract.conftest import moto_table
from tests.fakes import MemoryMetricStore

ANN = "user_id:ann"
LATER = datetime(2027, 3, 1, tzinfo=UTC)


@pytest.fixture
def metrics_table() -> Iterator[Callable[[], tuple[Any, str]]]:
    yield from moto_table(METRICS, "contract-metrics")


@pytest.fixture
def store(implementation, metrics_table) -> Any:
    if implementation == "fake":
        return MemoryMetricStore()
    from shared.adapters.metric_store import DynamoMetricStore
    from tests.conftest import dynamodb_limits

    db, table = metrics_table()
    db.meta.events.register("before-parameter-build.dynamodb", dynamodb_limits)
    return DynamoMetricStore(db, table=table, shards=3, sleep=lambda _: None)


def day(key: str, **values: int | Decimal) -> Add:
    return Add("stages", f"D#{key}", values)


def test_adds_are_read_back_summed_in_key_order_within_the_range(store) -> None:
    assert store.record(
        "stage:a", [day("2026-11-02", **{"in:lead": 1}), Add("stages", "M#2026-11", {"in:lead": 1})]
    )
    assert store.record("stage:b", [day("2026-11-02", **{"in:lead": 1, "out:subscriber": 1})])
    assert store.record("stage:c", [day("2026-11-04", **{"h:lead:3": 1})])
    assert store.record(
        "purchase:x", [Add("revenue", "D#2026-11-02", {"revenue": Decimal("49.98"), "orders": 1})]
    )
    rows = store.rows("stages", "D#2026-11-01", "D#2026-11-03")
    assert [(r.key, r.values) for r in rows] == [("D#2026-11-02", {"in:lead": 2, "out:subscriber": 1})]
    assert [r.key for r in store.rows("stages", "D#", "D#~")] == ["D#2026-11-02", "D#2026-11-04"]
    assert [r.key for r in store.rows("stages", "M#", "M#2026-11")] == ["M#2026-11"]
    (money,) = store.rows("revenue", "D#2026-11-02", "D#2026-11-02")
    assert money.values == {"revenue": Decimal("49.98"), "orders": 1}, "amounts stay exact"
    assert store.rows("cohorts", "2026-01", "2026-12") == []


def test_a_marker_counts_once(store) -> None:
    assert store.record("stage:a", [day("2026-11-02", **{"in:lead": 1})])
    assert not store.record("stage:a", [day("2026-11-02", **{"in:lead": 1})])
    assert not store.record("stage:a", [day("2026-11-05", **{"in:mql": 1})]), "the marker, not the adds"
    assert [(r.key, r.values) for r in store.rows("stages", "D#", "D#~")] == [
        ("D#2026-11-02", {"in:lead": 1})
    ]


def test_claims_are_a_customers_facts_written_once(store) -> None:
    claims = [Claim(FIRST, value="2026-11-09"), Claim("M#2026-11", expires=LATER)]
    assert store.record("purchase:1", [Add("customers", "M#2026-11", {"new": 1})], claims, customer=ANN)
    facts = store.customer(ANN, ["M#2026-11", "M#2026-10", "D#2026-11-09"])
    assert facts == CustomerFacts(first=date(2026, 11, 9), claimed=frozenset({"M#2026-11"}))
    assert store.customer("user_id:bob", ["M#2026-11"]) == CustomerFacts()
    with pytest.raises(ClaimTaken):
        store.record(
            "purchase:2", [Add("customers", "M#2026-11", {"new": 1})], [Claim("M#2026-11")], customer=ANN
        )
    assert store.rows("customers", "M#2026-11", "M#2026-11")[0].values == {"new": 1}, "nothing written"
    assert store.record("purchase:2", [Add("revenue", "M#2026-11", {"orders": 1})], customer=ANN), (
        "the marker was not taken by the refused write"
    )
    assert store.record("purchase:3", [], [Claim("M#2026-11")], customer="user_id:bob"), "another customer's"


def test_a_marker_counted_before_wins_over_a_claim_taken(store) -> None:
    assert store.record("purchase:1", [], [Claim("D#2026-11-09")], customer=ANN)
    assert not store.record("purchase:1", [], [Claim("D#2026-11-09")], customer=ANN)


# --- the adapter on moto ------------------------------------------------------------------------------------


@pytest.fixture
def dynamo(metrics_table) -> Any:
    from shared.adapters.metric_store import DynamoMetricStore

    db, table = metrics_table()
    return db, table, DynamoMetricStore(db, table=table, shards=4, sleep=lambda _: None)


def conflicts(db: Any, times: int) -> list[int]:
    """The next ``times`` transactions are cancelled as DynamoDB cancels one that met a concurrent write to
    one of its items (moto never does); returns the shard each attempt wrote to."""
    shards: list[int] = []

    def conflict(params: dict[str, Any], **_: Any) -> None:
        updates = [i["Update"]["Key"]["pk"]["S"] for i in params["TransactItems"] if "Update" in i]
        shards.append(int(updates[0].rsplit("#", 1)[1]))
        if len(shards) <= times:
            reasons = [{"Code": "None"}] + [{"Code": "TransactionConflict"}] * (
                len(params["TransactItems"]) - 1
            )
            error = {
                "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                "CancellationReasons": reasons,
            }
            raise ClientError(error, "TransactWriteItems")

    db.meta.events.register_first("before-parameter-build.dynamodb.TransactWriteItems", conflict)
    return shards


def test_a_write_conflict_on_a_hot_row_moves_to_another_shard_and_counts_once(dynamo) -> None:
    db, _, store = dynamo
    shards = conflicts(db, 2)
    assert store.record("stage:a", [day("2026-11-02", **{"in:lead": 1})])
    assert len(shards) == 3 and len(set(shards)) > 1, shards
    assert store.rows("stages", "D#", "D#~")[0].values == {"in:lead": 1}
    assert not store.record("stage:a", [day("2026-11-02", **{"in:lead": 1})])


def test_conflicts_that_persist_leave_the_event_for_a_retry(dynamo) -> None:
    db, _, store = dynamo
    conflicts(db, 100)
    with pytest.raises(DependencyUnavailable):
        store.record("stage:a", [day("2026-11-02", **{"in:lead": 1})])
    assert store.rows("stages", "D#", "D#~") == []


def test_rows_are_summed_over_the_shards(dynamo) -> None:
    _, _, store = dynamo
    for n in range(40):  # markers hash to different shards
        assert store.record(f"stage:{n}", [day("2026-11-02", **{"in:lead": 1})])
    items = store._db.scan(TableName=store._table)["Items"]
    assert len({i["pk"]["S"] for i in items if i["pk"]["S"].startswith("STAGES#")}) > 1
    assert store.rows("stages", "D#2026-11-02", "D#2026-11-02")[0].values == {"in:lead": 40}


def test_a_kept_marker_never_expires_and_the_others_do(dynamo) -> None:
    """A stage history entry's marker is kept (``keep``): counting the history again finds it however old."""
    db, table, store = dynamo
    assert store.record("stage:a", [day("2026-11-02", **{"in:lead": 1})], keep=True)
    assert store.record("purchase:b", [day("2026-11-02", **{"in:lead": 1})])
    marks = [i for i in db.scan(TableName=table)["Items"] if i["sk"]["S"] == "SEEN"]
    assert sorted("expiresAt" in i for i in marks) == [False, True]


def test_the_table_holds_no_personal_data(dynamo) -> None:
    db, table, store = dynamo
    store.record(
        f"purchase:{ANN}#E#2026-11-09T10:00:00.000Z#o-1", [], [Claim(FIRST, value="2026-11-09")], customer=ANN
    )
    text = repr(db.scan(TableName=table)["Items"])
    assert "ann" not in text and "o-1" not in text, text


def test_a_stage_row_stays_far_below_the_item_limit_at_its_fullest(dynamo) -> None:
    """The biggest row a day can hold in the default funnel: every stage entered, left, moved to every
    other stage, converted, and left after every whole number of days counted (0 to the cap)."""
    from shared.adapters.metric_store import DynamoMetricStore

    db, table, _ = dynamo
    store = DynamoMetricStore(db, table=table, shards=1)  # every write on the one item
    stages = [stage.id for stage in default_funnel().stages]
    values: dict[str, int] = {}
    for a in stages:
        values[f"in:{a}"] = values[f"out:{a}"] = 123456
        for b in stages:
            values[f"move:{a}>{b}"] = values[f"conv:{a}>{b}"] = 123456
        for days in range(MAX_DAYS_IN_STAGE + 1):
            values[f"h:{a}:{days}"] = 123456
    for start in range(0, len(values), 50):  # as many moves would write it, a few attributes at a time
        names = list(values)[start : start + 50]
        assert store.record(f"stage:{start}", [day("2026-11-02", **{k: values[k] for k in names})])
    items = [i for i in db.scan(TableName=table)["Items"] if i["pk"]["S"].startswith("STAGES#")]
    size = max(item_size(i) for i in items)
    assert 40 * 1024 < size < 100 * 1024, f"{size} bytes"  # 50 KB: 6 KB a stage, of the 400 KB an item holds


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: each attribute's name and value (numbers: about a byte per two digits, plus
    one), in UTF-8."""
    total = 0
    for name, value in item.items():
        ((kind, inner),) = value.items()
        total += len(name.encode())
        total += (
            len(inner.encode()) if kind == "S" else (len(inner.lstrip("-").replace(".", "")) + 1) // 2 + 1
        )
    return total


def test_each_report_reads_one_query_per_shard(dynamo) -> None:
    """What a report costs (the bench's requests per metric call): a Query per shard of the counter it
    reads, two for the stage distribution by day or week (the month rows it sums, then the day rows)."""
    from shared.clock import FixedClock
    from shared.metrics.ranges import metric_range
    from shared.usecases import metrics as reports
    from tests.fakes import MemoryEngagementConfig

    db, _, store = dynamo  # 4 shards
    for n in range(20):
        assert store.record(
            f"stage:{n}", [day("2026-11-02", **{"in:lead": 1}), Add("stages", "M#2026-11", {"in:lead": 1})]
        )
    queries: list[str] = []
    db.meta.events.register(
        "before-parameter-build.dynamodb.Query",
        lambda params, **_: queries.append(params["ExpressionAttributeValues"][":pk"]["S"]),
    )
    reading = reports.MetricReading(
        store, MemoryEngagementConfig(), FixedClock(datetime(2026, 12, 31, tzinfo=UTC))
    )
    today = date(2026, 12, 31)
    cost = {}
    for name, read, period in [
        ("stages by month", reports.stage_distribution, "month"),
        ("stages by day", reports.stage_distribution, "day"),
        ("funnel", reports.funnel, "week"),
        ("customers", reports.customers, "month"),
        ("cohorts", reports.cohorts, "month"),
        ("revenue", reports.revenue, "day"),
    ]:
        queries.clear()
        answer = read(metric_range({"period": period, "from": "2026-11-01"}, today), reading)
        cost[name] = len(queries)
        assert answer is not None
    assert cost == {
        "stages by month": 4,
        "stages by day": 8,
        "funnel": 4,
        "customers": 4,
        "cohorts": 4,
        "revenue": 4,
    }
    population = reports.stage_distribution(
        metric_range({"period": "month", "from": "2026-11-01"}, today), reading
    )
    assert population.periods[-1].population["lead"] == 20


def test_the_nps_counter_keeps_names_with_colons(store) -> None:
    """Issue 15: the ``nps`` counter's names hold a stage, segment or survey id (which may hold colons)."""
    answer = {"promoter": 1, "survey:nps:q4:promoter": 1, "stage:customer:promoter": 1}
    assert store.record(
        "nps:a", [Add("nps", "D#2026-11-02", answer), Add("nps", "M#2026-11", answer)], keep=True
    )
    assert store.record("survey-sent:b", [Add("nps", "D#2026-11-02", {"sent": 1, "survey:nps:q4:sent": 1})])
    assert not store.record("nps:a", [Add("nps", "D#2026-11-02", answer)])
    (day,) = store.rows("nps", "D#2026-11-01", "D#2026-11-30")
    assert day.values == {**answer, "sent": 1, "survey:nps:q4:sent": 1}
    assert [r.key for r in store.rows("nps", "M#", "M#~")] == ["M#2026-11"]
    assert store.rows("stages", "D#", "D#~") == [], "a counter of its own"
