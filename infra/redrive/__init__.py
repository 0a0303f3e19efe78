"""Redrive a stream trigger's dead letters: re-read each failed batch's range and process it again.

A DynamoDB stream trigger's on-failure destination receives the batch's metadata (shard, first and
last sequence number), not its records. The records stay in the stream for 24 hours; this use case
reads them back, applies the trigger's filters as the event source mapping did, hands them to the
function in the same event shape, and deletes the dead letter only when the whole range was
processed. A range the stream no longer holds is reported and kept (or discarded when asked).
The function is idempotent (at-least-once delivery, exactly-once effects), so a range that was partly
processed before, or a run interrupted before its delete, is safe to redrive again.

Ports are below; ``infra.redrive.aws`` has the SQS, DynamoDB Streams and Lambda adapters and
``python -m infra.redrive`` the command.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import ValidationError

#: Lambda's synchronous payload limit is 6 MB; batches stay below it with room for the envelope.
MAX_PAYLOAD_BYTES = 5_000_000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    message_id: str
    body: str
    receipt: str


class DeadLetterQueue(Protocol):
    def receive(self) -> list[DeadLetter]:
        """Every message visible now, hidden from other readers until deleted or released."""

    def hold(self, letter: DeadLetter) -> bool:
        """Hide the message for a full run's length again, just before its range is redriven (a long
        run outlasts the first hiding); False if it can no longer be held (another reader has it)."""

    def delete(self, letter: DeadLetter) -> None: ...

    def release(self, letter: DeadLetter) -> None:
        """Make a kept message visible again at once."""


class RangeExpired(Exception):
    """The stream no longer holds the range, or no longer all of it (records live 24 hours)."""


class RangeUnreadable(Exception):
    """The range could not be read to its end this time; trying again later may succeed."""


class ShardRanges(Protocol):
    def read(self, stream_arn: str, shard_id: str, start: str, end: str) -> list[dict[str, Any]]:
        """Every record from ``start`` to ``end`` inclusive, in order and in Lambda's event shape."""


class InvocationFailed(Exception):
    """The function raised, or reported records that failed again."""


class Invoker(Protocol):
    def invoke(self, function: str, event: dict[str, Any]) -> None:
        """Run the function synchronously on ``event``; raise InvocationFailed unless it all succeeded."""


Outcome = Literal["redriven", "failed", "expired", "discarded", "unreadable", "skipped"]


@dataclass(frozen=True, slots=True)
class Result:
    message_id: str
    outcome: Outcome
    detail: str
    records: int = 0

    @property
    def settled(self) -> bool:
        """The dead letter was removed: its range was processed, or it was discarded on request."""
        return self.outcome in ("redriven", "discarded")


class Redrive:
    def __init__(
        self,
        queue: DeadLetterQueue,
        ranges: ShardRanges,
        invoker: Invoker,
        *,
        passes: Callable[[dict[str, Any]], bool],
        batch_size: int = 100,
        function: str | None = None,
        discard_expired: bool = False,
    ) -> None:
        """``passes``: the trigger's filter; ``function``: overrides the function named in each record."""
        self._queue = queue
        self._ranges = ranges
        self._invoker = invoker
        self._passes = passes
        self._batch_size = batch_size
        self._function = function
        self._discard_expired = discard_expired

    def run(self) -> list[Result]:
        """Redrive every dead letter in the queue, oldest range of each shard first."""
        letters = self._queue.receive()
        parsed = [(letter, _batch_info(letter)) for letter in letters]
        parsed.sort(key=lambda pair: _order(pair[1]))
        results = []
        for letter, record in parsed:
            if not self._queue.hold(letter):
                results.append(Result(letter.message_id, "skipped", "another reader took it meanwhile"))
                continue
            result = self._redrive(letter, record)
            if result.settled:
                self._queue.delete(letter)
            else:
                self._queue.release(letter)
            results.append(result)
        return results

    def _redrive(self, letter: DeadLetter, record: Any) -> Result:
        if record is None:
            return Result(letter.message_id, "unreadable", "not a DynamoDB stream batch record; kept")
        batch = record.ddb_stream_batch_info
        where = f"{batch.shard_id} {batch.start_sequence_number}..{batch.end_sequence_number}"
        try:
            records = self._ranges.read(
                batch.stream_arn, batch.shard_id, batch.start_sequence_number, batch.end_sequence_number
            )
        except RangeExpired as exc:
            if self._discard_expired:
                return Result(letter.message_id, "discarded", f"{where}: {exc}; discarded as asked")
            return Result(letter.message_id, "expired", f"{where}: {exc}; kept (--discard-expired drops it)")
        except RangeUnreadable as exc:
            return Result(letter.message_id, "failed", f"{where}: {exc}; kept")
        passed = [r for r in records if self._passes(r)]
        function = self._function or record.request_context.function_arn
        done = 0
        for chunk in _chunks(passed, self._batch_size):
            try:
                self._invoker.invoke(function, {"Records": chunk})
            except InvocationFailed as exc:
                return Result(letter.message_id, "failed", f"{where}: {exc}; kept", done)
            done += len(chunk)
        detail = f"{where}: {done} of {len(records)} records passed the filter and succeeded"
        return Result(letter.message_id, "redriven", detail, done)


def _batch_info(letter: DeadLetter) -> Any:
    """The on-failure record (AWS's documented shape, as Powertools models it), or None."""
    from aws_lambda_powertools.utilities.parser.models import (
        DynamoDBStreamLambdaOnFailureDestinationModel as OnFailureRecord,
    )

    try:
        return OnFailureRecord.model_validate(json.loads(letter.body))
    except (ValueError, ValidationError):
        return None


def _order(record: Any) -> tuple[int, str, int]:
    if record is None:
        return (1, "", 0)
    batch = record.ddb_stream_batch_info
    return (0, batch.shard_id, int(batch.start_sequence_number))


def _chunks(records: Sequence[Mapping[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    """Batches as the mapping makes them: at most ``size`` records and under Lambda's payload limit."""
    chunk: list[dict[str, Any]] = []
    weight = 0
    for record in records:
        record_bytes = len(json.dumps(record, default=str))
        if chunk and (len(chunk) == size or weight + record_bytes > MAX_PAYLOAD_BYTES):
            yield chunk
            chunk, weight = [], 0
        chunk.append(dict(record))
        weight += record_bytes
    if chunk:
        yield chunk


def raise_on_failures(response: Any, function: str) -> None:
    """A stream handler's answer: ``batchItemFailures`` that name records mean the batch is not done."""
    failures = response.get("batchItemFailures") or [] if isinstance(response, dict) else []
    if failures:
        raise InvocationFailed(
            f"{function} reported {len(failures)} record(s) failing again, "
            f"from {failures[0].get('itemIdentifier')}"
        )
