"""The local scheduler invokes as EventBridge does: asynchronously, with retries and an on-failure record."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from infra.local.scheduler import LocalScheduler
from shared.clock import ControlledClock
from tests.conftest import NOW


def test_a_failing_run_is_retried_then_recorded_and_the_schedule_goes_on() -> None:
    clock = ControlledClock(NOW)
    sent: list[dict[str, Any]] = []
    scheduler = LocalScheduler(clock)
    calls: list[str] = []

    def timers(event: dict[str, Any]) -> dict[str, Any]:
        calls.append(event["time"])
        if len(calls) <= 3:
            raise RuntimeError("the timers failed")
        return {"evaluated": 0}

    scheduler.add("timers", timedelta(hours=1), timers, retry_attempts=2, on_failure=sent.append)
    assert scheduler.advance(NOW + timedelta(hours=2, minutes=1)) == 2
    assert len(calls) == 4 and calls[0] == calls[1] == calls[2] != calls[3], "3 attempts, then the next run"
    (record,) = scheduler.dead_letters
    assert sent == [record]
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestPayload"]["detail-type"] == "Scheduled Event"
    assert record["requestPayload"]["time"] == calls[0]
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"] == {"errorMessage": "the timers failed", "errorType": "RuntimeError"}
