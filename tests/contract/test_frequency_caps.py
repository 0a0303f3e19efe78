"""Frequency caps (delivery's port): a message counted in every window or in none; the same on the fake
and on moto's rates table."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shared.delivery.ports import CapWindow
from shared.errors import DependencyUnavailable
from tests.contract.helpers import NOW
from tests.fakes import MemoryFrequencyCaps

DAY_ENDS = NOW.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
WEEK_ENDS = DAY_ENDS + timedelta(days=6 - NOW.weekday())


def windows(day: str = "d:2026-11-23", per_day: int = 2, per_week: int = 3) -> list[CapWindow]:
    return [CapWindow(day, per_day, DAY_ENDS), CapWindow("w:2026-W48", per_week, WEEK_ENDS)]


class Caps:
    def __init__(self, implementation: str, rates_table: Any) -> None:
        self.implementation = implementation
        if implementation == "fake":
            self.port: Any = MemoryFrequencyCaps()
            return
        from shared.adapters.frequency_caps import DynamoFrequencyCaps

        self.db, self.table = rates_table()
        self.port = DynamoFrequencyCaps(self.db, table=self.table)

    def counted(self, contact: str, channel: str, key: str) -> int:
        if self.implementation == "fake":
            return self.port.counts.get((contact, channel, key), 0)
        from shared.adapters.frequency_caps import cap_partition

        item = self.db.get_item(
            TableName=self.table, Key={"pk": {"S": cap_partition(contact, channel)}, "sk": {"S": key}}
        ).get("Item")
        return int(item["count"]["N"]) if item else 0

    def expiry(self, contact: str, channel: str, key: str) -> int:
        if self.implementation == "fake":
            return int(self.port.expiries[(contact, channel, key)].timestamp())
        from shared.adapters.frequency_caps import cap_partition

        item = self.db.get_item(
            TableName=self.table, Key={"pk": {"S": cap_partition(contact, channel)}, "sk": {"S": key}}
        )["Item"]
        return int(item["expiresAt"]["N"])


@pytest.fixture
def caps(implementation, rates_table) -> Caps:
    return Caps(implementation, rates_table)


def test_the_day_cap_stops_the_message_and_counts_it_in_no_window(caps) -> None:
    take = caps.port.take
    assert take("user_id:ann", "email", windows(), NOW)
    assert take("user_id:ann", "email", windows(), NOW)
    assert not take("user_id:ann", "email", windows(), NOW), "two a day"
    assert caps.counted("user_id:ann", "email", "d:2026-11-23") == 2
    assert caps.counted("user_id:ann", "email", "w:2026-W48") == 2, "the refused one counted in no window"


def test_the_week_cap_stops_the_next_day_and_leaves_that_day_uncounted(caps) -> None:
    take = caps.port.take
    assert take("user_id:ann", "email", windows(), NOW)
    assert take("user_id:ann", "email", windows(), NOW)
    tomorrow = NOW + timedelta(days=1)
    assert take("user_id:ann", "email", windows("d:2026-11-24"), tomorrow)
    assert not take("user_id:ann", "email", windows("d:2026-11-24"), tomorrow), "three a week"
    assert caps.counted("user_id:ann", "email", "d:2026-11-24") == 1, "all or nothing: the day is not counted"
    assert caps.counted("user_id:ann", "email", "w:2026-W48") == 3


def test_channels_and_contacts_are_counted_apart(caps) -> None:
    take = caps.port.take
    for _ in range(2):
        assert take("user_id:ann", "email", windows(), NOW)
    assert take("user_id:ann", "sms", windows(), NOW)
    assert take("user_id:bob", "email", windows(), NOW)
    assert caps.counted("user_id:ann", "sms", "d:2026-11-23") == 1


def test_no_windows_means_no_cap_and_counters_expire_a_day_after_their_window(caps) -> None:
    assert caps.port.take("user_id:ann", "email", [], NOW)
    assert caps.port.take("user_id:ann", "email", windows(), NOW)
    assert caps.expiry("user_id:ann", "email", "d:2026-11-23") == int(
        (DAY_ENDS + timedelta(days=1)).timestamp()
    )
    assert caps.expiry("user_id:ann", "email", "w:2026-W48") == int(
        (WEEK_ENDS + timedelta(days=1)).timestamp()
    )


def test_the_adapter_keeps_no_contact_id_in_the_clear(caps) -> None:
    if caps.implementation == "fake":
        pytest.skip("the fake keeps no items")
    caps.port.take("user_id:ann", "email", windows(), NOW)
    from shared.adapters.frequency_caps import cap_partition

    key = cap_partition("user_id:ann", "email")
    assert key.startswith("cap:email#") and "ann" not in key


def test_a_transaction_conflict_is_retried_and_a_lasting_throttle_is_unavailable(caps) -> None:
    if caps.implementation == "fake":
        pytest.skip("the fake has no transactions to conflict")
    calls = {"n": 0}

    def conflict_once(model, **_) -> None:
        if model.name == "TransactWriteItems":
            calls["n"] += 1
            if calls["n"] == 1 or calls["n"] >= 3:
                error = {
                    "Error": {"Code": "TransactionCanceledException", "Message": "injected"},
                    "CancellationReasons": [{"Code": "TransactionConflict"}, {"Code": "None"}],
                }
                raise ClientError(error, "TransactWriteItems")

    caps.db.meta.events.register_first("before-parameter-build.dynamodb", conflict_once)
    assert caps.port.take("user_id:ann", "email", windows(), NOW), "applied on the second attempt"
    assert calls["n"] == 2
    assert caps.counted("user_id:ann", "email", "d:2026-11-23") == 1
    with pytest.raises(DependencyUnavailable):
        caps.port.take("user_id:ann", "email", windows(), NOW)
    assert caps.counted("user_id:ann", "email", "d:2026-11-23") == 1
