"""The local scheduler invokes as EventBridge does: asynchronously, with retries and an on-failure record."""

from __future__ import annotations

from datetime import datetime, timedelta
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


def test_runs_before_the_earliest_due_work_are_counted_but_not_invoked() -> None:
    clock = ControlledClock(NOW)
    invoked: list[str] = []
    work = {"at": NOW + timedelta(days=30, minutes=30)}
    scheduler = LocalScheduler(clock)
    scheduler.add(
        "timers",
        timedelta(hours=1),
        lambda event: invoked.append(event["time"]) or {"done": 0},
        idle_until=lambda: work["at"],
    )
    assert scheduler.advance(NOW + timedelta(days=31, minutes=1)) == 31 * 24
    # the first run at or after the work's due time is invoked, and every one after it (work stays due here)
    first = datetime.fromisoformat(invoked[0]) - NOW
    assert (
        timedelta(days=30, hours=1) <= first < timedelta(days=30, hours=1, seconds=5) and len(invoked) == 24
    )
    assert scheduler.skipped["timers"] == 31 * 24 - 24
    work["at"] = None  # nothing due at all: a year of hourly runs, none invoked
    invoked.clear()
    assert scheduler.advance(NOW + timedelta(days=31 + 365, minutes=1)) == 365 * 24 and invoked == []


def test_another_jobs_run_bounds_what_is_skipped() -> None:
    clock = ControlledClock(NOW)
    invoked: list[str] = []
    scheduler = LocalScheduler(clock)
    scheduler.add(
        "timers", timedelta(hours=1), lambda e: invoked.append("timers") or {}, idle_until=lambda: None
    )
    scheduler.add("nightly", timedelta(days=1), lambda e: invoked.append("nightly") or {})
    assert scheduler.advance(NOW + timedelta(days=2, minutes=1)) == 2 * 24 + 2
    assert invoked == ["nightly", "nightly"], "the hourly runs in between were idle"


def test_two_idle_jobs_skip_together_up_to_the_first_work_of_either() -> None:
    """An hourly timer job and a campaign job every minute, both with nothing to do for a year but one
    campaign run: each skips up to the other's first work, not the other's next (idle) run, so a year
    passes in a few steps rather than one per hour."""
    clock = ControlledClock(NOW)
    invoked: list[tuple[str, str]] = []
    asked = {"timers": 0, "campaigns": 0}
    work: dict[str, datetime | None] = {"timers": None, "campaigns": NOW + timedelta(days=200, seconds=30)}

    def earliest(name: str) -> Any:
        def ask() -> datetime | None:
            asked[name] += 1
            return work[name]

        return ask

    def run(name: str) -> Any:
        def invoke(event: dict[str, Any]) -> dict[str, Any]:
            invoked.append((name, event["time"]))
            work[name] = None  # done: nothing more, ever
            return {"done": 1}

        return invoke

    scheduler = LocalScheduler(clock)
    scheduler.add("timers", timedelta(hours=1), run("timers"), idle_until=earliest("timers"))
    scheduler.add("campaigns", timedelta(minutes=1), run("campaigns"), idle_until=earliest("campaigns"))
    fired = scheduler.advance(NOW + timedelta(days=365))
    assert [name for name, _ in invoked] == ["campaigns"], "the one campaign run, and no idle run invoked"
    first = datetime.fromisoformat(invoked[0][1]) - NOW
    assert timedelta(days=200, minutes=1) <= first < timedelta(days=200, minutes=1, seconds=5)
    # every run counted as fired, idle or not (the last of each may fall just past the year)
    assert 365 * 24 * 61 - 2 <= fired <= 365 * 24 * 61
    assert sum(asked.values()) < 20, f"a year in a few steps, not one per hour: {asked}"


class _BusyMachineClock(ControlledClock):
    """A loaded machine: time flows a little between any look at the clock and the next step."""

    def now(self) -> datetime:
        moment = super().now()
        with self._lock:
            self._offset += timedelta(milliseconds=5)
        return moment


def test_time_flowing_between_a_look_at_the_clock_and_a_run_never_moves_it_backwards() -> None:
    """CI failed once: a run due a few microseconds ahead, the clock passing it before the scheduler moved it."""
    clock = _BusyMachineClock(NOW)
    ran: list[str] = []
    scheduler = LocalScheduler(clock)
    due = NOW + timedelta(hours=1)
    scheduler.add(
        "hourly", timedelta(hours=1), lambda event: ran.append(event["time"]) or {"ran": True}, first_at=due
    )
    for step in range(1, 4):
        clock.reach(due + timedelta(hours=step - 1) - timedelta(milliseconds=7))
        assert scheduler.advance(due + timedelta(hours=step - 1)) == 1
    assert len(ran) == 3
    assert clock.reach(NOW) > due + timedelta(hours=2), (
        "reaching a time already passed leaves the clock alone"
    )
