"""Functions hosted on moto as deployed, their requests counted (issue 13's bench).

``hosted(functions)`` creates every table, the bus, the lead topic and the queues in moto, and hosts each
named function in a scope of its own: its environment as CDK gives it, its role checked on every call
(``infra.local.permissions.function_scope``), its own clients. Every request a function makes is counted
on its clients (``Requests``: by function, service and operation; DynamoDB also by table and index, with
the items Query and Scan read), and every DynamoDB request is billed by ``bench.capacity``'s meter while it
is installed. The clock is a ``FixedClock`` installed for every function, moved by the bench.

The harness's own client (``Hosted.db``) belongs to no function: its requests are neither counted nor
billed to one (the meter bills them to ``process``; the bench reads what it needs before clearing).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bench.capacity import Meter

QUIET = {
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}
BUS = "bench-bus"
SERVER_KEY = "bench-server-key"


@dataclass
class Requests:
    """Every request each hosted function makes, counted on its own clients before they are sent
    (botocore's parameter building: once per call, before any retry)."""

    #: (function, operation) -> requests; DynamoDB operations keep their name, others are
    #: ``<service>.<operation>`` (``events.PutEvents``, ``sqs.SendMessageBatch``)
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: (function, operation, table id, index) -> DynamoDB requests
    tables: Counter[tuple[str, str, str, str | None]] = field(default_factory=Counter)
    #: (function, operation) -> items Query and Scan read (``ScannedCount``) and returned (``Count``)
    scanned: Counter[tuple[str, str]] = field(default_factory=Counter)
    returned: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: (function, operation) -> entries of batches (PutEvents, SendMessageBatch) and transactions
    entries: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: physical table name -> table id
    table_ids: dict[str, str] = field(default_factory=dict)

    def attach(self, function: str) -> Any:
        def on_client(service: str, client: Any) -> None:
            hyphenized = client.meta.service_model.service_id.hyphenize()
            client.meta.events.register(
                f"before-parameter-build.{hyphenized}",
                lambda params, model, context, **_: self._before(function, service, params, model, context),
            )
            client.meta.events.register(
                f"after-call.{hyphenized}",
                lambda parsed, model, context, **_: self._after(function, parsed, model, context),
            )

        return on_client

    def _name(self, service: str, operation: str) -> str:
        return operation if service == "dynamodb" else f"{service}.{operation}"

    def _before(
        self, function: str, service: str, params: Mapping[str, Any], model: Any, context: dict[str, Any]
    ) -> None:
        name = self._name(service, model.name)
        context["bench_request"] = (function, name)
        self.calls[(function, name)] += 1
        if "TableName" in params:
            table = self.table_ids.get(params["TableName"], params["TableName"])
            self.tables[(function, name, table, params.get("IndexName"))] += 1
        if model.name == "TransactWriteItems":
            self.entries[(function, name)] += len(params.get("TransactItems", ()))
        elif model.name in ("PutEvents", "SendMessageBatch"):
            self.entries[(function, name)] += len(params.get("Entries", ()))

    def _after(self, function: str, parsed: Mapping[str, Any], model: Any, context: dict[str, Any]) -> None:
        if model.name in ("Query", "Scan"):
            key = context.get("bench_request", (function, model.name))
            self.scanned[key] += int(parsed.get("ScannedCount", 0))
            self.returned[key] += int(parsed.get("Count", 0))

    def clear(self) -> None:
        for counter in (self.calls, self.tables, self.scanned, self.returned, self.entries):
            counter.clear()

    def of(self, function: str) -> dict[str, int]:
        """A function's requests by operation."""
        return {op: n for (f, op), n in sorted(self.calls.items()) if f == function}

    def dynamodb(self, function: str) -> int:
        """A function's DynamoDB requests."""
        return sum(n for (f, op), n in self.calls.items() if f == function and "." not in op)


@dataclass
class Hosted:
    """moto with the tables, bus, topic and queues, and the hosted functions."""

    names: dict[str, str]
    db: Any
    requests: Requests
    meter: Meter
    clock: Any
    queue_urls: dict[str, str]
    handlers: dict[str, tuple[Any, int]]
    pumps: dict[str, Any] = field(default_factory=dict)
    #: the last batch each stream trigger delivered, by function (to replay it)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)

    @contextmanager
    def measuring(self) -> Iterator[None]:
        """Count and bill what happens in the body only (the meter slows moto: setup runs without it)."""
        self.requests.clear()
        self.meter.clear()
        with self.meter.installed():
            yield

    def invoke(self, name: str, payload: Mapping[str, Any]) -> Any:
        from infra.local.gateway import LambdaContext

        handler, timeout = self.handlers[name]
        return handler(dict(payload), LambdaContext(f"lifecycle-{name}", "bench", timeout_seconds=timeout))

    def drain(self, *names: str) -> int:
        """Deliver the named stream triggers' records (all: none named) until none is left."""
        delivered = 0
        for _ in range(50):
            passed = sum(pump.drain() for name, pump in self.pumps.items() if not names or name in names)
            if not passed:
                return delivered
            delivered += passed
        raise RuntimeError("the streams never ran dry")

    def put(self, table_id: str, items: Sequence[Mapping[str, Any]]) -> None:
        """The harness's own writes, straight into moto's backend: no request, nothing in the streams."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][os.environ["AWS_DEFAULT_REGION"]]
        for item in items:
            backend.put_item(self.names[table_id], dict(item))

    def items(self, table_id: str) -> list[dict[str, Any]]:
        """A table's items as stored (read from moto's backend: not requests)."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        from bench.capacity import image

        backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][os.environ["AWS_DEFAULT_REGION"]]
        return [image(item) for item in backend.get_table(self.names[table_id]).all_items()]

    def partition(self, table_id: str, pk: str) -> list[dict[str, Any]]:
        """The items of one partition, in key order (a Query by the harness: not counted for a function)."""
        from shared.adapters.dynamodb import query_all

        request = {
            "TableName": self.names[table_id],
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
        }
        return list(query_all(self.db, request, "bench"))


@contextmanager
def hosted(
    functions: Sequence[str], *, start: datetime, streams: Sequence[str] = (), config: Any = None
) -> Iterator[Hosted]:
    """moto with every table, the bus, the topic and the queues; ``functions`` hosted as deployed; the
    stream triggers of ``streams`` (function names) delivered by ``Hosted.drain``; a ``FixedClock`` at
    ``start`` installed for every function. The server write key ``SERVER_KEY`` is registered."""
    from moto import mock_aws

    from infra.config import DeploymentConfig, environment, identity_secrets_path
    from infra.local.gateway import LambdaContext, load_handler
    from infra.local.moto_dynamodb import serialise
    from infra.local.permissions import function_scope
    from infra.local.streams import StreamPump
    from infra.wiring import WORKFLOWS, function
    from shared import clock as clocks
    from shared import runtime, scope
    from shared.adapters import aws
    from shared.adapters.queues import QUEUES, create_queue_request, dead_letters_request
    from shared.adapters.tables import CONFIG, TABLES, create_table_request
    from shared.adapters.write_keys import DynamoWriteKeys
    from shared.clock import FixedClock
    from shared.tracking.trust import Trust

    serialise()
    names = {spec.id: f"bench-{spec.id}" for spec in TABLES}
    requests = Requests(table_ids={name: table for table, name in names.items()})
    config = config or DeploymentConfig()
    clock = FixedClock(start)
    before = dict(os.environ)
    region = os.environ.get("AWS_DEFAULT_REGION", "eu-west-1")
    os.environ.update({**QUIET, "AWS_DEFAULT_REGION": region})
    with mock_aws(), ExitStack() as stack:
        stack.callback(lambda: (os.environ.clear(), os.environ.update(before)))
        clocks.install(clock)
        stack.callback(clocks.install, None)
        runtime.reset()
        stack.callback(runtime.reset)
        db = aws.client("dynamodb")
        for spec in TABLES:
            db.create_table(**create_table_request(spec, names[spec.id]))
        aws.client("events").create_event_bus(Name=BUS)
        topic = aws.client("sns").create_topic(Name="bench-leads")["TopicArn"]
        sqs = aws.client("sqs")
        queue_urls = {}
        for queue in QUEUES:
            dead = sqs.create_queue(**dead_letters_request(queue, f"bench-{queue.id}"))["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            queue_urls[queue.id] = sqs.create_queue(**create_queue_request(queue, f"bench-{queue.id}", arn))[
                "QueueUrl"
            ]
        services = {"events": BUS, "sns": topic, "identity_secrets": identity_secrets_path("lifecycle")}
        # the workflows' state machines (a function that starts one needs its ARN; none is started here)
        machines = {
            flow.name: f"arn:aws:states:{region}:123456789012:stateMachine:bench-{flow.name}"
            for flow in WORKFLOWS
        }
        handlers = {}
        for name in functions:
            spec = function(name)
            env = {**environment(spec, names, config, services, queue_urls, state_machines=machines), **QUIET}
            scope.host(spec.handler, function_scope(spec, env, client_hooks=(requests.attach(spec.name),)))
            handlers[spec.name] = (load_handler(spec.handler), spec.timeout_seconds)
        stack.callback(scope.unhost_all)
        DynamoWriteKeys(db, table=names[CONFIG.id]).register(SERVER_KEY, "bench", Trust.SERVER, start)
        meter = Meter({names[spec.id]: spec for spec in TABLES})
        running = Hosted(names, db, requests, meter, clock, queue_urls, handlers)
        for name in streams:
            spec = function(name)
            assert spec.stream is not None, f"{name} has no stream trigger"

            def deliver(event: dict[str, Any], context: Any, name: str = name) -> Any:
                running.batches[name] = event
                return handlers[name][0](event, context)

            running.pumps[name] = StreamPump(
                dynamodb=db,
                streams=aws.client("dynamodbstreams"),
                table=names[spec.stream.table.id],
                trigger=spec.stream,
                handler=deliver,
                context=lambda name=name, timeout=spec.timeout_seconds: LambdaContext(
                    f"lifecycle-{name}", "bench", timeout_seconds=timeout
                ),
            )
        yield running
