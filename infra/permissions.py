"""What each function's role allows, derived once from its wiring.

The CDK construct writes these grants into the function's role; the local stack and the tests enforce
the same grants on every AWS call the function makes (``infra.local.permissions``). A call the role
would refuse then fails a test, not a deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from infra.wiring import WORKFLOWS, BucketSpec, FunctionSpec
from shared.adapters.queues import QueueSpec
from shared.adapters.tables import TableSpec

#: What a table's indexes are granted: reading by index. Writes always name the table, and Scan is
#: never granted on a table: only on one named index (``TableAccess.only_index``, the nightly pass), or
#: on the table to a back-fill's step (``TableAccess.batch_scan``).
INDEX_ACTIONS = ("dynamodb:Query",)
#: S3 actions on the bucket itself (listing keys); the others act on objects.
BUCKET_ACTIONS = ("s3:ListBucket",)

#: The actions each service the wiring names is granted, on its resources.
SERVICE_ACTIONS: dict[str, tuple[str, ...]] = {
    "events": ("events:PutEvents",),
    "sns": ("sns:Publish",),
    # lead emails (SES v1) from the sender identity
    "ses": ("ses:SendEmail",),
    # decrypted with the AWS-managed key aws/ssm, whose policy lets the account's roles use it through SSM
    "identity_secrets": ("ssm:GetParameter",),
    # SES v2 SendEmail authorises the sender identity and the configuration set the call names
    "email": ("ses:SendEmail",),
    # SMS to phone numbers (no ARN: resource "*"), and whether a number opted out (STOP)
    "sms": ("sns:Publish", "sns:CheckIfPhoneNumberIsOptedOut"),
    # the one secret that signs links and webhooks, read once per instance
    "delivery_secret": ("secretsmanager:GetSecretValue",),
    # the public base URL: an environment variable, nothing to grant
    "links": (),
    # issue 14: the console's hosted login and app client: environment variables, nothing to grant
    "sign_in": (),
}

Resource = Literal[
    "table",
    "index",
    "queue",
    "bucket",
    "objects",
    "events",
    "sns",
    "ses",
    "identity_secrets",
    "email",
    "sms",
    "delivery_secret",
    "workflow",
    "executions",
]


@dataclass(frozen=True, slots=True)
class Grant:
    actions: tuple[str, ...]
    #: a table, every index of a table (or the one named ``index``), a queue (its ARN), a bucket (listing
    #: keys under its prefix), its objects under its prefix, or the event bus (events), lead topic (sns),
    #: sender (ses), the parameters under the identity secrets' path (identity_secrets), the sender and
    #: the configuration set (email), phone numbers (sms: "*"), the delivery secret (delivery_secret)
    resource: Resource
    table: TableSpec | None = None
    queue: QueueSpec | None = None
    bucket: BucketSpec | None = None
    #: the one index an ``index`` grant is for (None: every index of the table)
    index: str | None = None
    #: issue 13: the workflow whose state machine (``workflow``: StartExecution) or whose executions
    #: (``executions``: DescribeExecution) the grant is on
    workflow: str | None = None


def grants(spec: FunctionSpec) -> tuple[Grant, ...]:
    """The function's grants: its table actions on each table, Query on indexes where declared, its
    actions on the one index it names instead of a table, its queue actions on each queue, its bucket
    actions (listing on the bucket, the others on objects under the bucket's prefix), and its actions on
    each service it names (none for ``links``)."""
    found: list[Grant] = []
    for access in spec.tables:
        if access.only_index is not None:
            found.append(Grant(access.actions, "index", access.table, index=access.only_index))
            continue
        if "dynamodb:Scan" in access.actions and not access.batch_scan:
            raise ValueError(f"{spec.name}: Scan is granted on one named index only, never on a table")
        found.append(Grant(access.actions, "table", access.table))
        on_indexes = tuple(a for a in access.actions if a in INDEX_ACTIONS)
        if access.indexes and on_indexes:
            found.append(Grant(on_indexes, "index", access.table))
    found += [Grant(access.actions, "queue", queue=access.queue) for access in spec.queues]
    for bucket_access in spec.buckets:
        on_bucket = tuple(a for a in bucket_access.actions if a in BUCKET_ACTIONS)
        on_objects = tuple(a for a in bucket_access.actions if a not in BUCKET_ACTIONS)
        if on_bucket:
            found.append(Grant(on_bucket, "bucket", bucket=bucket_access.bucket))
        if on_objects:
            found.append(Grant(on_objects, "objects", bucket=bucket_access.bucket))
    found += [Grant(SERVICE_ACTIONS[kind], kind) for kind in spec.services if SERVICE_ACTIONS[kind]]
    found += workflow_grants(spec)
    return tuple(found)


#: issue 13: what a function that starts a workflow may do: start runs of its state machine, and read them.
START_ACTIONS = ("states:StartExecution",)
DESCRIBE_ACTIONS = ("states:DescribeExecution",)


def workflow_grants(spec: FunctionSpec) -> list[Grant]:
    """The workflows ``spec`` starts (``Workflow.started_by``): StartExecution on each one's state machine,
    DescribeExecution on its executions."""
    found = []
    for flow in WORKFLOWS:
        if spec.name in flow.started_by:
            found.append(Grant(START_ACTIONS, "workflow", workflow=flow.name))
            found.append(Grant(DESCRIBE_ACTIONS, "executions", workflow=flow.name))
    return found
