"""Issue 13's bench stand-ins: what they stand in for must page and bill as DynamoDB (and the adapters read
through them) would, or the figures at scale mean nothing.

- ``bench.metric_reports.ShardedCounters``: the counter items put in moto instead of counting 14 months
  through moto (slow) are the items ``DynamoMetricStore`` writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto, with every table of the system (``bench-<id>``), and a client of the harness's."""
    from moto import mock_aws

    from infra.local.moto_dynamodb import serialise
    from shared.adapters.tables import TABLES, create_table_request

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "bench")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "bench")
    serialise()
    with mock_aws():
        import botocore.session

        client = botocore.session.get_session().create_client("dynamodb", region_name="eu-west-1")
        for spec in TABLES:
            client.create_table(**create_table_request(spec, f"bench-{spec.id}"))
        yield client


def _rows(items: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Decimal]]:
    return {
        (i["pk"]["S"], i["sk"]["S"]): {k: Decimal(v["N"]) for k, v in i.items() if k not in ("pk", "sk")}
        for i in items
        if not i["pk"]["S"].startswith(("SEEN#", "CUSTOMER#"))
    }


def test_the_sharded_counters_are_the_items_the_metric_store_writes(dynamodb: Any) -> None:
    from bench.metric_reports import ShardedCounters, populate
    from shared.adapters.metric_store import DynamoMetricStore

    table = "bench-metrics"
    counted = populate(DynamoMetricStore(dynamodb, table=table), days=12)
    written = _rows(dynamodb.scan(TableName=table)["Items"])
    counters = ShardedCounters()
    assert populate(counters, days=12) == counted
    assert counted["moves"] > 50 and counted["purchases"] > 5
    assert _rows(counters.items()) == written
    assert len({pk for pk, _ in written}) > 8, "rows on several shards of several counters"
