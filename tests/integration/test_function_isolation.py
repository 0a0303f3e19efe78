"""Each function runs here as deployed: only its template's environment, only its role's permissions."""

from __future__ import annotations

import dataclasses
import os

import pytest
from botocore.exceptions import ClientError
from pydantic import ValidationError

from tests.conftest import Context, as_function, http_event, invoke


def test_the_stage_function_and_the_timers_start_with_their_template_environment(
    send, stream, admin, bus_events, clock
) -> None:
    """The stage function once required EVENTS_TABLE_NAME, which its template does not give it; the
    timers (automations) have the event log and the delivery queue."""
    from datetime import timedelta

    from functions.timers.handler import handler as timers
    from infra.wiring import function
    from shared import scope

    assert "EVENTS_TABLE_NAME" not in scope.hosted(function("stage_transition").handler).environ
    assert {"EVENTS_TABLE_NAME", "DELIVERY_QUEUE_URL"} <= set(
        scope.hosted(function("timers").handler).environ
    )
    assert "EVENTS_TABLE_NAME" in os.environ, "the union is there for the tests' helpers, unseen"

    send("/v1/track", {"userId": "ann", "event": "Order Completed", "properties": {"revenue": 5}})
    assert stream.drain() == 1
    assert stream.dead_letters == []
    assert admin("ann")[1]["stage"] == "customer"
    assert any(e["detail-type"] == "ContactStageChanged" for e in bus_events())
    clock.advance(timedelta(days=400))
    assert timers({}, Context()) == {"done": 1}
    assert admin("ann")[1]["engagement"]["quarter"] == "exit"


@pytest.mark.usefixtures("aws")
def test_a_function_reads_its_own_environment_not_the_processes() -> None:
    from shared import settings

    with as_function("stage_transition"), pytest.raises(ValidationError, match="EVENTS_TABLE_NAME"):
        settings.load(settings.ContactStoreSettings)
    # the tracking path appends events and never touches a profile: it is not even told the table
    with as_function("tracking"), pytest.raises(ValidationError, match="CONTACTS_TABLE_NAME"):
        settings.load(settings.ContactStoreSettings)
    with as_function("aggregation"):
        found = settings.load(settings.ContactStoreSettings)
    assert found.events_table_name == os.environ["EVENTS_TABLE_NAME"]


@pytest.mark.usefixtures("aws")
def test_settings_and_dependencies_outside_every_function_fail_clearly() -> None:
    from shared import runtime, settings
    from shared.scope import ScopeError

    with pytest.raises(ScopeError, match="outside any function scope"):
        settings.load(settings.TrackingSettings)
    with pytest.raises(ScopeError):
        runtime.tracking()


@pytest.mark.usefixtures("aws")
def test_what_a_function_builds_never_serves_another() -> None:
    from shared import runtime
    from shared.adapters import aws as clients

    with as_function("stage_transition"):
        engagement, db = runtime.engagement(), clients.client("dynamodb")
    with as_function("admin"):
        assert runtime.engagement() is not engagement
        assert clients.client("dynamodb") is not db
    with as_function("stage_transition"):
        assert runtime.engagement() is engagement, "a warm instance keeps what it built"


@pytest.mark.usefixtures("aws")
def test_a_call_outside_the_functions_role_is_denied_as_aws_would() -> None:
    from shared.adapters import aws as clients

    contacts, events = os.environ["CONTACTS_TABLE_NAME"], os.environ["EVENTS_TABLE_NAME"]
    with as_function("tracking"):
        with pytest.raises(ClientError, match="AccessDeniedException.*dynamodb:Scan"):
            clients.client("dynamodb").scan(TableName=contacts)
        with pytest.raises(ClientError, match="events:PutEvents"):
            clients.client("events").put_events(
                Entries=[{"Source": "lifecycle", "DetailType": "x", "Detail": "{}"}]
            )
    with as_function("stage_transition"):
        with pytest.raises(ClientError, match="dynamodb:PutItem"):
            clients.client("dynamodb").put_item(TableName=events, Item={"pk": {"S": "x"}, "sk": {"S": "y"}})
        clients.client("dynamodb").query(
            TableName=contacts,
            IndexName="byDue",
            KeyConditionExpression="dueShard = :s",
            ExpressionAttributeValues={":s": {"S": "0"}},
        )
    with as_function("admin"), pytest.raises(ClientError, match="dynamodb:Query.*index/byDue"):
        clients.client("dynamodb").query(
            TableName=contacts,
            IndexName="byDue",
            KeyConditionExpression="dueShard = :s",
            ExpressionAttributeValues={":s": {"S": "0"}},
        )


def test_a_missing_grant_fails_the_test_not_the_deployment(aws, template, state) -> None:
    """Without PutItem on the event log, tracking cannot record: the request fails and writes nothing."""
    from functions.tracking.handler import handler
    from infra.local.permissions import function_scope
    from infra.wiring import function
    from shared import scope
    from shared.adapters.tables import EVENTS

    spec = function("tracking")
    narrowed = tuple(
        dataclasses.replace(a, actions=tuple(x for x in a.actions if x != "dynamodb:PutItem"))
        if a.table == EVENTS
        else a
        for a in spec.tables
    )
    hosted = scope.hosted(spec.handler)
    scope.host(spec.handler, function_scope(dataclasses.replace(spec, tables=narrowed), hosted.environ))
    before = state()
    status, _, _ = invoke(handler, http_event("POST", "/v1/track", body={"userId": "ann", "event": "Liked"}))
    assert status >= 500
    assert state() == before


# --- issue 15: the NPS answer page reads its survey's question ------------------------------------------


@pytest.mark.usefixtures("aws")
def test_the_preferences_function_reads_a_survey_question_and_nothing_else_of_the_config_table() -> None:
    """One GetItem of the survey's template, as its role allows; every template's Query is not its own."""
    from shared import runtime
    from shared.adapters import aws as clients

    config = os.environ["CONFIG_TABLE_NAME"]
    with as_function("preferences"):
        surveys = runtime.preferences().surveys
        assert surveys is not None and surveys.question("never-stored") is None
        with pytest.raises(ClientError, match="dynamodb:Query"):
            clients.client("dynamodb").query(
                TableName=config,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": "TEMPLATES"}},
            )
        with pytest.raises(ClientError, match="dynamodb:PutItem"):
            clients.client("dynamodb").put_item(TableName=config, Item={"pk": {"S": "x"}, "sk": {"S": "y"}})


def test_the_preferences_function_never_loads_the_template_engine() -> None:
    """It has no ``templates`` bundle (no Jinja): building its dependencies, reading a survey's question
    and showing the answer form import neither Jinja nor the template module."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    probe = """
import json, sys
from datetime import UTC, datetime, timedelta
import functions.preferences.handler
from shared import runtime, scope
from shared.adapters.survey_questions import DynamoSurveyQuestions
from shared.clock import FixedClock
from shared.delivery.links import NPS_PATH
from shared.delivery.tokens import LinkClaims, sign
from shared.usecases.preferences import LinkRequest, serve

environ = {
    "CONTACTS_TABLE_NAME": "t-contacts", "EVENTS_TABLE_NAME": "t-events", "CONFIG_TABLE_NAME": "t-config",
    "DELIVERY_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:s", "PUBLIC_BASE_URL": "https://x.test",
    "AWS_DEFAULT_REGION": "eu-west-1",
}
with scope.FunctionScope("preferences", environ).active():
    built = runtime.preferences()
assert isinstance(built.surveys, DynamoSurveyQuestions)

class Templates:
    def get_item(self, **_):
        body = {"subject": "s", "text": "t", "survey": {"question": "Would you recommend us?"}, "version": 1}
        return {"Item": {"body": {"S": json.dumps(body)}}}

class Secret:
    def key(self):
        return b"k"

now = datetime(2026, 12, 1, tzinfo=UTC)
token = sign(b"k", LinkClaims("nps", "user_id:ann", "email", now + timedelta(days=1), survey="s", score=7))
deps = built.__class__(**{**{f: getattr(built, f) for f in built.__dataclass_fields__},
    "clock": FixedClock(now), "secret": Secret(), "surveys": DynamoSurveyQuestions(Templates(), table="t")})
page = serve(LinkRequest("GET", NPS_PATH, token), deps)
assert page.status == 200 and "Would you recommend us?" in page.html(), page.html()
print(sorted(m for m in sys.modules if m.startswith("jinja2") or m == "shared.delivery.templates"))
"""
    found = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "[]"
