"""Rate limits: fixed windows, counted in the function instance and flushed to a shared counter in steps.

A limit is a ``rate`` (requests per second) with a ``burst``. It is enforced as fixed windows of
``burst / rate`` seconds (at least one second), each allowing ``burst`` requests: the long-run rate is
at most ``rate``, and up to twice ``burst`` can pass across a window's edge (the end of one window and
the start of the next). Windows are numbered ``epoch_ms // window_ms``, so every instance agrees on them.

Each instance counts what it admits (``pending``) and adds it to the shared counter only every
``slack`` requests, or with every request once the count comes within ``slack`` of the limit; what the
counter answers is the global count (``known``). A request over the limit is refused from memory,
without a write. Instances that have not flushed yet can each let up to ``slack - 1`` more requests
through in a window: the overshoot is bounded by ``(slack - 1) x instances`` per window.

Pure: time comes in as epoch milliseconds; the lock serves instances that handle requests on threads
(the local stack).
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
from dataclasses import dataclass
from enum import StrEnum

#: The shortest window: a limit whose burst is below its rate allows ``burst`` per second.
MIN_WINDOW_MS = 1000
#: How long a counter outlives its window before DynamoDB's TTL may remove it.
EXPIRY_MARGIN_SECONDS = 3600
#: Entries an instance keeps; beyond it, those of ended windows go, then the oldest.
MAX_ENTRIES = 10_000
#: After a counter could not be written, how long an instance counts in memory only before trying again:
#: a failing counters table must not add its timeouts to every request.
PAUSE_AFTER_FAILURE_MS = 5000
#: How much of an IPv6 address names one client: a /64 is one subscriber's (RFC 6177), and its 2^64
#: addresses would otherwise each get a limit of their own.
IPV6_CLIENT_PREFIX = 64


class Scope(StrEnum):
    #: per write key (its hash)
    KEY = "key"
    #: per client address (its hash), browser keys only, counted across all of them
    IP = "ip"


def client_of(address: str) -> str:
    """The client an address stands for: an IPv4 address (IPv4-mapped IPv6 unwrapped), or an IPv6 /64.
    An address that does not parse stands for itself."""
    try:
        parsed = ipaddress.ip_address(address.strip())
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, IPV6_CLIENT_PREFIX), strict=False))
    return str(parsed)


def anonymised(value: str) -> str:
    """What identifies a write key or an address in counters and logs: SHA-256, first 32 hex digits
    (the write key's is its stored fingerprint's prefix). The raw value is never kept."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class RateLimit:
    #: requests per second, in the long run
    rate: float
    #: requests allowed in one window
    burst: int

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError("a rate limit's rate must be above 0 requests per second")
        if self.burst < 1:
            raise ValueError("a rate limit's burst must be at least 1 request")

    @property
    def window_ms(self) -> int:
        return max(MIN_WINDOW_MS, round(self.burst * 1000 / self.rate))

    @property
    def slack(self) -> int:
        """How many admitted requests an instance may hold before adding them to the shared counter."""
        return min(25, max(2, self.burst // 20))

    def window(self, now_ms: int) -> int:
        return now_ms // self.window_ms

    def retry_after_seconds(self, now_ms: int) -> int:
        """Whole seconds until the current window ends (rounded up), at least 1."""
        remaining = (self.window(now_ms) + 1) * self.window_ms - now_ms
        return max(1, -(-remaining // 1000))

    def expires_at(self, window: int) -> int:
        """The counter's TTL (epoch seconds): the window's end plus a margin."""
        return (window + 1) * self.window_ms // 1000 + 1 + EXPIRY_MARGIN_SECONDS


@dataclass(frozen=True, slots=True)
class Flush:
    """Add ``n`` admitted requests to the shared counter of (scope, id, window)."""

    scope: Scope
    id: str
    window: int
    n: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class Verdict:
    admitted: bool
    #: for a refusal: seconds until the window ends
    retry_after_seconds: int
    #: the write to make before the admission stands (``WindowCounts.flushed`` then decides)
    flush: Flush | None = None


@dataclass(slots=True)
class _Count:
    window: int
    window_ms: int
    #: the global count the last flush answered
    known: int = 0
    #: sent to the counter, not answered yet (other threads of this instance)
    in_flight: int = 0
    #: admitted here, not yet added to the counter
    pending: int = 0
    #: no flush before this time (a flush failed): the instance counts in memory only
    paused_until_ms: int = 0

    @property
    def seen(self) -> int:
        return self.known + self.in_flight + self.pending


class WindowCounts:
    """One instance's counts per (scope, id), for the current window of each."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[Scope, str], _Count] = {}
        self._max = max_entries

    def take(self, scope: Scope, id: str, limit: RateLimit, now_ms: int) -> Verdict:
        """Admit or refuse one request; an admission may come with a flush to make first."""
        window = limit.window(now_ms)
        key = (scope, id)
        with self._lock:
            count = self._counts.get(key)
            if count is None or count.window != window or count.window_ms != limit.window_ms:
                if count is None:
                    self._make_room(now_ms)
                # a new window: what the old one held back is dropped with it
                count = self._counts[key] = _Count(window, limit.window_ms)
            if count.seen >= limit.burst:
                return Verdict(False, limit.retry_after_seconds(now_ms))
            count.pending += 1
            due = count.pending >= limit.slack or count.seen >= limit.burst - limit.slack
            if not due or now_ms < count.paused_until_ms:
                return Verdict(True, 0)
            flush = Flush(scope, id, window, count.pending, limit.expires_at(window))
            count.in_flight += count.pending
            count.pending = 0
        return Verdict(True, 0, flush)

    def flushed(self, flush: Flush, limit: RateLimit, total: int, now_ms: int) -> Verdict:
        """The counter answered ``total`` for the flush: the request stands unless that passed the limit."""
        with self._lock:
            count = self._counts.get((flush.scope, flush.id))
            if count is not None and count.window == flush.window:
                count.in_flight = max(0, count.in_flight - flush.n)
                count.known = max(count.known, total)
        if total > limit.burst:
            return Verdict(False, limit.retry_after_seconds(now_ms))
        return Verdict(True, 0)

    def unflushed(self, flush: Flush, now_ms: int) -> None:
        """The counter could not be written: the requests stay pending here, for the next flush, which
        waits ``PAUSE_AFTER_FAILURE_MS`` (the instance still refuses what it has seen past the limit)."""
        with self._lock:
            count = self._counts.get((flush.scope, flush.id))
            if count is not None and count.window == flush.window:
                count.in_flight = max(0, count.in_flight - flush.n)
                count.pending += flush.n
                count.paused_until_ms = now_ms + PAUSE_AFTER_FAILURE_MS

    def __len__(self) -> int:
        return len(self._counts)

    def _make_room(self, now_ms: int) -> None:
        if len(self._counts) < self._max:
            return
        ended = [k for k, c in self._counts.items() if (c.window + 1) * c.window_ms <= now_ms]
        for key in ended:
            del self._counts[key]
        if len(self._counts) >= self._max:  # all current: the oldest half goes (their pending with it)
            for key in list(self._counts)[: len(self._counts) // 2 + 1]:
                del self._counts[key]
