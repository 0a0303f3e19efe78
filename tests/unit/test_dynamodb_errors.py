"""What counts as "try again later": the one classification every store and the publisher use."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoRegionError,
    ParamValidationError,
    ReadTimeoutError,
)

from shared.adapters.dynamodb import is_transient, retried
from shared.errors import DependencyUnavailable


def client_error(code: str, reasons: list[str] | None = None) -> ClientError:
    response: dict = {"Error": {"Code": code, "Message": "m"}}
    if reasons is not None:
        response["CancellationReasons"] = [{"Code": r} for r in reasons]
    return ClientError(response, "TransactWriteItems")


@pytest.mark.parametrize(
    "error",
    [
        client_error("ProvisionedThroughputExceededException"),
        client_error("TransactionCanceledException", ["None", "TransactionConflict"]),
        EndpointConnectionError(endpoint_url="https://dynamodb"),
        ConnectTimeoutError(endpoint_url="https://dynamodb"),
        ReadTimeoutError(endpoint_url="https://dynamodb"),
    ],
    ids=["throttled", "conflict", "unreachable", "connect-timeout", "read-timeout"],
)
def test_throttles_conflicts_and_the_network_are_worth_a_retry(error) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        client_error("ValidationException"),
        client_error("TransactionCanceledException", ["ConditionalCheckFailed", "TransactionConflict"]),
        ParamValidationError(report="bad parameter"),
        NoRegionError(),
    ],
    ids=["validation", "condition", "bad-parameter", "no-region"],
)
def test_our_own_mistakes_and_failed_conditions_are_not(error) -> None:
    """A parameter botocore refuses or a missing region is a bug: retrying it for ever as a 503 hides it."""
    assert not is_transient(error)


def test_a_lasting_transient_failure_becomes_a_503_and_a_mistake_is_raised_at_once() -> None:
    calls: list[int] = []

    def throttled() -> None:
        calls.append(1)
        raise client_error("ThrottlingException")

    with pytest.raises(DependencyUnavailable):
        retried(throttled, "the contact store", attempts=3, sleep=lambda _: None)
    assert len(calls) == 3

    def mistaken() -> None:
        calls.append(1)
        raise ParamValidationError(report="bad parameter")

    calls.clear()
    with pytest.raises(ParamValidationError):
        retried(mistaken, "the contact store", attempts=3, sleep=lambda _: None)
    assert len(calls) == 1


def test_the_tests_refuse_what_dynamodb_refuses_and_remember_it() -> None:
    """moto takes any expression and any number of transaction items; the tests' hook does not."""
    from types import SimpleNamespace

    from tests.conftest import LIMIT_VIOLATIONS, dynamodb_limits

    model = SimpleNamespace(name="UpdateItem")
    dynamodb_limits({"UpdateExpression": "SET a = :a"}, model)
    with pytest.raises(ClientError, match="ValidationException"):
        dynamodb_limits({"UpdateExpression": "SET " + "a = :a, " * 600}, model)
    with pytest.raises(ClientError):
        dynamodb_limits({"TransactItems": [{"Put": {}}] * 101}, SimpleNamespace(name="TransactWriteItems"))
    assert len(LIMIT_VIOLATIONS) == 2
    LIMIT_VIOLATIONS.clear()  # seen and expected: the autouse check after this test stays quiet
