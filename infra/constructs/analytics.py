"""The analytics capability: its functions, and the workflows that run them (``infra.wiring.WORKFLOWS``).

Each workflow is a Step Functions state machine (STANDARD, JSONata) on an EventBridge schedule whose
input is the scheduled event's time. A step run once is a Lambda task; a step run per item is a
Distributed Map (a child execution per item, at most ``max_concurrency`` at a time): over the scan
segments 0..N-1, inline, or over the list the previous step returned. The state is ``{"time": ...}``
plus each step's output under its function's name, as the local runner keeps it
(``infra.local.workflow``). Every task retries Lambda's service errors and throttles, then any error
``retry_attempts`` times with backoff; what still fails goes to the Fail state, and the failed run is
an alarm and a message on the failed-runs queue.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.constructs.capability import Capability
from infra.constructs.function import Platform, _retention
from infra.constructs.queues import set_aside_queue
from infra.wiring import SETTLE_MARGIN, WORKFLOWS, EachItem, EachSegment, Workflow, WorkflowStep, function
from infra.wiring import Capability as CapabilityName

#: Lambda's own errors a task retries beyond the workflow's retries (the service's, and throttles).
LAMBDA_SERVICE_ERRORS = (
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)
#: How a failed, timed-out or aborted run is reported on the default bus (Step Functions publishes it).
FAILED_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")


class Analytics(Capability):
    """The analytics functions (as every capability's) and a state machine per workflow of them."""

    def __init__(
        self, scope: Construct, construct_id: str, *, name: CapabilityName, platform: Platform
    ) -> None:
        super().__init__(scope, construct_id, name=name, platform=platform)
        self.workflows = {
            flow.name: ScheduledWorkflow(
                self,
                flow.name.title().replace("_", ""),
                workflow=flow,
                functions=self.functions,
                platform=platform,
            )
            for flow in WORKFLOWS
            if all(function(step.function).capability == name for step in flow.steps)
        }


class ScheduledWorkflow(Construct):
    """One wiring workflow: the state machine, its logs, schedule, alarms and failed-runs queue."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        workflow: Workflow,
        functions: dict[str, Any],
        platform: Platform,
    ) -> None:
        super().__init__(scope, construct_id)
        self.workflow = workflow
        self._functions = functions
        self._segments = getattr(platform.config, workflow.segments_setting)
        #: issue 13: a run started on demand tells its steps its name (``WorkflowStep.input``)
        self._run = None if workflow.scheduled else "{% $states.context.Execution.Name %}"
        failed = sfn.Fail.jsonata(
            self,
            "Failed",
            comment="A step failed every attempt: the run stops, the alarm and the failed-runs queue say so",
            error="{% $states.input.Error %}",
            cause="{% $states.input.Cause %}",
        )
        states: list[Any] = [self._state(step, failed) for step in workflow.steps]
        #: issue 13: a cache the run outlasts before its first step (``Workflow.settle``)
        settle = workflow.settle_seconds(platform.config)
        self.settle = (
            sfn.Wait.jsonata(
                self,
                "Settle",
                comment=f"Waits out {workflow.settle} ({settle - int(SETTLE_MARGIN.total_seconds())} s) "
                "and a margin: every function then holds what the run was started after",
                time=sfn.WaitTime.duration(Duration.seconds(settle)),
            )
            if settle
            else None
        )
        if self.settle is not None:
            states.insert(0, self.settle)
        chain = sfn.Chain.start(states[0])
        for state in states[1:]:
            chain = chain.next(state)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=_retention(platform.config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            comment=workflow.description,
            definition_body=sfn.DefinitionBody.from_chainable(chain),
            query_language=sfn.QueryLanguage.JSONATA,
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=Duration.seconds(workflow.timeout.total_seconds()),
            tracing_enabled=True,
            # every state's transitions and errors; no inputs or outputs (the console's history keeps them)
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False
            ),
        )
        self._acknowledge_role()
        self.failed_runs = self._failed_runs()
        #: issue 13: a workflow started on demand has no schedule (``Workflow.started_by`` start it)
        self.schedule = (
            events.Rule(
                self,
                "Schedule",
                description=f"Starts {workflow.name} every day at {workflow.at_hour:02d}:00 UTC",
                schedule=events.Schedule.expression(workflow.expression),
                targets=[
                    targets.SfnStateMachine(
                        self.state_machine,
                        # the input transformer: the scheduled event's time, the run's only input
                        input=events.RuleTargetInput.from_object({"time": events.EventField.time}),
                        retry_attempts=8,
                        max_event_age=Duration.hours(2),
                        dead_letter_queue=self.failed_runs,
                    )
                ],
            )
            if workflow.scheduled
            else None
        )
        self.alarms = self._alarms()

    def grant_start(self, starter: lambda_.Function) -> None:
        """issue 13: a function that starts runs (``Workflow.started_by``): the state machine's ARN in its
        environment, StartExecution on it, DescribeExecution on its executions (``infra.permissions``)."""
        from shared.adapters.backfill_runs import state_machine_env

        starter.add_environment(state_machine_env(self.workflow.name), self.state_machine.state_machine_arn)
        self.state_machine.grant_start_execution(starter)
        self.state_machine.grant_execution(starter, "states:DescribeExecution")
        stack = Stack.of(self)
        machine = stack.resolve(self.state_machine.node.default_child.logical_id)
        executions = (
            "arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
            f'{{"Fn::Select":[6,{{"Fn::Split":[":",{{"Ref":"{machine}"}}]}}]}}:*'
        )
        Validations.of(starter.role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{executions}]",
                reason=f"DescribeExecution on the runs of the {self.workflow.name} state machine only: their "
                "names are given when they start (CDK's grant for an execution).",
            )
        )

    # --- the definition ------------------------------------------------------------------------------

    def _state(self, step: WorkflowStep, failed: sfn.Fail) -> sfn.TaskStateBase | sfn.DistributedMap:
        """A step's state: its output joins the run's state under the function's name (a map's: its runs'
        answers, or their number, ``WorkflowStep.kept``)."""
        kept = (
            f"{{'{step.each.field}': $count($states.result)}}"
            if isinstance(step.each, EachItem) and step.each.counted
            else "$states.result"
        )
        output = f"{{% $merge([$states.input, {{'{step.function}': {kept}}}]) %}}"
        if step.each is None:
            task = self._task(
                step,
                state_id=_pascal(step.function),
                payload=step.input("{% $states.input.time %}", self._segments, run=self._run),
                output=f"{{% $merge([$states.input, {{'{step.function}': $states.result.Payload}}]) %}}",
            )
            task.add_catch(failed, errors=["States.ALL"], outputs="{% $states.errorOutput %}")
            return task
        step_map = sfn.DistributedMap.jsonata(
            self,
            _pascal(step.function),
            comment=f"{step.function}, once per {_each_name(step)}",
            items=self._items(step),
            item_selector=step.input(
                "{% $states.input.time %}",
                self._segments,
                "{% $states.context.Map.Item.Value %}",
                self._run,
            ),
            max_concurrency=step.each.max_concurrency,
            map_execution_type=sfn.StateMachineType.STANDARD,
            label=_pascal(step.function),
            outputs=output,
        )
        step_map.item_processor(
            self._task(
                step,
                state_id=f"{_pascal(step.function)}Run",
                payload="{% $states.input %}",
                output="{% $states.result.Payload %}",
            )
        )
        step_map.add_catch(failed, errors=["States.ALL"], outputs="{% $states.errorOutput %}")
        return step_map

    def _items(self, step: WorkflowStep) -> sfn.ProvideItems:
        if isinstance(step.each, EachSegment):
            return sfn.ProvideItems.json_array(list(range(self._segments)))
        assert isinstance(step.each, EachItem)
        source = self.workflow.previous(step).function
        return sfn.ProvideItems.jsonata(f"{{% $states.input.{source}.{step.each.field} %}}")

    def _task(self, step: WorkflowStep, *, state_id: str, payload: Any, output: str) -> tasks.LambdaInvoke:
        task = tasks.LambdaInvoke.jsonata(
            self,
            state_id,
            comment=function(step.function).description,
            lambda_function=self._functions[step.function],
            payload=sfn.TaskInput.from_object(payload)
            if isinstance(payload, dict)
            else sfn.TaskInput.from_text(payload),
            outputs=output,
            retry_on_service_exceptions=False,  # CDK's list lacks throttles: ours below
        )
        # Lambda's service errors and throttles, with backoff (about two minutes in all)...
        task.add_retry(
            errors=list(LAMBDA_SERVICE_ERRORS), interval=Duration.seconds(2), max_attempts=6, backoff_rate=2
        )
        # ...then anything else (the function's error, its timeout) a few times: every step is idempotent
        task.add_retry(
            errors=["States.ALL"],
            interval=Duration.seconds(30),
            max_attempts=self.workflow.retry_attempts,
            backoff_rate=2,
        )
        return task

    # --- what a failed run leaves ----------------------------------------------------------------------

    def _failed_runs(self) -> sqs.Queue:
        """Runs that failed, timed out or were aborted (Step Functions' status change, with the execution's
        ARN and input), and schedule events that could not start one: kept 14 days to look at."""
        queue = set_aside_queue(
            self,
            "FailedRuns",
            reason="This queue is itself where failed runs of the workflow are set aside (and the schedule's "
            "dead-letter queue); it needs no dead-letter queue of its own.",
        )
        events.Rule(
            self,
            "RunFailed",
            description=f"Sets aside the {self.workflow.name} runs that failed, timed out or were aborted",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={
                    "status": list(FAILED_STATUSES),
                    "stateMachineArn": [self.state_machine.state_machine_arn],
                },
            ),
            targets=[targets.SqsQueue(queue)],
        )
        return queue

    def _alarms(self) -> list[cloudwatch.Alarm]:
        """A run that failed or timed out: an alarm per outcome (missing data, no run, is not a breach)."""
        found = []
        for outcome, metric in (
            ("Failed", self.state_machine.metric_failed(period=Duration.hours(1), statistic="Sum")),
            ("TimedOut", self.state_machine.metric_timed_out(period=Duration.hours(1), statistic="Sum")),
        ):
            found.append(
                cloudwatch.Alarm(
                    self,
                    f"Runs{outcome}",
                    alarm_description=f"A {self.workflow.name} run {outcome.lower().replace('timedout', 'timed out')}: "
                    "see the state machine's executions and the failed-runs queue",
                    metric=metric,
                    threshold=1,
                    evaluation_periods=1,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
        return found

    def _acknowledge_role(self) -> None:
        """What cdk-nag finds in the state machine's role, and why each is needed."""
        role = self.state_machine.role
        stack = Stack.of(self)
        for function_name in {step.function for step in self.workflow.steps}:
            logical = stack.resolve(self._functions[function_name].node.default_child.logical_id)
            Validations.of(role).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::<{logical}.Arn>:*]",
                    reason="lambda:InvokeFunction on the workflow's own functions, any version or alias "
                    "(CDK's grant for a Lambda task): the state machine invokes nothing else.",
                )
            )
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="X-Ray PutTraceSegments and PutTelemetryRecords, and CloudWatch Logs' log delivery "
                "actions Step Functions needs to log (CreateLogDelivery...), do not support resource-level "
                "permissions.",
            )
        )
        # the Distributed Maps' own policy: their child executions (named by Step Functions), per map run
        machine = stack.resolve(self.state_machine.node.default_child.logical_id)
        executions = (
            "arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
            f'{{"Fn::Select":[6,{{"Fn::Split":[":",{{"Ref":"{machine}"}}]}}]}}'
        )
        maps = [_pascal(step.function) for step in self.workflow.steps if step.each is not None]
        for resource in [f"{executions}:*", *(f"{executions}/{label}:*" for label in maps)]:
            Validations.of(self.state_machine).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::{resource}]",
                    reason="The Distributed Maps start, describe and stop their own child executions and map "
                    "runs, whose names Step Functions generates (CDK's policy for a Distributed Map).",
                )
            )


def _each_name(step: WorkflowStep) -> str:
    return "scan segment" if isinstance(step.each, EachSegment) else f"{step.each.item} of the previous step"


def _pascal(name: str) -> str:
    return name.title().replace("_", "")
