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


# --- Redeliveries: a received message handed out again only after a delay ------------------------------


class FakeRedeliveries:
    """The fake's side: a message received, and hidden while the last postponement of its receipt
    (as recorded) is more than nothing."""

    def __init__(self) -> None:
        self.queue = MemoryDeliveryQueue()

    def received(self) -> str:
        (only,) = self.queue.sent
        return f"receipt-{only.id}"

    def hidden(self, receipt: str) -> bool:
        seconds = [s for r, s in self.queue.postponed if r == receipt]
        return bool(seconds) and seconds[-1] > 0


class SqsRedeliveries(SqsSide):
    """moto's side: a queue whose messages come back at once unless postponed."""

    def __init__(self) -> None:
        from shared.adapters.delivery_queue import SqsDeliveryQueue

        super().__init__()
        self.sqs.set_queue_attributes(QueueUrl=self.url, Attributes={"VisibilityTimeout": "0"})
        self.queue = SqsDeliveryQueue(self.sqs, queue_url=self.url)

    def received(self) -> str:
        (message,) = self.sqs.receive_message(QueueUrl=self.url)["Messages"]
        return message["ReceiptHandle"]

    def hidden(self, receipt: str) -> bool:
        return "Messages" not in self.sqs.receive_message(QueueUrl=self.url)


@pytest.fixture
def redeliveries(implementation) -> Iterator[Any]:
    if implementation == "fake":
        yield FakeRedeliveries()
        return
    from moto import mock_aws

    from shared.adapters import aws

    with mock_aws():
        aws.reset()
        yield SqsRedeliveries()
        aws.reset()


def test_a_postponed_message_stays_hidden_and_a_delay_below_nothing_is_none(redeliveries):
    redeliveries.queue.enqueue([request(0)])
    receipt = redeliveries.received()
    redeliveries.queue.postpone(receipt, 900)  # a webhook's longest backoff
    assert redeliveries.hidden(receipt)
    # below nothing: bounded, not refused, and handed out again at once
    redeliveries.queue.postpone(receipt, -5)
    assert not redeliveries.hidden(receipt)
