"""Back-fill runs on Step Functions: a start is an execution of the workflow's state machine, named.

Step Functions keeps an execution's name unique per state machine for 90 days after it ends: starting a
name again is ``ExecutionAlreadyExists``, "already started". Each start's input carries a token of its
own, so a second start of a running execution is refused too (with the same input Step Functions would
answer it as the same start); a start retried after a lost answer resends the same input and is answered
as started. Locally the same calls go to moto, whose executions the local stack runs in-process
(``infra.local.workflow.LocalExecutions``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from shared.adapters.dynamodb import error_code, failure, retried
from shared.clock import Clock
from shared.errors import NotFound
from shared.tracking.timestamps import format_time
from shared.usecases.backfills import BackfillRun, check_run, summary

WHAT = "the workflow engine"


def state_machine_env(workflow: str) -> str:
    """The environment variable that names a workflow's state machine (its ARN) to a function that starts
    it."""
    return f"{workflow.upper()}_STATE_MACHINE_ARN"


def execution_arn(state_machine_arn: str, name: str) -> str:
    """``arn:aws:states:<region>:<account>:execution:<state machine>:<name>``."""
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"


class StepFunctionsBackfills:
    def __init__(
        self,
        client: Any,
        *,
        state_machines: Mapping[str, str],
        clock: Clock,
        token: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._sfn = client
        #: workflow -> its state machine's ARN
        self._machines = dict(state_machines)
        self._clock = clock
        self._token = token

    def _machine(self, workflow: str, name: str) -> str:
        check_run(workflow, name)
        arn = self._machines.get(workflow)
        if arn is None:
            raise NotFound(f"no back-fill {workflow!r}")
        return arn

    def start(self, workflow: str, name: str) -> bool:
        request = {
            "stateMachineArn": self._machine(workflow, name),
            "name": name,
            "input": json.dumps({"time": format_time(self._clock.now()), "start": self._token()}),
        }
        try:
            retried(lambda: self._sfn.start_execution(**request), WHAT)
        except Exception as exc:
            if error_code(exc) == "ExecutionAlreadyExists":
                return False
            raise failure(exc, WHAT) from exc
        return True

    def run(self, workflow: str, name: str) -> BackfillRun | None:
        arn = execution_arn(self._machine(workflow, name), name)
        try:
            found = retried(lambda: self._sfn.describe_execution(executionArn=arn), WHAT)
        except Exception as exc:
            if error_code(exc) == "ExecutionDoesNotExist":
                return None
            raise failure(exc, WHAT) from exc
        try:
            output = json.loads(found["output"]) if found.get("output") else None
        except ValueError:
            output = None
        try:
            return BackfillRun(
                workflow=workflow,
                name=name,
                status=found["status"],
                started_at=found["startDate"],
                stopped_at=found.get("stopDate"),
                result=summary(output),
                error=found.get("error"),
                cause=found.get("cause"),
            )
        except ValidationError as exc:
            raise ValueError(f"{WHAT} described {arn} unreadably: {exc}") from None
