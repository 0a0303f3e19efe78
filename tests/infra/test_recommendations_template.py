"""Issue 15: the nightly recommendations pass as deployed: its own state machine running the wiring's three
steps in order (the extract per scan segment, the write per part of the fit's model), on its schedule, and
each step's exact grants (the extract Scans the contacts table and writes the staging bucket; the fit reads
and writes the bucket; the write reads the bucket and puts items into the config table, nothing else)."""

from __future__ import annotations

import json

from infra.config import DeploymentConfig
from infra.wiring import NIGHTLY_RECOMMENDATIONS, RECOMMENDATION_SCANS, EachItem, EachSegment, function
from tests.conftest import resources
from tests.infra.test_analytics_template import definition, grants_of, invoked, state_machine
from tests.infra.test_template import function_logical_id

SEGMENTS = DeploymentConfig().analytics_scan_segments
FLOW = NIGHTLY_RECOMMENDATIONS


def test_the_state_machine_runs_the_three_steps_in_order_each_invoking_its_function(template) -> None:
    flow = definition(template, FLOW)
    states = flow["States"]
    extract, fit, write = FLOW.steps
    assert isinstance(extract.each, EachSegment) and fit.each is None and isinstance(write.each, EachItem)
    names = ["RecommendationsExtract", "RecommendationsFit", "RecommendationsWrite"]
    assert flow["StartAt"] == names[0]
    assert [states[a]["Next"] for a in names[:-1]] == names[1:] and states[names[-1]]["End"] is True
    assert states["RecommendationsExtract"]["Items"] == list(range(SEGMENTS))
    assert states["RecommendationsWrite"]["Items"] == "{% $states.input.recommendations_fit.parts %}"
    assert states["RecommendationsWrite"]["Output"] == (
        "{% $merge([$states.input, {'recommendations_write': {'parts': $count($states.result)}}]) %}"
    )
    for name, step in zip(names, FLOW.steps, strict=True):
        state = states[name]
        task = state if step.each is None else next(iter(state["ItemProcessor"]["States"].values()))
        assert invoked(task) == function_logical_id(template, function(step.function))
    assert flow["TimeoutSeconds"] == FLOW.timeout.total_seconds()


def test_the_schedule_starts_a_run_at_three(template) -> None:
    logical, _ = state_machine(template, FLOW)
    (rule,) = [
        r["Properties"]
        for r in resources(template, "AWS::Events::Rule").values()
        if any(t["Arn"] == {"Ref": logical} for t in r["Properties"].get("Targets", []))
    ]
    assert rule["ScheduleExpression"] == FLOW.expression == "cron(0 3 * * ? *)"


def test_the_state_machine_may_invoke_only_its_three_functions(template) -> None:
    _, machine = state_machine(template, FLOW)
    role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    invokes = [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "lambda" in json.dumps(statement["Action"])
    ]
    targets = {r["Fn::GetAtt"][0] if "Fn::GetAtt" in r else r["Fn::Join"][1][0]["Fn::GetAtt"][0]
               for s in invokes for r in s["Resource"]}  # fmt: skip
    assert targets == {function_logical_id(template, function(step.function)) for step in FLOW.steps}


def test_each_step_has_exactly_its_grants(template) -> None:
    assert grants_of(template, "recommendations_extract") == sorted(
        [(["dynamodb:Scan"], "<contacts>", None), (["s3:PutObject"], "<bucket>/analytics/*", None)], key=str
    )
    assert grants_of(template, "recommendations_fit") == sorted(
        [
            (["s3:ListBucket"], "<bucket>", {"StringLike": {"s3:prefix": ["analytics/*"]}}),
            (["s3:GetObject", "s3:PutObject"], "<bucket>/analytics/*", None),
        ],
        key=str,
    )
    assert grants_of(template, "recommendations_write") == sorted(
        [
            (["dynamodb:BatchWriteItem"], "<config>", None),
            (["s3:ListBucket"], "<bucket>", {"StringLike": {"s3:prefix": ["analytics/*"]}}),
            (["s3:GetObject"], "<bucket>/analytics/*", None),
        ],
        key=str,
    )
    assert set(RECOMMENDATION_SCANS) == {"recommendations_extract"}
    spec = function("recommendations_extract")
    assert not (spec.routes or spec.stream or spec.schedule or spec.bus or spec.queue), (
        "a workflow's step only"
    )
