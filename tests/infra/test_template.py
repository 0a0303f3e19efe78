"""Properties of the synthesized CloudFormation template (not resource counts)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import aws_lambda_powertools
import pytest

from infra.wiring import AUTOMATION_SIGNALS, FUNCTIONS, QUEUES, FunctionSpec, function
from shared.adapters.queues import DELIVERY, QueueSpec
from shared.adapters.tables import CONFIG, CONTACTS, EVENTS, RATES, TABLES, create_table_request
from tests.conftest import ROOT, resources, table_names_by_env


def by_env(template: dict[str, Any], env: str) -> dict[str, Any]:
    return template["Resources"][table_names_by_env(template)[env]]["Properties"]


def lambda_for(template: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [
        f["Properties"]
        for f in resources(template, "AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == function(name).handler
    ]
    return found


def policy_statements(template: dict[str, Any], function_props: dict[str, Any]) -> list[dict[str, Any]]:
    role = function_props["Role"]["Fn::GetAtt"][0]
    statements = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_cdk_nag_aws_solutions_has_no_unacknowledged_findings(synthesized) -> None:
    reports = synthesized["report"]["pluginReports"]
    assert all(not report.get("violations") for report in reports), json.dumps(reports)[:2000]


def test_every_acknowledged_finding_is_known_and_explained(synthesized) -> None:
    metadata = json.loads((synthesized["assembly"] / "Lifecycle.metadata.json").read_text())
    acknowledged = {
        rule: reason
        for entries in metadata.values()
        for entry in entries
        if entry["type"] == "aws:cdk:acknowledged-rules"
        for rule, reason in entry["data"].items()
    }
    # the state machine's child executions: by its logical id (in a Ref) and the maps' labels
    kinds = {
        re.sub(r'"Ref":"[A-Za-z0-9]+"', '"Ref":"<machine>"', re.sub(r"<[^>]+>", "<table>", rule))
        for rule in acknowledged
    }
    executions = (
        "Annotation::AwsSolutions-IAM5[Resource::arn:<table>:states:<table>:<table>:execution:"
        '{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"<machine>"}]}]}'
    )
    assert kinds == {
        "Annotation::AwsSolutions-IAM5[Resource::*]",
        "Annotation::AwsSolutions-IAM5[Resource::<table>/index/*]",
        # lambda:InvokeFunction of the workflow's functions, any version (the state machine's role)
        "Annotation::AwsSolutions-IAM5[Resource::<table>:*]",
        # the analytics functions' objects under the staging bucket's prefix
        "Annotation::AwsSolutions-IAM5[Resource::<table>/analytics/*]",
        f"{executions}:*]",
        f"{executions}/AnalyticsExtract:*]",
        f"{executions}/AnalyticsApply:*]",
        # issue 13: the back-fills' maps (the admin's DescribeExecution of their runs is ``{executions}:*``)
        f"{executions}/BackfillContacts:*]",
        f"{executions}/BackfillPurchases:*]",
        f"{executions}/BackfillMetrics:*]",
        # issue 15: the nightly recommendations pass's maps
        f"{executions}/RecommendationsExtract:*]",
        f"{executions}/RecommendationsWrite:*]",
        "Annotation::AwsSolutions-S1",
        "Annotation::AwsSolutions-IAM5[Resource::arn:<table>:ssm:<table>:<table>:parameter/Lifecycle/identity-secrets/*]",
        "Annotation::AwsSolutions-APIG4",
        "Annotation::AwsSolutions-SQS3",
        "Annotation::AwsSolutions-L1",
        "Annotation::AwsSolutions-SMG4",
        # issue 14: the console's user pool: optional MFA (TOTP), no Plus plan (infra.constructs.console)
        "Annotation::AwsSolutions-COG2",
        "Annotation::AwsSolutions-COG8",
    }
    assert all(len(reason) > 40 for reason in acknowledged.values())


@pytest.mark.parametrize("spec", TABLES, ids=lambda t: t.id)
def test_tables_match_their_specs_and_are_protected(template, spec) -> None:
    props = by_env(template, spec.env)
    expected = create_table_request(spec, "x")
    assert props["KeySchema"] == expected["KeySchema"]
    assert sorted(props["AttributeDefinitions"], key=str) == sorted(expected["AttributeDefinitions"], key=str)
    assert props.get("LocalSecondaryIndexes", []) == expected.get("LocalSecondaryIndexes", [])
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["DeletionProtectionEnabled"] is True
    if spec.ttl_attribute:
        assert props["TimeToLiveSpecification"] == {"AttributeName": spec.ttl_attribute, "Enabled": True}
    if spec.stream:
        view = expected["StreamSpecification"]["StreamViewType"]
        assert props["StreamSpecification"] == {"StreamViewType": view}
    else:
        assert "StreamSpecification" not in props


def test_contacts_stream_and_event_log_ttl(template) -> None:
    assert by_env(template, CONTACTS.env)["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert by_env(template, EVENTS.env)["TimeToLiveSpecification"]["AttributeName"] == "expiresAt"
    # issue 13 (history growth): published announcements other than stage moves expire
    assert by_env(template, CONTACTS.env)["TimeToLiveSpecification"] == {
        "AttributeName": "expiresAt",
        "Enabled": True,
    }


def test_tables_are_retained_when_the_stack_goes(template) -> None:
    for table in resources(template, "AWS::DynamoDB::Table").values():
        assert table["DeletionPolicy"] == "Retain"


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda f: f.name)
def test_functions_run_arm64_current_python_with_powertools_layer(template, spec) -> None:
    """arm64, but for a function whose compiled libraries are built for x86_64 (the analytics fit)."""
    props = lambda_for(template, spec.name)
    assert props["Architectures"] == [spec.architecture]
    assert spec.architecture == ("x86_64" if "analytics" in spec.bundles else "arm64")
    assert props["Runtime"] == "python3.13"
    assert props["TracingConfig"] == {"Mode": "Active"}
    layer, *bundles = props["Layers"]
    assert len(bundles) == len(spec.bundles), "the Powertools layer, then one per library bundle"
    parameter = template["Parameters"][layer["Ref"]]
    assert parameter["Type"] == "AWS::SSM::Parameter::Value<String>"
    assert parameter["Default"] == (
        f"/aws/service/powertools/python/{spec.architecture}/python3.13/{aws_lambda_powertools.__version__}"
    ), "the deployed layer must match the Powertools version the tests run, on the function's architecture"


def interpreter_for(version: str) -> str | None:
    """A Python of exactly ``version`` ("3.13") on this machine: this one, one on PATH, or one of pyenv's."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [str(p) for p in sorted(pyenv.glob(f"{version}*/bin/python{version}"), reverse=True)]
    on_path = shutil.which(f"python{version}")  # may be a pyenv shim that refuses: it is tried, not trusted
    candidates += [on_path] if on_path else []
    return next((c for c in candidates if _reports(c, version)), None)


def _reports(interpreter: str, version: str) -> bool:
    probe = "import sys; print(f'{sys.version_info.major}.{sys.version_info.minor}')"
    result = subprocess.run([interpreter, "-c", probe], capture_output=True, text=True, check=False)
    return result.returncode == 0 and result.stdout.strip() == version


#: Compiles every deployed module in memory (no .pyc left behind): syntax the runtime cannot parse fails.
COMPILE_ALL = """
import pathlib, sys
failed = []
for root in sys.argv[1:]:
    for path in sorted(pathlib.Path(root).rglob("*.py")):
        try:
            compile(path.read_text(encoding="utf-8"), str(path), "exec", dont_inherit=True)
        except SyntaxError as exc:
            failed.append(f"{path}: {exc}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_the_deployed_runtime_is_a_python_this_machine_tests_on(template) -> None:
    """python3.14 was deployed while no machine here or in CI had it: the runtime must be one we can run."""
    (runtime,) = {f["Properties"]["Runtime"] for f in resources(template, "AWS::Lambda::Function").values()}
    version = runtime.removeprefix("python")
    interpreter = interpreter_for(version)
    assert interpreter, (
        f"the functions deploy on {runtime}, but this machine has no Python {version} to test with "
        f"(install it, e.g. `pyenv install {version}`, or deploy a version that CI runs)"
    )
    minimum = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert tuple(map(int, version.split("."))) >= tuple(map(int, minimum.removeprefix(">=").split(".")))
    compiled = subprocess.run(
        [interpreter, "-c", COMPILE_ALL, "functions", "shared"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    decisions = (ROOT / "docs" / "decisions.md").read_text()
    assert f"Python {version}" in decisions and f"python{version}" in decisions, "the decision records it"


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda f: f.name)
def test_each_function_logs_to_its_own_group_with_retention(template, spec) -> None:
    props = lambda_for(template, spec.name)
    group = template["Resources"][props["LoggingConfig"]["LogGroup"]["Ref"]]
    assert group["Properties"]["RetentionInDays"] == 30


def dynamodb_grants(template: dict[str, Any], spec: Any) -> dict[str, set[str]]:
    """The DynamoDB actions the function's role grants, by the table's environment variable (its
    stream's actions and ``ListStreams`` left out: asserted with the trigger)."""
    statements = policy_statements(template, lambda_for(template, spec.name))
    names = table_names_by_env(template)
    granted: dict[str, set[str]] = {}
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if not any(a.startswith("dynamodb:") for a in actions):
            continue
        targets = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        if any("StreamArn" in json.dumps(t) for t in targets):
            continue  # reading the table's stream: granted by the trigger, asserted below
        if targets == ["*"]:
            assert actions == ["dynamodb:ListStreams"] and spec.stream is not None, statement
            continue  # the event source mapping lists streams; IAM has no narrower resource for it
        for target in targets:
            text = json.dumps(target)
            (env,) = [e for e, logical in names.items() if f'"{logical}"' in text]
            granted.setdefault(env, set()).update(actions)
    return granted


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda f: f.name)
def test_least_privilege_dynamodb_actions_per_function(template, spec) -> None:
    granted = dynamodb_grants(template, spec)
    expected: dict[str, set[str]] = {}
    for (
        access
    ) in spec.tables:  # a table may be named twice (its index's actions, or a back-fill's Scan apart)
        expected.setdefault(access.table.env, set()).update(access.actions)
    assert granted == expected
    assert not any(a == "dynamodb:*" for actions in granted.values() for a in actions)
    # Scan only on one named index (the nightly extract's), asserted with the index grants below, or on
    # the table by a back-fill's step (issue 13, tests/infra/test_backfill_template.py)
    scanned = {a.table.env for a in spec.tables if "dynamodb:Scan" in a.actions}
    assert all(a.only_index or a.batch_scan for a in spec.tables if "dynamodb:Scan" in a.actions)
    assert {env for env, actions in granted.items() if "dynamodb:Scan" in actions} == scanned


def test_logs_permission_is_scoped_to_the_functions_own_group(template) -> None:
    for spec in FUNCTIONS:
        props = lambda_for(template, spec.name)
        log_statements = [
            s for s in policy_statements(template, props) if any(a.startswith("logs:") for a in s["Action"])
        ]
        assert [s["Resource"] for s in log_statements] == [
            {"Fn::GetAtt": [props["LoggingConfig"]["LogGroup"]["Ref"], "Arn"]}
        ]


def test_routes_and_their_authorisation(template) -> None:
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in resources(template, "AWS::ApiGatewayV2::Route").values()
    }
    for spec in FUNCTIONS:
        for route in spec.routes:
            props = routes[route.key]
            assert props["AuthorizationType"] == {"iam": "AWS_IAM", "jwt": "JWT", "none": "NONE"}[route.auth]
    assert "POST /v1/b" in routes and "POST /v1/m" in routes
    assert routes["GET /admin/contacts/{contactId}"]["AuthorizationType"] == "AWS_IAM"


def test_cors_lets_browsers_send_authorization(template) -> None:
    (api,) = resources(template, "AWS::ApiGatewayV2::Api").values()
    cors = api["Properties"]["CorsConfiguration"]
    assert "authorization" in cors["AllowHeaders"]
    assert "POST" in cors["AllowMethods"]
    assert cors["AllowOrigins"] == ["*"]


def test_cors_allows_what_tracking_clients_send_and_nothing_for_admin(template) -> None:
    """analytics-next sends X-Retry-Count on every retry; admin routes are SigV4-only, not for pages."""
    (api,) = resources(template, "AWS::ApiGatewayV2::Api").values()
    cors = api["Properties"]["CorsConfiguration"]
    assert {"authorization", "content-type", "content-encoding", "x-retry-count"} <= {
        h.lower() for h in cors["AllowHeaders"]
    }
    tracking = {r.method for r in function("tracking").routes}
    assert set(cors["AllowMethods"]) == tracking == {"POST"}, "only tracking is called from other origins"


def test_cors_lets_pages_read_retry_after(template) -> None:
    """429 and 503 carry Retry-After; without exposing it a page's script cannot read it."""
    (api,) = resources(template, "AWS::ApiGatewayV2::Api").values()
    assert [h.lower() for h in api["Properties"]["CorsConfiguration"]["ExposeHeaders"]] == ["retry-after"]


def test_stage_has_access_logs_without_personal_data_and_throttling(template) -> None:
    (stage,) = resources(template, "AWS::ApiGatewayV2::Stage").values()
    props = stage["Properties"]
    log_format = json.loads(props["AccessLogSettings"]["Format"])
    assert "$context.requestId" in log_format.values()
    assert not any("sourceIp" in v or "userAgent" in v for v in log_format.values())
    assert props["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0


def test_access_logs_name_the_caller_of_admin_routes(template) -> None:
    """A change through /console/admin or /admin must be traceable to a person: the signed-in user's
    pseudonymous Cognito id (the JWT subject) or the IAM caller's ARN."""
    (stage,) = resources(template, "AWS::ApiGatewayV2::Stage").values()
    log_format = json.loads(stage["Properties"]["AccessLogSettings"]["Format"])
    assert log_format["userSub"] == "$context.authorizer.claims.sub"
    assert log_format["callerArn"] == "$context.identity.userArn"


def test_template_stays_well_under_cloudformation_resource_limit(template) -> None:
    count = len(template["Resources"])
    assert count < 400, (
        f"{count} resources: CloudFormation refuses a stack of more than 500, so leave room to grow "
        "(one Lambda permission per route instead of per function costs a resource per route)"
    )


def test_api_may_invoke_each_routed_function_once_from_this_api_only(template) -> None:
    """One invoke permission per function with routes (not one per route), scoped to this API."""
    (api_logical,) = resources(template, "AWS::ApiGatewayV2::Api")
    functions = resources(template, "AWS::Lambda::Function")
    routed = {
        logical
        for logical, f in functions.items()
        if any(f["Properties"]["Handler"] == spec.handler for spec in FUNCTIONS if spec.routes)
    }
    assert len(routed) == sum(1 for spec in FUNCTIONS if spec.routes)
    from_api = [
        p["Properties"]
        for p in resources(template, "AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "apigateway.amazonaws.com"
    ]
    assert sorted(p["FunctionName"]["Fn::GetAtt"][0] for p in from_api) == sorted(routed)
    for permission in from_api:
        source = permission["SourceArn"]
        assert source != "*"
        parts = source["Fn::Join"][1]
        assert ":execute-api:" in parts
        after_api = parts[parts.index({"Ref": api_logical}) + 1]
        assert after_api.startswith("/"), "any route and stage of this API, and of no other"


def test_asset_holds_only_handler_and_shared_code(synthesized) -> None:
    (asset,) = [
        p
        for p in synthesized["assembly"].iterdir()
        if p.name.startswith("asset.") and p.is_dir() and (p / "functions").is_dir()
    ]
    assert sorted(p.name for p in asset.iterdir()) == ["functions", "shared"]


def mapping_for(template: dict[str, Any], name: str) -> dict[str, Any]:
    logical = next(
        k
        for k, f in resources(template, "AWS::Lambda::Function").items()
        if f["Properties"]["Handler"] == function(name).handler
    )
    (found,) = [
        m["Properties"]
        for m in resources(template, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": logical}
    ]
    return found


def stream_record(event: str, keys: dict[str, Any], image: dict[str, Any] | None) -> dict[str, Any]:
    """A stream record as Lambda's filter sees it (its ``dynamodb`` part holds typed attributes)."""
    change: dict[str, Any] = {"Keys": keys, "SequenceNumber": "1"}
    if image is not None:
        change["NewImage"] = {**keys, **image}
    return {"eventName": event, "dynamodb": change}


PROFILE_KEYS = {"pk": {"S": "C#user_id:ann"}, "sk": {"S": "PROFILE"}}
EVENT_KEYS = {"pk": {"S": "C#user_id:ann"}, "sk": {"S": "E#2026-11-23T12:00:00.000Z#m1"}}
RECORDED = {"body": {"S": "{}"}, "call": {"S": "track"}, "timestamp": {"S": "2026-11-23T12:00:00.000Z"}}
ONLY_RECORDED_EVENTS = [
    (stream_record("INSERT", EVENT_KEYS, RECORDED), True),
    # a copy a merge or a re-route made: folded in already where it came from
    (stream_record("INSERT", EVENT_KEYS, {**RECORDED, "movedFrom": {"S": "anonymous_id:a1"}}), False),
    # a ledger corrected by the aggregation itself; an expiry or a move's delete
    (stream_record("MODIFY", EVENT_KEYS, {**RECORDED, "ledger": {"S": "[]"}}), False),
    (stream_record("REMOVE", EVENT_KEYS, None), False),
]
#: Per function: its trigger table, and records its filter must pass (True) or keep away (False).
STREAM_FUNCTIONS = {
    "stage_transition": (
        CONTACTS,
        [
            (stream_record("MODIFY", PROFILE_KEYS, {"lastWriter": {"S": "tracking"}}), True),
            (stream_record("INSERT", PROFILE_KEYS, {"lastWriter": {"S": "tracking"}}), True),
            (stream_record("MODIFY", PROFILE_KEYS, {"lastWriter": {"S": "stage"}}), False),
            (stream_record("REMOVE", PROFILE_KEYS, None), False),
            # issue 13: segments read tags (automations), consent (the preference links), RFM segments and
            # churn risk (the nightly pass): their writes are evaluated too; a merge request cleared is not
            (stream_record("MODIFY", PROFILE_KEYS, {"lastWriter": {"S": "automation"}}), True),
            (stream_record("MODIFY", PROFILE_KEYS, {"lastWriter": {"S": "preferences"}}), True),
            (stream_record("MODIFY", PROFILE_KEYS, {"lastWriter": {"S": "analytics"}}), True),
            (stream_record("MODIFY", PROFILE_KEYS, {"lastWriter": {"S": "merge"}}), False),
            (stream_record("INSERT", {"pk": {"S": "C#user_id:ann"}, "sk": {"S": "SEGMENT#vip"}}, {}), False),
        ],
    ),
    "merge": (
        CONTACTS,
        [
            (
                stream_record(
                    "MODIFY", PROFILE_KEYS, {"lastWriter": {"S": "tracking"}, "mergeRequested": {"S": "[]"}}
                ),
                True,
            ),
            (stream_record("MODIFY", PROFILE_KEYS, {"lastWriter": {"S": "tracking"}}), False),
            (
                stream_record(
                    "MODIFY", PROFILE_KEYS, {"lastWriter": {"S": "merge"}, "mergeRequested": {"S": "[]"}}
                ),
                False,
            ),
        ],
    ),
    "aggregation": (EVENTS, ONLY_RECORDED_EVENTS),
    # the event log's second reader: automations start on the same recorded events, never on copies
    "automation_events": (EVENTS, ONLY_RECORDED_EVENTS),
}


def test_every_stream_function_is_covered() -> None:
    assert {spec.name for spec in FUNCTIONS if spec.stream} == set(STREAM_FUNCTIONS)


@pytest.mark.parametrize("name", STREAM_FUNCTIONS)
def test_stream_functions_read_their_tables_stream_with_failure_reporting(template, name) -> None:
    """The stage and merge functions on the contacts table (profile writes by tracking only, never their
    own), the aggregation and the behaviour automations on the events table (events recorded, not
    copies): each with partial-batch
    failure reporting, bisection, bounded retries and age, and a dead-letter queue."""
    from infra.local.filters import matches

    table, records = STREAM_FUNCTIONS[name]
    on_streams = [
        m
        for m in resources(template, "AWS::Lambda::EventSourceMapping").values()
        if "StreamArn" in json.dumps(m["Properties"]["EventSourceArn"])
    ]
    assert len(on_streams) == len(STREAM_FUNCTIONS)
    props = mapping_for(template, name)
    logical = table_names_by_env(template)[table.env]
    assert props["EventSourceArn"] == {"Fn::GetAtt": [logical, "StreamArn"]}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True
    trigger = function(name).stream
    assert props["StartingPosition"] == trigger.starting_position
    if trigger.retry_attempts is None:  # the aggregation never skips a record: Lambda retries it
        assert "MaximumRetryAttempts" not in props and "MaximumRecordAgeInSeconds" not in props
    else:
        assert 0 < props["MaximumRetryAttempts"] <= 10
        assert 0 < props["MaximumRecordAgeInSeconds"] <= 86400
    dlq = props["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    assert template["Resources"][dlq]["Type"] == "AWS::SQS::Queue"
    patterns = [json.loads(f["Pattern"]) for f in props["FilterCriteria"]["Filters"]]
    assert [pattern for pattern in patterns if "REMOVE" in pattern["eventName"]] == [], "no TTL deletions"
    for record, passes in records:
        assert any(matches(pattern, record) for pattern in patterns) is passes, (record, patterns)
    stream_actions = {
        a
        for s in policy_statements(template, lambda_for(template, name))
        if any(
            "StreamArn" in json.dumps(r)
            for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
        )
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert {"dynamodb:GetRecords", "dynamodb:GetShardIterator"} <= stream_actions


def test_the_aggregation_filter_passes_only_recorded_events(template) -> None:
    """Inserts whose new image has no ``movedFrom`` string: Lambda's filter tests presence on leaves
    only, so the pattern names the attribute's type (``movedFrom.S``); on ``movedFrom`` itself, an
    object in a stream record, ``exists: false`` would pass every copy."""
    (pattern,) = [
        json.loads(f["Pattern"]) for f in mapping_for(template, "aggregation")["FilterCriteria"]["Filters"]
    ]
    assert pattern == {
        "eventName": ["INSERT"],
        "dynamodb": {"NewImage": {"movedFrom": {"S": [{"exists": False}]}}},
    }


def test_the_tracking_function_only_appends_events(template) -> None:
    """The request path puts events, and reads its write keys and rules: no profile, no read of the log,
    no update of anything but its rate-limit counters (profiles are folded in by the aggregation)."""
    assert dynamodb_grants(template, function("tracking")) == {
        EVENTS.env: {"dynamodb:PutItem"},
        CONFIG.env: {"dynamodb:GetItem", "dynamodb:Query"},
        RATES.env: {"dynamodb:UpdateItem"},
    }


def test_only_the_tracking_function_reads_identity_secrets_and_only_under_its_path(template) -> None:
    """GetParameter (never Put) on the stack's identity-secrets path; the path is what its code reads."""
    for spec in FUNCTIONS:
        props = lambda_for(template, spec.name)
        reads = [s for s in policy_statements(template, props) if "ssm" in str(s["Action"])]
        if spec.name != "tracking":
            assert reads == [] and "IDENTITY_SECRETS_PATH" not in props["Environment"]["Variables"]
            continue
        (statement,) = reads
        assert statement["Action"] == "ssm:GetParameter"
        resource = json.dumps(statement["Resource"])
        path = props["Environment"]["Variables"]["IDENTITY_SECRETS_PATH"]
        assert path == "/Lifecycle/identity-secrets/"
        assert f":parameter{path}*" in resource and ":ssm:" in resource


def test_the_rate_counters_table_expires_its_counters_and_has_no_stream(template) -> None:
    props = by_env(template, RATES.env)
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert "StreamSpecification" not in props and props.get("TableClass", "STANDARD") == "STANDARD"
    assert [k["AttributeName"] for k in props["KeySchema"]] == ["pk", "sk"]


def test_the_aggregation_writes_profiles_blind_and_reads_no_log(template) -> None:
    """One update per contact and batch; ledger corrections, re-routed copies and their deletes on the
    log; its rules. No read of the log, no index; a profile is read only for a re-routed call its
    contact held already (what a merge took back for that call, to give back)."""
    assert dynamodb_grants(template, function("aggregation")) == {
        CONTACTS.env: {"dynamodb:UpdateItem", "dynamodb:GetItem"},
        EVENTS.env: {
            "dynamodb:UpdateItem",
            "dynamodb:PutItem",
            "dynamodb:BatchWriteItem",
        },
        CONFIG.env: {"dynamodb:GetItem", "dynamodb:Query"},
    }


def test_the_event_log_has_a_stream_and_only_the_sparse_purchase_index(template) -> None:
    """Each event is written once and read by key: an index would bill every write again. The one index
    holds purchases alone (only they carry ``purchasedAt``), for the nightly pass; only its extract step
    may read it by Scan, and nothing may read the table by Scan. Issue 15: serving (the admin and delivery)
    Queries one contact's purchases there, what it bought, and nothing else of the index."""
    props = by_env(template, EVENTS.env)
    assert "LocalSecondaryIndexes" not in props
    (index,) = props["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "byPurchase"
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["pk", "purchasedAt"]
    assert props["StreamSpecification"]["StreamViewType"] in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES")
    logical = table_names_by_env(template)[EVENTS.env]
    for spec in FUNCTIONS:
        for statement in policy_statements(template, lambda_for(template, spec.name)):
            targets = (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
            on_index = [t for t in map(json.dumps, targets) if f'"{logical}"' in t and "/index/" in t]
            purchase_index = [
                json.dumps({"Fn::Join": ["", [{"Fn::GetAtt": [logical, "Arn"]}, "/index/byPurchase"]]})
            ]
            if spec.name == "analytics_extract" and on_index:
                assert statement["Action"] == "dynamodb:Scan" and on_index == purchase_index, statement
                continue
            if spec.name in ("admin", "delivery") and on_index:
                assert statement["Action"] == "dynamodb:Query" and on_index == purchase_index, statement
                continue
            assert on_index == [], (spec.name, statement)


def function_logical_id(template: dict[str, Any], spec: Any) -> str:
    (logical,) = [
        k
        for k, f in resources(template, "AWS::Lambda::Function").items()
        if f["Properties"]["Handler"] == spec.handler
    ]
    return logical


def test_timers_run_hourly_with_retries_and_dead_letters(template) -> None:
    timers = {"Fn::GetAtt": [function_logical_id(template, function("timers")), "Arn"]}
    (rule,) = [
        r
        for r in resources(template, "AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"]
        and any(t["Arn"] == timers for t in r["Properties"]["Targets"])
    ]
    (target,) = rule["Properties"]["Targets"]
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 hour)"
    assert target["Arn"] == {"Fn::GetAtt": [function_logical_id(template, function("timers")), "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert "DeadLetterConfig" in target


ASYNCHRONOUS = [f for f in FUNCTIONS if f.schedule or f.bus]


@pytest.mark.parametrize("spec", ASYNCHRONOUS, ids=lambda f: f.name)
def test_failed_asynchronous_invocations_go_to_a_queue(template, spec) -> None:
    """EventBridge invokes asynchronously: its target's DLQ only covers delivery; a run that fails needs
    Lambda's own on-failure destination, or it is dropped after Lambda's retries without a trace."""
    logical = function_logical_id(template, spec)
    configs = [
        c["Properties"]
        for c in resources(template, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": logical}
    ]
    assert len(configs) == 1, "an on-failure destination for asynchronous invocations"
    (props,) = configs
    assert props["Qualifier"] == "$LATEST"
    queue = props["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    assert template["Resources"][queue]["Type"] == "AWS::SQS::Queue"
    if spec.schedule:
        assert props["MaximumRetryAttempts"] == spec.schedule.retry_attempts
        assert 60 <= props["MaximumEventAgeInSeconds"] <= spec.schedule.every.total_seconds(), (
            "a run older than the next one is superseded by it"
        )
    else:
        assert props["MaximumRetryAttempts"] == spec.bus.invoke_retry_attempts == 2
        assert 60 <= props["MaximumEventAgeInSeconds"] == spec.bus.invoke_max_event_age_seconds <= 21600
    sends = [
        s
        for s in policy_statements(template, lambda_for(template, spec.name))
        if "sqs:SendMessage" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    ]
    queues = resources(template, "AWS::SQS::Queue")
    wired = [{"Fn::GetAtt": [queue_logical_id(template, access.queue), "Arn"]} for access in spec.queues]
    assert [s["Resource"] for s in sends if s["Resource"] not in wired] == [{"Fn::GetAtt": [queue, "Arn"]}]
    assert all(s["Resource"]["Fn::GetAtt"][0] in queues for s in sends)
    assert not any("sqs:*" in str(s["Action"]) for s in sends)


def test_only_asynchronously_invoked_functions_have_an_invoke_config(template) -> None:
    configured = {
        json.dumps(c["Properties"]["FunctionName"])
        for c in resources(template, "AWS::Lambda::EventInvokeConfig").values()
    }
    assert configured == {json.dumps({"Ref": function_logical_id(template, spec)}) for spec in ASYNCHRONOUS}


def test_functions_announce_on_the_bus_and_topic_only_where_wired(template) -> None:
    (bus,) = resources(template, "AWS::Events::EventBus")
    (topic,) = resources(template, "AWS::SNS::Topic")
    announcing = [spec.name for spec in FUNCTIONS if "events" in spec.services]
    assert {"stage_transition", "timers", "admin", "automation_signals"} <= set(announcing)
    for spec in FUNCTIONS:
        statements = policy_statements(template, lambda_for(template, spec.name))
        puts = [s for s in statements if s["Action"] == "events:PutEvents"]
        publishes = [s for s in statements if s["Action"] == "sns:Publish"]
        assert [p["Resource"] for p in puts] == (
            [{"Fn::GetAtt": [bus, "Arn"]}] if "events" in spec.services else []
        )
        assert [p["Resource"] for p in publishes] == ([{"Ref": topic}] if "sns" in spec.services else [])
    tracking = policy_statements(template, lambda_for(template, "tracking"))
    assert not any(str(s["Action"]).startswith(("events:", "sns:", "ses:")) for s in tracking)


def test_lead_topic_is_encrypted_and_requires_tls(template) -> None:
    (topic,) = resources(template, "AWS::SNS::Topic").values()
    assert topic["Properties"]["KmsMasterKeyId"]
    policies = json.dumps(resources(template, "AWS::SNS::TopicPolicy"))
    assert "aws:SecureTransport" in policies


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda f: f.name)
def test_indexes_are_granted_for_query_only(template, spec) -> None:
    """Writes go to the table; an index ARN in a write statement is a grant nobody needs. The one
    exception is a read: the nightly extract's Scan, on the one index it names (and the admin's Query on
    the segment index alone)."""
    on_indexes: set[str] = set()
    for statement in policy_statements(template, lambda_for(template, spec.name)):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        targets = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        if any("/index/" in json.dumps(t) for t in targets):
            named = {a.only_index: list(a.actions) for a in spec.tables if a.only_index}
            index = next((i for i in named if f"/index/{i}" in json.dumps(targets)), None)
            if index is not None:
                assert actions == named[index], statement
                assert actions in (["dynamodb:Scan"], ["dynamodb:Query"]), statement
                continue
            assert actions == ["dynamodb:Query"], statement
            on_indexes.update(actions)
    declared = any(access.indexes and "dynamodb:Query" in access.actions for access in spec.tables)
    assert on_indexes == ({"dynamodb:Query"} if declared else set())


def test_each_capability_is_one_construct_holding_its_functions_and_their_dead_letters(template) -> None:
    """The stack is composed per capability (ingest, engagement, admin...), not per resource type: each
    function, and the queue its failures go to, sit under the construct of the capability the wiring
    gives it."""
    from infra.wiring import CAPABILITIES

    functions = resources(template, "AWS::Lambda::Function")
    queues = resources(template, "AWS::SQS::Queue")
    for spec in FUNCTIONS:
        assert spec.capability in CAPABILITIES
        (logical,) = [k for k, f in functions.items() if f["Properties"]["Handler"] == spec.handler]
        assert logical.startswith(spec.capability.title()), (spec.name, logical)
        if spec.stream or spec.schedule:
            prefix = spec.capability.title() + spec.name.title().replace("_", "") + "DeadLetters"
            assert [q for q in queues if q.startswith(prefix)], (spec.name, sorted(queues))


def test_dead_letters_outlive_a_replacement_of_their_queue(template) -> None:
    """A queue whose logical id changes (a construct moved) or a deleted stack must not take the failed
    batches with it before they are redriven."""
    queues = resources(template, "AWS::SQS::Queue")
    assert queues
    for logical, queue in queues.items():
        assert queue.get("DeletionPolicy") == "Retain" and queue.get("UpdateReplacePolicy") == "Retain", (
            logical
        )


def queue_logical_id(template: dict[str, Any], spec: QueueSpec) -> str:
    """The queue the functions' environment names by the spec's variable (a ``Ref`` gives its URL)."""
    return table_names_by_env(template)[spec.env]


def queue_policy_statements(template: dict[str, Any], logical: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in resources(template, "AWS::SQS::QueuePolicy").values()
        if {"Ref": logical} in policy["Properties"]["Queues"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


@pytest.mark.parametrize("spec", QUEUES, ids=lambda q: q.id)
def test_queues_match_their_specs_with_encrypted_tls_only_dead_letters(template, spec) -> None:
    queues = resources(template, "AWS::SQS::Queue")
    logical = queue_logical_id(template, spec)
    props = queues[logical]["Properties"]
    assert props["VisibilityTimeout"] == spec.visibility_timeout_seconds
    assert props["MessageRetentionPeriod"] == spec.retention_days * 86400
    assert props["RedrivePolicy"]["maxReceiveCount"] == spec.max_receive_count
    dead_letters = props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    assert dead_letters != logical and dead_letters in queues
    assert (
        queues[dead_letters]["Properties"]["MessageRetentionPeriod"]
        == spec.dead_letter_retention_days * 86400
    )
    for queue in (logical, dead_letters):
        assert queues[queue]["Properties"]["SqsManagedSseEnabled"] is True
        assert queues[queue]["DeletionPolicy"] == "Retain"
        denials = [s for s in queue_policy_statements(template, queue) if s["Effect"] == "Deny"]
        assert [s["Condition"] for s in denials] == [{"Bool": {"aws:SecureTransport": "false"}}], queue
    # where its dead letters go, no other queue's
    redriving = [q for q in queues.values() if "RedrivePolicy" in q["Properties"]]
    targets = [q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0] for q in redriving]
    assert targets.count(dead_letters) == 1


#: What Lambda's SQS event source mapping needs on its queue (CDK grants it to the function's role).
QUEUE_TRIGGER_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueUrl",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
)


def sqs_grants(template: dict[str, Any], spec: FunctionSpec) -> dict[str, set[str]]:
    """SQS actions the function's role grants, by queue logical id (its own dead letters left out)."""
    granted: dict[str, set[str]] = {}
    for statement in policy_statements(template, lambda_for(template, spec.name)):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if not any(a.startswith("sqs:") for a in actions):
            continue
        (queue,) = [statement["Resource"]["Fn::GetAtt"][0]]
        granted.setdefault(queue, set()).update(actions)
    return granted


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda f: f.name)
def test_queue_grants_are_what_the_wiring_declares(template, spec) -> None:
    """Each queue a function sends to, with exactly the declared actions on its ARN; besides, only its
    own dead letters (what CDK grants a trigger's on-failure destination: send, and look the queue up)."""
    granted = sqs_grants(template, spec)
    # a queue trigger reads its queue (what CDK grants an SQS event source), besides the wired actions
    triggered = {}
    if spec.queue is not None:
        triggered[queue_logical_id(template, spec.queue.queue)] = set(QUEUE_TRIGGER_ACTIONS)
    for access in spec.queues:
        logical = queue_logical_id(template, access.queue)
        assert granted.pop(logical) == set(access.actions) | triggered.pop(logical, set()), spec.name
    for logical, actions in triggered.items():
        assert granted.pop(logical) == actions, spec.name
    destination = {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
    assert all(actions == destination for actions in granted.values()), granted
    assert len(granted) <= 1 and all(q.startswith(spec.capability.title()) for q in granted), granted
    env = lambda_for(template, spec.name)["Environment"]["Variables"]
    for queue in QUEUES:
        assert (queue.env in env) is any(a.queue == queue for a in spec.queues)
        if queue.env in env:
            assert env[queue.env] == {"Ref": queue_logical_id(template, queue)}


def test_automations_hand_messages_to_the_delivery_queue(template) -> None:
    for name in ("automation_events", "automation_signals", "timers"):
        assert sqs_grants(template, function(name))[queue_logical_id(template, DELIVERY)] == {
            "sqs:SendMessage"
        }


BUS_FUNCTIONS = [f for f in FUNCTIONS if f.bus]


def test_lifecycle_signals_reach_the_signal_automations() -> None:
    # issue 13: and the lifecycle metrics, which count stage moves and removals from the funnel only (issue
    # 15: and NPS answers)
    assert [f.name for f in BUS_FUNCTIONS if f.bus.bus == "lifecycle"] == ["automation_signals", "metrics"]
    assert function("metrics").bus.detail_types == ("ContactStageChanged", "ContactRemoved", "NpsAnswered")
    assert function("automation_signals").bus.detail_types == AUTOMATION_SIGNALS
    # every signal a trigger type reacts to, and nothing else (a signal no trigger reads costs invocations)
    assert set(AUTOMATION_SIGNALS) == {
        "ContactStageChanged",
        "EngagementQuarterChanged",
        "ScoreThresholdCrossed",
        "SegmentChanged",
        "ChurnRiskChanged",
        # issue 15: an NPS answer recorded
        "NpsAnswered",
    }
    from shared.automations.engine import SIGNAL_KINDS

    assert set(SIGNAL_KINDS.values()) == set(AUTOMATION_SIGNALS)


@pytest.mark.parametrize("spec", BUS_FUNCTIONS, ids=lambda f: f.name)
def test_bus_triggers_match_their_events_with_retries_and_dead_letters(template, spec) -> None:
    """Lifecycle signals on the stack's bus; SES events and the reputation alarms on the default bus."""
    (bus,) = resources(template, "AWS::Events::EventBus")
    logical = function_logical_id(template, spec)
    rules = [
        r["Properties"]
        for r in resources(template, "AWS::Events::Rule").values()
        if any(t["Arn"] == {"Fn::GetAtt": [logical, "Arn"]} for t in r["Properties"].get("Targets", []))
    ]
    (rule,) = rules
    assert rule["EventBusName"] == ({"Ref": bus} if spec.bus.bus == "lifecycle" else "default")
    assert rule["EventPattern"] == spec.bus.event_pattern()
    if spec.bus.bus == "lifecycle":
        assert rule["EventPattern"] == {"source": ["lifecycle"], "detail-type": list(spec.bus.detail_types)}
    assert rule["State"] == "ENABLED"
    (target,) = rule["Targets"]
    assert target["RetryPolicy"] == {
        "MaximumRetryAttempts": spec.bus.retry_attempts,
        "MaximumEventAgeInSeconds": spec.bus.max_event_age_seconds,
    }
    dead_letters = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert dead_letters.startswith(
        spec.capability.title() + spec.name.title().replace("_", "") + "DeadLetters"
    )
    # EventBridge may send there (only from this rule), and nothing else but the function's role
    (rule_logical,) = [
        k for k, r in resources(template, "AWS::Events::Rule").items() if r["Properties"] is rule
    ]
    allows = [s for s in queue_policy_statements(template, dead_letters) if s["Effect"] == "Allow"]
    assert any(
        s["Principal"] == {"Service": "events.amazonaws.com"}
        and s["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Fn::GetAtt": [rule_logical, "Arn"]}
        for s in allows
    ), allows
    permissions = [
        p["Properties"]
        for p in resources(template, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [logical, "Arn"]}
    ]
    assert [p["SourceArn"] for p in permissions] == [{"Fn::GetAtt": [rule_logical, "Arn"]}]


@pytest.mark.parametrize("table", [t for t in TABLES if t.stream], ids=lambda t: t.id)
def test_no_stream_has_more_than_two_readers(template, table) -> None:
    """DynamoDB Streams serves two readers per shard without throttling: a third must wait its turn
    (or a fan-out through Kinesis or the bus)."""
    readers = [spec.name for spec in FUNCTIONS if spec.stream and spec.stream.table == table]
    assert len(readers) <= 2, readers
    logical = table_names_by_env(template)[table.env]
    mappings = [
        m
        for m in resources(template, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [logical, "StreamArn"]}
    ]
    assert len(mappings) == len(readers)
