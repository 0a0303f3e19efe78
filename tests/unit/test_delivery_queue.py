"""The SQS delivery queue's batch failures: what a batch did not take is sent again once, then a 503."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.adapters.delivery_queue import SqsDeliveryQueue, batches
from shared.delivery.requests import DeliveryRequest
from shared.errors import DependencyUnavailable


class FlakySqs:
    """Fails the entries named, for as many calls as given; records what each call carried."""

    def __init__(self, failing: set[str], times: int) -> None:
        self.failing, self.times, self.calls = failing, times, []

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, str]]) -> dict:
        self.calls.append([e["Id"] for e in Entries])
        if self.times:
            self.times -= 1
            failed = [
                {"Id": e["Id"], "SenderFault": False, "Code": "InternalError"}
                for e in Entries
                if e["Id"] in self.failing
            ]
            return {"Successful": [], "Failed": failed}
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


def requests(count: int) -> list[DeliveryRequest]:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        DeliveryRequest(
            id=f"c#a#o#{n}",
            contact_id="c",
            automation="a",
            version=1,
            occurrence="o",
            step=n,
            channel="sms",
            at=at,
            text="hi",
        )
        for n in range(count)
    ]


def test_failed_entries_are_sent_again_once():
    sqs = FlakySqs({"1", "4"}, times=1)
    SqsDeliveryQueue(sqs, queue_url="q").enqueue(requests(12))
    assert sqs.calls == [[str(n) for n in range(10)], ["1", "4"], ["0", "1"]]


def test_entries_failing_twice_are_a_503_naming_how_many():
    sqs = FlakySqs({"1", "4"}, times=2)
    with pytest.raises(DependencyUnavailable, match="2 of 10"):
        SqsDeliveryQueue(sqs, queue_url="q").enqueue(requests(3) + requests(7))


def test_batches_hold_ten_messages_and_256_kb_at_most():
    assert [len(b) for b in batches(["x"] * 23)] == [10, 10, 3]
    assert [len(b) for b in batches(["x" * 100_000] * 5)] == [2, 2, 1]


class RecordingSqs:
    def __init__(self) -> None:
        self.calls: list[dict] = []

    def change_message_visibility(self, **call) -> dict:
        self.calls.append(call)
        return {}


def test_postponing_a_message_sets_its_visibility_within_sqs_limits():
    sqs = RecordingSqs()
    queue = SqsDeliveryQueue(sqs, queue_url="q")
    queue.postpone("receipt-1", 120)
    queue.postpone("receipt-2", 10**6)
    assert sqs.calls == [
        {"QueueUrl": "q", "ReceiptHandle": "receipt-1", "VisibilityTimeout": 120},
        # SQS's 12 hours count from the receive, a moment before: a margin under them
        {"QueueUrl": "q", "ReceiptHandle": "receipt-2", "VisibilityTimeout": 12 * 60 * 60 - 15 * 60},
    ]


def test_a_postponed_message_stays_hidden_until_then():
    import boto3
    from moto import mock_aws

    with mock_aws():
        sqs = boto3.client("sqs", region_name="eu-west-1")
        url = sqs.create_queue(QueueName="delivery", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
        SqsDeliveryQueue(sqs, queue_url=url).enqueue(requests(1))
        (message,) = sqs.receive_message(QueueUrl=url)["Messages"]
        SqsDeliveryQueue(sqs, queue_url=url).postpone(message["ReceiptHandle"], 900)
        assert "Messages" not in sqs.receive_message(QueueUrl=url)
        SqsDeliveryQueue(sqs, queue_url=url).postpone(message["ReceiptHandle"], 0)
        assert len(sqs.receive_message(QueueUrl=url)["Messages"]) == 1
