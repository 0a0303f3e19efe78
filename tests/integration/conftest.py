from __future__ import annotations

import os
from typing import Any

import pytest

from tests.conftest import http_event, invoke


@pytest.fixture
def aggregation(aws):
    """The events table's stream delivered to the aggregation function: ``aggregation.drain()`` folds
    the events recorded so far into the profiles."""
    return stream_pump(aws, "aggregation")


@pytest.fixture
def send(aws, aggregation):
    """POST to a tracking route through the real handler, then let the events table's stream fold what
    it recorded into the profiles (``fold=False`` leaves that for later); returns (status, body, headers)."""
    from functions.tracking.handler import handler

    def _send(path: str, body: Any = None, fold: bool = True, **kwargs: Any):
        answer = invoke(handler, http_event("POST", path, body=body, **kwargs))
        if fold:
            aggregation.drain()
        return answer

    return _send


@pytest.fixture
def admin(aws):
    """GET a contact card (or its ``events`` / ``ledger`` page) through the admin handler."""
    from functions.admin.handler import handler

    def _get(
        contact_id: str, *, events: bool = False, ledger: bool = False, query: dict[str, str] | None = None
    ):
        suffix = "/events" if events else "/ledger" if ledger else ""
        route = "GET /admin/contacts/{contactId}" + suffix
        path = f"/admin/contacts/{contact_id}" + suffix
        return invoke(
            handler,
            http_event(
                "GET", path, route=route, key=None, path_parameters={"contactId": contact_id}, query=query
            ),
        )

    return _get


def call_admin(
    method: str,
    route_path: str,
    parameters: dict[str, str] | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
):
    """One admin route through the admin handler: ``route_path`` as declared (``/admin/rules/{ruleId}``),
    ``parameters`` filling it in."""
    from functions.admin.handler import handler

    return invoke(
        handler,
        http_event(
            method,
            route_path.format(**(parameters or {})),
            route=f"{method} {route_path}",
            key=None,
            body=body,
            headers=headers,
            path_parameters=parameters or None,
        ),
    )


@pytest.fixture
def rules_api(aws):
    """Call /admin/rules routes through the admin handler: rules_api("PUT", "my-rule", body, headers)."""

    def _call(
        method: str, rule_id: str | None = None, body: Any = None, headers: dict[str, str] | None = None
    ):
        if rule_id is None:
            return call_admin(method, "/admin/rules", None, body, headers)
        return call_admin(method, "/admin/rules/{ruleId}", {"ruleId": rule_id}, body, headers)

    return _call


@pytest.fixture
def automations_api(aws):
    """Call /admin/automations routes through the admin handler: automations_api("PUT", "win-back", body,
    headers), automations_api("POST", "win-back", action="pause")."""

    def _call(
        method: str,
        automation_id: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        action: str | None = None,
    ):
        if automation_id is None:
            return call_admin(method, "/admin/automations", None, body, headers)
        route_path = "/admin/automations/{automationId}" + (f"/{action}" if action else "")
        return call_admin(method, route_path, {"automationId": automation_id}, body, headers)

    return _call


def dump(db, env: str) -> list[dict[str, Any]]:
    """Every item of a table, in key order: to compare whole states."""
    items = db.scan(TableName=os.environ[env])["Items"]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


@pytest.fixture
def state(aws):
    def _state() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return dump(aws, "CONTACTS_TABLE_NAME"), dump(aws, "EVENTS_TABLE_NAME")

    return _state


def stream_pump(aws: Any, name: str, *, handler: Any = None, on_failure: Any = None, **trigger_changes: Any):
    """The stream of the function's trigger table delivered to the function ``name`` as its event source mapping would:
    its filter, batch size, retries and bisection (``trigger_changes`` override them)."""
    from dataclasses import replace

    from infra.local.gateway import load_handler
    from infra.local.streams import StreamPump
    from infra.wiring import function
    from shared.adapters import aws as clients
    from tests.conftest import Context

    spec = function(name)
    trigger = replace(spec.stream, **trigger_changes)
    return StreamPump(
        dynamodb=aws,
        streams=clients.client("dynamodbstreams"),
        table=os.environ[trigger.table.env],
        trigger=trigger,
        handler=handler or load_handler(spec.handler),
        context=Context,
        **({"on_failure": on_failure} if on_failure else {}),
    )


@pytest.fixture
def stream(aws):
    """The contacts table's stream delivered to the stage function: ``stream.drain()`` runs it."""
    return stream_pump(aws, "stage_transition")


@pytest.fixture
def merges(aws):
    """The contacts table's stream delivered to the merge function: ``merges.drain()`` runs the identity
    merges that the requests so far asked for."""
    return stream_pump(aws, "merge")


@pytest.fixture
def bus_events(aws):
    """Everything published on the event bus, through a catch-all rule into an SQS queue."""
    import json as _json

    from shared.adapters import aws as clients

    sqs, events = clients.client("sqs"), clients.client("events")
    queue = sqs.create_queue(QueueName="captured-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = os.environ["EVENT_BUS_NAME"]
    events.put_rule(Name="capture", EventBusName=bus, EventPattern=_json.dumps({"source": ["lifecycle"]}))
    events.put_targets(Rule="capture", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])

    def _read() -> list[dict[str, Any]]:
        found = []
        while True:
            messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(_json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])

    return _read


@pytest.fixture
def metrics(monkeypatch) -> dict[str, int]:
    """What the functions count (metrics are off in tests: the counts are caught on their way)."""
    from shared.observability import PowertoolsTelemetry

    counted: dict[str, int] = {}

    def count(self: Any, name: str, value: int) -> None:
        counted[name] = counted.get(name, 0) + value

    monkeypatch.setattr(PowertoolsTelemetry, "count", count)
    return counted


@pytest.fixture
def local_stack(template, tmp_path):
    """The local stack in this process (its environment and clients are restored afterwards); sent emails
    are written to ``tmp_path / "mail"``."""
    from infra.local.stack import LocalSettings, LocalStack
    from shared import runtime
    from shared.adapters import aws as clients

    saved = dict(os.environ)
    stack = LocalStack(LocalSettings(port=0, quiet=True, mail_dir=tmp_path / "mail"))
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)
        clients.reset()
        runtime.reset()
