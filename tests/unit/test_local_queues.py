"""The local SQS trigger hands a queue's messages over as Lambda does: its SQS event, partial batch
failures (what failed comes back, the rest is deleted), and the queue's dead-letter queue after its
``max_receive_count`` receives."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from infra.local.queues import QueuePump, reported_failures
from infra.wiring import DELIVERY_TRIGGER
from shared.adapters.queues import DELIVERY, create_queue_request, dead_letters_request
from tests.conftest import Context


@pytest.fixture
def sqs() -> Iterator[Any]:
    import boto3
    from moto import mock_aws

    with mock_aws():
        yield boto3.client("sqs", region_name="eu-west-1")


def queue(sqs: Any) -> tuple[str, str]:
    """The delivery queue as the local stack creates it (its redrive policy included): (url, DLQ url)."""
    dead = sqs.create_queue(**dead_letters_request(DELIVERY, "q"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return sqs.create_queue(**create_queue_request(DELIVERY, "q", arn))["QueueUrl"], dead


class Failing:
    """A handler that reports the messages whose body is in ``failing`` as failed, recording every batch."""

    def __init__(self, *failing: str, answer: Any = None) -> None:
        self.failing = set(failing)
        self.batches: list[dict[str, Any]] = []
        self.contexts: list[Any] = []
        self.answer = answer

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.batches.append(event)
        self.contexts.append(context)
        if self.answer is not None:
            return self.answer
        failures = [r["messageId"] for r in event["Records"] if r["body"] in self.failing]
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failures]}


def pump(sqs: Any, url: str, handler: Any, **changes: Any) -> tuple[QueuePump, list[Any]]:
    seen: list[Any] = []
    return (
        QueuePump(
            name="delivery",
            sqs=sqs,
            queue_url=url,
            trigger=replace(DELIVERY_TRIGGER, **changes),
            handler=handler,
            context=Context,
            on_batch=lambda records, failed: seen.append(([r["body"] for r in records], failed)),
        ),
        seen,
    )


def bodies(sqs: Any, url: str) -> list[str]:
    found = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
    return sorted(m["Body"] for m in found)


def test_a_batch_arrives_as_lambdas_sqs_event(sqs) -> None:
    url, _ = queue(sqs)
    sqs.send_message(
        QueueUrl=url,
        MessageBody='{"n": 1}',
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "email"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )
    handler = Failing()
    local, _ = pump(sqs, url, handler)
    assert local.drain() == 1
    ((event,),) = [b["Records"] for b in handler.batches]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert (event["eventSource"], event["eventSourceARN"], event["awsRegion"]) == (
        "aws:sqs",
        arn,
        "eu-west-1",
    )
    assert event["body"] == '{"n": 1}' and event["messageId"] and event["receiptHandle"]
    assert event["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "ApproximateFirstReceiveTimestamp", "SenderId"} <= set(event["attributes"])
    assert event["messageAttributes"]["kind"] == {
        "stringValue": "email",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert event["messageAttributes"]["blob"]["binaryValue"] == "AAE="
    assert len(event["md5OfBody"]) == 32
    assert bodies(sqs, url) == [], "handled: deleted"


def test_batches_hold_at_most_batch_size_messages_and_carry_the_functions_timeout(sqs) -> None:
    url, _ = queue(sqs)
    for n in range(7):
        sqs.send_message(QueueUrl=url, MessageBody=str(n))
    handler = Failing()
    local, _ = pump(sqs, url, handler, batch_size=3)
    assert local.drain() == 7
    assert [len(b["Records"]) for b in handler.batches] == [3, 3, 1]
    assert sorted(r["body"] for b in handler.batches for r in b["Records"]) == [str(n) for n in range(7)]


def test_a_failed_message_comes_back_the_others_are_deleted_and_after_max_receives_it_is_dead_lettered(
    sqs,
) -> None:
    url, dead = queue(sqs)
    for body in ("good-1", "poison", "good-2"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    handler = Failing("poison")
    local, seen = pump(sqs, url, handler)
    local.drain()
    # the first batch held all three; then the poison message alone, once per receive
    assert sorted(r["body"] for r in handler.batches[0]["Records"]) == ["good-1", "good-2", "poison"]
    retries = [[r["body"] for r in b["Records"]] for b in handler.batches[1:]]
    assert retries == [["poison"]] * (DELIVERY.max_receive_count - 1)
    counts = [b["Records"][0]["attributes"]["ApproximateReceiveCount"] for b in handler.batches[1:]]
    assert counts == [str(n) for n in range(2, DELIVERY.max_receive_count + 1)]
    assert bodies(sqs, url) == [], "the good ones deleted, the poison one moved"
    assert bodies(sqs, dead) == ["poison"]
    assert [failed != set() for _, failed in seen] == [True] * DELIVERY.max_receive_count
    assert local.drain() == 0, "nothing left"


def test_a_message_that_fails_once_is_handled_on_its_next_receive(sqs) -> None:
    url, dead = queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="flaky")
    handler = Failing("flaky")
    original = handler.__call__

    def once(event: dict[str, Any], context: Any) -> Any:
        answer = original(event, context)
        handler.failing.clear()
        return answer

    local, _ = pump(sqs, url, once)
    assert local.drain() == 2
    assert bodies(sqs, url) == [] and bodies(sqs, dead) == []


def test_a_visibility_the_function_set_itself_is_kept(sqs) -> None:
    url, _ = queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="webhook")

    def backing_off(event: dict[str, Any], context: Any) -> Any:
        (record,) = event["Records"]
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=600
        )
        return {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}

    local, _ = pump(sqs, url, backing_off)
    assert local.drain() == 1, "hidden for its backoff: not received again at once"
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"


def test_a_function_that_raises_fails_the_whole_batch(sqs) -> None:
    url, dead = queue(sqs)
    for body in ("a", "b"):
        sqs.send_message(QueueUrl=url, MessageBody=body)

    def crashing(event: dict[str, Any], context: Any) -> Any:
        raise RuntimeError("a defect")

    local, _ = pump(sqs, url, crashing)
    local.drain()
    assert local.invocations == DELIVERY.max_receive_count
    assert bodies(sqs, dead) == ["a", "b"]


@pytest.mark.parametrize(
    ("answer", "failed"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "m2"}]}, {"m2"}),
        ({"batchItemFailures": [{"itemIdentifier": "elsewhere"}]}, {"m1", "m2"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, {"m1", "m2"}),
        ({"batchItemFailures": [{}]}, {"m1", "m2"}),
        ("not a dict", {"m1", "m2"}),
    ],
)
def test_what_counts_as_failed_in_an_answer(answer: Any, failed: set[str]) -> None:
    assert reported_failures(answer, {"m1", "m2"}) == failed


def test_the_batch_observer_sees_the_requests_and_what_failed(sqs) -> None:
    url, _ = queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"id": "x"}))
    local, seen = pump(sqs, url, Failing())
    local.drain()
    assert seen == [(['{"id": "x"}'], set())]
