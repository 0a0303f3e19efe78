"""Rate limits: the window arithmetic and the instance's pre-aggregation (``shared.tracking.rates``)."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from shared.tracking.rates import (
    MIN_WINDOW_MS,
    PAUSE_AFTER_FAILURE_MS,
    Flush,
    RateLimit,
    Scope,
    Verdict,
    WindowCounts,
    anonymised,
    client_of,
)

#: an instant at the start of a 5 s window (100 requests at 20/s)
START = 1_800_000_000_000
IP_LIMIT = RateLimit(rate=20, burst=100)


class Counters:
    """The shared counter, as DynamoDB's ``ADD`` keeps it: totals per (scope, id, window)."""

    def __init__(self) -> None:
        self.totals: Counter[tuple[Scope, str, int]] = Counter()
        self.writes = 0
        self._lock = threading.Lock()

    def add(self, flush: Flush) -> int:
        with self._lock:
            self.writes += 1
            self.totals[(flush.scope, flush.id, flush.window)] += flush.n
            return self.totals[(flush.scope, flush.id, flush.window)]


def request(
    counts: WindowCounts, counters: Counters, limit: RateLimit, now_ms: int, id: str = "a"
) -> Verdict:
    """What the limiter does with one request: take, then flush if asked to."""
    verdict = counts.take(Scope.IP, id, limit, now_ms)
    if verdict.flush is None:
        return verdict
    return counts.flushed(verdict.flush, limit, counters.add(verdict.flush), now_ms)


# --- the windows ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "burst", "window_ms", "slack"),
    [
        (500, 1000, 2000, 25),  # the key default: 1000 per 2 s
        (20, 100, 5000, 5),  # the address default: 100 per 5 s
        (5, 5, 1000, 2),
        (0.5, 10, 20_000, 2),
        (500, 100, MIN_WINDOW_MS, 5),  # a burst below the rate: 1 s windows of 100
        (10_000, 100_000, 10_000, 25),
    ],
)
def test_window_length_and_slack(rate, burst, window_ms, slack) -> None:
    limit = RateLimit(rate=rate, burst=burst)
    assert (limit.window_ms, limit.slack) == (window_ms, slack)


def test_windows_are_numbered_from_the_epoch_so_every_instance_agrees() -> None:
    assert IP_LIMIT.window(START) == START // 5000
    assert IP_LIMIT.window(START + 4999) == IP_LIMIT.window(START)
    assert IP_LIMIT.window(START + 5000) == IP_LIMIT.window(START) + 1


@pytest.mark.parametrize(
    ("into_window_ms", "seconds"), [(0, 5), (1, 5), (999, 5), (1000, 4), (4000, 1), (4001, 1), (4999, 1)]
)
def test_retry_after_is_whole_seconds_to_the_window_end_and_at_least_one(into_window_ms, seconds) -> None:
    assert IP_LIMIT.retry_after_seconds(START + into_window_ms) == seconds


def test_a_counter_expires_after_its_window() -> None:
    window = IP_LIMIT.window(START)
    assert IP_LIMIT.expires_at(window) * 1000 > (window + 1) * IP_LIMIT.window_ms


def test_limits_must_allow_something() -> None:
    with pytest.raises(ValueError):
        RateLimit(rate=0, burst=10)
    with pytest.raises(ValueError):
        RateLimit(rate=1, burst=0)


def test_ids_are_hashes_and_a_keys_is_its_fingerprints_prefix() -> None:
    from shared.adapters.write_keys import fingerprint

    assert anonymised("203.0.113.9") != "203.0.113.9" and len(anonymised("203.0.113.9")) == 32
    assert anonymised("wk_web_x") == fingerprint("wk_web_x")[:32]


# --- pre-aggregation -----------------------------------------------------------------------------


def test_fewer_than_slack_requests_cost_no_write() -> None:
    counts, counters = WindowCounts(), Counters()
    for _ in range(IP_LIMIT.slack - 1):
        assert request(counts, counters, IP_LIMIT, START).admitted
    assert counters.writes == 0


def test_every_slack_requests_one_write_then_every_request_near_the_limit() -> None:
    counts, counters = WindowCounts(), Counters()
    flushed = []
    for n in range(1, IP_LIMIT.burst + 1):
        verdict = counts.take(Scope.IP, "a", IP_LIMIT, START)
        assert verdict.admitted
        if verdict.flush is not None:
            flushed.append((n, verdict.flush.n))
            assert counts.flushed(verdict.flush, IP_LIMIT, counters.add(verdict.flush), START).admitted
    slack = IP_LIMIT.slack
    # 5, 10, ... 95 in steps of 5; past 95 (the limit minus the slack) every request
    assert flushed == [(n, slack) for n in range(slack, 96, slack)] + [(n, 1) for n in range(96, 101)]
    assert counters.totals[(Scope.IP, "a", IP_LIMIT.window(START))] == IP_LIMIT.burst


def test_past_the_limit_requests_are_refused_without_a_write_until_the_window_ends() -> None:
    counts, counters = WindowCounts(), Counters()
    for _ in range(IP_LIMIT.burst):
        assert request(counts, counters, IP_LIMIT, START).admitted
    writes = counters.writes
    refused = [request(counts, counters, IP_LIMIT, START + 1000) for _ in range(1000)]
    assert not any(v.admitted for v in refused) and counters.writes == writes
    assert {v.retry_after_seconds for v in refused} == {4}
    assert request(counts, counters, IP_LIMIT, START + 5000).admitted, "the next window starts afresh"


def test_other_instances_counts_arrive_with_each_flush() -> None:
    here, there, counters = WindowCounts(), WindowCounts(), Counters()
    for _ in range(96):  # another instance took 96 of the 100
        assert request(there, counters, IP_LIMIT, START).admitted
    verdicts = [request(here, counters, IP_LIMIT, START) for _ in range(10)]
    # here flushes its 5th request (total 101): refused, and it knows it from then on
    assert [v.admitted for v in verdicts] == [True] * 4 + [False] * 6
    assert counters.writes == 18 + 2 + 1  # there: 5 to 90 in steps of 5, then 95 and 96; here: one


def test_a_flush_answering_past_the_limit_refuses_the_request() -> None:
    counts = WindowCounts()
    limit = RateLimit(rate=5, burst=5)
    verdict = counts.take(Scope.KEY, "k", limit, START)
    counts.take(Scope.KEY, "k", limit, START)
    second = counts.take(Scope.KEY, "k", limit, START)
    assert verdict.flush is None and second.flush is not None
    assert not counts.flushed(second.flush, limit, 7, START).admitted
    assert not counts.take(Scope.KEY, "k", limit, START).admitted


def test_a_new_window_drops_what_the_old_one_held_back() -> None:
    counts, counters = WindowCounts(), Counters()
    for _ in range(3):
        request(counts, counters, IP_LIMIT, START)
    assert counters.writes == 0
    for _ in range(IP_LIMIT.slack - 1):
        request(counts, counters, IP_LIMIT, START + 5000)
    assert counters.writes == 0, "the 3 of the old window are not added to the new one"
    request(counts, counters, IP_LIMIT, START + 5000)
    assert counters.totals == {(Scope.IP, "a", IP_LIMIT.window(START) + 1): IP_LIMIT.slack}


def test_a_failed_flush_keeps_the_requests_pending_for_the_next() -> None:
    counts, limit = WindowCounts(), RateLimit(rate=1, burst=100)  # one window of 100 s, slack 5
    verdict = None
    for _ in range(limit.slack):
        verdict = counts.take(Scope.IP, "a", limit, START)
    assert verdict is not None and verdict.admitted and verdict.flush is not None
    counts.unflushed(verdict.flush, START)
    # for a while the instance counts in memory only: a failing table must not slow every request
    assert counts.take(Scope.IP, "a", limit, START + PAUSE_AFTER_FAILURE_MS - 1).flush is None
    flush = counts.take(Scope.IP, "a", limit, START + PAUSE_AFTER_FAILURE_MS).flush
    assert flush is not None and flush.n == limit.slack + 2


def test_a_paused_instance_still_refuses_what_it_has_seen_past_the_limit() -> None:
    counts, limit = WindowCounts(), RateLimit(rate=5, burst=5)
    verdict = counts.take(Scope.KEY, "k", limit, START)
    while verdict.flush is None:
        verdict = counts.take(Scope.KEY, "k", limit, START)
    counts.unflushed(verdict.flush, START)
    assert verdict.flush.n == 2  # two admitted, then the flush failed
    admitted = [counts.take(Scope.KEY, "k", limit, START + 1).admitted for _ in range(10)]
    assert admitted == [True] * 3 + [False] * 7  # the burst of 5 in all, without a write


@pytest.mark.parametrize(
    ("address", "client"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("not an address", "not an address"),
    ],
)
def test_an_ipv6_client_is_its_64_and_a_mapped_ipv4_address_is_itself(address: str, client: str) -> None:
    assert client_of(address) == client


def test_scopes_and_ids_count_apart() -> None:
    counts, counters = WindowCounts(), Counters()
    limit = RateLimit(rate=5, burst=5)
    for _ in range(5):
        request(counts, counters, limit, START, id="a")
    assert not request(counts, counters, limit, START, id="a").admitted
    assert request(counts, counters, limit, START, id="b").admitted
    assert counts.take(Scope.KEY, "a", limit, START).admitted


def test_the_overshoot_is_at_most_slack_minus_one_per_instance() -> None:
    """Many instances, each sending slack - 1 requests and never flushing, then all the rest."""
    counters = Counters()
    instances = [WindowCounts() for _ in range(10)]
    admitted = 0
    for counts in instances:
        admitted += sum(
            request(counts, counters, IP_LIMIT, START).admitted for _ in range(IP_LIMIT.slack - 1)
        )
    for _ in range(50):
        for counts in instances:
            admitted += request(counts, counters, IP_LIMIT, START).admitted
    assert IP_LIMIT.burst <= admitted <= IP_LIMIT.burst + len(instances) * (IP_LIMIT.slack - 1)
    assert admitted > IP_LIMIT.burst, "the bound is reached here: this test can see an overshoot"


def test_one_instance_serving_threads_never_admits_past_the_limit() -> None:
    counts, counters = WindowCounts(), Counters()
    results: list[bool] = []
    lock = threading.Lock()

    def hammer() -> None:
        mine = [request(counts, counters, IP_LIMIT, START).admitted for _ in range(60)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 480
    assert IP_LIMIT.burst // 2 < sum(results) <= IP_LIMIT.burst
    assert counters.totals[(Scope.IP, "a", IP_LIMIT.window(START))] <= IP_LIMIT.burst


def test_the_instance_keeps_a_bounded_number_of_entries() -> None:
    counts, counters = WindowCounts(max_entries=100), Counters()
    for i in range(1000):
        request(counts, counters, IP_LIMIT, START, id=f"ip-{i}")
    assert len(counts) <= 100
    for i in range(50):
        request(counts, counters, IP_LIMIT, START + 5000 * 3, id=f"later-{i}")
    assert len(counts) <= 100
