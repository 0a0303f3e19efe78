"""The campaigns function in the synthesized template: its one-minute schedule, its grants, and what the
functions that count campaign results may do (issue 13)."""

from __future__ import annotations

from infra.wiring import function
from shared.adapters.queues import DELIVERY
from shared.adapters.tables import CONFIG, CONTACTS
from tests.conftest import resources
from tests.infra.test_template import (
    dynamodb_grants,
    function_logical_id,
    lambda_for,
    queue_logical_id,
    sqs_grants,
)


def test_the_planner_runs_every_minute_without_retries(template) -> None:
    planner = {"Fn::GetAtt": [function_logical_id(template, function("campaigns")), "Arn"]}
    (rule,) = [
        r
        for r in resources(template, "AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"]
        and any(t["Arn"] == planner for t in r["Properties"]["Targets"])
    ]
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    (target,) = rule["Properties"]["Targets"]
    assert "DeadLetterConfig" in target
    (config,) = [
        c["Properties"]
        for c in resources(template, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": function_logical_id(template, function("campaigns"))}
    ]
    # a failed run is not retried: the next minute's resumes from the saved cursor
    assert (config["MaximumRetryAttempts"], config["MaximumEventAgeInSeconds"]) == (0, 60)


def test_the_planner_reads_states_writes_exposures_and_queues_requests_and_scans_nothing(template) -> None:
    spec = function("campaigns")
    granted = dynamodb_grants(template, spec)
    assert granted[CONFIG.env] == {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
    }
    assert granted[CONTACTS.env] == {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"}
    assert not any("dynamodb:Scan" in actions for actions in granted.values())
    assert sqs_grants(template, spec)[queue_logical_id(template, DELIVERY)] == {"sqs:SendMessage"}
    env = lambda_for(template, "campaigns")["Environment"]["Variables"]
    assert {CONFIG.env, CONTACTS.env, DELIVERY.env} <= set(env)


def test_the_functions_that_count_results_may_write_exposures_and_counters(template) -> None:
    """Delivery (sent), feedback (delivered, opened, clicked) and automation_events (converted,
    unsubscribed): a transaction of two UpdateItems on the contacts table; automations with a holdout put
    exposures; delivery reads a campaign's status on the config table."""
    for name in ("delivery", "feedback", "automation_events", "automation_signals", "timers"):
        assert "dynamodb:UpdateItem" in dynamodb_grants(template, function(name))[CONTACTS.env], name
    for name in ("automation_events", "automation_signals", "timers"):
        assert "dynamodb:PutItem" in dynamodb_grants(template, function(name))[CONTACTS.env], name
    assert "dynamodb:Query" in dynamodb_grants(template, function("automation_events"))[CONTACTS.env]
    assert "dynamodb:GetItem" in dynamodb_grants(template, function("delivery"))[CONFIG.env]
