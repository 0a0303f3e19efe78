"""A function's role, enforced locally: every AWS call its clients make is checked against its grants.

moto allows everything, so a missing grant used to surface only after a deployment. The local stack
and the tests run each function in its own scope (``shared.scope``) whose clients carry this check:
a call the function's role would refuse fails with AccessDenied, as it would in AWS. The grants are
``infra.permissions.grants`` (what CDK writes into the role), resolved to the names in the function's
own environment.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from infra.config import SERVICE_ENV
from infra.permissions import grants
from infra.wiring import FunctionSpec
from shared.adapters.backfill_runs import state_machine_env
from shared.scope import FunctionScope

#: Transaction items are authorised as the single-item action they perform.
ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}
#: How each service says "your role may not do this".
DENIED = {
    "dynamodb": ("AccessDeniedException", 400),
    "events": ("AccessDeniedException", 400),
    "sns": ("AuthorizationError", 403),
    "ses": ("AccessDenied", 403),
    "ssm": ("AccessDeniedException", 400),
    "sqs": ("AccessDenied", 403),
    "secretsmanager": ("AccessDeniedException", 400),
    "s3": ("AccessDenied", 403),
    "states": ("AccessDeniedException", 400),
}
#: SES v2 (``sesv2``, the delivery function's client) signs as ``ses`` too, and answers in its own words.
SESV2_DENIED = ("AccessDeniedException", 403)
#: SQS authorises a batch as the single-message action.
QUEUE_ACTIONS = {
    "SendMessage": "sqs:SendMessage",
    "SendMessageBatch": "sqs:SendMessage",
    "ReceiveMessage": "sqs:ReceiveMessage",
    "DeleteMessage": "sqs:DeleteMessage",
    "DeleteMessageBatch": "sqs:DeleteMessage",
    "ChangeMessageVisibility": "sqs:ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "GetQueueAttributes": "sqs:GetQueueAttributes",
}
#: S3 object calls, authorised as the object action they perform (multipart uploads as PutObject).
OBJECT_ACTIONS = {
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "DeleteObject": "s3:DeleteObject",
}
_ADDRESS = re.compile(r"<([^>]+)>")


@dataclass(frozen=True, slots=True)
class Resource:
    """What a call acts on, in local names: ``table``/``index`` (table name), ``queue`` (its ARN),
    ``objects`` (``<bucket>/<key>``), ``bucket`` (``<bucket>/<the prefix listed>``) or a service's
    resource."""

    kind: str
    name: str
    index: str | None = None

    def arn(self) -> str:
        if self.kind == "table":
            return f"arn:aws:dynamodb:local:000000000000:table/{self.name}"
        if self.kind == "index":
            return f"arn:aws:dynamodb:local:000000000000:table/{self.name}/index/{self.index}"
        if self.kind in ("objects", "bucket"):
            return f"arn:aws:s3:::{self.name if self.kind == 'objects' else self.name.split('/', 1)[0]}"
        if self.kind == "identity_secrets":
            return f"arn:aws:ssm:local:000000000000:parameter/{self.name.lstrip('/')}"
        if self.kind == "identity":
            return f"arn:aws:ses:local:000000000000:identity/{self.name}"
        if self.kind == "configuration_set":
            return f"arn:aws:ses:local:000000000000:configuration-set/{self.name}"
        return self.name


class LocalPolicy:
    """The function's grants with table names, bus, topic and sender taken from its environment."""

    def __init__(self, spec: FunctionSpec, environ: Mapping[str, str]) -> None:
        self.function = spec.name
        self._allowed: set[tuple[str, str, str]] = set()
        for grant in grants(spec):
            if grant.resource == "index" and grant.table is not None:
                # one named index, or every index of the table ("*")
                name = f"{environ[grant.table.env]}/{grant.index or '*'}"
            elif grant.table is not None:
                name = environ[grant.table.env]
            elif grant.bucket is not None:
                # objects under the prefix; listing prefixes under it
                name = f"{environ[grant.bucket.env]}/{grant.bucket.prefix}"
            elif grant.queue is not None:
                name = queue_arn(environ[grant.queue.env])
            elif grant.resource in ("ses", "email"):
                self._allow_sending(grant.actions, environ)
                continue
            elif grant.resource == "sms":
                name = "*"  # phone numbers have no ARN: granted on any
            elif grant.workflow is not None:
                # issue 13: the state machine (its ARN), or its executions (``<execution ARN prefix>:``)
                machine = environ.get(state_machine_env(grant.workflow), "")
                name = executions_prefix(machine) if machine and grant.resource == "executions" else machine
            else:
                name = environ.get(SERVICE_ENV[grant.resource], "")
            if name:
                self._allowed.update((action, grant.resource, name) for action in grant.actions)

    def _allow_sending(self, actions: tuple[str, ...], environ: Mapping[str, str]) -> None:
        """SES: the sender identity (none configured: nothing to send from) and, where the function names
        one, the configuration set its calls name (SES v2 authorises both)."""
        sender = environ.get("SENDER_EMAIL", "")
        if not sender:
            return
        self._allowed.update((action, "identity", sender) for action in actions)
        configuration_set = environ.get(SERVICE_ENV["email"], "")
        if configuration_set:
            self._allowed.update((action, "configuration_set", configuration_set) for action in actions)

    def allows(self, action: str, resource: Resource) -> bool:
        if resource.kind in ("identity_secrets", "objects", "bucket", "executions"):  # on a path: <path>*
            return any(
                granted == action and kind == resource.kind and resource.name.startswith(path)
                for granted, kind, path in self._allowed
            )
        if resource.kind == "index":  # granted on the one index, or on every index of the table
            return any(
                (action, "index", f"{resource.name}/{index}") in self._allowed
                for index in (resource.index, "*")
            )
        return (action, resource.kind, resource.name) in self._allowed

    def check(self, service: str, operation: str, params: Mapping[str, Any]) -> None:
        """Raise AccessDenied, as AWS would, unless every action the call needs is granted."""
        for action, resource in _needs(service, operation, params):
            if not self.allows(action, resource):
                code, status = (
                    SESV2_DENIED if _is_sesv2(service, params) else DENIED.get(service, ("AccessDenied", 403))
                )
                message = (
                    f"User: arn:aws:sts::000000000000:assumed-role/lifecycle-{self.function}/local is not "
                    f"authorized to perform: {action} on resource: {resource.arn()} because no "
                    f"identity-based policy allows the {action} action"
                )
                raise ClientError(
                    {
                        "Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status},
                    },
                    operation,
                )

    def attach(self, service: str, client: Any) -> None:
        """Check every call of ``client`` before it is sent."""
        prefix = client.meta.service_model.signing_name

        def before(params: dict[str, Any], model: Any, **_: Any) -> None:
            self.check(prefix, model.name, params)

        client.meta.events.register(
            f"before-parameter-build.{client.meta.service_model.service_id.hyphenize()}", before
        )


def _needs(service: str, operation: str, params: Mapping[str, Any]) -> Iterator[tuple[str, Resource]]:
    """The actions a call needs, each on its resource (IAM authorises a transaction per item)."""
    if service == "dynamodb":
        if operation in ("TransactWriteItems", "TransactGetItems"):
            for item in params.get("TransactItems", []):
                ((kind, request),) = item.items()
                yield ITEM_ACTIONS[kind], Resource("table", request["TableName"])
        elif operation in ("BatchWriteItem", "BatchGetItem"):
            for table in params.get("RequestItems", {}):
                yield f"dynamodb:{operation}", Resource("table", table)
        elif "IndexName" in params:
            yield f"dynamodb:{operation}", Resource("index", params["TableName"], params["IndexName"])
        else:
            yield f"dynamodb:{operation}", Resource("table", params.get("TableName", "*"))
    elif service == "events" and operation == "PutEvents":
        for entry in params.get("Entries", []):
            bus = entry.get("EventBusName", "default")
            yield "events:PutEvents", Resource("events", bus.rsplit("event-bus/", 1)[-1])
    elif service == "sns" and operation == "Publish":
        if params.get("PhoneNumber"):  # an SMS: IAM knows no resource for a phone number
            yield "sns:Publish", Resource("sms", "*")
        else:
            yield "sns:Publish", Resource("sns", params.get("TopicArn") or params.get("TargetArn", "*"))
    elif service == "sns" and operation == "CheckIfPhoneNumberIsOptedOut":
        yield "sns:CheckIfPhoneNumberIsOptedOut", Resource("sms", "*")
    elif _is_sesv2(service, params) and operation == "SendEmail":
        # SES v2 authorises the sender identity and the configuration set the call names
        yield "ses:SendEmail", Resource("identity", _address(params.get("FromEmailAddress", "")))
        if params.get("ConfigurationSetName"):
            yield "ses:SendEmail", Resource("configuration_set", params["ConfigurationSetName"])
    elif service == "ses" and operation in ("SendEmail", "SendRawEmail"):
        yield f"ses:{operation}", Resource("identity", _address(params.get("Source", "")))
    elif service == "secretsmanager" and operation == "GetSecretValue":
        yield "secretsmanager:GetSecretValue", Resource("delivery_secret", params.get("SecretId", ""))
    elif service == "sqs" and operation in QUEUE_ACTIONS:
        yield QUEUE_ACTIONS[operation], Resource("queue", queue_arn(params.get("QueueUrl", "")))
    elif service == "ssm" and operation in ("GetParameter", "PutParameter"):
        yield f"ssm:{operation}", Resource("identity_secrets", params.get("Name", ""))
    elif service == "s3" and operation in OBJECT_ACTIONS:
        yield (
            OBJECT_ACTIONS[operation],
            Resource("objects", f"{params.get('Bucket', '')}/{params.get('Key', '')}"),
        )
    elif service == "s3" and operation in ("ListObjectsV2", "ListObjects"):
        # the role may list keys under its prefix only (``s3:prefix`` condition): a listing must name one
        yield "s3:ListBucket", Resource("bucket", f"{params.get('Bucket', '')}/{params.get('Prefix', '')}")
    elif service == "states" and operation == "StartExecution":
        yield "states:StartExecution", Resource("workflow", params.get("stateMachineArn", ""))
    elif service == "states" and operation == "DescribeExecution":
        yield "states:DescribeExecution", Resource("executions", params.get("executionArn", ""))
    else:
        yield f"{service}:{operation}", Resource(service, "*")


def _is_sesv2(service: str, params: Mapping[str, Any]) -> bool:
    """SES v2 signs as ``ses`` as v1 does: its SendEmail names ``FromEmailAddress`` and ``Content``."""
    return service == "ses" and ("FromEmailAddress" in params or "Content" in params)


def _address(sender: str) -> str:
    """The address of ``Name <address>``, or the sender as given."""
    found = _ADDRESS.search(sender)
    return found.group(1) if found else sender


def executions_prefix(state_machine_arn: str) -> str:
    """What the ARNs of a state machine's executions start with: ``arn:...:execution:<machine>:``."""
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":"


def queue_arn(url: str) -> str:
    """The ARN of the queue at ``url`` (``https://sqs.<region>.amazonaws.com/<account>/<name>``)."""
    address = urlsplit(url)
    account, _, name = address.path.strip("/").partition("/")
    if not name:  # not a queue URL: named as it is, so it matches no grant
        account, name = "000000000000", url
    host = (address.hostname or "").split(".")
    region = host[1] if len(host) > 2 and host[0] == "sqs" else "local"
    return f"arn:aws:sqs:{region}:{account}:{name}"


def function_scope(
    spec: FunctionSpec,
    environ: Mapping[str, str],
    *,
    enforce_iam: bool = True,
    client_hooks: Sequence[Callable[[str, Any], None]] = (),
) -> FunctionScope:
    """The scope the local stack and the tests run ``spec``'s function in: its environment, its role.

    ``client_hooks`` see each client the function builds, after the role's check is attached."""
    hooks = ([LocalPolicy(spec, environ).attach] if enforce_iam else []) + list(client_hooks)

    def on_client(service: str, client: Any) -> None:
        for hook in hooks:
            hook(service, client)

    return FunctionScope(spec.name, environ, on_client=on_client)
