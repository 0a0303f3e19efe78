"""Delivery in the synthesized template: the queue trigger, the SES configuration set and its events,
the reputation alarms and the feedback rule, the secret, the send permissions, the preference routes
and the templates layer. Expectations come from the wiring and the delivery modules, so a change on
one side that the other does not follow fails here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.config import SERVICE_ENV
from infra.constructs.bundles import LIBRARY_BUNDLES, WHEEL_BUNDLES, layer_description
from infra.wiring import FUNCTIONS, function
from shared.adapters.tables import CONFIG, CONTACTS, EVENTS
from shared.admin import ROUTES as ADMIN_ROUTES
from shared.delivery.feedback import (
    ALARM_STATE_CHANGE,
    BOUNCE_RATE_LIMIT,
    COMPLAINT_RATE_LIMIT,
    EMAIL_BOUNCED,
    EMAIL_OPENED,
    REPUTATION_ALARMS,
)
from shared.delivery.links import PREFERENCE_ROUTES
from tests.conftest import resources
from tests.infra.test_template import (
    dynamodb_grants,
    function_logical_id,
    lambda_for,
    mapping_for,
    policy_statements,
    queue_logical_id,
)

SENDER = "news@shop.example"
PUBLIC_URL = "https://links.shop.example/"


@pytest.fixture(scope="module")
def with_sender(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The stack as deployed with a sender and a public URL of its own (``cdk.json`` context)."""
    from infra.app import build

    context = {"lifecycle": {"senderEmail": SENDER, "publicUrl": PUBLIC_URL}}
    app, stack = build(context=context, outdir=str(tmp_path_factory.mktemp("cdk.out.sender")))
    assembly = app.synth()
    return json.loads((Path(assembly.directory) / stack.template_file).read_text())


def actions_of(statement: dict[str, Any]) -> list[str]:
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


def targets_of(statement: dict[str, Any]) -> list[Any]:
    return statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]


def statements_with(template: dict[str, Any], name: str, prefix: str) -> list[dict[str, Any]]:
    return [
        s
        for s in policy_statements(template, lambda_for(template, name))
        if any(a.startswith(prefix) for a in actions_of(s))
    ]


def only(template: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    ((logical, resource),) = resources(template, kind).items()
    return logical, resource


QUEUE_FUNCTIONS = [f for f in FUNCTIONS if f.queue]


def test_the_delivery_function_reads_the_delivery_queue() -> None:
    assert [f.name for f in QUEUE_FUNCTIONS] == ["delivery"]


@pytest.mark.parametrize("spec", QUEUE_FUNCTIONS, ids=lambda f: f.name)
def test_queue_triggers_take_batches_with_partial_failures_and_a_concurrency_cap(template, spec) -> None:
    props = mapping_for(template, spec.name)
    trigger = spec.queue
    assert props["EventSourceArn"] == {"Fn::GetAtt": [queue_logical_id(template, trigger.queue), "Arn"]}
    assert props["BatchSize"] == trigger.batch_size
    assert props["MaximumBatchingWindowInSeconds"] == trigger.max_batching_window_seconds
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["ScalingConfig"] == {"MaximumConcurrency": trigger.max_concurrency}
    assert 2 <= trigger.max_concurrency <= 1000
    # no on-failure destination of its own: what keeps failing moves to the queue's dead-letter queue
    assert "DestinationConfig" not in props


@pytest.mark.parametrize("spec", QUEUE_FUNCTIONS, ids=lambda f: f.name)
def test_a_queue_hides_a_message_six_times_as_long_as_its_reader_may_run(template, spec) -> None:
    """Lambda's guidance for SQS triggers: a slow batch must not be received again while it runs."""
    queue = template["Resources"][queue_logical_id(template, spec.queue.queue)]["Properties"]
    timeout = lambda_for(template, spec.name)["Timeout"]
    assert timeout == spec.timeout_seconds
    assert queue["VisibilityTimeout"] == spec.queue.queue.visibility_timeout_seconds >= 6 * timeout


@pytest.mark.parametrize("spec", [f for f in FUNCTIONS if f.capability == "delivery"], ids=lambda f: f.name)
def test_every_delivery_function_sets_aside_what_keeps_failing(template, spec) -> None:
    """The queue's redrive for the queue trigger; the function's own queue for the asynchronous bus
    trigger; the API answers its callers directly (nothing to set aside)."""
    queues = resources(template, "AWS::SQS::Queue")
    if spec.queue is not None:
        redrive = queues[queue_logical_id(template, spec.queue.queue)]["Properties"]["RedrivePolicy"]
        assert redrive["deadLetterTargetArn"]["Fn::GetAtt"][0] in queues
        assert redrive["maxReceiveCount"] == spec.queue.queue.max_receive_count
    elif spec.bus is not None:
        logical = function_logical_id(template, spec)
        (config,) = [
            c["Properties"]
            for c in resources(template, "AWS::Lambda::EventInvokeConfig").values()
            if c["Properties"]["FunctionName"] == {"Ref": logical}
        ]
        assert config["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0] in queues
    else:
        assert spec.routes and not spec.stream and not spec.schedule


def test_the_configuration_set_publishes_every_event_feedback_reads_to_the_default_bus(template) -> None:
    logical, configuration_set = only(template, "AWS::SES::ConfigurationSet")
    assert configuration_set["Properties"]["ReputationOptions"] == {"ReputationMetricsEnabled": True}
    assert configuration_set["Properties"]["SendingOptions"] == {"SendingEnabled": True}
    _, destination = only(template, "AWS::SES::ConfigurationSetEventDestination")
    props = destination["Properties"]
    assert props["ConfigurationSetName"] == {"Ref": logical}
    assert props["EventDestination"]["Enabled"] is True
    assert set(props["EventDestination"]["MatchingEventTypes"]) == {
        "send",
        "delivery",
        "bounce",
        "complaint",
        "open",
        "click",
    }
    bus = json.dumps(props["EventDestination"]["EventBridgeDestination"]["EventBusArn"])
    assert bus.endswith(':event-bus/default"]]}'), "SES publishes to the default bus only"
    env = lambda_for(template, "delivery")["Environment"]["Variables"]
    assert env[SERVICE_ENV["email"]] == {"Ref": logical}


def test_the_sender_sends_through_the_configuration_set_by_default(with_sender) -> None:
    logical, _ = only(with_sender, "AWS::SES::ConfigurationSet")
    _, identity = only(with_sender, "AWS::SES::EmailIdentity")
    assert identity["Properties"]["EmailIdentity"] == SENDER
    assert identity["Properties"]["ConfigurationSetAttributes"] == {"ConfigurationSetName": {"Ref": logical}}


def test_emails_go_only_from_the_sender_and_through_the_configuration_set(with_sender) -> None:
    """SES v2 authorises the identity and the configuration set a call names: exactly those two."""
    identity, _ = only(with_sender, "AWS::SES::EmailIdentity")
    configuration_set, _ = only(with_sender, "AWS::SES::ConfigurationSet")
    for spec in FUNCTIONS:
        sends = statements_with(with_sender, spec.name, "ses:")
        if not {"email", "ses"} & set(spec.services):
            assert sends == [], spec.name
            continue
        (statement,) = sends
        assert actions_of(statement) == ["ses:SendEmail"]
        resources_ = [json.dumps(r) for r in targets_of(statement)]
        assert len(resources_) == 2, resources_
        (on_identity,) = [r for r in resources_ if f'{{"Ref": "{identity}"}}' in r]
        assert ":identity/" in on_identity
        (on_set,) = [r for r in resources_ if f'{{"Ref": "{configuration_set}"}}' in r]
        assert ":configuration-set/" in on_set
    assert function("delivery").services.count("email") == 1


def test_without_a_sender_no_function_may_send_email(template) -> None:
    assert resources(template, "AWS::SES::EmailIdentity") == {}
    for spec in FUNCTIONS:
        assert statements_with(template, spec.name, "ses:") == [], spec.name


def test_the_delivery_secret_is_generated_retained_and_read_only_where_wired(template) -> None:
    logical, secret = only(template, "AWS::SecretsManager::Secret")
    assert secret["DeletionPolicy"] == "Retain" and secret["UpdateReplacePolicy"] == "Retain"
    assert "GenerateSecretString" in secret["Properties"] and "SecretString" not in secret["Properties"]
    assert resources(template, "AWS::SecretsManager::RotationSchedule") == {}
    readers = []
    for spec in FUNCTIONS:
        statements = statements_with(template, spec.name, "secretsmanager:")
        env = lambda_for(template, spec.name)["Environment"]["Variables"]
        if "delivery_secret" not in spec.services:
            assert statements == [] and SERVICE_ENV["delivery_secret"] not in env, spec.name
            continue
        readers.append(spec.name)
        (statement,) = statements
        assert actions_of(statement) == ["secretsmanager:GetSecretValue"]
        assert targets_of(statement) == [{"Ref": logical}]
        assert env[SERVICE_ENV["delivery_secret"]] == {"Ref": logical}
    assert sorted(readers) == ["delivery", "preferences"]


def test_sms_is_granted_only_to_the_functions_that_send_it(template) -> None:
    for spec in FUNCTIONS:
        on_phones = [s for s in statements_with(template, spec.name, "sns:") if targets_of(s) == ["*"]]
        if "sms" in spec.services:
            (statement,) = on_phones
            assert sorted(actions_of(statement)) == ["sns:CheckIfPhoneNumberIsOptedOut", "sns:Publish"]
        else:
            assert on_phones == [], spec.name


def test_links_point_at_the_api_without_a_trailing_slash(template) -> None:
    (api,) = resources(template, "AWS::ApiGatewayV2::Api")
    for spec in FUNCTIONS:
        env = lambda_for(template, spec.name)["Environment"]["Variables"]
        if "links" not in spec.services:
            assert SERVICE_ENV["links"] not in env, spec.name
            continue
        parts = env[SERVICE_ENV["links"]]["Fn::Join"][1]
        assert parts[0] == "https://" and parts[1] == {"Ref": api}
        assert not json.dumps(parts[-1]).rstrip('"}').endswith("/")


def test_links_point_at_the_configured_public_url(with_sender) -> None:
    for spec in FUNCTIONS:
        if "links" in spec.services:
            env = lambda_for(with_sender, spec.name)["Environment"]["Variables"]
            assert env[SERVICE_ENV["links"]] == PUBLIC_URL.rstrip("/")


REPUTATION_METRICS = {
    "Reputation.ComplaintRate": COMPLAINT_RATE_LIMIT,
    "Reputation.BounceRate": BOUNCE_RATE_LIMIT,
}


def test_reputation_alarms_fire_at_the_mailbox_providers_limits(template) -> None:
    alarms = {
        a["Properties"]["MetricName"]: a["Properties"]
        for a in resources(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["Namespace"] == "AWS/SES"  # the others watch the workflows' runs
    }
    assert set(alarms) == set(REPUTATION_METRICS)
    for metric, limit in REPUTATION_METRICS.items():
        props = alarms[metric]
        assert props["Namespace"] == "AWS/SES" and "Dimensions" not in props, "the account's own rate"
        assert props["Threshold"] == limit
        assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert props["Statistic"] == "Maximum" and props["Period"] == 3600
        assert props["EvaluationPeriods"] == props["DatapointsToAlarm"] == 1
        assert props["TreatMissingData"] == "notBreaching", "no sends, no rate: not a breach"
    assert sorted(a["AlarmName"] for a in alarms.values()) == sorted(REPUTATION_ALARMS)


def feedback_rule(template: dict[str, Any]) -> dict[str, Any]:
    logical = function_logical_id(template, function("feedback"))
    (rule,) = [
        r["Properties"]
        for r in resources(template, "AWS::Events::Rule").values()
        if any(t["Arn"] == {"Fn::GetAtt": [logical, "Arn"]} for t in r["Properties"].get("Targets", []))
    ]
    return rule


def event(source: str, detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "e-1",
        "source": source,
        "detail-type": detail_type,
        "account": "123456789012",
        "time": "2026-11-23T12:00:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": detail,
    }


def test_the_feedback_rule_takes_ses_events_and_only_the_stacks_reputation_alarms(template) -> None:
    """Matched as EventBridge matches (moto's matcher, which the local stack's rules use too): the
    alarm names come from the template's alarms, not from the wiring."""
    from moto.events.models import EventPattern

    rule = feedback_rule(template)
    assert rule["EventBusName"] == "default"
    pattern = EventPattern.load(json.dumps(rule["EventPattern"]))
    alarms = [
        a["Properties"]["AlarmName"]
        for a in resources(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["Namespace"] == "AWS/SES"
    ]
    mail = {"eventType": "Bounce", "mail": {"messageId": "m-1"}}
    assert pattern.matches_event(event("aws.ses", EMAIL_BOUNCED, mail))
    assert pattern.matches_event(event("aws.ses", EMAIL_OPENED, {"eventType": "Open"}))
    for name in alarms:
        change = {"alarmName": name, "state": {"value": "ALARM"}, "previousState": {"value": "OK"}}
        assert pattern.matches_event(event("aws.cloudwatch", ALARM_STATE_CHANGE, change)), name
    other = {"alarmName": "someone-elses-cpu-alarm", "state": {"value": "ALARM"}}
    assert not pattern.matches_event(event("aws.cloudwatch", ALARM_STATE_CHANGE, other))
    assert not pattern.matches_event(event("aws.ec2", "EC2 Instance State-change Notification", {}))
    assert not pattern.matches_event(event("lifecycle", EMAIL_BOUNCED, mail)), "only AWS sources"


def test_the_preference_routes_are_public_and_the_admin_routes_signed(template) -> None:
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in resources(template, "AWS::ApiGatewayV2::Route").values()
    }
    preferences = lambda_for(template, "preferences")
    assert preferences["Timeout"] == function("preferences").timeout_seconds
    for key in PREFERENCE_ROUTES:
        assert routes[key]["AuthorizationType"] == "NONE" and "AuthorizerId" not in routes[key], key
    for key in ADMIN_ROUTES:
        assert routes[key]["AuthorizationType"] == "AWS_IAM", key
    assert {"GET /unsubscribe", "POST /unsubscribe"} <= set(PREFERENCE_ROUTES)


def test_the_preferences_function_reads_one_template_and_writes_only_consent_and_answers(template) -> None:
    """Consent and NPS answers on the profile and in the log; issue 15: the answer form's question, one
    GetItem of its survey's template on the config table (never a Query of every template, nor a write)."""
    assert dynamodb_grants(template, function("preferences")) == {
        CONTACTS.env: {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        EVENTS.env: {"dynamodb:PutItem"},
        CONFIG.env: {"dynamodb:GetItem"},
    }
    assert CONFIG.env in lambda_for(template, "preferences")["Environment"]["Variables"]


def test_the_stack_outputs_the_configuration_set_and_the_secret(template) -> None:
    configuration_set, _ = only(template, "AWS::SES::ConfigurationSet")
    secret, _ = only(template, "AWS::SecretsManager::Secret")
    outputs = template["Outputs"]
    assert outputs["ConfigurationSetName"]["Value"] == {"Ref": configuration_set}
    assert outputs["DeliverySecretArn"]["Value"] == {"Ref": secret}


# --- the templates layer -------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda f: f.name)
def test_functions_get_the_library_layers_their_wiring_names(template, spec) -> None:
    layers = resources(template, "AWS::Lambda::LayerVersion")
    assert len(layers) == len(LIBRARY_BUNDLES) + len(WHEEL_BUNDLES)
    _, *bundled = lambda_for(template, spec.name)["Layers"]
    names = [layers[layer["Ref"]]["Properties"]["Description"] for layer in bundled]
    assert names == [layer_description(bundle) for bundle in spec.bundles]
    for layer in bundled:
        props = layers[layer["Ref"]]["Properties"]
        assert props["CompatibleRuntimes"] == [lambda_for(template, spec.name)["Runtime"]]


def test_the_template_renderers_get_the_templates_layer() -> None:
    assert {f.name for f in FUNCTIONS if "templates" in f.bundles} == {"delivery", "admin"}


def templates_layer(synthesized: dict[str, Any]) -> Path:
    (layer,) = [
        layer
        for layer in resources(synthesized["template"], "AWS::Lambda::LayerVersion").values()
        if layer["Properties"]["Description"] == layer_description("templates")
    ]
    key = layer["Properties"]["Content"]["S3Key"].removesuffix(".zip")
    return synthesized["assembly"] / f"asset.{key}"


def test_the_templates_layer_holds_pure_python_only(synthesized) -> None:
    asset = templates_layer(synthesized)
    assert sorted(p.name for p in asset.iterdir()) == ["python"]
    python = asset / "python"
    assert (python / "jinja2" / "sandbox.py").is_file()
    assert (python / "markupsafe" / "_native.py").is_file(), "markupsafe's pure-Python escaping"
    files = [p for p in python.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in (".so", ".pyd", ".dylib", ".pyc", ".c")]
    assert not [p for p in python.rglob("__pycache__")]
    assert list(python.glob("jinja2-*.dist-info/licenses/LICENSE*")), "the licence travels with the code"


#: Run with nothing but the standard library and the layer: the sandbox renders and refuses to escape.
RENDER_IN_LAYER = """
import sys
import jinja2.sandbox, markupsafe
assert markupsafe.__file__.startswith(sys.argv[1]), markupsafe.__file__
import importlib.util
assert importlib.util.find_spec("markupsafe._speedups") is None, "no compiled extension in the layer"
env = jinja2.sandbox.SandboxedEnvironment(autoescape=True)
print(env.from_string("Hello {{ name }}").render(name="<Ann>"))
try:
    env.from_string("{{ ''.__class__.__mro__[1].__subclasses__() }}").render()
except jinja2.exceptions.SecurityError:
    print("refused")
"""


def test_the_templates_layer_imports_and_renders_on_its_own(synthesized) -> None:
    python = templates_layer(synthesized) / "python"
    result = subprocess.run(
        # -S: no site-packages, -I: isolated (no PYTHONPATH, no user site); only the layer is added
        [
            sys.executable,
            "-S",
            "-I",
            "-c",
            f"import sys; sys.path.insert(0, {str(python)!r})\n" + RENDER_IN_LAYER,
            str(python),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["Hello", "&lt;Ann&gt;", "refused"]
