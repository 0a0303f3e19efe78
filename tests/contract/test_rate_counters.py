"""The rate-limit counters: fake and adapter alike (atomic adds, totals per window, TTL, failures)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shared.errors import DependencyUnavailable
from tests.fakes import MemoryRateCounters

EXPIRES = 1_900_000_000


class Counters:
    """The port under test, with what each side needs to show its stored expiry and to fail."""

    def __init__(self, implementation: str, rates_table: Any) -> None:
        self.implementation = implementation
        if implementation == "fake":
            self.port: Any = MemoryRateCounters()
            return
        from shared.adapters.rate_counters import DynamoRateCounters

        self.db, self.table = rates_table()
        self.port = DynamoRateCounters(self.db, table=self.table)

    def expiry(self, scope: str, id: str, window: int) -> int:
        if self.implementation == "fake":
            return self.port.expiries[(scope, id, window)]
        key = {"pk": {"S": f"{scope}#{id}"}, "sk": {"S": str(window)}}
        return int(self.db.get_item(TableName=self.table, Key=key)["Item"]["expiresAt"]["N"])

    def fail(self) -> None:
        """Every write fails as a throttled DynamoDB fails it."""
        if self.implementation == "fake":
            self.port.unavailable = True
            return

        def throttled(model: Any, **_: Any) -> None:
            if model.name == "UpdateItem":
                error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "injected"}}
                raise ClientError(error, "UpdateItem")

        self.db.meta.events.register_first("before-parameter-build.dynamodb", throttled)


@pytest.fixture
def counters(implementation, rates_table) -> Counters:
    return Counters(implementation, rates_table)


def test_adds_answer_the_running_total_of_their_window(counters) -> None:
    port = counters.port
    assert port.add("ip", "a" * 32, 7, 5, EXPIRES) == 5
    assert port.add("ip", "a" * 32, 7, 1, EXPIRES) == 6
    assert port.add("ip", "a" * 32, 8, 2, EXPIRES) == 2, "another window starts from zero"
    assert port.add("ip", "b" * 32, 7, 3, EXPIRES) == 3, "another address"
    assert port.add("key", "a" * 32, 7, 4, EXPIRES) == 4, "another scope"
    assert port.add("ip", "a" * 32, 7, 25, EXPIRES) == 31


def test_a_counter_carries_its_expiry(counters) -> None:
    counters.port.add("key", "k" * 32, 9, 1, EXPIRES)
    counters.port.add("key", "k" * 32, 9, 1, EXPIRES + 5)
    assert counters.expiry("key", "k" * 32, 9) == EXPIRES + 5


def test_concurrent_adds_are_all_counted(counters) -> None:
    answers: list[int] = []
    lock = threading.Lock()

    def add() -> None:
        for _ in range(10):
            total = counters.port.add("key", "c" * 32, 1, 2, EXPIRES)
            with lock:
                answers.append(total)

    threads = [threading.Thread(target=add) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(answers) == list(range(2, 81, 2)), "each add sees every add before it, none twice"


def test_a_failed_write_is_unavailable(counters) -> None:
    counters.fail()
    with pytest.raises(DependencyUnavailable):
        counters.port.add("ip", "a" * 32, 7, 5, EXPIRES)
