"""DynamoDB tables, built from the specs in ``shared.adapters.tables``."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from shared.adapters.tables import TABLES, TableSpec


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.tables: dict[str, dynamodb.Table] = {spec.id: self._table(spec) for spec in TABLES}

    def _table(self, spec: TableSpec) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            spec.id.capitalize(),
            partition_key=dynamodb.Attribute(name=spec.partition_key, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=spec.sort_key, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute=spec.ttl_attribute,
            stream=dynamodb.StreamViewType[spec.stream_view] if spec.stream else None,
            table_class=dynamodb.TableClass[spec.table_class],
        )
        for index in spec.local_indexes:
            table.add_local_secondary_index(
                index_name=index.name,
                sort_key=dynamodb.Attribute(name=index.sort_key, type=dynamodb.AttributeType.STRING),
                projection_type=dynamodb.ProjectionType.INCLUDE
                if index.include
                else dynamodb.ProjectionType.ALL,
                non_key_attributes=list(index.include) or None,
            )
        for global_index in spec.global_indexes:
            table.add_global_secondary_index(
                index_name=global_index.name,
                partition_key=dynamodb.Attribute(
                    name=global_index.partition_key, type=dynamodb.AttributeType.STRING
                ),
                sort_key=dynamodb.Attribute(name=global_index.sort_key, type=dynamodb.AttributeType.STRING),
                projection_type=dynamodb.ProjectionType.INCLUDE
                if global_index.include
                else dynamodb.ProjectionType.KEYS_ONLY,
                non_key_attributes=list(global_index.include) or None,
            )
        return table
