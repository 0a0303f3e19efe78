"""Function scopes: what a function builds is built once per instance, however its first calls arrive."""

from __future__ import annotations

import threading
import time

from shared import scope


def test_concurrent_first_calls_build_once() -> None:
    builds: list[int] = []

    @scope.per_function
    def limiter() -> object:
        builds.append(1)
        time.sleep(0.05)  # long enough for every thread to find nothing built yet
        return object()

    instance = scope.FunctionScope("test-instance", {})
    seen: list[object] = []
    barrier = threading.Barrier(8)

    def first_call() -> None:
        with instance.active():
            barrier.wait(timeout=30)
            seen.append(limiter())

    threads = [threading.Thread(target=first_call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(builds) == 1 and len(seen) == 8 and len({id(s) for s in seen}) == 1
