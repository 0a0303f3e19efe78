"""The delivery queue on SQS: each request one message, its JSON the body, sent in batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.adapters.dynamodb import failure, retried
from shared.delivery.requests import DeliveryRequest
from shared.errors import DependencyUnavailable, PayloadTooLarge

QUEUE = "the delivery queue"
#: SQS takes up to 10 messages per batch, and 256 KB per message and per batch.
BATCH_MESSAGES = 10
MAX_MESSAGE_BYTES = 256 * 1024
#: the longest a received message can be hidden: SQS counts its 12 hours from the receive, which was a
#: moment (the function's run so far) before the postpone, so a margin is kept
MAX_VISIBILITY_SECONDS = 12 * 60 * 60 - 15 * 60


def message_body(request: DeliveryRequest) -> str:
    """The request as delivery reads it; refused if SQS could not carry it whole (never truncated)."""
    body = request.model_dump_json()
    if len(body.encode()) > MAX_MESSAGE_BYTES:
        raise PayloadTooLarge(
            f"a delivery request of automation {request.automation} (step {request.step}) is over the "
            f"{MAX_MESSAGE_BYTES // 1024} KB a queued message holds"
        )
    return body


def batches(bodies: Sequence[str]) -> list[list[str]]:
    """At most 10 messages and 256 KB per batch, in order."""
    found: list[list[str]] = []
    size = 0
    for body in bodies:
        weight = len(body.encode())
        if not found or len(found[-1]) == BATCH_MESSAGES or size + weight > MAX_MESSAGE_BYTES:
            found.append([])
            size = 0
        found[-1].append(body)
        size += weight
    return found


class SqsDeliveryQueue:
    """``DeliveryQueue``: what a batch did not take is sent again once; what still fails is a 503."""

    def __init__(self, client: Any, *, queue_url: str) -> None:
        self._sqs = client
        self._url = queue_url

    def enqueue(self, requests: Sequence[DeliveryRequest]) -> None:
        bodies = [message_body(request) for request in requests]  # all checked before any is sent
        for batch in batches(bodies):
            entries = [{"Id": str(number), "MessageBody": body} for number, body in enumerate(batch)]
            failed = self._send(entries)
            if failed:
                failed = self._send([e for e in entries if e["Id"] in failed])
            if failed:
                raise DependencyUnavailable(
                    f"{QUEUE} refused {len(failed)} of {len(entries)} requests; retry"
                )

    def _send(self, entries: list[dict[str, str]]) -> set[str]:
        try:
            answer = retried(lambda: self._sqs.send_message_batch(QueueUrl=self._url, Entries=entries), QUEUE)
        except Exception as exc:
            raise failure(exc, QUEUE) from exc
        return {f["Id"] for f in answer.get("Failed") or []}

    def postpone(self, receipt: str, seconds: int) -> None:
        """``Redeliveries``: the received message with this receipt handle is handed out again only after
        ``seconds`` (a webhook's backoff), instead of after the queue's visibility timeout."""
        hidden = max(0, min(MAX_VISIBILITY_SECONDS, int(seconds)))
        try:
            retried(
                lambda: self._sqs.change_message_visibility(
                    QueueUrl=self._url, ReceiptHandle=receipt, VisibilityTimeout=hidden
                ),
                QUEUE,
            )
        except Exception as exc:
            raise failure(exc, QUEUE) from exc
