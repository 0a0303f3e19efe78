"""The SQS queues between functions, declared once (as ``shared.adapters.tables`` declares the tables).

The CDK stack builds each queue with its dead-letter queue from these specs, the local stack creates
the same queues in moto, and the tests check the synthesized template against them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QueueSpec:
    #: logical name, also the construct id
    id: str
    #: the environment variable that carries the queue's URL to functions
    env: str
    #: how long a received message stays hidden from other consumers: at least six times the timeout of
    #: the function that consumes it (Lambda's guidance for SQS triggers), so a slow batch is not resent
    visibility_timeout_seconds: int = 30
    #: a message received this many times without being deleted moves to the queue's dead-letter queue
    max_receive_count: int = 5
    #: how long a message waits to be received
    retention_days: int = 4
    #: how long a dead letter waits to be looked at and redriven (SQS's maximum)
    dead_letter_retention_days: int = 14


#: Delivery: what automations ask to send (``shared.delivery.requests.DeliveryRequest``, one per
#: message). The delivery function consumes it (30 s timeout, so 180 s hidden). A provider or webhook
#: that fails postpones the message with a growing delay (``shared.delivery.webhooks.retry_delay``: 30 s
#: doubling to 15 minutes, or the provider's own retry-after if longer); ten receives cover about 75
#: minutes of that backoff (a throttled or paused provider, a webhook down for an hour) before the dead
#: letters.
DELIVERY = QueueSpec(
    id="delivery", env="DELIVERY_QUEUE_URL", visibility_timeout_seconds=180, max_receive_count=10
)

QUEUES: tuple[QueueSpec, ...] = (DELIVERY,)


def dead_letters_request(spec: QueueSpec, queue_name: str) -> dict:
    """The CreateQueue call for a spec's dead-letter queue (the local stack; the cloud gets it from CDK)."""
    return {
        "QueueName": f"{queue_name}-dead-letters",
        "Attributes": {"MessageRetentionPeriod": str(spec.dead_letter_retention_days * 86400)},
    }


def create_queue_request(spec: QueueSpec, queue_name: str, dead_letters_arn: str) -> dict:
    """The CreateQueue call for a spec's queue, whose messages received ``max_receive_count`` times
    without being deleted move to ``dead_letters_arn``."""
    redrive = {"deadLetterTargetArn": dead_letters_arn, "maxReceiveCount": str(spec.max_receive_count)}
    return {
        "QueueName": queue_name,
        "Attributes": {
            "VisibilityTimeout": str(spec.visibility_timeout_seconds),
            "MessageRetentionPeriod": str(spec.retention_days * 86400),
            "RedrivePolicy": json.dumps(redrive),
        },
    }
