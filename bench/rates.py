"""Rate limits (issue 9): what the limiter costs DynamoDB, in billed write units per request.

The tracking function is hosted as deployed on moto with its default limits (500 requests/s with a burst
of 1000 per write key, 20/s with a burst of 100 per client address for browser keys), its DynamoDB calls
billed by ``bench.capacity``'s meter, and a fixed clock moved between requests to pace them: the
pacing is simulated, so the counts are exact whatever the machine's speed. Only the rates table's
writes are the limiter's; rejected requests are checked to cost nothing on any table.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

#: A whole minute: every window of the default limits (2 s and 5 s) starts on it.
START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BROWSER_KEY = "bench-browser-key"


def _event(key: str, ip: str, n: int) -> dict[str, Any]:
    body = {"type": "page", "anonymousId": f"visitor-{ip}", "messageId": f"rate-{n}"}
    return {
        "version": "2.0",
        "routeKey": "POST /v1/p",
        "rawPath": "/v1/p",
        "headers": {
            "content-type": "application/json",
            "authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
        },
        "requestContext": {
            "http": {"method": "POST", "path": "/v1/p", "sourceIp": ip},
            "requestId": "bench",
            "routeKey": "POST /v1/p",
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def limiter_costs() -> list[dict[str, Any]]:
    from bench import capacity
    from bench.tracking import SERVER_KEY
    from infra.local.gateway import LambdaContext
    from shared import clock as clocks
    from shared.adapters import aws
    from shared.adapters.tables import CONFIG, RATES
    from shared.adapters.write_keys import DynamoWriteKeys
    from shared.clock import FixedClock
    from shared.tracking.trust import Trust

    fixed = FixedClock(START)
    clocks.install(fixed)
    rows: list[dict[str, Any]] = []
    sent = 0
    try:
        with capacity.system() as running:
            DynamoWriteKeys(aws.client("dynamodb"), table=f"bench-{CONFIG.id}").register(
                BROWSER_KEY, "bench-site", Trust.BROWSER, START
            )
            meter = running.meter

            def send(key: str, ip: str) -> int:
                nonlocal sent
                sent += 1
                return running.handler(
                    _event(key, ip, sent), LambdaContext(f"lifecycle-{running.route}", "bench")
                )["statusCode"]

            def case(
                label: str, requests: int, every: timedelta, request: Callable[[int], tuple[str, str]]
            ) -> dict[str, Any]:
                fixed.at = fixed.at.replace(second=0, microsecond=0) + timedelta(minutes=1)  # fresh windows
                meter.clear()
                statuses: dict[int, int] = {}
                rejected_wru = 0.0
                for i in range(requests):
                    before = meter.units("write")
                    status = send(*request(i))
                    statuses[status] = statuses.get(status, 0) + 1
                    if status == 429:
                        rejected_wru += meter.units("write") - before
                    fixed.advance(every)
                rates_wru = meter.units("write", table=RATES.id)
                return {
                    "case": label,
                    "requests": requests,
                    "admitted": statuses.get(200, 0),
                    "rejected": statuses.get(429, 0),
                    "other": {k: v for k, v in statuses.items() if k not in (200, 429)},
                    "rates_wru": rates_wru,
                    "rejected_wru_all_tables": rejected_wru,
                }

            send(SERVER_KEY, "198.51.100.1")  # warm: write keys cached, clients built
            send(BROWSER_KEY, "198.51.100.1")
            cases = [  # (what, requests, every, (key, address) of the i-th request)
                (
                    "(a) one visitor: browser key, one address, a request every 2 s for 60 s",
                    30,
                    timedelta(seconds=2),
                    lambda i: (BROWSER_KEY, "203.0.113.6"),
                ),
                (
                    "(a) one visitor: browser key, one address, 1 request/s for 60 s",
                    60,
                    timedelta(seconds=1),
                    lambda i: (BROWSER_KEY, "203.0.113.7"),
                ),
                (
                    "(a) one visitor browsing fast: browser key, one address, 10 requests/s for 30 s",
                    300,
                    timedelta(milliseconds=100),
                    lambda i: (BROWSER_KEY, "203.0.113.8"),
                ),
                (
                    "(a) one back-end: server key, 100 requests/s for 20 s",
                    2000,
                    timedelta(milliseconds=10),
                    lambda i: (SERVER_KEY, "198.51.100.1"),
                ),
                (
                    "(b) many visitors: browser key, 2000 addresses, 100 requests/s",
                    2000,
                    timedelta(milliseconds=10),
                    lambda i: (BROWSER_KEY, f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"),
                ),
                (
                    "(c) flood: one address, 1000 requests in 1 s (browser key)",
                    1000,
                    timedelta(milliseconds=1),
                    lambda i: (BROWSER_KEY, "192.0.2.66"),
                ),
                (
                    "(c) flood: one server key, 3000 requests in 1.5 s",
                    3000,
                    timedelta(microseconds=500),
                    lambda i: (SERVER_KEY, "198.51.100.1"),
                ),
            ]
            rows += [case(*args) for args in cases]
    finally:
        clocks.install(None)
    return rows


def section(where: str, rows: list[dict[str, Any]]) -> str:
    table = "\n".join(
        f"| {r['case']} | {r['requests']} | {r['admitted']} | {r['rejected']} | {r['rates_wru']:.0f} | "
        f"**{r['rates_wru'] / r['requests']:.3f}** | {r['rates_wru'] / max(r['admitted'], 1):.3f} | "
        f"{r['rejected_wru_all_tables']:.0f} |"
        for r in rows
    )
    return f"""
Measured by `make bench` (or `python -m bench rates`) on {where}.

**The limiter's billed writes** (the rates table's WRU, billed by `bench/capacity.py`'s meter; the
`tracking` function hosted as deployed on moto with the default limits; requests paced by a fixed clock,
so the counts do not depend on this machine's speed):

| case | requests | admitted | refused (429) | limiter WRU | **WRU per request** | WRU per admitted request | WRU of the refused requests, all tables |
|---|---|---|---|---|---|---|---|
{table}
"""
