"""The SQS queues between functions, built from the specs in ``shared.adapters.queues``: each with its
own dead-letter queue for messages that failed ``max_receive_count`` times."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from shared.adapters.queues import QUEUES, QueueSpec


def set_aside_queue(scope: Construct, construct_id: str, *, reason: str, days: int = 14) -> sqs.Queue:
    """A queue where what failed is set aside (a dead-letter queue, failed runs): encrypted, TLS only, kept
    ``days`` and through replacements and stack deletion, until it is redriven. ``reason`` says why it needs no
    dead-letter queue of its own (cdk-nag's AwsSolutions-SQS3)."""
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(days),
        removal_policy=RemovalPolicy.RETAIN,
    )
    Validations.of(queue).acknowledge(Acknowledgment(id="AwsSolutions-SQS3", reason=reason))
    return queue


class Queues(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.dead_letters: dict[str, sqs.Queue] = {}
        self.queues: dict[str, sqs.Queue] = {spec.id: self._queue(spec) for spec in QUEUES}

    def _queue(self, spec: QueueSpec) -> sqs.Queue:
        construct_id = spec.id.title().replace("_", "")
        dead_letters = set_aside_queue(
            self,
            f"{construct_id}DeadLetters",
            reason=f"This queue is itself the dead-letter queue of the {spec.id} queue; it needs no "
            "dead-letter queue of its own.",
            days=spec.dead_letter_retention_days,
        )
        self.dead_letters[spec.id] = dead_letters
        return sqs.Queue(
            self,
            construct_id,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(spec.visibility_timeout_seconds),
            retention_period=Duration.days(spec.retention_days),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=dead_letters, max_receive_count=spec.max_receive_count
            ),
            # messages on their way are kept through a replacement of the queue
            removal_policy=RemovalPolicy.RETAIN,
        )
