"""The back-fills' grants, enforced locally as their roles allow (issue 13): each step Scans its own table
and no other, and only the admin starts and reads the back-fill runs, of those state machines only."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from infra.config import DeploymentConfig, environment
from infra.local.permissions import LocalPolicy
from infra.wiring import BACKFILLS, FUNCTIONS, function
from shared.adapters.backfill_runs import execution_arn, state_machine_env
from shared.adapters.tables import TABLES as ALL_TABLES

#: every table of the stack, by id
NAMES = {table.id: f"t-{table.id}" for table in ALL_TABLES}
MACHINES = {
    flow.name: f"arn:aws:states:eu-west-1:123456789012:stateMachine:lifecycle-{flow.name}"
    for flow in BACKFILLS
}
OTHER = "arn:aws:states:eu-west-1:123456789012:stateMachine:lifecycle-nightly_analytics"


def policy(name: str) -> LocalPolicy:
    env = environment(
        function(name),
        NAMES,
        DeploymentConfig(),
        {"events": "bus", "sns": "arn:aws:sns:eu-west-1:123456789012:leads"},
        {"delivery": "https://sqs.eu-west-1.amazonaws.com/123456789012/t-delivery"},
        {"analytics": "t-analytics"},
        MACHINES,
    )
    return LocalPolicy(function(name), env)


def denied(policy: LocalPolicy, service: str, operation: str, **params) -> str:
    with pytest.raises(ClientError) as raised:
        policy.check(service, operation, params)
    assert "not authorized to perform" in raised.value.response["Error"]["Message"]
    return raised.value.response["Error"]["Code"]


def test_each_backfill_step_scans_its_own_table_and_nothing_else_scans_a_table() -> None:
    contacts, purchases = policy("backfill_contacts"), policy("backfill_purchases")
    contacts.check("dynamodb", "Scan", {"TableName": "t-contacts", "Segment": 3, "TotalSegments": 32})
    purchases.check("dynamodb", "Scan", {"TableName": "t-events", "Segment": 3, "TotalSegments": 32})
    purchases.check("dynamodb", "UpdateItem", {"TableName": "t-events"})
    assert denied(contacts, "dynamodb", "Scan", TableName="t-events") == "AccessDeniedException"
    denied(purchases, "dynamodb", "Scan", TableName="t-contacts")
    denied(purchases, "dynamodb", "PutItem", TableName="t-events")
    denied(purchases, "dynamodb", "GetItem", TableName="t-contacts")
    denied(contacts, "dynamodb", "Scan", TableName="t-contacts", IndexName="byDue")
    # issue 15: the nightly recommendations' extract step Scans the contacts' profiles, and nothing else
    extract = policy("recommendations_extract")
    extract.check("dynamodb", "Scan", {"TableName": "t-contacts", "Segment": 3, "TotalSegments": 32})
    for table in ("t-events", "t-config", "t-rates"):
        denied(extract, "dynamodb", "Scan", TableName=table)
    for spec in FUNCTIONS:
        if spec.name in (
            "backfill_contacts",
            "backfill_purchases",
            "backfill_metrics",
            "recommendations_extract",
        ):
            continue
        for table in ("t-contacts", "t-events", "t-config", "t-rates"):
            denied(policy(spec.name), "dynamodb", "Scan", TableName=table)


def test_the_contacts_backfill_does_what_the_stage_function_does() -> None:
    contacts = policy("backfill_contacts")
    contacts.check("dynamodb", "GetItem", {"TableName": "t-contacts"})
    contacts.check(
        "dynamodb", "TransactWriteItems", {"TransactItems": [{"Update": {"TableName": "t-contacts"}}]}
    )
    contacts.check("events", "PutEvents", {"Entries": [{"EventBusName": "bus"}]})


def test_only_the_admin_starts_and_reads_backfill_runs_of_their_state_machines_only() -> None:
    admin = policy("admin")
    for flow in BACKFILLS:
        machine = MACHINES[flow.name]
        admin.check("states", "StartExecution", {"stateMachineArn": machine, "name": "x", "input": "{}"})
        admin.check("states", "DescribeExecution", {"executionArn": execution_arn(machine, "segment-vip-v1")})
    assert denied(admin, "states", "StartExecution", stateMachineArn=OTHER) == "AccessDeniedException"
    denied(admin, "states", "DescribeExecution", executionArn=execution_arn(OTHER, "x"))
    denied(admin, "states", "StopExecution", executionArn=execution_arn(MACHINES["contacts_backfill"], "x"))
    denied(admin, "states", "ListExecutions", stateMachineArn=MACHINES["contacts_backfill"])
    for spec in FUNCTIONS:
        if spec.name != "admin":
            denied(
                policy(spec.name), "states", "StartExecution", stateMachineArn=MACHINES["contacts_backfill"]
            )


def test_the_state_machines_reach_the_admin_by_environment_variable() -> None:
    env = environment(function("admin"), NAMES, DeploymentConfig(), {}, {}, {}, MACHINES)
    assert {state_machine_env(name): arn for name, arn in MACHINES.items()}.items() <= env.items()
    assert "CONTACTS_BACKFILL_STATE_MACHINE_ARN" in env
    assert not any(
        k.endswith("_STATE_MACHINE_ARN")
        for k in environment(function("stage_transition"), NAMES, DeploymentConfig(), {}, {}, {}, MACHINES)
    )


def test_the_metrics_backfill_scans_the_contacts_table_and_counts_as_the_metrics_function_does() -> None:
    """Scan of the contacts table itself (no index), and the metrics function's writes of counters and
    markers (one transaction, no read): nothing else."""
    history, metering = policy("backfill_metrics"), policy("metrics")
    history.check("dynamodb", "Scan", {"TableName": "t-contacts", "Segment": 3, "TotalSegments": 32})
    for operation in ("PutItem", "UpdateItem"):
        history.check("dynamodb", operation, {"TableName": "t-metrics"})
        metering.check("dynamodb", operation, {"TableName": "t-metrics"})
    history.check(
        "dynamodb",
        "TransactWriteItems",
        {"TransactItems": [{"Put": {"TableName": "t-metrics"}}, {"Update": {"TableName": "t-metrics"}}]},
    )
    assert denied(history, "dynamodb", "Scan", TableName="t-contacts", IndexName="byDue") == (
        "AccessDeniedException"
    )
    denied(history, "dynamodb", "Scan", TableName="t-metrics")
    denied(history, "dynamodb", "Scan", TableName="t-events")
    denied(history, "dynamodb", "Query", TableName="t-metrics")
    for operation in ("GetItem", "Query", "PutItem", "UpdateItem"):
        denied(history, "dynamodb", operation, TableName="t-contacts")
    denied(history, "dynamodb", "TransactWriteItems", TransactItems=[{"Put": {"TableName": "t-contacts"}}])
    denied(history, "events", "PutEvents", Entries=[{"EventBusName": "bus"}])
