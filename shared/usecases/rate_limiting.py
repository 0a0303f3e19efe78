"""Rate limits on the tracking endpoint: per write key, and per client address for browser keys.

The instance's counts (``shared.tracking.rates.WindowCounts``) decide most requests from memory; now
and then an admitted request adds what the instance has admitted to the shared counter (the
``RateCounters`` port) and learns the global count. If that write fails the request is admitted
(tracking must not break because its limiter did): the requests stay counted in the instance, which
still enforces the limit on what it has seen itself, and ``RateLimitUnavailable`` is counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.errors import DependencyUnavailable, RateLimited
from shared.tracking.rates import RateLimit, Scope, WindowCounts, anonymised, client_of
from shared.tracking.trust import Source, Trust


class RateCounters(Protocol):
    def add(self, scope: str, id: str, window: int, n: int, expires_at: int) -> int:
        """Add ``n`` to the counter of (scope, id, window) and return its new total; the counter may be
        removed after ``expires_at`` (epoch seconds). ``DependencyUnavailable`` if it cannot be written."""
        ...


class Telemetry(Protocol):
    def count(self, name: str, value: int) -> None: ...


@dataclass(frozen=True, slots=True)
class RateLimits:
    #: a write key's limit unless the key has its own
    key: RateLimit
    #: a client address's, over all browser keys together
    ip: RateLimit


class RequestLimiter:
    """One function instance's limiter: its counts, the shared counters and the default limits."""

    def __init__(
        self,
        counters: RateCounters,
        limits: RateLimits,
        telemetry: Telemetry,
        counts: WindowCounts | None = None,
    ) -> None:
        self.counters = counters
        self.limits = limits
        self.telemetry = telemetry
        self.counts = WindowCounts() if counts is None else counts

    def admit(self, write_key: str, source: Source, client_ip: str | None, now: datetime) -> None:
        """Raise ``RateLimited`` if the request passes (browser keys) its address's limit, or its key's.

        The address is counted first: a request its address refuses is not counted against its key, so
        one address flooding a web site's public key cannot use up the key's limit for every visitor."""
        now_ms = int(now.timestamp() * 1000)
        if source.trust is Trust.BROWSER and client_ip:
            client = anonymised(client_of(client_ip))
            self._check(Scope.IP, client, self.limits.ip, now_ms, "this address")
        self._check(
            Scope.KEY, anonymised(write_key), source.limit or self.limits.key, now_ms, "this write key"
        )

    def _check(self, scope: Scope, id: str, limit: RateLimit, now_ms: int, what: str) -> None:
        verdict = self.counts.take(scope, id, limit, now_ms)
        flush = verdict.flush
        if flush is not None:
            try:
                total = self.counters.add(
                    flush.scope.value, flush.id, flush.window, flush.n, flush.expires_at
                )
            except DependencyUnavailable:
                self.counts.unflushed(flush, now_ms)
                self.telemetry.count("RateLimitUnavailable", 1)
                return
            verdict = self.counts.flushed(flush, limit, total, now_ms)
        if not verdict.admitted:
            self.telemetry.count("RequestsRateLimited", 1)
            raise RateLimited(
                f"too many requests from {what}: at most {limit.burst} per {limit.window_ms / 1000:g} s; "
                f"retry after {verdict.retry_after_seconds} s",
                retry_after_seconds=verdict.retry_after_seconds,
            )
