"""Workflows, locally: the steps of a wiring ``Workflow`` run in-process, in order, as Step Functions runs
them in the cloud (``infra.constructs.analytics``).

Each step invokes its function's handler as deployed (hosted in its own scope: its environment, its
role's grants); a step run per item (a Distributed Map in the cloud) runs its items one after another.
The run's state is the cloud's: ``{"time": ...}`` plus each step's output under its function's name (of a
step run per item, the list of its answers, or their number: ``WorkflowStep.kept``). A
step's run that fails is retried as the state machine retries it (``Workflow.retry_attempts``); one that
keeps failing stops the run, which is reported (``WorkflowFailed``) with the outputs so far.
"""

from __future__ import annotations

import threading
import time as wall_clock
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from infra.wiring import Workflow, WorkflowStep

#: Runs a function by name with a payload and returns what its handler returned.
Invoke = Callable[[str, dict[str, Any]], Any]


class WorkflowFailed(Exception):
    """A step's run failed every attempt: the run stopped there."""

    def __init__(
        self, workflow: str, step: str, payload: dict[str, Any], error: Exception, state: dict[str, Any]
    ) -> None:
        super().__init__(f"{workflow}: {step} failed on {payload}: {type(error).__name__}: {error}")
        self.workflow = workflow
        self.step = step
        self.payload = payload
        self.error = error
        #: the run's state when it stopped: the time and the outputs of the steps that completed
        self.state = state

    def report(self) -> dict[str, Any]:
        """What ``POST /_local/analytics/run`` answers, and the failed run's record."""
        return {
            "code": "workflow_failed",
            "workflow": self.workflow,
            "step": self.step,
            "input": self.payload,
            "error": type(self.error).__name__,
            "message": str(self.error),
            "state": self.state,
        }


@dataclass
class LocalWorkflow:
    workflow: Workflow
    #: parallel-scan segments (``analyticsScanSegments``): what a step run per segment runs over
    segments: int
    invoke: Invoke
    #: what ran: (function, payload) per attempt, oldest first (the last 1000)
    attempts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: issue 13: seconds the run waits before its first step (``Workflow.settle_seconds``: the cloud's
    #: Wait state); 0 locally, where the caches it waits out are 0
    settle: float = 0
    #: how it waits (real time: the caches run on the monotonic clock, not the controlled one)
    sleep: Callable[[float], None] = wall_clock.sleep
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def run(self, time: str, name: str | None = None) -> dict[str, Any]:
        """One run at ``time`` (ISO-8601, as the schedule's event gives it): the final state, or
        ``WorkflowFailed``. Runs do not overlap (the schedule and the local endpoint may both start one).
        ``name``: the execution's, for a run started on demand (its steps get it, as in the cloud)."""
        with self._lock:
            if self.settle > 0:
                self.sleep(self.settle)
            state: dict[str, Any] = {"time": time}
            for step in self.workflow.steps:
                state[step.function] = self._step(step, state, name)
            return state

    def _step(self, step: WorkflowStep, state: dict[str, Any], name: str | None = None) -> Any:
        time = state["time"]
        if step.each is None:
            return self._attempt(step, step.input(time, self.segments, run=name), state)
        try:
            items = self.workflow.items(step, state, self.segments)
        except TypeError as exc:  # the previous step's output lacks the list: as a failed Map state
            raise WorkflowFailed(self.workflow.name, step.function, {"time": time}, exc, dict(state)) from exc
        return step.kept(
            [self._attempt(step, step.input(time, self.segments, item, name), state) for item in items]
        )

    def _attempt(self, step: WorkflowStep, payload: dict[str, Any], state: dict[str, Any]) -> Any:
        error: Exception | None = None
        for attempt in range(1, self.workflow.retry_attempts + 2):
            self.attempts.append((step.function, payload))
            del self.attempts[:-1000]
            try:
                return self.invoke(step.function, dict(payload))
            except Exception as exc:  # noqa: BLE001 - a function error: the state machine retries any
                print(f"[local] {self.workflow.name}: {step.function} failed (attempt {attempt}): {exc!r}")
                error = exc
        assert error is not None
        raise WorkflowFailed(self.workflow.name, step.function, payload, error, dict(state)) from error


# --- issue 13: workflows started on demand (back-fills) --------------------------------------------------------


def record_outcome(
    execution_arn: str, state: dict[str, Any] | None, failed: WorkflowFailed | None = None
) -> None:
    """Write a run's outcome onto moto's execution, as Step Functions ends one: ``SUCCEEDED`` with the
    final state as its output, or ``FAILED`` with the failure's error and cause. DescribeExecution then
    answers as it does in the cloud (moto, which runs no definition, leaves executions ``RUNNING``)."""
    import json

    from moto.core.utils import utcnow
    from moto.stepfunctions.models import stepfunctions_backends

    _, _, _, region, account, *_ = execution_arn.split(":")
    execution = stepfunctions_backends[account][region].describe_execution(execution_arn)
    execution.stop_date = utcnow()
    if failed is None:
        execution.status = "SUCCEEDED"
        execution.output = json.dumps(state)
    else:
        execution.status = "FAILED"
        execution.error = f"{failed.step}.{type(failed.error).__name__}"
        execution.cause = str(failed.error)


@dataclass
class LocalExecutions:
    """Step Functions, locally, for the workflows started on demand: a function's StartExecution goes to
    moto (which keeps the executions, refuses a name used before, and answers DescribeExecution), and each
    execution it starts is run here by the workflow's local runner, with the execution's input, then its
    outcome recorded on moto (``record_outcome``).

    ``hook`` is a client hook of the function scopes (``infra.local.permissions.function_scope``): it
    watches the Step Functions clients the functions build. Runs go to a background thread each
    (``background``), as the API answers at once in the cloud; ``wait`` blocks until every run started so
    far has ended, so tests and local endpoints can wait for them deterministically."""

    #: state machine ARN -> the runner of its workflow
    runners: dict[str, LocalWorkflow]
    background: bool = True
    #: execution ARN -> the final state, or the failure's report
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    _threads: list[threading.Thread] = field(default_factory=list, repr=False)
    _started: set[str] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def hook(self, service: str, client: Any) -> None:
        if client.meta.service_model.service_id.hyphenize() == "sfn":
            client.meta.events.register("after-call.sfn.StartExecution", self.started)

    def started(self, http_response: Any = None, parsed: Any = None, **_: Any) -> None:
        """After a StartExecution that started one (not a refusal, nor a repeat of a running start)."""
        arn = (parsed or {}).get("executionArn") if getattr(http_response, "status_code", 200) < 300 else None
        if not arn:
            return
        with self._lock:
            if arn in self._started:
                return
            self._started.add(arn)
        if not self.background:
            self.execute(arn)
            return
        thread = threading.Thread(target=self.execute, args=(arn,), name="workflow-run", daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def execute(self, execution_arn: str) -> dict[str, Any]:
        """Run the execution's workflow on its input (its ``time``) and record the outcome."""
        import json

        from moto.stepfunctions.models import stepfunctions_backends

        _, _, _, region, account, *_ = execution_arn.split(":")
        execution = stepfunctions_backends[account][region].describe_execution(execution_arn)
        runner = self.runners[execution.state_machine_arn]
        try:
            state = runner.run(json.loads(execution.execution_input)["time"], execution.name)
        except WorkflowFailed as failed:
            record_outcome(execution_arn, None, failed)
            self.outcomes[execution_arn] = {"failed": failed.report()}
            return self.outcomes[execution_arn]
        record_outcome(execution_arn, state)
        self.outcomes[execution_arn] = state
        return state

    def wait(self, timeout: float | None = None) -> None:
        """Until every run started so far has ended."""
        while True:
            with self._lock:
                running = [t for t in self._threads if t.is_alive()]
                self._threads = running
            if not running:
                return
            for thread in running:
                thread.join(timeout)
                if thread.is_alive():
                    raise TimeoutError(f"a workflow run is still going after {timeout} s")
