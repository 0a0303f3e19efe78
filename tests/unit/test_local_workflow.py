"""The local runner of the wiring's workflows: the cloud's steps, in order, with the cloud's inputs.

Stand-in functions (the real handlers are the nightly job's): each records what it was given.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.local.scheduler import LocalScheduler
from infra.local.workflow import LocalWorkflow, WorkflowFailed
from infra.wiring import (
    FUNCTIONS,
    NIGHTLY_ANALYTICS,
    WORKFLOWS,
    EachItem,
    EachSegment,
    Workflow,
    WorkflowStep,
    function,
)
from shared.clock import ControlledClock

TIME = "2026-11-24T02:00:00Z"


class StandIns:
    """The three analytics functions as stand-ins: extract reports its segment, fit two parts, apply its
    part; ``failing`` names a function that raises."""

    def __init__(self, *, failing: str | None = None, parts: Any = ("p-0", "p-1")) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.failing = failing
        self.parts = parts

    def __call__(self, name: str, payload: dict[str, Any]) -> Any:
        self.calls.append((name, payload))
        if name == self.failing:
            raise RuntimeError(f"{name} failed")
        if name == "analytics_extract":
            return {"day": "2026-11-23", "segment": payload["segment"], "purchases": 1, "read": 1}
        if name == "analytics_fit":
            return {
                "day": "2026-11-23",
                "customers": 2,
                "parts": None if self.parts is None else list(self.parts),
            }
        return {"day": "2026-11-23", "customers": 1, "updated": 1, "announced": 0}


def test_the_steps_run_in_order_each_with_the_inputs_the_contract_names() -> None:
    functions = StandIns()
    runner = LocalWorkflow(NIGHTLY_ANALYTICS, segments=3, invoke=functions)
    state = runner.run(TIME)
    assert functions.calls == [
        ("analytics_extract", {"time": TIME, "segment": 0, "segments": 3}),
        ("analytics_extract", {"time": TIME, "segment": 1, "segments": 3}),
        ("analytics_extract", {"time": TIME, "segment": 2, "segments": 3}),
        ("analytics_fit", {"time": TIME, "segments": 3}),
        ("analytics_apply", {"time": TIME, "part": "p-0"}),
        ("analytics_apply", {"time": TIME, "part": "p-1"}),
    ]
    # the state machine's final state: the time and each step's output under its function's name
    assert state["time"] == TIME
    assert [o["segment"] for o in state["analytics_extract"]] == [0, 1, 2]
    assert state["analytics_fit"]["parts"] == ["p-0", "p-1"]
    assert state["analytics_apply"] == {"parts": 2}, "the apply runs' number, not their answers"


def test_a_step_that_keeps_failing_stops_the_run_and_is_reported() -> None:
    functions = StandIns(failing="analytics_fit")
    runner = LocalWorkflow(NIGHTLY_ANALYTICS, segments=2, invoke=functions)
    with pytest.raises(WorkflowFailed) as failed:
        runner.run(TIME)
    names = [name for name, _ in functions.calls]
    # retried as the state machine retries it, then nothing after it runs
    assert names == ["analytics_extract"] * 2 + ["analytics_fit"] * (1 + NIGHTLY_ANALYTICS.retry_attempts)
    report = failed.value.report()
    assert report["step"] == "analytics_fit"
    assert report["input"] == {"time": TIME, "segments": 2}
    assert (report["error"], report["message"]) == ("RuntimeError", "analytics_fit failed")
    assert set(report["state"]) == {"time", "analytics_extract"}, "the outputs of the steps that completed"


def test_a_step_that_fails_once_is_retried_and_the_run_goes_on() -> None:
    attempts: list[str] = []

    def flaky(name: str, payload: dict[str, Any]) -> Any:
        attempts.append(name)
        if name == "analytics_apply" and attempts.count(name) == 1:
            raise ConnectionError("throttled")
        return StandIns()(name, payload)

    state = LocalWorkflow(NIGHTLY_ANALYTICS, segments=1, invoke=flaky).run(TIME)
    assert attempts.count("analytics_apply") == 3, "the first part twice, the second once"
    assert state["analytics_apply"] == {"parts": 2}


@pytest.mark.parametrize("parts", [None, ()], ids=["missing", "empty"])
def test_a_fit_without_parts_fails_clearly_or_applies_nothing(parts: Any) -> None:
    functions = StandIns(parts=parts)
    runner = LocalWorkflow(NIGHTLY_ANALYTICS, segments=1, invoke=functions)
    if parts is None:
        with pytest.raises(WorkflowFailed, match="analytics_fit returned no list 'parts'") as failed:
            runner.run(TIME)
        assert failed.value.step == "analytics_apply"
    else:
        assert runner.run(TIME)["analytics_apply"] == {"parts": 0}
    assert "analytics_apply" not in [name for name, _ in functions.calls]


def test_the_workflow_runs_daily_at_its_hour_on_the_local_clock_and_once_a_day() -> None:
    start = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    clock = ControlledClock(start)
    scheduler = LocalScheduler(clock)
    times: list[str] = []
    scheduler.add(
        NIGHTLY_ANALYTICS.name,
        NIGHTLY_ANALYTICS.every,
        lambda event: times.append(event["time"]) or {"ran": True},
        retry_attempts=0,
        first_at=NIGHTLY_ANALYTICS.next_run(clock.now()),
    )
    scheduler.advance(datetime(2026, 11, 24, 1, 59, tzinfo=UTC))
    assert times == [], "not before 02:00"
    scheduler.advance(datetime(2026, 11, 24, 2, 30, tzinfo=UTC))
    scheduler.advance(datetime(2026, 11, 24, 23, 0, tzinfo=UTC))
    assert [datetime.fromisoformat(t) for t in times] == [datetime(2026, 11, 24, 2, tzinfo=UTC)]
    scheduler.advance(datetime(2026, 11, 27, 3, 0, tzinfo=UTC))
    assert [datetime.fromisoformat(t).date().day for t in times] == [24, 25, 26, 27]
    assert all(datetime.fromisoformat(t).hour == 2 for t in times)


def test_a_jump_over_many_nights_runs_the_last_one_only_while_other_jobs_keep_their_times() -> None:
    """Each nightly run scores everyone from their whole history: of the nights a jump of the local clock
    passes, the last one runs (five years in one run, not 1,826), and the clock is at its time."""
    start = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    clock = ControlledClock(start)
    scheduler = LocalScheduler(clock)
    nights: list[tuple[str, datetime]] = []
    hourly: list[str] = []
    scheduler.add(
        NIGHTLY_ANALYTICS.name,
        NIGHTLY_ANALYTICS.every,
        lambda event: nights.append((event["time"], clock.now())) or {"ran": True},
        first_at=NIGHTLY_ANALYTICS.next_run(clock.now()),
        coalesce=True,
    )
    scheduler.add("hourly", timedelta(hours=1), lambda event: hourly.append(event["time"]) or {"ran": True})
    fired = scheduler.advance(start + timedelta(days=5, hours=1))
    last = datetime(2026, 11, 28, 2, tzinfo=UTC)
    # the clock was at the night's time when it ran (it keeps flowing: within a loaded machine's seconds)
    ((night, ran_at),) = nights
    assert datetime.fromisoformat(night) == last and last <= ran_at < last + timedelta(seconds=30)
    assert scheduler.skipped[NIGHTLY_ANALYTICS.name] == 4 and scheduler.fired[NIGHTLY_ANALYTICS.name] == 5
    assert len(hourly) == 5 * 24 and fired == 5 + len(hourly), "the other job runs at every one of its times"
    nights.clear()
    for day in range(1, 4):  # night by night, every night runs
        scheduler.advance(start + timedelta(days=5 + day, hours=1))
    assert [datetime.fromisoformat(t).day for t, _ in nights] == [29, 30, 1]


def test_two_runs_of_one_day_give_every_step_the_same_inputs() -> None:
    """A second execution (a schedule that fired twice, a manual run) repeats the same steps on the same
    keys: the steps' idempotence (overwritten keys, the apply's day guard) leaves one effect."""
    first, second = StandIns(), StandIns()
    LocalWorkflow(NIGHTLY_ANALYTICS, segments=2, invoke=first).run(TIME)
    LocalWorkflow(NIGHTLY_ANALYTICS, segments=2, invoke=second).run(TIME)
    assert first.calls == second.calls


def test_next_run_is_the_next_occurrence_of_the_hour_strictly_after() -> None:
    at = NIGHTLY_ANALYTICS.next_run
    assert at(datetime(2026, 11, 23, 1, 59, tzinfo=UTC)) == datetime(2026, 11, 23, 2, tzinfo=UTC)
    assert at(datetime(2026, 11, 23, 2, 0, tzinfo=UTC)) == datetime(2026, 11, 24, 2, tzinfo=UTC)
    assert at(datetime(2026, 11, 23, 23, 0, tzinfo=UTC)) == datetime(2026, 11, 24, 2, tzinfo=UTC)
    assert NIGHTLY_ANALYTICS.expression == "cron(0 2 * * ? *)"


def test_every_workflow_step_is_a_function_of_one_capability_invoked_by_nothing_else() -> None:
    names = {spec.name for spec in FUNCTIONS}
    for flow in WORKFLOWS:
        capabilities = {function(step.function).capability for step in flow.steps}
        assert {step.function for step in flow.steps} <= names and len(capabilities) == 1, flow.name
        for step in flow.steps:
            spec = function(step.function)
            assert not (spec.routes or spec.stream or spec.schedule or spec.bus or spec.queue), spec.name


def test_the_nightly_workflow_is_the_contract_extract_fit_apply() -> None:
    extract, fit, apply = NIGHTLY_ANALYTICS.steps
    assert (extract.function, fit.function, apply.function) == (
        "analytics_extract",
        "analytics_fit",
        "analytics_apply",
    )
    assert isinstance(extract.each, EachSegment) and fit.each is None
    assert isinstance(apply.each, EachItem) and (apply.each.field, apply.each.item) == ("parts", "part")
    assert extract.input("T", 16, 3) == {"time": "T", "segment": 3, "segments": 16}
    assert fit.input("T", 16) == {"time": "T", "segments": 16}
    assert apply.input("T", 16, "k") == {"time": "T", "part": "k"}


def test_a_workflow_is_daily_and_a_per_item_step_has_a_step_before_it() -> None:
    with pytest.raises(ValueError, match="daily"):
        Workflow("w", "d", every=timedelta(hours=6), at_hour=2, steps=(WorkflowStep("analytics_fit"),))
    with pytest.raises(ValueError, match="no previous step"):
        Workflow(
            "w",
            "d",
            every=timedelta(days=1),
            at_hour=2,
            steps=(WorkflowStep("analytics_apply", each=EachItem("parts", "part", 1)),),
        )


def test_a_run_started_on_demand_gives_its_steps_its_name_and_waits_out_its_settle_first() -> None:
    """issue 13: the contacts back-fill's steps learn which segment's save started the run (its name), as
    the cloud's map passes ``$states.context.Execution.Name``; the run first waits ``settle`` seconds
    (the cloud's Wait state), none when the cache it waits out is 0 (the local stack's)."""
    from infra.config import DeploymentConfig
    from infra.wiring import CONTACTS_BACKFILL

    calls: list[tuple[str, dict[str, Any]]] = []
    waits: list[float] = []

    def invoke(name: str, payload: dict[str, Any]) -> Any:
        calls.append((name, payload))
        return {"segment": payload["segment"], "contacts": 0}

    cloud = CONTACTS_BACKFILL.settle_seconds(DeploymentConfig())
    runner = LocalWorkflow(CONTACTS_BACKFILL, segments=2, invoke=invoke, settle=cloud, sleep=waits.append)
    runner.run(TIME, "seg-vip-v2")
    assert waits == [35.0] and calls == [
        ("backfill_contacts", {"time": TIME, "segment": 0, "segments": 2, "run": "seg-vip-v2"}),
        ("backfill_contacts", {"time": TIME, "segment": 1, "segments": 2, "run": "seg-vip-v2"}),
    ]
    local = CONTACTS_BACKFILL.settle_seconds(DeploymentConfig(rulesCacheSeconds=0))
    LocalWorkflow(CONTACTS_BACKFILL, segments=1, invoke=invoke, settle=local, sleep=waits.append).run(TIME)
    assert waits == [35.0] and calls[-1] == ("backfill_contacts", {"time": TIME, "segment": 0, "segments": 1})
