"""DynamoDB tables, built from the specs in ``shared.adapters.tables``, and the S3 buckets of the wiring."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.wiring import BUCKETS, BucketSpec
from shared.adapters.tables import TABLES, TableSpec


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.tables: dict[str, dynamodb.Table] = {spec.id: self._table(spec) for spec in TABLES}
        self.buckets: dict[str, s3.Bucket] = {spec.id: self._bucket(spec) for spec in BUCKETS}

    def _bucket(self, spec: BucketSpec) -> s3.Bucket:
        """Private, TLS only, encrypted, unversioned (every object is written again by the next run), each
        object deleted ``expire_days`` after it was written; kept with its objects when the stack goes, like
        the tables."""
        bucket = s3.Bucket(
            self,
            f"{spec.id.title()}Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=False,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire",
                    expiration=Duration.days(spec.expire_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        Validations.of(bucket).acknowledge(
            Acknowledgment(
                id="AwsSolutions-S1",
                reason=f"Staging between the steps of one run, read and written only by the functions the "
                f"wiring grants it to, deleted after {spec.expire_days} days; access logs would need a bucket "
                "of their own outliving the data they describe (CloudTrail data events can record object "
                "access when an audit needs it).",
            )
        )
        return bucket

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
