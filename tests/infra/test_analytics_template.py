"""The nightly analytics pass as deployed: the state machine the wiring declares, its schedule, what a
failed run leaves, the staging bucket, and each analytics function's exact grants."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra.config import DeploymentConfig
from infra.constructs.analytics import LAMBDA_SERVICE_ERRORS
from infra.constructs.bundles import layer_description
from infra.wiring import (
    ANALYTICS_BUCKET,
    BACKFILL_SCANS,
    FUNCTIONS,
    NIGHTLY_ANALYTICS,
    RECOMMENDATION_SCANS,
    EachItem,
    EachSegment,
    Workflow,
    function,
)
from tests.conftest import resources, table_names_by_env
from tests.infra.test_template import function_logical_id, lambda_for, policy_statements

SEGMENTS = DeploymentConfig().analytics_scan_segments
ANALYTICS = [spec for spec in FUNCTIONS if spec.capability == "analytics"]


def only(template: dict[str, Any], kind: str, **match: Any) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (logical, resource)
        for logical, resource in resources(template, kind).items()
        if all(resource["Properties"].get(k) == v for k, v in match.items())
    ]
    return found


def state_machine(template: dict[str, Any], flow: Workflow = NIGHTLY_ANALYTICS) -> tuple[str, dict[str, Any]]:
    """The workflow's state machine (under its capability's construct, named after it)."""
    capability = function(flow.steps[0].function).capability.title()
    prefix = f"{capability}{flow.name.title().replace('_', '')}StateMachine"
    ((logical, machine),) = [
        (logical, machine)
        for logical, machine in resources(template, "AWS::StepFunctions::StateMachine").items()
        if logical.startswith(prefix)
    ]
    return logical, machine


def definition(template: dict[str, Any], flow: Workflow = NIGHTLY_ANALYTICS) -> dict[str, Any]:
    """The definition, each function's ARN written ``<logical id>`` and the partition ``aws``."""
    _, machine = state_machine(template, flow)
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    text = ""
    for part in parts:
        if isinstance(part, str):
            text += part
        elif part == {"Ref": "AWS::Partition"}:
            text += "aws"
        else:
            (logical, attribute) = part["Fn::GetAtt"]
            assert attribute == "Arn", part
            text += f"<{logical}>"
    return json.loads(text)


def invoked(state: dict[str, Any]) -> str:
    """The function a Lambda task invokes (its logical id)."""
    assert state["Type"] == "Task" and state["Resource"] == "arn:aws:states:::lambda:invoke", state
    return state["Arguments"]["FunctionName"].strip("<>")


def test_the_state_machine_is_standard_jsonata_traced_and_logged_without_execution_data(template) -> None:
    _, machine = state_machine(template)
    props = machine["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    logging = props["LoggingConfiguration"]
    assert logging["Level"] == "ALL" and logging["IncludeExecutionData"] is False
    (destination,) = logging["Destinations"]
    group = template["Resources"][destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]]
    assert group["Properties"]["RetentionInDays"] == 30
    flow = definition(template)
    assert flow["QueryLanguage"] == "JSONata"
    assert flow["TimeoutSeconds"] == NIGHTLY_ANALYTICS.timeout.total_seconds()


def test_the_definition_runs_the_wirings_steps_in_order_with_distributed_maps(template) -> None:
    flow = definition(template)
    states = flow["States"]
    names = [step.function.title().replace("_", "") for step in NIGHTLY_ANALYTICS.steps]
    assert flow["StartAt"] == names[0]
    assert [states[a]["Next"] for a in names[:-1]] == names[1:] and states[names[-1]]["End"] is True
    for name, step in zip(names, NIGHTLY_ANALYTICS.steps, strict=True):
        state = states[name]
        logical = function_logical_id(template, function(step.function))
        if step.each is None:
            assert invoked(state) == logical
            assert state["Arguments"]["Payload"] == step.input("{% $states.input.time %}", SEGMENTS)
            assert state["Output"] == (
                f"{{% $merge([$states.input, {{'{step.function}': $states.result.Payload}}]) %}}"
            )
            task = state
        else:
            assert state["Type"] == "Map"
            assert state["ItemProcessor"]["ProcessorConfig"] == {
                "Mode": "DISTRIBUTED",
                "ExecutionType": "STANDARD",
            }
            assert state["MaxConcurrency"] == step.each.max_concurrency
            assert state["ItemSelector"] == step.input(
                "{% $states.input.time %}", SEGMENTS, "{% $states.context.Map.Item.Value %}"
            )
            counted = isinstance(step.each, EachItem) and step.each.counted
            kept = f"{{'{step.each.field}': $count($states.result)}}" if counted else "$states.result"
            assert state["Output"] == f"{{% $merge([$states.input, {{'{step.function}': {kept}}}]) %}}"
            (task,) = state["ItemProcessor"]["States"].values()
            assert invoked(task) == logical
            assert task["Arguments"]["Payload"] == "{% $states.input %}"
            assert task["Output"] == "{% $states.result.Payload %}"
        # Lambda's service errors and throttles, then anything a few times; what still fails: the Fail state
        service, anything = task["Retry"]
        assert set(service["ErrorEquals"]) == set(LAMBDA_SERVICE_ERRORS)
        assert "Lambda.TooManyRequestsException" in service["ErrorEquals"] and service["MaxAttempts"] >= 3
        assert anything["ErrorEquals"] == ["States.ALL"]
        assert anything["MaxAttempts"] == NIGHTLY_ANALYTICS.retry_attempts and anything["BackoffRate"] > 1
        (catch,) = state["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"] and states[catch["Next"]]["Type"] == "Fail"


def test_the_segments_are_inline_and_the_parts_come_from_the_fit(template) -> None:
    states = definition(template)["States"]
    extract, fit, apply = NIGHTLY_ANALYTICS.steps
    assert isinstance(extract.each, EachSegment) and isinstance(apply.each, EachItem) and fit.each is None
    assert states["AnalyticsExtract"]["Items"] == list(range(SEGMENTS))
    assert states["AnalyticsExtract"]["ItemSelector"]["segments"] == SEGMENTS
    assert states["AnalyticsFit"]["Arguments"]["Payload"] == {
        "time": "{% $states.input.time %}",
        "segments": SEGMENTS,
    }
    assert states["AnalyticsApply"]["Items"] == "{% $states.input.analytics_fit.parts %}"


def test_the_apply_runs_answers_stay_out_of_the_state_which_keeps_their_number(template) -> None:
    """Step Functions' state holds 256 KB: the fit's list of parts is in it already, so the apply map
    keeps how many parts it ran, not an answer per part (the extract's 16 answers are kept)."""
    states = definition(template)["States"]
    extract, _, apply = NIGHTLY_ANALYTICS.steps
    assert isinstance(apply.each, EachItem) and apply.each.counted
    assert states["AnalyticsApply"]["Output"] == (
        "{% $merge([$states.input, {'analytics_apply': {'parts': $count($states.result)}}]) %}"
    )
    assert states["AnalyticsExtract"]["Output"] == (
        "{% $merge([$states.input, {'analytics_extract': $states.result}]) %}"
    )
    answers = [{"day": "2026-11-22", "customers": 10000, "updated": 10000, "announced": 20000}] * 3
    assert apply.kept(answers) == {"parts": 3} and extract.kept(answers) == answers, "the local runner's"


def test_the_state_machine_may_invoke_only_the_three_functions(template) -> None:
    logical, machine = state_machine(template)
    role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    statements = [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    invokes = [s for s in statements if "lambda" in json.dumps(s["Action"])]
    assert all(s["Action"] == "lambda:InvokeFunction" for s in invokes)
    targets = {json.dumps(r) for s in invokes for r in s["Resource"]}
    # its own steps' functions (issue 15: the recommendations pass, also analytics, is another workflow's)
    functions = [function_logical_id(template, function(step.function)) for step in NIGHTLY_ANALYTICS.steps]
    assert targets == {
        json.dumps(arn)
        for f in functions
        for arn in ({"Fn::GetAtt": [f, "Arn"]}, {"Fn::Join": ["", [{"Fn::GetAtt": [f, "Arn"]}, ":*"]]})
    }
    # nothing else: no table, bucket or bus; child executions of its own maps only
    actions = {
        a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert not {a for a in actions if a.split(":")[0] in ("dynamodb", "s3", "events", "sqs", "sns")}
    starts = [s for s in statements if s["Action"] == "states:StartExecution"]
    assert [s["Resource"] for s in starts] == [{"Ref": logical}]


def test_the_schedule_starts_a_run_at_two_with_the_events_time(template) -> None:
    logical, _ = state_machine(template)
    (rule,) = [
        r["Properties"]
        for r in resources(template, "AWS::Events::Rule").values()
        if any(t["Arn"] == {"Ref": logical} for t in r["Properties"].get("Targets", []))
    ]
    assert rule["ScheduleExpression"] == NIGHTLY_ANALYTICS.expression == "cron(0 2 * * ? *)"
    (target,) = rule["Targets"]
    assert target["InputTransformer"] == {
        "InputPathsMap": {"time": "$.time"},
        "InputTemplate": '{"time":<time>}',
    }
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    queue = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert queue == failed_runs_queue(template)
    role = template["Resources"][target["RoleArn"]["Fn::GetAtt"][0]]
    statements = [
        s
        for p in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": target["RoleArn"]["Fn::GetAtt"][0]} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert role["Type"] == "AWS::IAM::Role"
    assert [(s["Action"], s["Resource"]) for s in statements] == [("states:StartExecution", {"Ref": logical})]


def failed_runs_queue(template: dict[str, Any], flow: Workflow = NIGHTLY_ANALYTICS) -> str:
    logical, _ = state_machine(template, flow)
    (rule,) = [
        r["Properties"]
        for r in resources(template, "AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("source") == ["aws.states"]
        and r["Properties"]["EventPattern"]["detail"]["stateMachineArn"] == [{"Ref": logical}]
    ]
    assert rule["EventPattern"]["detail-type"] == ["Step Functions Execution Status Change"]
    assert rule["EventPattern"]["detail"] == {
        "status": ["FAILED", "TIMED_OUT", "ABORTED"],
        "stateMachineArn": [{"Ref": logical}],
    }
    (target,) = rule["Targets"]
    return target["Arn"]["Fn::GetAtt"][0]


def test_failed_runs_go_to_a_retained_encrypted_queue_and_raise_alarms(template) -> None:
    queue = template["Resources"][failed_runs_queue(template)]
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 86400
    assert queue["DeletionPolicy"] == "Retain"
    assert template["Outputs"]["NightlyAnalyticsFailedRunsUrl"]["Value"] == {
        "Ref": failed_runs_queue(template)
    }
    logical, _ = state_machine(template)
    alarms = {
        a["Properties"]["MetricName"]: a["Properties"]
        for a in resources(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["Namespace"] == "AWS/States"
        and a["Properties"]["Dimensions"][0]["Value"] == {"Ref": logical}
    }
    assert set(alarms) == {"ExecutionsFailed", "ExecutionsTimedOut"}
    for props in alarms.values():
        assert props["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": logical}}]
        assert props["Threshold"] == 1 and props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert props["Statistic"] == "Sum" and props["TreatMissingData"] == "notBreaching"


def test_the_bucket_is_private_tls_only_encrypted_unversioned_expiring_and_retained(template) -> None:
    logical, bucket = only(template, "AWS::S3::Bucket")
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert "VersioningConfiguration" not in props
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    # the purchase files hold erased contacts' histories until they expire: two days, a night's run and a
    # next-morning retry
    assert rule["Status"] == "Enabled" and rule["ExpirationInDays"] == ANALYTICS_BUCKET.expire_days == 2
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in resources(template, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": logical}
    ]
    denials = [s for s in policy if s["Effect"] == "Deny"]
    assert {"Bool": {"aws:SecureTransport": "false"}} in [s["Condition"] for s in denials]
    assert not [s for s in policy if s["Effect"] == "Allow"], "only the functions' roles grant access"
    assert template["Outputs"]["AnalyticsBucketName"]["Value"] == {"Ref": logical}


def grants_of(template: dict[str, Any], name: str) -> list[tuple[list[str], str, Any]]:
    """The function's statements beyond its logs and X-Ray: (actions, resource, condition), the bucket,
    tables and bus written ``<bucket>``, ``<events>``..."""
    names = {
        only(template, "AWS::S3::Bucket")[0]: "<bucket>",
        **{
            k: f"<{k.removeprefix('Storage')[:-8].lower()}>"
            for k in resources(template, "AWS::DynamoDB::Table")
        },
        **{k: "<bus>" for k in resources(template, "AWS::Events::EventBus")},
    }
    found = []
    for statement in policy_statements(template, lambda_for(template, name)):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if actions[0].startswith(("logs:", "xray:")):
            continue
        resource = json.dumps(statement["Resource"])
        for logical, short in names.items():
            resource = re.sub(
                rf'\{{"Fn::Join": \["", \[\{{"Fn::GetAtt": \["{logical}", "Arn"\]\}}, "([^"]*)"\]\]\}}',
                rf"{short}\1",
                resource,
            )
            resource = resource.replace(json.dumps({"Fn::GetAtt": [logical, "Arn"]}), short)
        found.append((sorted(actions), resource, statement.get("Condition")))
    return sorted(found, key=str)


def test_each_analytics_function_has_exactly_its_grants(template) -> None:
    assert grants_of(template, "analytics_extract") == [
        (["dynamodb:Scan"], "<events>/index/byPurchase", None),
        (["s3:PutObject"], "<bucket>/analytics/*", None),
    ]
    assert grants_of(template, "analytics_fit") == sorted(
        [
            (["s3:ListBucket"], "<bucket>", {"StringLike": {"s3:prefix": ["analytics/*"]}}),
            (["s3:GetObject", "s3:PutObject"], "<bucket>/analytics/*", None),
        ],
        key=str,
    )
    # no ConditionCheckItem (no transaction checks an item); listing under analytics/ makes a missing
    # part a 404 (NoSuchKey: not found), not a 403
    assert grants_of(template, "analytics_apply") == sorted(
        [
            (sorted(["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"]), "<contacts>", None),
            (["s3:ListBucket"], "<bucket>", {"StringLike": {"s3:prefix": ["analytics/*"]}}),
            (["s3:GetObject"], "<bucket>/analytics/*", None),
            (["events:PutEvents"], "<bus>", None),
        ],
        key=str,
    )


def test_the_extract_cannot_scan_the_event_log_itself_and_nothing_else_scans(template) -> None:
    """The extract Scans the purchase index alone; the back-fills' steps (issue 13) their one table each
    (``tests/infra/test_backfill_template.py``); nothing else Scans."""
    events = table_names_by_env(template)["EVENTS_TABLE_NAME"]
    for spec in FUNCTIONS:
        for statement in policy_statements(template, lambda_for(template, spec.name)):
            if "Scan" not in json.dumps(statement["Action"]):
                continue
            if spec.name in BACKFILL_SCANS or spec.name in RECOMMENDATION_SCANS:
                continue  # issue 15: the recommendations extract's (tests/infra/test_recommendations_template.py)
            assert spec.name == "analytics_extract", statement
            assert statement["Resource"] != {"Fn::GetAtt": [events, "Arn"]}
            assert statement["Resource"] == {
                "Fn::Join": ["", [{"Fn::GetAtt": [events, "Arn"]}, "/index/byPurchase"]]
            }


def test_no_other_function_touches_the_bucket(template) -> None:
    bucket, _ = only(template, "AWS::S3::Bucket")
    for spec in FUNCTIONS:
        touches = [
            s for s in policy_statements(template, lambda_for(template, spec.name)) if bucket in json.dumps(s)
        ]
        assert bool(touches) == bool(spec.buckets), spec.name


def test_the_numpy_layer_is_attached_only_to_the_fit_which_runs_on_its_architecture(template) -> None:
    (layer,) = [
        logical
        for logical, layer in resources(template, "AWS::Lambda::LayerVersion").items()
        if layer["Properties"]["Description"] == layer_description("analytics")
    ]
    props = template["Resources"][layer]["Properties"]
    assert props["CompatibleArchitectures"] == ["x86_64"] and props["CompatibleRuntimes"] == ["python3.13"]
    with_layer = [
        spec.name for spec in FUNCTIONS if {"Ref": layer} in lambda_for(template, spec.name)["Layers"]
    ]
    # issue 15: the recommendations pass fits its model with numpy and scipy too
    assert with_layer == ["analytics_fit", "recommendations_fit"]
    fit = lambda_for(template, "analytics_fit")
    assert fit["Architectures"] == ["x86_64"] and fit["MemorySize"] >= 3008 and fit["Timeout"] == 900


@pytest.mark.parametrize("spec", ANALYTICS, ids=lambda f: f.name)
def test_the_analytics_functions_get_the_analytics_settings_and_the_bucket(template, spec) -> None:
    env = lambda_for(template, spec.name)["Environment"]["Variables"]
    bucket, _ = only(template, "AWS::S3::Bucket")
    assert env["ANALYTICS_BUCKET_NAME"] == {"Ref": bucket}
    assert {
        k: env[k]
        for k in ("ANALYTICS_HORIZON_DAYS", "ANALYTICS_LOOKBACK_DAYS", "ANALYTICS_PART_SIZE", "RFM_EDGES")
    } == {
        "ANALYTICS_HORIZON_DAYS": "90",
        "ANALYTICS_LOOKBACK_DAYS": "1095",
        "ANALYTICS_PART_SIZE": "10000",
        "RFM_EDGES": "0.2,0.4,0.6,0.8",
    }
    assert "RISK_MEDIUM" not in env and "RISK_HIGH" not in env, "unset: the code's defaults"
    assert "ANALYTICS_SCAN_SEGMENTS" not in env, "the state machine's, not a function's"
    # measured at a million customers in 16 segments (docs/analytics.md), with margin
    memory, timeout = {
        "analytics_fit": (8192, 900),
        "analytics_extract": (2048, 900),
        "recommendations_fit": (4096, 900),  # issue 15
    }.get(spec.name, (1024, 900))
    assert (lambda_for(template, spec.name)["MemorySize"], lambda_for(template, spec.name)["Timeout"]) == (
        memory,
        timeout,
    )


def test_only_the_analytics_functions_get_the_analytics_settings(template) -> None:
    for spec in FUNCTIONS:
        env = lambda_for(template, spec.name)["Environment"]["Variables"]
        assert ("ANALYTICS_PART_SIZE" in env) == (spec.capability == "analytics"), spec.name


def test_the_stack_outputs_the_bucket_and_the_state_machine(template) -> None:
    logical, _ = state_machine(template)
    assert template["Outputs"]["NightlyAnalyticsStateMachineArn"]["Value"] == {"Ref": logical}
