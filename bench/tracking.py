"""Tracking endpoint benchmarks (issue 2): handler CPU per event, DynamoDB writes per event, cold import."""

from __future__ import annotations

import json
import os
import statistics
from collections import Counter
from contextlib import contextmanager
from typing import Any

from bench.harness import cpu_seconds, median, python_child
from infra.config import DeploymentConfig, environment, identity_secrets_path
from infra.wiring import function
from shared.adapters.tables import TABLES, create_table_request

SERVER_KEY = "bench-server-key"


def sample_call(i: int, contact: str) -> dict[str, Any]:
    """Calls shaped like analytics.js and server SDKs send them."""
    context = {
        "library": {"name": "analytics.js", "version": "npm:next-1.84.3"},
        "page": {
            "path": f"/products/{i}",
            "referrer": "https://www.google.com/search?q=wooden+toys",
            "title": "Shop",
            "url": f"https://shop.example.com/products/{i}?utm_source=google&utm_medium=cpc",
        },
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 Safari/537.36",
        "locale": "en-GB",
        "timezone": "Europe/London",
    }
    base = {
        "messageId": f"bench-{contact}-{i}",
        "userId": contact,
        "anonymousId": f"anon-{contact}",
        "timestamp": "2026-11-22T10:43:57.008Z",
        "context": context,
        "integrations": {"All": True},
    }
    kind = i % 10
    if kind == 0:  # identify without anonymousId: a merge is a once-per-visitor cost, measured elsewhere
        identify = {k: v for k, v in base.items() if k != "anonymousId"}
        return {
            **identify,
            "type": "identify",
            "traits": {"email": f"{contact}@example.com", "name": "Ann", "plan": "pro"},
        }
    if kind in (1, 2, 3, 4):
        return {**base, "type": "page", "name": "Product", "properties": dict(context["page"])}
    return {
        **base,
        "type": "track",
        "event": "Product Viewed",
        "properties": {
            "product_id": f"p-{i}",
            "sku": f"SKU-{i}",
            "category": "toys",
            "price": 24.99,
            "currency": "GBP",
        },
    }


def batch_body(count: int, contacts: int) -> dict[str, Any]:
    return {
        "batch": [sample_call(i, f"user-{i % contacts}") for i in range(count)],
        "sentAt": "2026-11-22T10:43:57.556Z",
    }


def api_event(path: str, body: dict[str, Any]) -> dict[str, Any]:
    import base64

    return {
        "version": "2.0",
        "routeKey": f"POST {path}",
        "rawPath": path,
        "headers": {
            "content-type": "application/json",
            "authorization": "Basic " + base64.b64encode(f"{SERVER_KEY}:".encode()).decode(),
        },
        "requestContext": {
            "http": {"method": "POST", "path": path},
            "requestId": "bench",
            "routeKey": f"POST {path}",
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


class Context:
    function_name = "bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-west-1:000000000000:function:bench"
    aws_request_id = "bench"


@contextmanager
def function_environment(
    table_names: dict[str, str],
    functions: tuple[str, ...] = ("tracking",),
    config: DeploymentConfig | None = None,
    services: dict[str, str] | None = None,
):
    """What the Lambda runtime provides in ``os.environ``; each named function hosted in its own scope
    with exactly the environment CDK gives it, as the local stack runs them."""
    before = dict(os.environ)
    os.environ.update(
        {
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "AWS_DEFAULT_REGION": "eu-west-1",
        }
    )
    try:
        with host_functions(table_names, functions, config, services):
            yield
    finally:
        os.environ.clear()
        os.environ.update(before)


@contextmanager
def host_functions(
    table_names: dict[str, str],
    functions: tuple[str, ...],
    config: DeploymentConfig | None = None,
    services: dict[str, str] | None = None,
    queue_urls: dict[str, str] | None = None,
):
    """Run each named function's handler in its own scope (strict: nothing reads the process's settings).

    The scopes build their own AWS clients; to count a function's calls, serve it the counted client
    with ``shared.adapters.aws.use``."""
    from shared import scope

    services = {"identity_secrets": identity_secrets_path("lifecycle"), **(services or {})}
    for name in functions:
        spec = function(name)
        env = environment(spec, table_names, config or DeploymentConfig(), services, queue_urls)
        scope.host(spec.handler, scope.FunctionScope(name, env))
    scope.strict(True)
    try:
        yield
    finally:
        scope.strict(False)
        scope.unhost_all()


class StubDynamoDB:
    """DynamoDB at zero cost: every call succeeds at once."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def transact_write_items(self, **request: Any) -> dict[str, Any]:
        self.calls["TransactWriteItems"] += 1
        return {}

    def put_item(self, **request: Any) -> dict[str, Any]:
        self.calls["PutItem"] += 1
        return {}

    def query(self, **request: Any) -> dict[str, Any]:
        self.calls["Query"] += 1
        return {"Items": []}

    def update_item(self, **request: Any) -> dict[str, Any]:
        self.calls["UpdateItem"] += 1  # a rate-limit counter: answers what it was told to add
        return {"Attributes": {"count": request["ExpressionAttributeValues"][":n"]}}

    def get_item(self, **request: Any) -> dict[str, Any]:
        self.calls["GetItem"] += 1
        return {"Item": {"source": {"S": "bench"}, "trust": {"S": "server"}}}


def handler_cpu_per_event(
    events: int = 100, contacts: int = 10, repeat: int = 60, rounds: int = 5
) -> dict[str, float]:
    """CPU per event through the real handler (parse, validate, plan, build requests), DynamoDB stubbed."""
    from functions.tracking.handler import handler
    from shared import runtime
    from shared.adapters import aws

    stub = StubDynamoDB()
    names = {t.id: f"bench-{t.id}" for t in TABLES}
    body = batch_body(events, contacts)
    event = api_event("/v1/batch", body)
    raw = event["body"]
    with function_environment(names):
        runtime.reset()
        aws.use("dynamodb", stub)
        try:
            response = handler(event, Context())
            assert response["statusCode"] == 200, response
            handler_rounds, json_rounds = [], []
            for _ in range(rounds):
                handler_rounds.append(cpu_seconds(lambda: handler(event, Context()), repeat))
                json_rounds.append(cpu_seconds(lambda: json.dumps(json.loads(raw)), repeat))
        finally:
            runtime.reset()
    per_event_us = median(handler_rounds) / repeat / events * 1e6
    ratio = statistics.median(h / j for h, j in zip(handler_rounds, json_rounds, strict=True))
    return {
        "cpu_us_per_event": per_event_us,
        "ratio_to_json_roundtrip": ratio,
        "requests_per_batch": (stub.calls["TransactWriteItems"] + stub.calls["PutItem"])
        / (rounds * repeat + 1),
    }


class StubParameterStore:
    """Parameter Store serving one source's identity secret."""

    def __init__(self, secret: str) -> None:
        self.reads = 0
        self._value = json.dumps({"current": secret})

    def get_parameter(self, **request: Any) -> dict[str, Any]:
        self.reads += 1
        return {"Parameter": {"Value": self._value}}


class BrowserKeyStub(StubDynamoDB):
    """The write key resolves to a browser source (that requires identity proofs, or not)."""

    def __init__(self, requires_proof: bool) -> None:
        super().__init__()
        self._requires = requires_proof

    def get_item(self, **request: Any) -> dict[str, Any]:
        self.calls["GetItem"] += 1
        item = {"source": {"S": "web"}, "trust": {"S": "browser"}, "verifyIdentity": {"BOOL": self._requires}}
        return {"Item": item}


def identity_cpu(events: int = 100, contacts: int = 10, repeat: int = 40, rounds: int = 5) -> dict[str, Any]:
    """CPU per event through the real handler when a browser key requires proofs, against a server key's
    calls (no check), same run, DynamoDB and Parameter Store stubbed at zero cost."""
    import base64
    import hashlib
    import hmac
    import time

    from functions.tracking.handler import handler
    from shared import runtime
    from shared.adapters import aws
    from shared.tracking.proofs import user_hash

    secret = "bench-identity-secret-0123456789"

    def token(user: str) -> str:
        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        head = b64(b'{"alg":"HS256","typ":"JWT"}')
        claims = b64(json.dumps({"sub": user, "exp": int(time.time()) + 3600}).encode())
        signature = hmac.new(secret.encode(), f"{head}.{claims}".encode(), hashlib.sha256).digest()
        return f"{head}.{claims}.{b64(signature)}"

    def body(proof: str | None) -> dict[str, Any]:
        calls = batch_body(events, contacts)
        for call in calls["batch"]:
            user = call["userId"]
            if proof == "userHash":
                call["integrations"] = {"Lifecycle": {"userHash": user_hash(secret, user)}}
            elif proof == "jwt":
                call["integrations"] = {"Lifecycle": {"jwt": token(user)}}
        return calls

    cases = {
        "server key (trusted)": (None, StubDynamoDB),
        "browser key, proof not required": (None, lambda: BrowserKeyStub(False)),
        "browser key requiring proof: userHash": ("userHash", lambda: BrowserKeyStub(True)),
        "browser key requiring proof: jwt": ("jwt", lambda: BrowserKeyStub(True)),
        "browser key requiring proof: none (kept unverified)": (None, lambda: BrowserKeyStub(True)),
    }
    names = {t.id: f"bench-{t.id}" for t in TABLES}
    results: dict[str, float] = {}
    parameters = StubParameterStore(secret)
    with function_environment(names):
        for label, (proof, keys) in cases.items():
            runtime.reset()
            aws.use("dynamodb", keys())
            aws.use("ssm", parameters)
            event = api_event("/v1/batch", body(proof))
            try:
                response = handler(event, Context())
                assert response["statusCode"] == 200, response
                results[label] = (
                    median(
                        [cpu_seconds(lambda e=event: handler(e, Context()), repeat) for _ in range(rounds)]
                    )
                    / repeat
                    / events
                    * 1e6
                )
            finally:
                runtime.reset()
    baseline = results["browser key, proof not required"]
    return {
        "rows": [{"case": k, "cpu_us_per_event": v, "ratio": v / baseline} for k, v in results.items()],
        "secret_reads": parameters.reads,
        "requests": 3 * (1 + rounds * repeat),
    }


def writes_per_event() -> list[dict[str, Any]]:
    """DynamoDB requests and items per accepted event, counted on the botocore client against moto."""
    from moto import mock_aws

    from functions.tracking.handler import handler
    from infra.local.moto_dynamodb import serialise
    from shared import runtime
    from shared.adapters import aws

    serialise()
    names = {t.id: f"bench-{t.id}" for t in TABLES}
    rows = []
    with mock_aws(), function_environment(names):
        runtime.reset()
        db = aws.client("dynamodb")
        for spec in TABLES:
            db.create_table(**create_table_request(spec, names[spec.id]))
        aws.use("dynamodb", db)  # the function's calls go through the counted client
        from datetime import UTC, datetime

        from shared.adapters.write_keys import DynamoWriteKeys
        from shared.tracking.trust import Trust

        DynamoWriteKeys(db, table=names["config"]).register(
            SERVER_KEY, "bench", Trust.SERVER, datetime.now(UTC)
        )
        calls: Counter[str] = Counter()
        items: Counter[str] = Counter()

        def count(params: dict[str, Any], model: Any, **_: Any) -> None:
            calls[model.name] += 1
            if model.name == "TransactWriteItems":
                items["written"] += len(params["TransactItems"])
            elif model.name in ("PutItem", "UpdateItem", "DeleteItem"):
                items["written"] += 1

        db.meta.events.register("before-parameter-build.dynamodb", count)
        handler(
            api_event("/v1/track", {"userId": "warm", "event": "Liked"}), Context()
        )  # write key now cached
        cases = [
            (
                "single event",
                "/v1/track",
                {"userId": "solo", "event": "Product Viewed", "messageId": "solo-1"},
                1,
            ),
            (
                "batch of 20, one contact",
                "/v1/batch",
                {"batch": [sample_call(i, "one") for i in range(20)]},
                20,
            ),
            ("batch of 100, 100 contacts", "/v1/batch", batch_body(100, 100), 100),
            (  # the aggregation asks for each merge as it folds the call in; the merge function does the rest
                "batch of 100 merging identify calls",
                "/v1/batch",
                {
                    "batch": [
                        {"type": "identify", "userId": f"m{i}", "anonymousId": f"v{i}", "messageId": f"i{i}"}
                        for i in range(100)
                    ]
                },
                100,
            ),
        ]
        for label, path, body, accepted in cases:
            for replay in (False, True):
                calls.clear()
                items.clear()
                response = handler(api_event(path, body), Context())
                assert response["statusCode"] == 200, response
                writes = sum(
                    v
                    for k, v in calls.items()
                    if k in ("TransactWriteItems", "PutItem", "UpdateItem", "BatchWriteItem", "DeleteItem")
                )
                reads = sum(v for k, v in calls.items() if k in ("GetItem", "Query", "BatchGetItem", "Scan"))
                rows.append(
                    {
                        "case": label + (" (replayed)" if replay else ""),
                        "events": accepted,
                        "write_requests": writes,
                        "write_requests_per_event": writes / accepted,
                        "items_per_event": items["written"] / accepted,
                        "reads": reads,
                        "scans": calls["Scan"],
                    }
                )
        runtime.reset()
    return rows


IMPORT_BASELINE = "import time; t = time.perf_counter()\nimport boto3\nboto3.client('dynamodb')\nprint((time.perf_counter() - t) * 1000)"
IMPORT_HANDLER = "import time; t = time.perf_counter()\nimport functions.tracking.handler\nprint((time.perf_counter() - t) * 1000)"
IMPORT_READY = (
    "import time; t = time.perf_counter()\nimport functions.tracking.handler\nfrom shared import runtime\n"
    "runtime.tracking()\nprint((time.perf_counter() - t) * 1000)"
)


def cold_import(samples: int = 21) -> dict[str, float]:
    """Fresh interpreters, alternating, in a Lambda-like environment (so Powertools Tracer loads X-Ray)."""
    names = {t.id: f"bench-{t.id}" for t in TABLES}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(
        environment(
            function("tracking"),
            names,
            DeploymentConfig(),
            {"identity_secrets": identity_secrets_path("lifecycle")},
        )
    )
    env.update(
        {
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_LAMBDA_FUNCTION_NAME": "tracking",
            "LAMBDA_TASK_ROOT": "/var/task",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    base, module, ready = [], [], []
    for _ in range(samples):
        base.append(python_child(IMPORT_BASELINE, env))
        module.append(python_child(IMPORT_HANDLER, env))
        ready.append(python_child(IMPORT_READY, env))
    return {
        "baseline_ms": median(base),
        "handler_ms": median(module),
        "ready_ms": median(ready),
        "handler_ratio": statistics.median(m / b for m, b in zip(module, base, strict=True)),
        "ready_ratio": statistics.median(r / b for r, b in zip(ready, base, strict=True)),
    }
