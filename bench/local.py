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


def concurrent_batches(threads: int = 4, batches: int = 10, size: int = 100) -> dict[str, Any]:
    """``threads`` clients × ``batches`` batches of ``size`` calls against a fresh local stack."""
    from infra.local.stack import LocalSettings, LocalStack

    saved = dict(os.environ)
    stack = LocalStack(LocalSettings(port=0, server_key=SERVER_KEY, quiet=True))
    stack.start()
    try:
        url = f"{stack.url}/v1/batch"
        _post(url, _batch(threads, 0, size))  # warm up: handlers imported, rules loaded, clients built
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
"""
