"""The redrive's adapters: the dead-letter queue (SQS), the stream (DynamoDB Streams), the function
(Lambda Invoke, or the handler itself in the local stack)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from infra.local.streams import lambda_record
from infra.redrive import DeadLetter, InvocationFailed, RangeExpired, RangeUnreadable, raise_on_failures

#: the stream no longer has the shard, or the records (24 hours), or the stream itself
_GONE = {"TrimmedDataAccessException", "ResourceNotFoundException"}
#: a receipt handle that is no longer valid: the message became visible again and may be another's
_LOST = {
    "ReceiptHandleIsInvalid",
    "InvalidParameterValue",
    "MessageNotInflight",
    "AWS.SimpleQueueService.MessageNotInflight",
}


class SqsDeadLetters:
    def __init__(self, sqs: Any, url: str, *, visibility_seconds: int = 900, wait_seconds: int = 1) -> None:
        """``visibility_seconds`` hides received messages from other readers for the run's length;
        ``wait_seconds`` long-polls, since a short poll can miss messages on some SQS servers."""
        self._sqs = sqs
        self._url = url
        self._visibility = visibility_seconds
        self._wait = wait_seconds

    def receive(self) -> list[DeadLetter]:
        letters: dict[str, DeadLetter] = {}
        while True:
            messages = self._sqs.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=self._visibility,
                WaitTimeSeconds=self._wait,
            ).get("Messages", [])
            if not messages:
                return list(letters.values())
            for message in messages:
                letters.setdefault(
                    message["MessageId"],
                    DeadLetter(message["MessageId"], message["Body"], message["ReceiptHandle"]),
                )

    def hold(self, letter: DeadLetter) -> bool:
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self._url, ReceiptHandle=letter.receipt, VisibilityTimeout=self._visibility
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _LOST:
                return False
            raise
        return True

    def delete(self, letter: DeadLetter) -> None:
        self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=letter.receipt)

    def release(self, letter: DeadLetter) -> None:
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self._url, ReceiptHandle=letter.receipt, VisibilityTimeout=0
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in _LOST:
                raise  # a message no longer ours is visible again already (or another reader has it)


class StreamShardRanges:
    def __init__(self, streams: Any, *, empty_pages: int = 5) -> None:
        """``empty_pages``: consecutive empty reads of an open shard before giving up for now."""
        self._streams = streams
        self._empty_pages = empty_pages

    def read(self, stream_arn: str, shard_id: str, start: str, end: str) -> list[dict[str, Any]]:
        region = stream_arn.split(":")[3]
        first, last = int(start), int(end)
        records: list[dict[str, Any]] = []
        try:
            iterator = self._streams.get_shard_iterator(
                StreamArn=stream_arn,
                ShardId=shard_id,
                ShardIteratorType="AT_SEQUENCE_NUMBER",
                SequenceNumber=start,
            )["ShardIterator"]
            empty = 0
            while iterator:
                page = self._streams.get_records(ShardIterator=iterator, Limit=1000)
                raw = page.get("Records", [])
                for record in raw:
                    sequence = int(record["dynamodb"]["SequenceNumber"])
                    if not records and sequence != first:
                        raise RangeExpired(f"the stream starts at {sequence} now, after the range's start")
                    if sequence > last:
                        return records
                    records.append(lambda_record(record, region=region, stream_arn=stream_arn))
                    if sequence == last:
                        return records
                empty = 0 if raw else empty + 1
                if empty >= self._empty_pages:
                    break
                iterator = page.get("NextShardIterator")
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _GONE:
                raise RangeExpired(f"the stream no longer holds it ({code})") from exc
            raise RangeUnreadable(f"{code or exc}") from exc
        raise RangeUnreadable(f"read {len(records)} records, but not up to {end}")


class LambdaInvoker:
    """The deployed function, invoked synchronously as the event source mapping invokes it."""

    def __init__(self, lambda_client: Any) -> None:
        self._lambda = lambda_client

    def invoke(self, function: str, event: dict[str, Any]) -> None:
        response = self._lambda.invoke(
            FunctionName=function,
            InvocationType="RequestResponse",
            Payload=json.dumps(event, default=str).encode(),
        )
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            message = payload.get("errorMessage") if isinstance(payload, dict) else payload
            raise InvocationFailed(f"{function} raised: {message}")
        raise_on_failures(payload, function)


class HandlerInvoker:
    """The function's handler, in this process (the local stack)."""

    def __init__(self, handler: Callable[[dict[str, Any], Any], Any], context: Callable[[], Any]) -> None:
        self._handler = handler
        self._context = context

    def invoke(self, function: str, event: dict[str, Any]) -> None:
        try:
            response = self._handler(event, self._context())
        except Exception as exc:
            raise InvocationFailed(f"{function} raised: {exc!r}") from exc
        raise_on_failures(response, function)
