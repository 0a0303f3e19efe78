"""The limiter of the tracking use case, on the fake counters: which scopes a request is counted in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import RateLimited
from shared.tracking.rates import RateLimit, anonymised
from shared.tracking.trust import Source, Trust
from shared.usecases.rate_limiting import RateLimits, RequestLimiter
from tests.fakes import CountingTelemetry, MemoryRateCounters

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BROWSER = Source("website", Trust.BROWSER)
SERVER = Source("backend", Trust.SERVER)


def limiter(key: RateLimit, ip: RateLimit) -> tuple[RequestLimiter, MemoryRateCounters, CountingTelemetry]:
    counters, telemetry = MemoryRateCounters(), CountingTelemetry()
    return RequestLimiter(counters, RateLimits(key=key, ip=ip), telemetry), counters, telemetry


def test_browser_requests_count_by_key_and_address_server_requests_by_key_only() -> None:
    limits, counters, _ = limiter(RateLimit(5, 5), RateLimit(5, 5))
    for _ in range(5):
        limits.admit("wk-b", BROWSER, "203.0.113.9", NOW)
        limits.admit("wk-s", SERVER, "203.0.113.9", NOW)
    scopes = sorted((scope, id) for scope, id, _ in counters.totals)
    assert scopes == sorted(
        [("key", anonymised("wk-b")), ("ip", anonymised("203.0.113.9")), ("key", anonymised("wk-s"))]
    )
    assert set(counters.totals.values()) == {5}


def test_an_address_flooding_a_browser_key_does_not_use_up_the_keys_limit() -> None:
    limits, _, telemetry = limiter(RateLimit(5, 5), RateLimit(2, 2))
    limits.admit("wk-b", BROWSER, "203.0.113.9", NOW)
    limits.admit("wk-b", BROWSER, "203.0.113.9", NOW)
    for _ in range(8):
        with pytest.raises(RateLimited) as refused:
            limits.admit("wk-b", BROWSER, "203.0.113.9", NOW + timedelta(milliseconds=200))
        assert refused.value.retry_after_seconds == 1 and "address" in refused.value.message
    assert telemetry.counts == {"RequestsRateLimited": 8}
    for visitor in range(3):  # the key has counted 2 requests, not 10: other visitors go on
        limits.admit("wk-b", BROWSER, f"198.51.100.{visitor}", NOW)
    with pytest.raises(RateLimited) as refused:
        limits.admit("wk-b", BROWSER, "198.51.100.8", NOW)
    assert "write key" in refused.value.message


def test_a_keys_own_limit_replaces_the_default() -> None:
    limits, _, _ = limiter(RateLimit(500, 1000), RateLimit(20, 100))
    own = Source("partner", Trust.SERVER, limit=RateLimit(1, 3))
    for _ in range(3):
        limits.admit("wk-p", own, None, NOW)
    with pytest.raises(RateLimited) as refused:
        limits.admit("wk-p", own, None, NOW)
    assert refused.value.retry_after_seconds == 3 and "at most 3 per 3 s" in refused.value.message


def test_unavailable_counters_admit_and_are_counted() -> None:
    limits, counters, telemetry = limiter(RateLimit(5, 5), RateLimit(5, 5))
    counters.unavailable = True
    for _ in range(5):
        limits.admit("wk-s", SERVER, None, NOW)
    assert telemetry.counts == {"RateLimitUnavailable": 1}  # then paused: no timeout on every request
