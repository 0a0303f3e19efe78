"""The Lifecycle stack: a thin composition of one construct per capability."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.config import DeploymentConfig
from infra.constructs.functions import Functions
from infra.constructs.http_api import HttpApi
from infra.constructs.messaging import Messaging
from infra.constructs.storage import Storage
from infra.constructs.triggers import Triggers


class LifecycleStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig, **kwargs) -> None:
        super().__init__(
            scope, construct_id, description="Lifecycle: customer-lifecycle automation", **kwargs
        )
        storage = Storage(self, "Storage")
        messaging = Messaging(self, "Messaging", config=config)
        functions = Functions(self, "Functions", tables=storage.tables, messaging=messaging, config=config)
        api = HttpApi(self, "Http", functions=functions.functions, config=config)
        triggers = Triggers(self, "Triggers", functions=functions.functions, tables=storage.tables)

        CfnOutput(self, "ApiUrl", value=api.url, description="Base URL for tracking SDKs and the admin API")
        for name, queue in triggers.dead_letters.items():
            CfnOutput(
                self,
                f"{name.title().replace('_', '')}DeadLettersUrl",
                value=queue.queue_url,
                description=f"Failed {name} batches or runs (python -m infra.redrive --queue <this URL>)",
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
        for table_id, table in storage.tables.items():
            CfnOutput(self, f"{table_id.capitalize()}TableName", value=table.table_name)
