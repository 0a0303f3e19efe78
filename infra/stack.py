"""The Lifecycle stack: a thin composition of one construct per capability."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.config import DeploymentConfig
from infra.constructs.functions import Functions
from infra.constructs.http_api import HttpApi
from infra.constructs.storage import Storage


class LifecycleStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, description="Lifecycle: customer-lifecycle automation", **kwargs)
        storage = Storage(self, "Storage")
        functions = Functions(self, "Functions", tables=storage.tables, config=config)
        api = HttpApi(self, "Http", functions=functions.functions, config=config)

        CfnOutput(self, "ApiUrl", value=api.url, description="Base URL for tracking SDKs and the admin API")
        for table_id, table in storage.tables.items():
            CfnOutput(self, f"{table_id.capitalize()}TableName", value=table.table_name)
