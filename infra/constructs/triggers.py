"""Stream and schedule triggers, from the wiring: batch failure reporting, retries and a dead-letter queue."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.wiring import FUNCTIONS


class Triggers(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: dict[str, lambda_.Function],
        tables: dict[str, dynamodb.Table],
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letters: dict[str, sqs.Queue] = {}
        for spec in FUNCTIONS:
            function = functions[spec.name]
            if spec.stream is None and spec.schedule is None:
                continue
            dlq = sqs.Queue(
                self,
                f"{spec.name.title().replace('_', '')}DeadLetters",
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                retention_period=Duration.days(14),
            )
            Validations.of(dlq).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-SQS3",
                    reason="This queue is itself the dead-letter destination of the trigger's failed records and "
                    "invocations; it needs no dead-letter queue of its own.",
                )
            )
            self.dead_letters[spec.name] = dlq
            if spec.stream is not None:
                trigger = spec.stream
                function.add_event_source(
                    sources.DynamoEventSource(
                        tables[trigger.table.id],
                        starting_position=lambda_.StartingPosition.LATEST,
                        batch_size=trigger.batch_size,
                        max_batching_window=Duration.seconds(trigger.max_batching_window_seconds),
                        bisect_batch_on_error=trigger.bisect_on_error,
                        retry_attempts=trigger.retry_attempts,
                        max_record_age=Duration.seconds(trigger.max_record_age_seconds),
                        report_batch_item_failures=True,
                        on_failure=sources.SqsDlq(dlq),
                        filters=[lambda_.FilterCriteria.filter(dict(pattern)) for pattern in trigger.filters],
                    )
                )
            if spec.schedule is not None:
                schedule = spec.schedule
                events.Rule(
                    self,
                    f"{spec.name.title().replace('_', '')}Schedule",
                    description=f"Runs the {spec.name} function {schedule.expression}",
                    schedule=events.Schedule.expression(schedule.expression),
                    # covers EventBridge failing to hand the event to Lambda, not a run that fails
                    targets=[targets.LambdaFunction(function, retry_attempts=2, dead_letter_queue=dlq)],
                )
                # EventBridge invokes asynchronously: a run that fails is retried by Lambda, then its
                # event and error go to the same queue (CDK grants sqs:SendMessage on it, nothing more)
                function.configure_async_invoke(
                    retry_attempts=schedule.retry_attempts,
                    max_event_age=Duration.seconds(schedule.max_event_age_seconds),
                    on_failure=destinations.SqsDestination(dlq),
                )
