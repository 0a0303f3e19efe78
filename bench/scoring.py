"""Scoring benchmarks (issue 3): events per second at 10, 100 and 1,000 rules; ledger cost per event."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bench.harness import cpu_seconds, median
from bench.tracking import StubDynamoDB, api_event, batch_body, function_environment
from shared.adapters.tables import TABLES
from shared.scoring.catalogue import effective
from shared.scoring.decay import Decay
from shared.scoring.engine import ScoringContext, score
from shared.scoring.rules import RuleBook, StoredRule
from shared.tracking.messages import parse_calls
from shared.tracking.wire import Limits

NOW = datetime(2026, 11, 22, 10, 44, tzinfo=UTC)


def detailed_rules(count: int) -> list[StoredRule]:
    """A rule set shaped like a shop's, aimed at the behaviours the benchmark batch shows.

    Per 20 rules: 8 products, 6 landing-page URL patterns, 4 campaigns, 1 category (property equals),
    and 1 price threshold. Only that last kind has no index key, so it is checked one by one.
    """
    rules = []
    for i in range(count):
        kind = i % 20
        if kind < 8:
            body = {
                "behaviour": "product_viewed",
                "points": 3,
                "match": {"product": f"p-{i}"},
                "tag_from": "properties.category",
            }
        elif kind < 14:
            body = {
                "behaviour": "visit_from_ads",
                "points": 2,
                "match": {"url": f"https://shop.example.com/products/{i}?*"},
            }
        elif kind < 18:
            body = {"behaviour": "email_clicked_mailing", "points": 2, "match": {"campaign_id": f"c-{i}"}}
        elif kind == 18:
            body = {
                "behaviour": "product_viewed",
                "points": 2,
                "match": {"properties": [{"path": "properties.category", "op": "eq", "value": f"cat-{i}"}]},
            }
        else:
            body = {
                "behaviour": "product_viewed",
                "points": 5,
                "match": {"properties": [{"path": "properties.price", "op": "gte", "value": 100 + i}]},
            }
        rules.append(StoredRule.model_validate({"id": f"r-{i}", "version": 1, **body}))
    return rules


def rule_book(detailed: int) -> RuleBook:
    """The 25 shipped general rules plus ``detailed`` detailed ones."""
    return RuleBook(effective(detailed_rules(detailed)))


def engine_throughput(sizes=(10, 100, 1000), repeat: int = 40, rounds: int = 5) -> list[dict[str, float]]:
    events = parse_calls("/v1/batch", batch_body(100, 10), received_at=NOW, limits=Limits())
    rows = []
    for size in sizes:
        book = rule_book(size)
        context = ScoringContext(book, Decay())
        scored = score(events, context, NOW)
        samples = [cpu_seconds(lambda: score(events, context, NOW), repeat) for _ in range(rounds)]
        seconds_per_event = median(samples) / repeat / len(events)
        rows.append(
            {
                "detailed": size,
                "rules": len(book),
                "events_per_second": 1 / seconds_per_event,
                "us_per_event": seconds_per_event * 1e6,
                "ledger_lines_per_event": sum(len(v) for v in scored.ledger.values()) / len(events),
            }
        )
    return rows


class RulesStub(StubDynamoDB):
    def __init__(self, rules: list[StoredRule]) -> None:
        super().__init__()
        self._items = [
            {
                "pk": {"S": "RULES"},
                "sk": {"S": r.id},
                "body": {"S": r.model_dump_json()},
                "version": {"N": "1"},
            }
            for r in rules
        ]

    def query(self, **request: Any) -> dict[str, Any]:
        self.calls["Query"] += 1
        return {"Items": self._items}


def handler_cpu_by_rules(sizes=(10, 100, 1000), repeat: int = 30, rounds: int = 5) -> list[dict[str, float]]:
    """CPU per event through the whole tracking handler, DynamoDB stubbed, at each rule count."""
    from functions.tracking.handler import handler
    from shared import runtime
    from shared.adapters import aws

    body = batch_body(100, 10)
    event = api_event("/v1/batch", body)
    names = {t.id: f"bench-{t.id}" for t in TABLES}
    rows = []
    for size in sizes:
        stub = RulesStub(detailed_rules(size))
        with function_environment(names):
            runtime.reset()
            aws.use("dynamodb", stub)
            try:
                assert handler(event, _Context())["statusCode"] == 200
                samples = [cpu_seconds(lambda: handler(event, _Context()), repeat) for _ in range(rounds)]
            finally:
                runtime.reset()
        rows.append({"detailed": size, "cpu_us_per_event": median(samples) / repeat / 100 * 1e6})
    return rows


def ledger_cost() -> dict[str, float]:
    """What the ledger adds per event: bytes on the event item (no index: it is read through the log)."""
    events = parse_calls("/v1/batch", batch_body(100, 10), received_at=NOW, limits=Limits())
    scored = score(events, ScoringContext(rule_book(100), Decay()), NOW)
    lines = [line for changes in scored.ledger.values() for line in changes]
    ledger_bytes = [
        len(
            json.dumps(
                [
                    {
                        "rule_id": c.rule_id,
                        "rule_version": c.rule_version,
                        "points": c.points,
                        "dimension": c.dimension,
                    }
                    for c in changes
                ],
                separators=(",", ":"),
            )
        )
        for changes in scored.ledger.values()
    ]
    return {
        "scored_share": len(scored.ledger) / len(events),
        "lines_per_scored_event": len(lines) / max(len(scored.ledger), 1),
        "ledger_bytes_per_scored_event": sum(ledger_bytes) / max(len(ledger_bytes), 1),
    }


class _Context:
    function_name = "bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-west-1:000000000000:function:bench"
    aws_request_id = "bench"
