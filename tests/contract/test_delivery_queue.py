"""The delivery queue: every request handed over whole, in batches; none too large sent truncated.
The same assertions on the fake and on moto's SQS."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shared.delivery.requests import DeliveryRequest
from shared.errors import PayloadTooLarge
from tests.contract.helpers import NOW
from tests.fakes import MemoryDeliveryQueue


class SqsSide:
    def __init__(self) -> None:
        from shared.adapters import aws
        from shared.adapters.delivery_queue import SqsDeliveryQueue

        self.sqs = aws.client("sqs")
        self.url = self.sqs.create_queue(QueueName="contract-delivery")["QueueUrl"]
        self.queue = SqsDeliveryQueue(self.sqs, queue_url=self.url)

    def enqueue(self, requests: Any) -> None:
        self.queue.enqueue(requests)

    @property
    def sent(self) -> list[DeliveryRequest]:
        found = []
        while messages := self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                found.append(DeliveryRequest.model_validate_json(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return found


@pytest.fixture
def queue(implementation) -> Iterator[Any]:
    if implementation == "fake":
        yield MemoryDeliveryQueue()
        return
    from moto import mock_aws

    from shared.adapters import aws

    with mock_aws():
        aws.reset()
        yield SqsSide()
        aws.reset()


def request(number: int, text: str = "Welcome") -> DeliveryRequest:
    return DeliveryRequest(
        id=f"user_id:ann#welcome#o#{number}",
        contact_id="user_id:ann",
        automation="welcome",
        version=1,
        occurrence="o",
        step=number,
        channel="email",
        at=NOW,
        subject="Hi",
        text=text,
        values={"n": number},
    )


def test_every_request_is_handed_over_whole(queue):
    requests = [request(n) for n in range(23)]
    queue.enqueue(requests)
    assert sorted(queue.sent, key=lambda r: r.step) == requests


def test_large_requests_go_in_batches_under_the_size_limit(queue):
    requests = [request(n, "x" * 100_000) for n in range(5)]  # five fit no single batch
    queue.enqueue(requests)
    assert sorted(queue.sent, key=lambda r: r.step) == requests


def test_a_request_over_256_kb_is_refused_and_nothing_is_sent(queue):
    with pytest.raises(PayloadTooLarge):
        queue.enqueue([request(0), request(1, "x" * 262_144)])
    assert queue.sent == []


def test_nothing_to_hand_over(queue):
    queue.enqueue([])
    assert queue.sent == []
