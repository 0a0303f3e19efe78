"""Shared fixtures: the synthesized template (once per session) and moto tables built from it."""

from __future__ import annotations

import base64
import gzip
import json
import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

# Before anything imports boto3, Powertools or jsii.
os.environ.update(
    {
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_REGION": "eu-west-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_SERVICE_NAME": "lifecycle-tests",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

from shared import scope as _scope  # noqa: E402  (after the environment above: nothing here reads it)

# A function's settings and dependencies exist only inside its scope (see the ``aws`` fixture).
_scope.strict(True)

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
BROWSER_KEY = "local-browser-key"
SERVER_KEY = "local-server-key"
#: a browser key whose calls must prove their userId, its source, and the source's identity secret
VERIFIED_KEY = "local-verified-key"
VERIFIED_SOURCE = "verified-website"
IDENTITY_SECRET = "local-identity-secret"  # the local stack's too, so events/ samples work in both


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Synthesize the real app once (about 10 s), with cdk-nag; the template and the validation report."""
    from infra.app import build

    outdir = tmp_path_factory.mktemp("cdk.out")
    app, stack = build(outdir=str(outdir))
    assembly = app.synth()
    template = json.loads((Path(assembly.directory) / stack.template_file).read_text())
    report = json.loads((Path(assembly.directory) / "validation-report.json").read_text())
    return {"template": template, "report": report, "assembly": Path(assembly.directory)}


@pytest.fixture(scope="session")
def template(synthesized: dict[str, Any]) -> dict[str, Any]:
    return synthesized["template"]


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def table_names_by_env(template: dict[str, Any]) -> dict[str, str]:
    """Environment variable -> logical id of the table it names, as the functions are wired."""
    found: dict[str, str] = {}
    for function in resources(template, "AWS::Lambda::Function").values():
        for name, value in function["Properties"]["Environment"]["Variables"].items():
            if isinstance(value, dict) and "Ref" in value:
                found[name] = value["Ref"]
    return found


def lambda_environment(template: dict[str, Any], spec: Any, values: Mapping[str, str]) -> dict[str, str]:
    """The environment the template gives the function of ``spec``, ``Ref``s resolved through ``values``
    (logical id -> name or ARN). Any other intrinsic fails: it would need resolving here too."""
    (function,) = [
        f["Properties"]
        for f in resources(template, "AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == spec.handler
    ]
    env: dict[str, str] = {}
    for name, value in function.get("Environment", {}).get("Variables", {}).items():
        if isinstance(value, str):
            env[name] = value
        elif isinstance(value, dict) and set(value) == {"Ref"}:
            env[name] = values[value["Ref"]]
        elif _is_join(value):  # a URL built from the API's id and the region (PUBLIC_BASE_URL)
            env[name] = "".join(p if isinstance(p, str) else _ref(p, values) for p in value["Fn::Join"][1])
        else:
            raise AssertionError(f"{spec.name}: cannot resolve {name}={value!r} locally")
    return env


#: What a template's pseudo parameters resolve to in the tests (moto's account, the tests' region).
PSEUDO_PARAMETERS = {
    "AWS::Region": os.environ["AWS_REGION"],
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
}


def _is_join(value: Any) -> bool:
    """``Fn::Join`` with "" of strings and ``Ref``s only."""
    if not (isinstance(value, dict) and set(value) == {"Fn::Join"} and value["Fn::Join"][0] == ""):
        return False
    return all(
        isinstance(p, str) or (isinstance(p, dict) and set(p) == {"Ref"}) for p in value["Fn::Join"][1]
    )


def _ref(part: dict[str, str], values: Mapping[str, str]) -> str:
    name = part["Ref"]
    return PSEUDO_PARAMETERS[name] if name in PSEUDO_PARAMETERS else values[name]


def create_resources_from_template(client: Any, template: dict[str, Any]) -> dict[str, str]:
    """Create every DynamoDB table, event bus, SNS topic, SQS queue and S3 bucket of the template in moto.

    Returns logical id -> what a ``Ref`` to it gives functions (a table's, bus's or bucket's name, a
    topic's ARN, a queue's URL)."""
    for logical_id, resource in resources(template, "AWS::DynamoDB::Table").items():
        props = resource["Properties"]
        request: dict[str, Any] = {
            "TableName": logical_id,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if "LocalSecondaryIndexes" in props:
            request["LocalSecondaryIndexes"] = props["LocalSecondaryIndexes"]
        if "GlobalSecondaryIndexes" in props:
            request["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        if "StreamSpecification" in props:
            request["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        client.create_table(**request)
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            client.update_time_to_live(
                TableName=logical_id,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
    from shared.adapters import aws as clients

    values = {logical: logical for logical in resources(template, "AWS::DynamoDB::Table")}
    for logical, bus in resources(template, "AWS::Events::EventBus").items():
        clients.client("events").create_event_bus(Name=bus["Properties"]["Name"])
        values[logical] = bus["Properties"]["Name"]
    for logical in resources(template, "AWS::SNS::Topic"):
        values[logical] = clients.client("sns").create_topic(Name=logical)["TopicArn"]
    for logical in resources(template, "AWS::SQS::Queue"):  # a Ref to a queue gives its URL
        values[logical] = clients.client("sqs").create_queue(QueueName=logical)["QueueUrl"]
    # delivery: the secret (a Ref gives its ARN) with a generated value, the SES configuration set (its
    # name), and the HTTP API (its id, in the public base URL of links)
    for logical in resources(template, "AWS::SecretsManager::Secret"):
        created = clients.client("secretsmanager").create_secret(
            Name=logical, SecretString=secrets.token_urlsafe(48)
        )
        values[logical] = created["ARN"]
    for logical in resources(template, "AWS::SES::ConfigurationSet"):
        clients.client("sesv2").create_configuration_set(ConfigurationSetName=logical)
        values[logical] = logical
    for logical in resources(template, "AWS::ApiGatewayV2::Api"):
        values[logical] = "lifecycle-api"
    # issue 13: state machines (a Ref gives the ARN): moto keeps their executions, runs none
    # (``infra.local.workflow.LocalExecutions`` runs those the tests start)
    for logical in resources(template, "AWS::StepFunctions::StateMachine"):
        values[logical] = clients.client("stepfunctions").create_state_machine(
            name=logical,
            definition=json.dumps({"StartAt": "Run", "States": {"Run": {"Type": "Pass", "End": True}}}),
            roleArn="arn:aws:iam::123456789012:role/lifecycle-workflows",
        )["stateMachineArn"]
    # issue 14: the console's sign-in (a Ref gives the pool's id, the app client's id, the domain's prefix);
    # nothing is created: the console function only names them to the page
    for logical in resources(template, "AWS::Cognito::UserPool"):
        values[logical] = f"{os.environ['AWS_REGION']}_Console1"
    for logical in resources(template, "AWS::Cognito::UserPoolClient"):
        values[logical] = "consoleclient1234567890"
    for logical in resources(template, "AWS::Cognito::UserPoolDomain"):
        values[logical] = "lifecycle-tests"
    # buckets: a Ref gives the name (CDK generates it; lower case here, as S3 requires)
    for logical in resources(template, "AWS::S3::Bucket"):
        values[logical] = logical.lower()
        clients.client("s3").create_bucket(
            Bucket=values[logical],
            CreateBucketConfiguration={"LocationConstraint": os.environ["AWS_REGION"]},
        )
    return values


def create_tables_from_template(client: Any, template: dict[str, Any]) -> dict[str, str]:
    """Create the template's resources in moto; env var -> value, as functions' environments name them."""
    values = create_resources_from_template(client, template)
    return {env: values[logical] for env, logical in table_names_by_env(template).items()}


@pytest.fixture
def clock():
    from shared import clock as clocks
    from shared.clock import FixedClock

    fixed = FixedClock(NOW)
    clocks.install(fixed)
    yield fixed
    clocks.install(None)


@pytest.fixture
def aws(template: dict[str, Any], clock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto with the template's tables and seeded write keys; each function hosted in its own scope.

    Every function runs with exactly the environment its synthesized template gives it, and its AWS
    calls are checked against its role. The yielded client is the tests' own (no function's): hooks
    registered on it also see the functions' DynamoDB calls. Table names are in ``os.environ`` for
    test helpers only: in strict mode no function reads it."""
    from moto import mock_aws

    from infra.local.moto_dynamodb import serialise
    from infra.local.permissions import function_scope
    from infra.wiring import FUNCTIONS
    from shared import runtime, scope
    from shared.adapters import aws as clients
    from shared.adapters.write_keys import DynamoWriteKeys
    from shared.tracking.trust import Trust

    serialise()
    with mock_aws():
        runtime.reset()
        db = clients.client("dynamodb")
        db.meta.events.register("before-parameter-build.dynamodb", dynamodb_limits)
        clients.client("sns").meta.events.register("before-parameter-build.sns.Publish", sns_rules)
        values = create_resources_from_template(db, template)
        for env, logical in table_names_by_env(template).items():
            monkeypatch.setenv(env, values[logical])
        host_functions(template, values)
        keys = DynamoWriteKeys(db, table=os.environ["CONFIG_TABLE_NAME"])
        keys.register(BROWSER_KEY, "website", Trust.BROWSER, NOW)
        keys.register(SERVER_KEY, "backend", Trust.SERVER, NOW)
        keys.register(VERIFIED_KEY, VERIFIED_SOURCE, Trust.BROWSER, NOW, requires_proof=True)
        identity_secrets(template).adopt(VERIFIED_SOURCE, IDENTITY_SECRET)
        try:
            yield db
        finally:
            scope.unhost_all()
            runtime.reset()


_deployed: dict[str, Any] = {}


def identity_secrets(template: dict[str, Any]) -> Any:
    """The sources' identity secrets where the template's tracking function reads them (the tests' client)."""
    from infra.wiring import function
    from shared.adapters import aws as clients
    from shared.adapters.identity_secrets import SsmIdentitySecrets

    (tracking,) = [
        f["Properties"]
        for f in resources(template, "AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == function("tracking").handler
    ]
    path = tracking["Environment"]["Variables"]["IDENTITY_SECRETS_PATH"]
    return SsmIdentitySecrets(lambda: clients.client("ssm"), path=path)


def host_functions(template: dict[str, Any], values: Mapping[str, str], **settings: str) -> None:
    """Host every function in a fresh scope with its template environment (plus deployment ``settings``
    that a different ``cdk.json`` would add to every function, e.g. ``SENDER_EMAIL``), as a deployment
    starts new instances."""
    from infra.local.permissions import function_scope
    from infra.wiring import FUNCTIONS
    from shared import scope

    _deployed.update(template=template, values=values)
    for spec in FUNCTIONS:
        environ = {**lambda_environment(template, spec, values), **settings}
        scope.host(spec.handler, function_scope(spec, environ, client_hooks=[shared_hooks()]))


@pytest.fixture
def redeploy(aws) -> Any:
    """``redeploy(SENDER_EMAIL="...")``: the functions as deployed with those settings, started cold."""

    def _redeploy(**settings: str) -> None:
        host_functions(_deployed["template"], _deployed["values"], **settings)

    return _redeploy


def shared_hooks() -> Any:
    """A function's client passes its calls to the hooks registered on the tests' own client of the same
    service too (DynamoDB's limits, SNS's message rules, write counters, injected faults): a hook
    registered on ``clients.client("ses")`` outside any function sees every function's SendEmail."""
    from shared import scope
    from shared.adapters import aws as clients

    def attach(service: str, client: Any) -> None:
        with scope.PROCESS.active():
            harness = clients.client(service)
        name = client.meta.service_model.service_id.hyphenize()

        def forward(event_name: str, **kwargs: Any) -> Any:
            # a before-call hook that answers (a stubbed response) short-circuits the call, as on the harness
            return next((r for _, r in harness.meta.events.emit(event_name, **kwargs) if r is not None), None)

        for family in ("before-parameter-build", "before-call", "after-call"):
            client.meta.events.register(f"{family}.{name}", forward)

    return attach


@contextmanager
def as_function(name: str) -> Iterator[None]:
    """Run the body as the named function (its scope): for tests that call ``shared.runtime`` directly."""
    from infra.wiring import function
    from shared import scope

    hosted = scope.hosted(function(name).handler)
    assert hosted is not None, "the aws fixture hosts the functions"
    with hosted.active():
        yield


#: Limits broken during the current test: checked after every test, so a violation the code under test
#: turned into a 503 or a retried stream record still fails the test.
LIMIT_VIOLATIONS: list[str] = []


def dynamodb_limits(params: dict[str, Any], model: Any, **_: Any) -> None:
    """What moto does not enforce and DynamoDB does: 4 KB per expression, 100 items per transaction.

    Refused as DynamoDB refuses them (``ValidationException``), and recorded."""
    requests = [params] + [next(iter(item.values())) for item in params.get("TransactItems", [])]
    found = []
    if len(params.get("TransactItems", [])) > 100:
        found.append(f"{model.name}: more than 100 items")
    for request in requests:
        for field in (
            "UpdateExpression",
            "ConditionExpression",
            "KeyConditionExpression",
            "FilterExpression",
        ):
            if len(request.get(field) or "") > 4096:
                found.append(f"{model.name}: {field} of {len(request[field])} characters")
    if found:
        from botocore.exceptions import ClientError

        LIMIT_VIOLATIONS.extend(found)
        raise ClientError({"Error": {"Code": "ValidationException", "Message": found[0]}}, model.name)


@pytest.fixture(autouse=True)
def within_dynamodb_limits() -> Iterator[None]:
    LIMIT_VIOLATIONS.clear()
    yield
    assert not LIMIT_VIOLATIONS, f"DynamoDB would have refused: {LIMIT_VIOLATIONS}"


#: The top-level keys SNS accepts in a ``MessageStructure="json"`` message: one per protocol.
SNS_PROTOCOLS = frozenset(
    {"default", "email", "email-json", "sqs", "lambda", "http", "https", "sms", "firehose", "application"}
    | {"APNS", "APNS_SANDBOX", "APNS_VOIP", "APNS_VOIP_SANDBOX", "MACOS", "MACOS_SANDBOX"}
    | {"GCM", "ADM", "BAIDU", "MPNS", "WNS"}
)


def sns_rules(params: dict[str, Any], **_: Any) -> None:
    """What moto does not enforce and SNS does: a JSON message structure names protocols only, with a
    string for each and a ``default``; a subject of at most 100 printable characters; 256 KB."""
    message = params.get("Message") or ""
    assert len(message.encode()) <= 256 * 1024, f"SNS message of {len(message.encode())} bytes"
    subject = params.get("Subject")
    if subject is not None:
        assert len(subject) <= 100 and subject.isprintable(), f"SNS subject {subject!r}"
    if params.get("MessageStructure") == "json":
        structure = json.loads(message)
        assert isinstance(structure, dict) and isinstance(structure.get("default"), str), (
            "a JSON message structure needs a default string"
        )
        unknown = set(structure) - SNS_PROTOCOLS
        assert not unknown, f"SNS message structure keys that are not protocols: {sorted(unknown)}"
        assert all(isinstance(v, str) for v in structure.values()), "each protocol's message is a string"


# --- building API Gateway events ------------------------------------------------------------------


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def http_event(
    method: str,
    path: str,
    *,
    route: str | None = None,
    body: Any = None,
    key: str | None = SERVER_KEY,
    headers: dict[str, str] | None = None,
    gzip_body: bool = False,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event, as the cloud delivers it."""
    all_headers = {"content-type": "application/json", **(headers or {})}
    if key is not None:
        all_headers["authorization"] = basic(key)
    raw: bytes | None
    if body is None:
        raw = None
    elif isinstance(body, bytes):
        raw = body
    elif isinstance(body, str):
        raw = body.encode()
    else:
        raw = json.dumps(body).encode()
    encoded = False
    text = None
    if raw is not None:
        if gzip_body:
            all_headers["content-encoding"] = "gzip"
            raw = gzip.compress(raw)
        if gzip_body or not all_headers["content-type"].startswith(("application/json", "text/")):
            text, encoded = base64.b64encode(raw).decode(), True
        else:
            text = raw.decode("utf-8", "surrogatepass")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route or f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": all_headers,
        "requestContext": {
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9"},
            "requestId": "test-request",
            "routeKey": route or f"{method} {path}",
            "stage": "$default",
        },
        "isBase64Encoded": encoded,
    }
    if text is not None:
        event["body"] = text
    if path_parameters:
        event["pathParameters"] = path_parameters
    if query:
        event["queryStringParameters"] = query
    return event


class Context:
    function_name = "test"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-west-1:000000000000:function:test"
    aws_request_id = "test-request"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def invoke(handler: Any, event: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    response = handler(event, Context())
    body = json.loads(response["body"]) if response.get("body") else None
    return response["statusCode"], body, response.get("headers", {})
