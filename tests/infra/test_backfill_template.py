"""The back-fills as deployed (issue 13): state machines started on demand (no schedule), a Distributed
Map over the scan segments each, the only Scans of a table (each back-fill step on its own table), and
the admin allowed to start and read their runs, nothing more."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import DeploymentConfig
from infra.wiring import (
    BACKFILL_SCANS,
    BACKFILLS,
    CONTACTS_BACKFILL,
    FUNCTIONS,
    METRICS_BACKFILL,
    PURCHASES_BACKFILL,
    SETTLE_MARGIN,
    WORKFLOWS,
    Workflow,
    function,
)
from shared.adapters.backfill_runs import state_machine_env
from tests.conftest import lambda_environment, resources, table_names_by_env
from tests.infra.test_analytics_template import definition, failed_runs_queue, invoked, state_machine
from tests.infra.test_template import function_logical_id, lambda_for, policy_statements

SEGMENTS = DeploymentConfig().backfill_scan_segments


@pytest.mark.parametrize("flow", BACKFILLS, ids=lambda f: f.name)
def test_a_backfill_is_a_state_machine_with_no_schedule(template, flow: Workflow) -> None:
    logical, machine = state_machine(template, flow)
    assert machine["Properties"]["StateMachineType"] == "STANDARD"
    assert not flow.scheduled and flow.started_by == ("admin",)
    starters = [
        rule
        for rule in resources(template, "AWS::Events::Rule").values()
        if any(target["Arn"] == {"Ref": logical} for target in rule["Properties"].get("Targets", []))
    ]
    assert starters == [], "nothing starts it on a schedule or an event"
    with pytest.raises(ValueError, match="started on demand"):
        _ = flow.expression
    # a failed run is set aside and alarms, as the nightly's does
    assert failed_runs_queue(template, flow) in template["Resources"]
    alarms = [
        a
        for a in resources(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Namespace") == "AWS/States"
        and a["Properties"]["Dimensions"][0]["Value"] == {"Ref": logical}
    ]
    assert len(alarms) == 2
    name = flow.name.title().replace("_", "")
    assert template["Outputs"][f"{name}StateMachineArn"]["Value"] == {"Ref": logical}
    assert (
        f"POST /admin/backfills/{flow.name}" in template["Outputs"][f"{name}StateMachineArn"]["Description"]
    )


@pytest.mark.parametrize("flow", BACKFILLS, ids=lambda f: f.name)
def test_a_backfill_runs_its_step_once_per_scan_segment_on_a_distributed_map(template, flow) -> None:
    states = definition(template, flow)["States"]
    (step,) = flow.steps
    (state,) = [s for s in states.values() if s["Type"] == "Map"]
    assert state["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert state["Items"] == list(range(SEGMENTS)) and SEGMENTS == 32
    assert state["ItemSelector"] == {
        "time": "{% $states.input.time %}",
        "segment": "{% $states.context.Map.Item.Value %}",
        "segments": SEGMENTS,
        # the run's name: a step knows which segment's save started it (``seg-<id>-v<version>``)
        "run": "{% $states.context.Execution.Name %}",
    }
    assert state["MaxConcurrency"] == step.each.max_concurrency == 16
    (task,) = state["ItemProcessor"]["States"].values()
    assert invoked(task) == function_logical_id(template, function(step.function))


def test_only_the_backfill_steps_scan_a_table_each_their_own(template) -> None:
    tables = table_names_by_env(template)
    scans: dict[str, list[Any]] = {}
    for spec in FUNCTIONS:
        for statement in policy_statements(template, lambda_for(template, spec.name)):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if "dynamodb:Scan" in actions:
                scans.setdefault(spec.name, []).append(statement["Resource"])
    contacts, events = tables["CONTACTS_TABLE_NAME"], tables["EVENTS_TABLE_NAME"]
    assert scans == {
        "analytics_extract": [{"Fn::Join": ["", [{"Fn::GetAtt": [events, "Arn"]}, "/index/byPurchase"]]}],
        "backfill_contacts": [{"Fn::GetAtt": [contacts, "Arn"]}],
        "backfill_purchases": [{"Fn::GetAtt": [events, "Arn"]}],
        "backfill_metrics": [{"Fn::GetAtt": [contacts, "Arn"]}],
        # issue 15: the nightly recommendations pass's extract, a workflow step too
        "recommendations_extract": [{"Fn::GetAtt": [contacts, "Arn"]}],
    }
    assert set(BACKFILL_SCANS) == {"backfill_contacts", "backfill_purchases", "backfill_metrics"}
    for name in BACKFILL_SCANS:  # a workflow's step, invoked by nothing else
        spec = function(name)
        assert not (spec.routes or spec.stream or spec.schedule or spec.bus or spec.queue), name
        assert any(step.function == name for flow in WORKFLOWS for step in flow.steps)


def test_the_contacts_backfill_has_the_stage_functions_grants_and_environment(template) -> None:
    """It runs the stage function's evaluation: the same table actions (plus its Scan), the same bus and
    lead channels, the same settings."""
    stage, backfill = function("stage_transition"), function("backfill_contacts")
    assert backfill.tables[: len(stage.tables)] == stage.tables and backfill.services == stage.services
    values = {logical: logical for logical in template["Resources"]}
    stage_env = lambda_environment(template, stage, values)
    backfill_env = lambda_environment(template, backfill, values)
    ignored = {"POWERTOOLS_SERVICE_NAME"}
    assert {k: v for k, v in backfill_env.items() if k not in ignored} == {
        k: v for k, v in stage_env.items() if k not in ignored
    }


def test_the_admin_may_start_and_read_the_backfill_runs_and_nothing_else_may(template) -> None:
    machines = {flow.name: state_machine(template, flow)[0] for flow in BACKFILLS}
    for spec in FUNCTIONS:
        statements = [
            s
            for s in policy_statements(template, lambda_for(template, spec.name))
            if "states:" in json.dumps(s["Action"])
        ]
        if spec.name != "admin":
            assert statements == [], spec.name
            continue
        starts = sorted(
            json.dumps(s["Resource"]) for s in statements if s["Action"] == "states:StartExecution"
        )
        assert starts == sorted(json.dumps({"Ref": m}) for m in machines.values())
        reads = [s for s in statements if s["Action"] == "states:DescribeExecution"]
        assert len(reads) == len(BACKFILLS) == 3 and len(statements) == 2 * len(BACKFILLS)
        for read, machine in zip(
            sorted(reads, key=lambda s: json.dumps(s)), sorted(machines.values()), strict=True
        ):
            text = json.dumps(read["Resource"])
            assert ":execution:" in text and f'"Ref": "{machine}"' in text and text.endswith(':*"]]}')
    admin = lambda_for(template, "admin")["Environment"]["Variables"]
    for flow in BACKFILLS:
        assert admin[state_machine_env(flow.name)] == {"Ref": machines[flow.name]}


def test_the_admin_settings_name_the_state_machines_as_the_stack_does(template) -> None:
    from shared.settings import BackfillStartSettings

    values = {
        logical: f"arn:aws:states:eu-west-1:123456789012:stateMachine:{logical}"
        for logical in template["Resources"]
    }
    env = lambda_environment(template, function("admin"), values)
    found = BackfillStartSettings.model_validate(env).state_machines
    assert set(found) == {flow.name for flow in BACKFILLS}
    for flow in BACKFILLS:
        assert found[flow.name] == env[state_machine_env(flow.name)]


def test_the_contacts_backfill_waits_out_the_stage_functions_segment_cache_before_evaluating(
    template,
) -> None:
    """The stage function keeps its segment book ``rulesCacheSeconds``: a stream evaluation with a book
    older than the save would re-apply the old definition over the back-fill's work. The run first waits
    that long and a margin, so every instance then holds a book at least as new as the save."""
    config = DeploymentConfig()
    spec = definition(template, CONTACTS_BACKFILL)
    first = spec["States"][spec["StartAt"]]
    assert first["Type"] == "Wait"
    assert first["Seconds"] == config.rules_cache_seconds + SETTLE_MARGIN.total_seconds() == 35
    assert spec["States"][first["Next"]]["Type"] == "Map"
    assert "Output" not in first, "the run's input (its time) goes on to the map as it is"
    assert CONTACTS_BACKFILL.settle_seconds(config.model_copy(update={"rules_cache_seconds": 120})) == 125
    assert CONTACTS_BACKFILL.settle_seconds(config.model_copy(update={"rules_cache_seconds": 0})) == 0, (
        "locally the cache is 0: no wait"
    )
    purchases = definition(template, PURCHASES_BACKFILL)
    assert purchases["States"][purchases["StartAt"]]["Type"] == "Map", "nothing cached to wait out"


def test_the_metrics_backfill_scans_the_contacts_table_and_writes_only_the_metrics_table(template) -> None:
    """Its step reads the stage history (a Scan of the contacts table itself) and counts it as the metrics
    function counts (the same grants on the metrics table): no other table, no index, no bus; its run
    starts counting at once (nothing cached to wait out)."""
    tables = table_names_by_env(template)
    contacts, metrics = tables["CONTACTS_TABLE_NAME"], tables["METRICS_TABLE_NAME"]
    granted: dict[str, set[str]] = {}
    for statement in policy_statements(template, lambda_for(template, "backfill_metrics")):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            if action.startswith("dynamodb:"):
                resources_ = statement["Resource"]
                for resource in resources_ if isinstance(resources_, list) else [resources_]:
                    granted.setdefault(json.dumps(resource), set()).add(action)
    metering = function("metrics").tables[0].actions
    assert granted == {
        json.dumps({"Fn::GetAtt": [contacts, "Arn"]}): {"dynamodb:Scan"},
        json.dumps({"Fn::GetAtt": [metrics, "Arn"]}): set(metering),
    }
    spec = function("backfill_metrics")
    assert spec.services == () and spec.queues == () and spec.buckets == ()
    env = lambda_environment(template, spec, {logical: logical for logical in template["Resources"]})
    assert {k for k in env if k.endswith("_TABLE_NAME")} == {"CONTACTS_TABLE_NAME", "METRICS_TABLE_NAME"}
    flow = definition(template, METRICS_BACKFILL)
    assert flow["States"][flow["StartAt"]]["Type"] == "Map", "nothing cached to wait out"
