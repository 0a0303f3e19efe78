"""Step Functions for workflows started on demand, locally: moto keeps the executions a function starts,
``LocalExecutions`` runs each once with the workflow's local runner, in the background, and records how
it ended, so DescribeExecution answers as Step Functions would."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from infra.local.workflow import LocalExecutions, LocalWorkflow
from infra.wiring import CONTACTS_BACKFILL


@pytest.fixture
def sfn():
    from moto import mock_aws

    from shared.adapters import aws

    with mock_aws():
        aws.reset()
        client = aws.client("stepfunctions")
        arn = client.create_state_machine(
            name="lifecycle-contacts_backfill",
            definition=json.dumps({"StartAt": "x", "States": {"x": {"Type": "Pass", "End": True}}}),
            roleArn="arn:aws:iam::123456789012:role/workflows",
        )["stateMachineArn"]
        yield client, arn
        aws.reset()


def test_each_started_execution_runs_once_in_the_background_and_ends_as_step_functions_ends_it(sfn) -> None:
    client, machine = sfn
    release = threading.Event()
    ran: list[dict[str, Any]] = []

    def invoke(name: str, payload: dict[str, Any]) -> Any:
        release.wait(30)
        ran.append(payload)
        return {"segment": payload["segment"], "contacts": 1, "changed": 0}

    executions = LocalExecutions(runners={machine: LocalWorkflow(CONTACTS_BACKFILL, 2, invoke)})
    executions.hook("stepfunctions", client)
    arn = client.start_execution(
        stateMachineArn=machine, name="run-1", input='{"time": "2026-11-23T12:00:00Z"}'
    )["executionArn"]
    # the same name and input while it runs: the same start (Step Functions' idempotency), not a second run
    client.start_execution(stateMachineArn=machine, name="run-1", input='{"time": "2026-11-23T12:00:00Z"}')
    assert client.describe_execution(executionArn=arn)["status"] == "RUNNING", "the API answered at once"
    release.set()
    executions.wait(timeout=30)
    described = client.describe_execution(executionArn=arn)
    assert described["status"] == "SUCCEEDED" and "stopDate" in described
    assert json.loads(described["output"]) == {
        "time": "2026-11-23T12:00:00Z",
        "backfill_contacts": [
            {"segment": 0, "contacts": 1, "changed": 0},
            {"segment": 1, "contacts": 1, "changed": 0},
        ],
    }
    assert [p["segment"] for p in ran] == [0, 1], "one run of the workflow, each segment once"
    with pytest.raises(client.exceptions.ExecutionAlreadyExists):
        client.start_execution(
            stateMachineArn=machine, name="run-1", input='{"time": "2026-11-23T13:00:00Z"}'
        )


def test_a_run_that_fails_ends_failed_naming_the_step_and_its_error(sfn) -> None:
    client, machine = sfn

    def invoke(name: str, payload: dict[str, Any]) -> Any:
        raise RuntimeError("the table refused")

    executions = LocalExecutions(
        runners={machine: LocalWorkflow(CONTACTS_BACKFILL, 2, invoke)}, background=False
    )
    executions.hook("stepfunctions", client)
    arn = client.start_execution(
        stateMachineArn=machine, name="run-2", input='{"time": "2026-11-23T12:00:00Z"}'
    )["executionArn"]
    described = client.describe_execution(executionArn=arn)
    assert described["status"] == "FAILED"
    assert (
        described["error"] == "backfill_contacts.RuntimeError" and described["cause"] == "the table refused"
    )
    assert "output" not in described and executions.outcomes[arn]["failed"]["step"] == "backfill_contacts"


def test_a_workflow_is_daily_or_started_by_a_function() -> None:
    from datetime import UTC, datetime, timedelta

    from infra.wiring import BACKFILLS, Workflow, WorkflowStep
    from infra.wiring import EachSegment as Each

    step = (WorkflowStep("backfill_purchases", each=Each(max_concurrency=2)),)
    with pytest.raises(ValueError, match="started by some function"):
        Workflow("w", "d", every=None, at_hour=None, steps=step)
    with pytest.raises(ValueError, match="daily"):
        Workflow("w", "d", every=timedelta(days=1), at_hour=None, steps=step, started_by=("admin",))
    on_demand = Workflow("w", "d", every=None, at_hour=None, steps=step, started_by=("admin",))
    assert not on_demand.scheduled
    with pytest.raises(ValueError, match="started on demand"):
        on_demand.next_run(datetime.now(UTC))
    assert all(not flow.scheduled and flow.segments_setting == "backfill_scan_segments" for flow in BACKFILLS)
