"""The Lifecycle stack: shared storage, messaging and API, then one construct per capability."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.config import DeploymentConfig
from infra.constructs.analytics import Analytics
from infra.constructs.capability import Capability
from infra.constructs.console import ConsoleSignIn
from infra.constructs.delivery import Delivery
from infra.constructs.function import Packaging, Platform
from infra.constructs.http_api import HttpApi
from infra.constructs.messaging import Messaging
from infra.constructs.queues import Queues
from infra.constructs.storage import Storage
from infra.wiring import CAPABILITIES, QUEUES, WORKFLOWS, FunctionSpec, function

#: The capabilities whose functions make workflows: a state machine each (``infra.constructs.analytics``).
WORKFLOW_CAPABILITIES = {function(flow.steps[0].function).capability for flow in WORKFLOWS}


class LifecycleStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig, **kwargs) -> None:
        super().__init__(
            scope, construct_id, description="Lifecycle: customer-lifecycle automation", **kwargs
        )
        storage = Storage(self, "Storage")
        queues = Queues(self, "Queues")
        delivery = Delivery(self, "Sending")
        messaging = Messaging(self, "Messaging", config=config, configuration_set=delivery.configuration_set)
        api = HttpApi(self, "Http", config=config)
        # issue 14: the console's sign-in (its users, hosted login and app client; the admin API's console routes)
        console = ConsoleSignIn(self, "Console", config=config, api=api)
        platform = Platform(
            tables=storage.tables,
            queues=queues.queues,
            messaging=messaging,
            api=api,
            packaging=Packaging(self, "Packaging", config=config),
            config=config,
            delivery=delivery,
            buckets=storage.buckets,
            sign_in=console.names,
        )
        self.capabilities = {
            name: (Analytics if name in WORKFLOW_CAPABILITIES else Capability)(
                self, name.title(), name=name, platform=platform
            )
            for name in CAPABILITIES
        }
        # issue 13: the functions that start workflows on demand (the admin starts the back-fills)
        workflows = {
            name: flow
            for capability in self.capabilities.values()
            for name, flow in getattr(capability, "workflows", {}).items()
        }
        for flow in workflows.values():
            for starter in flow.workflow.started_by:
                (wired,) = [c.wired[starter] for c in self.capabilities.values() if starter in c.wired]
                flow.grant_start(wired.function)

        CfnOutput(self, "ApiUrl", value=api.url, description="Base URL for tracking SDKs and the admin API")
        CfnOutput(self, "ConsoleUrl", value=console.url, description="The console: open it, sign in")
        CfnOutput(
            self,
            "ConsoleUserPoolId",
            value=console.user_pool.user_pool_id,
            description="The console's users: aws cognito-idp admin-create-user --user-pool-id <this> "
            "--username <email> (docs/console.md)",
        )
        CfnOutput(
            self,
            "ConsoleSignInUrl",
            value=console.sign_in_url,
            description="The console's hosted login (Cognito)",
        )
        for capability in self.capabilities.values():
            for name, queue in capability.dead_letters.items():
                CfnOutput(
                    self,
                    f"{name.title().replace('_', '')}DeadLettersUrl",
                    value=queue.queue_url,
                    description=_dead_letters_description(name, capability.wired[name].spec),
                )
        CfnOutput(
            self,
            "EventBusName",
            value=messaging.bus.event_bus_name,
            description="Stage events: subscribe here",
        )
        CfnOutput(
            self,
            "LeadTopicArn",
            value=messaging.lead_topic.topic_arn,
            description="Leads routed to salespeople",
        )
        CfnOutput(
            self,
            "ConfigurationSetName",
            value=delivery.configuration_set.configuration_set_name,
            description="SES configuration set of every email (events to the default bus)",
        )
        CfnOutput(
            self,
            "DeliverySecretArn",
            value=delivery.secret.secret_arn,
            description="Signs unsubscribe and confirmation links and webhooks (never rotated)",
        )
        for spec in QUEUES:
            name = spec.id.title().replace("_", "")
            CfnOutput(self, f"{name}QueueUrl", value=queues.queues[spec.id].queue_url)
            CfnOutput(
                self,
                f"{name}QueueDeadLettersUrl",
                value=queues.dead_letters[spec.id].queue_url,
                description=f"Messages of the {spec.id} queue received {spec.max_receive_count} times "
                "without being handled",
            )
        for table_id, table in storage.tables.items():
            CfnOutput(self, f"{table_id.capitalize()}TableName", value=table.table_name)
        for bucket_id, bucket in storage.buckets.items():
            CfnOutput(
                self,
                f"{bucket_id.capitalize()}BucketName",
                value=bucket.bucket_name,
                description="Staging of the nightly analytics runs (analytics/<day>/...), kept 14 days",
            )
        for flow in workflows.values():
            name = flow.workflow.name.title().replace("_", "")
            CfnOutput(
                self,
                f"{name}StateMachineArn",
                value=flow.state_machine.state_machine_arn,
                description=(
                    f"Run it now: aws stepfunctions start-execution --state-machine-arn <this> "
                    f'--input \'{{"time": "<ISO time>"}}\' ({flow.workflow.description})'
                    if flow.workflow.scheduled
                    else f"Start a run: POST /admin/backfills/{flow.workflow.name} ({flow.workflow.description})"
                ),
            )
            CfnOutput(
                self,
                f"{name}FailedRunsUrl",
                value=flow.failed_runs.queue_url,
                description=f"{flow.workflow.name} runs that failed, timed out or were aborted (execution ARN "
                "and input), and schedule events that could not start one",
            )


def _dead_letters_description(name: str, spec: FunctionSpec) -> str:
    if spec.stream is not None:
        return f"Failed {name} batches: python -m infra.redrive --trigger {name} --queue <this URL>"
    if spec.schedule is not None:
        return f"Failed {name} runs with their event and error (the next run covers them)"
    if spec.bus is not None and spec.bus.bus == "default":
        return f"Events {name} failed to handle, with their error (put the event on the default bus again)"
    return f"Events {name} failed to handle, with their error (resend the event to the bus to run it again)"
