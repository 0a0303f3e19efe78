"""The local stack under load (issue 7): latency of concurrent batches, as SDKs see it over loopback.

The stack (``make run``) is started in this process on a free loopback port, with its stream pump and
scheduler running as usual; four client threads each send batches of 100 calls through urllib and
time every request from the first byte sent to the last byte read.
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from bench.tracking import sample_call

SERVER_KEY = "bench-local-server-key"
#: Segment's Python client (and analytics-node) give up on a request after 15 s
SDK_TIMEOUT_SECONDS = 15.0


def _batch(thread: int, number: int, size: int) -> bytes:
    """Calls shaped like the SDKs', from 50 contacts per client thread (contacts come back across batches)."""
    calls = []
    for i in range(size):
        call = sample_call(number * size + i, f"bench-{thread}-{(number * size + i) % 50}")
        call["messageId"] = f"local-{thread}-{number}-{i}"
        calls.append(call)
    return json.dumps({"batch": calls, "sentAt": "2026-11-22T10:43:57.556Z"}).encode()


def _post(url: str, body: bytes) -> float:
    request = urllib.request.Request(
        url,
        data=body,
        headers={
            "content-type": "application/json",
            "authorization": "Basic " + base64.b64encode(f"{SERVER_KEY}:".encode()).decode(),
        },
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"batch answered {response.status}")
    return time.perf_counter() - started


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _folded(base: str, contact: str, events: int) -> bool:
    """Whether the contact's profile counts ``events`` events (the admin API, over loopback)."""
    try:
        with urllib.request.urlopen(f"{base}/admin/contacts/user_id:{contact}", timeout=30) as response:
            return json.loads(response.read()).get("event_count", 0) >= events
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return False
        raise


def visibility(base: str, rounds: int = 10, size: int = 100) -> dict[str, Any]:
    """One client, one batch of ``size`` calls from 10 new contacts at a time: how long the request takes,
    and how long after its answer the last of its contacts shows every event in its profile (folded in
    by the aggregation function from the events table's stream)."""
    answered: list[float] = []
    visible: list[float] = []
    for number in range(rounds):
        calls = []
        for i in range(size):
            call = sample_call(i, f"seen-{number}-{i % 10}")
            call["messageId"] = f"seen-{number}-{i}"
            calls.append(call)
        answered.append(_post(f"{base}/v1/batch", json.dumps({"batch": calls}).encode()))
        started = time.perf_counter()
        waiting = [f"seen-{number}-{c}" for c in range(10)]
        while waiting:  # one read at a time, 50 ms apart: the polling must not slow the stack it measures
            if _folded(base, waiting[0], size // 10):
                waiting.pop(0)
            else:
                time.sleep(0.05)
        visible.append(time.perf_counter() - started)
    return {
        "rounds": rounds,
        "size": size,
        "request_p50_s": statistics.median(answered),
        "request_max_s": max(answered),
        "visible_p50_s": statistics.median(visible),
        "visible_max_s": max(visible),
    }


def concurrent_batches(threads: int = 4, batches: int = 10, size: int = 100) -> dict[str, Any]:
    """``threads`` clients × ``batches`` batches of ``size`` calls against a fresh local stack, then the
    delay from a request to its events showing in the profiles (``visibility``)."""
    from infra.local.stack import LocalSettings, LocalStack

    saved = dict(os.environ)
    stack = LocalStack(LocalSettings(port=0, server_key=SERVER_KEY, quiet=True))
    stack.start()
    try:
        url = f"{stack.url}/v1/batch"
        _post(url, _batch(threads, 0, size))  # warm up: handlers imported, rules loaded, clients built
        seen = visibility(stack.url)
        latencies: list[float] = []
        failures: list[BaseException] = []
        lock = threading.Lock()

        def client(number: int) -> None:
            for batch in range(batches):
                try:
                    took = _post(url, _batch(number, batch, size))
                except BaseException as exc:  # noqa: BLE001 - reported, not hidden
                    with lock:
                        failures.append(exc)
                    continue
                with lock:
                    latencies.append(took)

        workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        wall = time.perf_counter() - started
    finally:
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)
    if not latencies:
        raise RuntimeError(f"every batch failed: {failures[0]!r}")
    return {
        "threads": threads,
        "batches": threads * batches,
        "size": size,
        "p50_s": statistics.median(latencies),
        "p99_s": _percentile(latencies, 0.99),
        "max_s": max(latencies),
        "requests_per_second": len(latencies) / wall,
        "events_per_second": len(latencies) * size / wall,
        "over_sdk_timeout": sum(1 for t in latencies if t >= SDK_TIMEOUT_SECONDS),
        #: answered 5xx or not at all: SDKs retry these, so they cost time, not events
        "failed": len(failures),
        **seen,
    }


def section(where: str, result: dict[str, Any]) -> str:
    r = result
    return f"""
Measured by `make bench` (or `python -m bench local`) on {where}.

**Concurrent batches against `make run`** ({r["threads"]} client threads × {r["batches"] // r["threads"]} batches of
{r["size"]} calls each, over loopback, stream pump and scheduler running):

| p50 | p99 | slowest | batches/s | calls/s | over the SDKs' 15 s timeout | failed (5xx) |
|---|---|---|---|---|---|---|
| {r["p50_s"]:.2f} s | {r["p99_s"]:.2f} s | {r["max_s"]:.2f} s | {r["requests_per_second"]:.2f} | {r["events_per_second"]:,.0f} | {r["over_sdk_timeout"]} of {r["batches"]} | {r["failed"]} |

**From a request to its scores** (one client, {r["rounds"]} batches of {r["size"]} calls from 10 new contacts,
nothing else running): the request only appends the events; the aggregation function folds them into
the profiles from the events table's stream (the local stack polls each stream every 0.2 s; deployed,
Lambda's trigger waits up to `max_batching_window_seconds`, 1 s, to fill a batch).

| request (p50) | request (slowest) | after the answer, until every event counts (p50) | (slowest) |
|---|---|---|---|
| {r["request_p50_s"]:.2f} s | {r["request_max_s"]:.2f} s | {r["visible_p50_s"]:.2f} s | {r["visible_max_s"]:.2f} s |
"""
