"""One Lambda function per wiring spec: its own least-privilege role, log group, triggers and dead letters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import Acknowledgment, CfnResource, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.config import DeploymentConfig, environment, identity_secrets_path
from infra.constructs.bundles import bundle_architecture, library_layer
from infra.constructs.delivery import Delivery
from infra.constructs.http_api import HttpApi
from infra.constructs.messaging import Messaging
from infra.constructs.queues import set_aside_queue
from infra.permissions import grants
from infra.wiring import FUNCTIONS, Architecture, BucketSpec, FunctionSpec

ROOT = Path(__file__).resolve().parents[2]
#: A version the tests run on (python3.14 is on no machine here or in CI): see docs/decisions.md.
RUNTIME = lambda_.Runtime.PYTHON_3_13
#: Only handler and shared code go into the asset; dependencies come from the Powertools layer, and
#: from the library layers a function's wiring names (``bundles``).
ASSET_EXCLUDES = [
    "*",
    ".*",
    "!functions",
    "!functions/**",
    "!shared",
    "!shared/**",
    "**/__pycache__",
    # the console's npm install: only the charting library's browser build is shipped (copied by ``make``)
    "functions/console/node_modules",
    "**/*.pyc",
]


@dataclass(frozen=True)
class Platform:
    """What every capability builds on: the tables, the messaging, the API and the function packaging."""

    tables: dict[str, dynamodb.Table]
    #: the queues between functions, by id (``shared.adapters.queues``)
    queues: dict[str, sqs.Queue]
    messaging: Messaging
    api: HttpApi
    packaging: Packaging
    config: DeploymentConfig
    #: the delivery secret, the SES configuration set and the reputation alarms
    delivery: Delivery
    #: the buckets, by id (``infra.wiring.BUCKETS``)
    buckets: dict[str, s3.Bucket]
    #: issue 14: what the console function is told of its sign-in (``ConsoleSignIn.names``)
    sign_in: Mapping[str, str] = field(default_factory=dict)

    @property
    def public_base_url(self) -> str:
        """Where links in messages point: the configured public URL, or the API's own (no trailing
        slash). Functions depend on the API's id only; the API's routes depend on the functions."""
        if self.config.public_url:
            return self.config.public_url.rstrip("/")
        stack = Stack.of(self.api)
        return f"https://{self.api.api.api_id}.execute-api.{stack.region}.{stack.url_suffix}"

    @property
    def service_names(self) -> dict[str, str]:
        """What the functions' environment calls each service (``infra.config.SERVICE_ENV``)."""
        return {
            **self.messaging.names,
            **self.delivery.names,
            "links": self.public_base_url,
            **self.sign_in,
        }


#: Lambda's name of each architecture.
ARCHITECTURES: dict[Architecture, lambda_.Architecture] = {
    "arm64": lambda_.Architecture.ARM_64,
    "x86_64": lambda_.Architecture.X86_64,
}


def powertools_parameter(architecture: Architecture, version: str) -> str:
    """The public SSM parameter naming the Powertools layer for the runtime on ``architecture``."""
    return (
        f"/aws/service/powertools/python/{architecture}/python{RUNTIME.name.removeprefix('python')}/{version}"
    )


class Packaging(Construct):
    """The one code asset (handlers and ``shared``) and the Powertools layer (one per architecture the
    functions run on), shared by every function, and a layer per library bundle the wiring names (built
    once, for the functions that name it)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig) -> None:
        super().__init__(scope, construct_id)
        self.code = lambda_.Code.from_asset(str(ROOT), exclude=ASSET_EXCLUDES)
        self.powertools: dict[Architecture, lambda_.ILayerVersion] = {
            architecture: lambda_.LayerVersion.from_layer_version_arn(
                self,
                # the first architecture keeps the id it always had (arm64: every function but the fit)
                "Powertools"
                if architecture == "arm64"
                else f"Powertools{architecture.title().replace('_', '')}",
                ssm.StringParameter.value_for_string_parameter(
                    self, powertools_parameter(architecture, config.powertools_version)
                ),
            )
            for architecture in sorted({spec.architecture for spec in FUNCTIONS})
        }
        self.bundles = {
            bundle: library_layer(self, bundle.title(), bundle, runtime=RUNTIME)
            for bundle in sorted({b for spec in FUNCTIONS for b in spec.bundles})
        }


class WiredFunction(Construct):
    """One function exactly as its wiring spec declares it: role, logs, environment, triggers, dead
    letters."""

    def __init__(
        self, scope: Construct, construct_id: str, *, spec: FunctionSpec, platform: Platform
    ) -> None:
        super().__init__(scope, construct_id)
        self._platform = platform
        self.spec = spec
        self.function = self._function(spec)
        #: where failed stream batches and failed asynchronous runs go (None: invoked synchronously only,
        #: or by a queue, whose own dead-letter queue takes what keeps failing)
        self.dead_letters: sqs.Queue | None = None
        if spec.stream is not None or spec.schedule is not None or spec.bus is not None:
            self.dead_letters = self._dead_letters()
            self._triggers(spec, self.dead_letters)
        if spec.queue is not None:
            self._queue_trigger(spec)

    def _function(self, spec: FunctionSpec) -> lambda_.Function:
        tables, config = self._platform.tables, self._platform.config
        log_group = logs.LogGroup(
            self,
            "Logs",
            retention=_retention(config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Lifecycle {spec.name} function: only what its wiring declares",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group.log_group_arn]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"], resources=["*"]
            )
        )
        for grant in grants(spec):
            if grant.table is not None:
                arn = tables[grant.table.id].table_arn
                index = f"{arn}/index/{grant.index or '*'}"
                _grant(role, list(grant.actions), [arn if grant.resource == "table" else index])
            if grant.queue is not None:
                _grant(role, list(grant.actions), [self._platform.queues[grant.queue.id].queue_arn])
            if grant.bucket is not None:
                self._grant_bucket(role, grant.actions, grant.resource, grant.bucket)
        self._grant_services(spec, role)
        for bundle in spec.bundles:
            needs = bundle_architecture(bundle)
            if needs is not None and needs != spec.architecture:
                raise ValueError(f"{spec.name}: the {bundle} layer runs on {needs}, not {spec.architecture}")
        function = lambda_.Function(
            self,
            "Function",
            description=spec.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURES[spec.architecture],
            handler=spec.handler,
            code=self._platform.packaging.code,
            layers=[
                self._platform.packaging.powertools[spec.architecture],
                *(self._platform.packaging.bundles[bundle] for bundle in spec.bundles),
            ],
            memory_size=spec.memory_mb,
            timeout=Duration.seconds(spec.timeout_seconds),
            role=role,
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE,
            environment=environment(
                spec,
                {k: t.table_name for k, t in tables.items()},
                config,
                {**self._platform.service_names, "identity_secrets": self._identity_secrets_path},
                {queue_id: queue.queue_url for queue_id, queue in self._platform.queues.items()},
                {bucket_id: bucket.bucket_name for bucket_id, bucket in self._platform.buckets.items()},
            ),
        )
        Validations.of(function).acknowledge(
            Acknowledgment(
                id="AwsSolutions-L1",
                reason=f"{RUNTIME.name} is the newest Python that the test machines and CI run; a newer "
                "runtime would ship code that no test ran on (docs/decisions.md, Issue 7: runtime).",
            )
        )
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="X-Ray PutTraceSegments and PutTelemetryRecords"
                + (" and dynamodb:ListStreams (needed by the stream trigger)" if spec.stream else "")
                + (
                    ", and SMS: sns:Publish to a phone number and sns:CheckIfPhoneNumberIsOptedOut (a phone "
                    "number has no ARN, and no condition key narrows Publish to phone numbers),"
                    if "sms" in spec.services
                    else ""
                )
                + " do not support resource-level permissions.",
            )
        )
        for access in spec.tables:
            if access.indexes:
                Validations.of(role).acknowledge(
                    Acknowledgment(
                        id=f"AwsSolutions-IAM5[Resource::<{_logical_id(tables[access.table.id])}.Arn>/index/*]",
                        reason="Query on this table's own secondary indexes only (table/<name>/index/*).",
                    )
                )
        return function

    def _grant_bucket(
        self, role: iam.Role, actions: tuple[str, ...], resource: str, spec: BucketSpec
    ) -> None:
        """Objects under the bucket's prefix; listing only prefixes under it (``s3:prefix``)."""
        bucket = self._platform.buckets[spec.id]
        if resource == "bucket":
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=list(actions),
                    resources=[bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{spec.prefix}*"]}},
                )
            )
            return
        _grant(role, list(actions), [bucket.arn_for_objects(f"{spec.prefix}*")])
        Validations.of(role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{_logical_id(bucket)}.Arn>/{spec.prefix}*]",
                reason=f"Objects under the {spec.id} bucket's {spec.prefix} prefix only: their keys name the "
                "day of the run, so they are not known when the stack is deployed.",
            )
        )

    @property
    def _identity_secrets_path(self) -> str:
        return identity_secrets_path(Stack.of(self).stack_name)

    def _grant_services(self, spec: FunctionSpec, role: iam.Role) -> None:
        messaging = self._platform.messaging
        if "identity_secrets" in spec.services:
            # read only, and only the parameters under the path: the write-key command writes them
            parameters = Stack.of(self).format_arn(
                service="ssm",
                resource="parameter",
                resource_name=f"{self._identity_secrets_path.strip('/')}/*",
            )
            _grant(role, ["ssm:GetParameter"], [parameters])
            Validations.of(role).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/{self._identity_secrets_path.strip('/')}/*]",
                    reason="GetParameter on the sources' identity secrets only: one parameter per source, "
                    "created by the write-key command, so not known when the stack is deployed.",
                )
            )
        if "events" in spec.services:
            _grant(role, ["events:PutEvents"], [messaging.bus.event_bus_arn])
        if "sns" in spec.services:
            _grant(role, ["sns:Publish"], [messaging.lead_topic.topic_arn])
        configuration_set = self._configuration_set_arn
        if "ses" in spec.services and messaging.sender is not None:
            # the configuration set is the identity's default: SES may authorise it for these sends too
            _grant(role, ["ses:SendEmail"], [messaging.sender.email_identity_arn, configuration_set])
        if "email" in spec.services and messaging.sender is not None:
            # SES v2 authorises the sender identity and the configuration set the call names; without a
            # sender the function sends no email (it skips them), so nothing is granted
            _grant(role, ["ses:SendEmail"], [messaging.sender.email_identity_arn, configuration_set])
        if "sms" in spec.services:
            # a phone number has no ARN, and no condition key narrows Publish to phone numbers
            _grant(role, ["sns:Publish", "sns:CheckIfPhoneNumberIsOptedOut"], ["*"])
        if "delivery_secret" in spec.services:
            _grant(role, ["secretsmanager:GetSecretValue"], [self._platform.delivery.secret.secret_arn])

    @property
    def _configuration_set_arn(self) -> str:
        return Stack.of(self).format_arn(
            service="ses",
            resource="configuration-set",
            resource_name=self._platform.delivery.configuration_set.configuration_set_name,
        )

    def _dead_letters(self) -> sqs.Queue:
        queue = set_aside_queue(
            self,
            "DeadLetters",
            reason="This queue is itself the dead-letter destination of the trigger's failed records and "
            "invocations; it needs no dead-letter queue of its own.",
        )
        return queue

    def _triggers(self, spec: FunctionSpec, dlq: sqs.Queue) -> None:
        """Stream, schedule and bus triggers: batch failure reporting or asynchronous invocation, bounded
        retries, then the dead letters."""
        if spec.stream is not None:
            trigger = spec.stream
            self.function.add_event_source(
                sources.DynamoEventSource(
                    self._platform.tables[trigger.table.id],
                    starting_position=lambda_.StartingPosition[trigger.starting_position],
                    batch_size=trigger.batch_size,
                    max_batching_window=Duration.seconds(trigger.max_batching_window_seconds),
                    bisect_batch_on_error=trigger.bisect_on_error,
                    retry_attempts=trigger.retry_attempts,  # None: Lambda's default, until it succeeds
                    max_record_age=(
                        None
                        if trigger.max_record_age_seconds is None
                        else Duration.seconds(trigger.max_record_age_seconds)
                    ),
                    report_batch_item_failures=True,
                    on_failure=sources.SqsDlq(dlq),
                    filters=[lambda_.FilterCriteria.filter(dict(pattern)) for pattern in trigger.filters],
                )
            )
        if spec.schedule is not None:
            schedule = spec.schedule
            events.Rule(
                self,
                "Schedule",
                description=f"Runs the {spec.name} function {schedule.expression}",
                schedule=events.Schedule.expression(schedule.expression),
                # covers EventBridge failing to hand the event to Lambda, not a run that fails
                targets=[targets.LambdaFunction(self.function, retry_attempts=2, dead_letter_queue=dlq)],
            )
            self._on_async_failure(schedule.retry_attempts, schedule.max_event_age_seconds, dlq)
        if spec.bus is not None:
            bus = spec.bus
            rule = events.Rule(
                self,
                "Signals",
                description=f"Hands the {spec.name} function the "
                + ("lifecycle events" if bus.bus == "lifecycle" else "SES events and alarms")
                + " it reacts to",
                event_bus=(
                    self._platform.messaging.bus
                    if bus.bus == "lifecycle"
                    else events.EventBus.from_event_bus_name(self, "DefaultBus", "default")
                ),
                # replaced below by the wiring's own pattern (``$or`` has no typed form in CDK)
                event_pattern=events.EventPattern(source=list(bus.sources)),
                # EventBridge retries handing an event over (throttled, unavailable), then sets it aside
                targets=[
                    targets.LambdaFunction(
                        self.function,
                        retry_attempts=bus.retry_attempts,
                        max_event_age=Duration.seconds(bus.max_event_age_seconds),
                        dead_letter_queue=dlq,
                    )
                ],
            )
            cfn_rule: events.CfnRule = rule.node.default_child  # type: ignore[assignment]
            pattern = bus.event_pattern()
            cfn_rule.add_property_override("EventPattern", pattern)
            if "source" not in pattern:  # the placeholder's own key, under the $or's alternatives
                cfn_rule.add_property_deletion_override("EventPattern.source")
            self._on_async_failure(bus.invoke_retry_attempts, bus.invoke_max_event_age_seconds, dlq)

    def _queue_trigger(self, spec: FunctionSpec) -> None:
        """Batches from the platform's queue, each failing message reported on its own; after the queue's
        ``max_receive_count`` receives a message moves to the queue's own dead-letter queue."""
        trigger = spec.queue
        assert trigger is not None
        queue = self._platform.queues[trigger.queue.id]
        # Lambda's guidance: a message stays hidden at least six times as long as the function may run
        assert trigger.queue.visibility_timeout_seconds >= 6 * spec.timeout_seconds, spec.name
        self.function.add_event_source(
            sources.SqsEventSource(
                queue,
                batch_size=trigger.batch_size,
                max_batching_window=Duration.seconds(trigger.max_batching_window_seconds),
                report_batch_item_failures=True,
                max_concurrency=trigger.max_concurrency,
            )
        )

    def _on_async_failure(self, retry_attempts: int, max_event_age_seconds: int, dlq: sqs.Queue) -> None:
        """EventBridge invokes asynchronously: a run that fails is retried by Lambda, then its event and
        error go to the queue (CDK grants sqs:SendMessage on it, nothing more)."""
        self.function.configure_async_invoke(
            retry_attempts=retry_attempts,
            max_event_age=Duration.seconds(max_event_age_seconds),
            on_failure=destinations.SqsDestination(dlq),
        )


_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def _retention(days: int) -> logs.RetentionDays:
    """The nearest CloudWatch retention at or above the requested days."""
    return next((_RETENTION[d] for d in sorted(_RETENTION) if d >= days), logs.RetentionDays.TEN_YEARS)


def _grant(role: iam.Role, actions: list[str], resources: list[str]) -> None:
    role.add_to_policy(iam.PolicyStatement(actions=actions, resources=resources))


def _logical_id(construct: dynamodb.Table | s3.Bucket) -> str:
    resource: CfnResource = construct.node.default_child  # type: ignore[assignment]
    return Stack.of(construct).resolve(resource.logical_id)
