"""One Lambda function per wiring spec: own role (least privilege), own log group, Powertools layer."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Acknowledgment, CfnResource, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.config import DeploymentConfig, environment
from infra.constructs.messaging import Messaging
from infra.permissions import grants
from infra.wiring import FUNCTIONS, FunctionSpec

ROOT = Path(__file__).resolve().parents[2]
#: A version the tests run on (python3.14 is on no machine here or in CI): see docs/decisions.md.
RUNTIME = lambda_.Runtime.PYTHON_3_13
#: Only handler and shared code go into the asset; dependencies come from the Powertools layer.
ASSET_EXCLUDES = [
    "*",
    ".*",
    "!functions",
    "!functions/**",
    "!shared",
    "!shared/**",
    "**/__pycache__",
    "**/*.pyc",
]


class Functions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        tables: dict[str, dynamodb.Table],
        messaging: Messaging,
        config: DeploymentConfig,
    ) -> None:
        super().__init__(scope, construct_id)
        self._tables = tables
        self._messaging = messaging
        self._config = config
        self._code = lambda_.Code.from_asset(str(ROOT), exclude=ASSET_EXCLUDES)
        layer_arn = ssm.StringParameter.value_for_string_parameter(
            self,
            f"/aws/service/powertools/python/arm64/python{RUNTIME.name.removeprefix('python')}/{config.powertools_version}",
        )
        self._layer = lambda_.LayerVersion.from_layer_version_arn(self, "Powertools", layer_arn)
        self.functions: dict[str, lambda_.Function] = {spec.name: self._function(spec) for spec in FUNCTIONS}

    def _function(self, spec: FunctionSpec) -> lambda_.Function:
        scope = Construct(self, spec.name.capitalize())
        log_group = logs.LogGroup(
            scope,
            "Logs",
            retention=_retention(self._config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            scope,
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
                arn = self._tables[grant.table.id].table_arn
                _grant(role, list(grant.actions), [arn if grant.resource == "table" else f"{arn}/index/*"])
        self._grant_services(spec, role)
        function = lambda_.Function(
            scope,
            "Function",
            description=spec.description,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=spec.handler,
            code=self._code,
            layers=[self._layer],
            memory_size=spec.memory_mb,
            timeout=Duration.seconds(spec.timeout_seconds),
            role=role,
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE,
            environment=environment(
                spec, {k: t.table_name for k, t in self._tables.items()}, self._config, self._messaging.names
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
                + " do not support resource-level permissions.",
            )
        )
        for access in spec.tables:
            if access.indexes:
                Validations.of(role).acknowledge(
                    Acknowledgment(
                        id=f"AwsSolutions-IAM5[Resource::<{_logical_id(self._tables[access.table.id])}.Arn>/index/*]",
                        reason="Query on this table's own secondary indexes only (table/<name>/index/*).",
                    )
                )
        return function

    def _grant_services(self, spec: FunctionSpec, role: iam.Role) -> None:
        if "events" in spec.services:
            _grant(role, ["events:PutEvents"], [self._messaging.bus.event_bus_arn])
        if "sns" in spec.services:
            _grant(role, ["sns:Publish"], [self._messaging.lead_topic.topic_arn])
        if "ses" in spec.services and self._messaging.sender is not None:
            identity = self._messaging.sender.email_identity_arn
            _grant(role, ["ses:SendEmail"], [identity])


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


def _logical_id(table: dynamodb.Table) -> str:
    resource: CfnResource = table.node.default_child  # type: ignore[assignment]
    return Stack.of(table).resolve(resource.logical_id)
