"""SQS to Lambda, locally: the queue trigger (event source mapping) of a queue-triggered function.

Mirrors what the wiring's ``QueueTrigger`` declares: batches of up to ``batch_size`` messages received
from the queue the other functions send to, handed over as Lambda's SQS event, with partial batch
failures (``batchItemFailures``): what succeeded is deleted, what failed stays to come back, and after
the queue's ``max_receive_count`` receives SQS itself moves it to the queue's dead-letter queue (moto
applies the redrive policy on receive, as SQS does).

One difference, for a laptop: Lambda receives with the queue's visibility timeout, so a failed message
comes back minutes later. The pump receives with a visibility timeout of 0, so a failed message is at
once visible again and ``drain`` retries it until it succeeds or is dead-lettered; a visibility the
function sets itself (``ChangeMessageVisibility``, a webhook's backoff) is kept, and the message comes
back when it ends. The pump is the queue's only reader, so no other consumer sees a message mid-batch.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from infra.wiring import QueueTrigger

Handler = Callable[[dict[str, Any], Any], Any]
#: SQS deletes at most this many messages per call
DELETE_BATCH = 10


class QueuePump:
    def __init__(
        self,
        *,
        name: str,
        sqs: Any,
        queue_url: str,
        trigger: QueueTrigger,
        handler: Handler,
        context: Callable[[], Any],
        on_batch: Callable[[list[dict[str, Any]], set[str]], Any] | None = None,
    ) -> None:
        self.name = name
        self._sqs = sqs
        self._queue_url = queue_url
        self._trigger = trigger
        self._handler = handler
        self._context = context
        #: told of every batch handed over (its records, and the ids of those that failed)
        self._on_batch = on_batch
        self.arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self._region = sqs.meta.region_name
        self._lock = threading.Lock()
        self.invocations = 0

    def drain(self) -> int:
        """Hand the function every message visible now (failed ones again, until they succeed or reach the
        dead-letter queue); returns how many messages it was handed."""
        handled = 0
        with self._lock:
            while True:
                messages = self._sqs.receive_message(
                    QueueUrl=self._queue_url,
                    MaxNumberOfMessages=min(self._trigger.batch_size, 10),
                    WaitTimeSeconds=0,
                    VisibilityTimeout=0,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
                if not messages:
                    return handled
                records = [sqs_record(m, queue_arn=self.arn, region=self._region) for m in messages]
                failed = self._invoke(records)
                self._delete([r for r in records if r["messageId"] not in failed])
                if self._on_batch is not None:
                    self._on_batch(records, failed)
                handled += len(records)

    def _invoke(self, records: list[dict[str, Any]]) -> set[str]:
        """The ids of the records that failed: those reported, or all when the function raised or answered
        with something Lambda cannot read (it then takes the whole batch for failed)."""
        self.invocations += 1
        everything = {r["messageId"] for r in records}
        try:
            response = self._handler({"Records": records}, self._context())
        except Exception as exc:  # noqa: BLE001 - a crashed function fails its batch, as in Lambda
            print(f"[local] {self.name} failed: {exc!r}")
            return everything
        return reported_failures(response, everything)

    def _delete(self, records: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(records), DELETE_BATCH):
            chunk = records[start : start + DELETE_BATCH]
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": r["receiptHandle"]} for n, r in enumerate(chunk)],
            )

    def run(self, stop: threading.Event, every: float = 0.2) -> None:
        """Poll until stopped (the local stack's background thread)."""
        while not stop.wait(every):
            try:
                self.drain()
            except Exception as exc:  # noqa: BLE001 - keep the local stack alive; the next poll retries
                print(f"[local] queue pump {self.name}: {exc!r}")
                time.sleep(1)


def reported_failures(response: Any, batch: set[str]) -> set[str]:
    """The message ids a function's answer reports failed (``{"batchItemFailures": [{"itemIdentifier":
    id}]}``). As Lambda does, an answer it cannot read (an item without an identifier, or one not in the
    batch) fails the whole batch; no answer, or an empty list, fails nothing."""
    if response is None:
        return set()
    if not isinstance(response, dict):
        return set(batch)
    items = response.get("batchItemFailures") or []
    if not isinstance(items, list):
        return set(batch)
    failed = set()
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in batch:
            return set(batch)
        failed.add(identifier)
    return failed


def sqs_record(message: dict[str, Any], *, queue_arn: str, region: str) -> dict[str, Any]:
    """A message as ReceiveMessage returns it, in the shape Lambda hands the function (AWS Lambda guide,
    "Using Lambda with Amazon SQS": an example event)."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        # ApproximateReceiveCount, SentTimestamp, SenderId, ApproximateFirstReceiveTimestamp..., as strings
        "attributes": {name: str(value) for name, value in (message.get("Attributes") or {}).items()},
        "messageAttributes": {
            name: lambda_message_attribute(value)
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def lambda_message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """A message attribute as Lambda spells it: camel case, binary values in base64."""
    converted: dict[str, Any] = {
        "stringListValues": list(value.get("StringListValues") or []),
        "binaryListValues": [_base64(v) for v in value.get("BinaryListValues") or []],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = _base64(value["BinaryValue"])
    return converted


def _base64(data: bytes | str) -> str:
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode("ascii")
