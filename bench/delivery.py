"""Delivery (issue 11): sends per second through the delivery function with the providers stubbed, and
DynamoDB requests and billed capacity per send.

The delivery function is hosted as deployed (its own environment and role checks) on moto, with the real
tables, and handed SQS batches of 10 as Lambda's event source mapping hands them. SES and SNS are stubbed
on the function's own clients (a ``before-call`` handler answers at once), so the figures are delivery's
own work: the ledger, the checks, rendering, composing the MIME message. Every DynamoDB request is counted
on the function's client and billed by ``bench.capacity``'s meter.

Cases, in one run:

1. ``sent``: consenting contacts with an email address, one stored template each;
2. ``replayed``: the same batches again (SQS redelivery, a retried batch): nothing is sent twice;
3. ``skipped``: contacts without consent (settled as skipped with the reason);
4. ``deferred``: the same sends in the contacts' quiet hours (deferred onto the due index).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

#: a weekday at noon in Warsaw: inside the allowed hours; QUIET is 23:00 there
NOON = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)
QUIET = datetime(2026, 12, 2, 22, 0, tzinfo=UTC)
SENDS = 400
BATCH = 10
TEMPLATE = {
    "subject": "{{ contact.traits.first_name }}, we miss you",
    "text": "Hello {{ contact.traits.first_name }}, here is {{ coupon.value }}% off with {{ coupon.code }}.",
    "html": "<p>Hello {{ contact.traits.first_name }}</p><p>{{ coupon.value }}% off: <b>{{ coupon.code }}</b></p>",
}


class ProviderStub:
    """SES and SNS answer at once on the function's own clients (the request is built and validated by
    botocore first, as it would be sent)."""

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()

    def attach(self, service: str, client: Any) -> None:
        if service == "sesv2":
            client.meta.events.register("before-call.sesv2.SendEmail", self._answer("email"))
        elif service == "sns":
            client.meta.events.register("before-call.sns.Publish", self._answer("sms"))
            client.meta.events.register(
                "before-call.sns.CheckIfPhoneNumberIsOptedOut",
                lambda **_: (_Http(), {"isOptedOut": False}),
            )

    def _answer(self, channel: str) -> Any:
        def answer(**_: Any) -> tuple[Any, dict[str, Any]]:
            self.sent[channel] += 1
            return _Http(), {"MessageId": f"stub-{uuid4().hex}"}

        return answer


class _Http:
    def __init__(self) -> None:
        self.status_code = 200
        self.headers: dict[str, str] = {}


class Requests:
    """DynamoDB requests through the function's clients, by operation."""

    def __init__(self) -> None:
        self.by_operation: Counter[str] = Counter()

    def attach(self, service: str, client: Any) -> None:
        if service == "dynamodb":
            client.meta.events.register("before-call.dynamodb", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.by_operation[model.name] += 1


@contextmanager
def delivery_system(clock: Any):
    """moto with the tables, queues, sender, configuration set and secret; the delivery function hosted
    as deployed, its clients stubbed for the providers and counted."""
    from moto import mock_aws

    from bench import capacity
    from infra.config import DeploymentConfig, environment
    from infra.local.moto_dynamodb import serialise
    from infra.local.permissions import function_scope
    from infra.wiring import function
    from shared import clock as clocks
    from shared import runtime, scope
    from shared.adapters import aws
    from shared.adapters.queues import QUEUES, create_queue_request, dead_letters_request
    from shared.adapters.tables import TABLES, create_table_request

    serialise()
    names = {spec.id: f"bench-{spec.id}" for spec in TABLES}
    spec = function("delivery")
    stub, requests = ProviderStub(), Requests()
    meter = capacity.Meter({names[t.id]: t for t in TABLES}, who=lambda: "delivery")
    sender = "news@bench.example"
    config = DeploymentConfig(sender_email=sender, postal_address="Bench Ltd, 1 Example Street, Springfield")
    with mock_aws(), ExitStack() as stack:
        os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
        clocks.install(clock)
        stack.callback(clocks.install, None)
        runtime.reset()
        db = aws.client("dynamodb")
        for table in TABLES:
            db.create_table(**create_table_request(table, names[table.id]))
        aws.client("sesv2").create_email_identity(EmailIdentity=sender)
        aws.client("sesv2").create_configuration_set(ConfigurationSetName="bench-set")
        secret = aws.client("secretsmanager").create_secret(Name="bench-delivery", SecretString=uuid4().hex)
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
        services = {
            "email": "bench-set",
            "delivery_secret": secret["ARN"],
            "links": "https://bench.example",
        }
        # measured with its observability off, as the other sections (no X-Ray daemon, no EMF flood)
        env = {
            **environment(spec, names, config, services, queue_urls),
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
        scope.host(spec.handler, function_scope(spec, env, client_hooks=(stub.attach, requests.attach)))
        stack.callback(scope.unhost_all)
        stack.enter_context(meter.installed())
        yield names, db, stub, requests, meter
        runtime.reset()


def _profile(contact: str, consent: bool, at: datetime) -> dict[str, Any]:
    from shared.adapters.contact_items import consent_attribute, consent_fact_value
    from shared.tracking.timestamps import format_time

    item: dict[str, Any] = {
        "pk": {"S": f"C#{contact}"},
        "sk": {"S": "PROFILE"},
        "contactId": {"S": contact},
        "trait:email": {"S": json.dumps(f"{contact.split(':')[-1]}@bench.example")},
        "trait:first_name": {"S": json.dumps("Ann")},
        "trait:timezone": {"S": json.dumps("Europe/Warsaw")},
        "firstSeenAt": {"S": format_time(at - timedelta(days=400))},
    }
    if consent:
        item[consent_attribute("email", "granted")] = consent_fact_value("website", at - timedelta(days=300))
    return item


def _request(contact: str, n: int, at: datetime) -> dict[str, Any]:
    from shared.delivery.requests import DeliveryRequest

    return DeliveryRequest(
        id=f"{contact}#win-back#lapse@{n}#1",
        contact_id=contact,
        automation="win-back",
        version=1,
        occurrence=f"lapse@{n}",
        step=1,
        channel="email",
        at=at,
        template="win-back",
        values={"coupon": {"code": f"BACK{n:05d}", "value": 15}},
    ).model_dump(mode="json")


def _batches(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from shared.adapters.queues import DELIVERY

    events = []
    for start in range(0, len(bodies), BATCH):
        records = [
            {
                "messageId": str(uuid4()),
                "receiptHandle": f"bench-{start + i}",
                "body": json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:eu-west-1:123456789012:bench-{DELIVERY.id}",
                "awsRegion": "eu-west-1",
            }
            for i, body in enumerate(bodies[start : start + BATCH])
        ]
        events.append({"Records": records})
    return events


def send_costs() -> list[dict[str, Any]]:
    from infra.local.gateway import LambdaContext, load_handler
    from infra.wiring import function
    from shared.adapters.template_store import DynamoTemplateStore
    from shared.clock import FixedClock
    from shared.delivery.templates import parse_template

    clock = FixedClock(NOON)
    spec = function("delivery")
    rows: list[dict[str, Any]] = []
    with delivery_system(clock) as (names, db, stub, requests, meter):
        DynamoTemplateStore(db, table=names["config"]).save(parse_template("win-back", TEMPLATE), NOON, None)
        consenting = [f"user_id:c{n:05d}" for n in range(SENDS)]
        refusing = [f"user_id:r{n:05d}" for n in range(SENDS // 4)]
        quiet = [f"user_id:q{n:05d}" for n in range(SENDS // 4)]
        for contact in consenting + quiet:
            db.put_item(TableName=names["contacts"], Item=_profile(contact, True, NOON))
        for contact in refusing:
            db.put_item(TableName=names["contacts"], Item=_profile(contact, False, NOON))
        handler = load_handler(spec.handler)

        def run(case: str, contacts: list[str], at: datetime, batches: list[dict[str, Any]] | None = None):
            clock.at = at
            events = batches or _batches([_request(c, n, at) for n, c in enumerate(contacts)])
            requests.by_operation.clear()
            meter.clear()
            sent_before = sum(stub.sent.values())
            failures = 0
            wall, cpu = time.perf_counter(), time.process_time()
            for event in events:
                context = LambdaContext("lifecycle-delivery", "bench", timeout_seconds=spec.timeout_seconds)
                failures += len(handler(event, context)["batchItemFailures"])
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            handled = sum(len(e["Records"]) for e in events)
            rows.append(
                {
                    "case": case,
                    "requests": handled,
                    "sent": sum(stub.sent.values()) - sent_before,
                    "failures": failures,
                    "dynamodb": sum(requests.by_operation.values()),
                    "operations": dict(sorted(requests.by_operation.items())),
                    "wru": meter.units("write"),
                    "rru": meter.units("read"),
                    "per_second": handled / wall,
                    "cpu_ms": cpu * 1000 / handled,
                }
            )
            return events

        first = run("sent", consenting, NOON)
        run("replayed", consenting, NOON, batches=first)
        run("skipped", refusing, NOON)
        run("deferred", quiet, QUIET)
    return rows


def section(where: str, rows: list[dict[str, Any]]) -> str:
    table = "\n".join(
        f"| {r['case']} | {r['requests']} | {r['sent']} | {r['failures']} | {r['dynamodb'] / r['requests']:.2f} | "
        f"{r['wru'] / r['requests']:.2f} | {r['rru'] / r['requests']:.2f} | {r['per_second']:.0f} | "
        f"{r['cpu_ms']:.2f} | {', '.join(f'{k} {v}' for k, v in r['operations'].items())} |"
        for r in rows
    )
    sent = next(r for r in rows if r["case"] == "sent")
    replayed = next(r for r in rows if r["case"] == "replayed")
    return f"""
Measured by `make bench` on {where}.

The delivery function as deployed (its environment, its role checked on every call) on moto, handed SQS
batches of {BATCH} as Lambda hands them; SES and SNS answer at once (stubbed on the function's clients), so
this is delivery's own work: the send ledger, the checks, rendering a stored template in its sandbox,
composing and writing the MIME message. DynamoDB requests are counted on the function's client and billed
by `bench.capacity`'s meter. Sends per second are moto's speed on this machine (about 3-5 ms per request),
not Lambda's: compare the rows, not the machine.

| case | requests | sent | failed | DynamoDB requests per request | WRU per request | RRU per request | requests/s | CPU ms per request | requests by operation |
|---|---|---|---|---|---|---|---|---|---|
{table}

- A replayed batch (SQS redelivery, a retried batch) sends nothing: {replayed["sent"]} sends for
  {replayed["requests"]} replayed requests, at {replayed["dynamodb"] / replayed["requests"]:.2f} DynamoDB
  requests each (the refused claim) against {sent["dynamodb"] / sent["requests"]:.2f} for a first send.
- Skips and deferrals are settled in the ledger without a provider call; a deferral puts the entry on the
  due index, which the timer function reads (see the automations section: 1.00 index item read per due entry).
"""
