"""DynamoDB Streams to Lambda, locally: poll moto's stream, filter, batch, invoke, retry, set aside.

Mirrors the event source mapping the wiring declares: the same filters, batch size, partial batch
failure reporting (``batchItemFailures``), bounded retries with bisection, and the on-failure
destination. Like AWS, that destination gets the failed batch's *metadata* (shard and sequence range),
not its records: ``python -m infra.redrive`` re-reads the range while the stream still holds it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from infra.local.filters import matches
from infra.wiring import StreamTrigger

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


#: A trigger that retries until it succeeds (``retry_attempts=None``) gives up here after this many:
#: a local stack cannot wait for ever; it says so, and sets the batch aside as AWS would not.
LOCAL_RETRIES = 20


class StreamPump:
    def __init__(
        self,
        *,
        dynamodb: Any,
        streams: Any,
        table: str,
        trigger: StreamTrigger,
        handler: Handler,
        context: Callable[[], Any],
        on_failure: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        self._streams = streams
        self._trigger = trigger
        self._handler = handler
        self._context = context
        self.arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        self._region = dynamodb.meta.region_name
        self._shard_ids: list[str] = []
        self._shards_seen = 0.0
        #: shard -> the last sequence number delivered (None: from the shard's start)
        self._positions: dict[str, str | None] = {}
        self._lock = threading.Lock()
        #: what the on-failure destination received: one invocation record per batch set aside
        self.dead_letters: list[dict[str, Any]] = []
        #: the destination itself (the local stack's SQS queue), if any
        self._on_failure = on_failure
        self.invocations = 0
        for shard in self._shards():  # start at the latest position, as the mapping does
            self._positions[shard] = self._last(shard)

    def _shards(self) -> list[str]:
        """The stream's shards, looked up again every few seconds (they change rarely)."""
        if time.monotonic() - self._shards_seen > 5:
            described = self._streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]
            self._shard_ids = [s["ShardId"] for s in described]
            self._shards_seen = time.monotonic()
        return self._shard_ids

    def _iterator(self, shard: str) -> str:
        """A fresh iterator after the last delivered record (iterators are not kept: moto replaces a
        table's stream objects when a transaction is cancelled, and AWS expires them after 15 minutes)."""
        position = self._positions.get(shard)
        request: dict[str, Any] = {"StreamArn": self.arn, "ShardId": shard}
        if position is None:
            request["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            request.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=position)
        return self._streams.get_shard_iterator(**request)["ShardIterator"]

    def _last(self, shard: str) -> str | None:
        last = None
        iterator = self._iterator(shard)
        while True:
            page = self._streams.get_records(ShardIterator=iterator, Limit=1000)
            if not page.get("Records"):
                return last
            last = page["Records"][-1]["dynamodb"]["SequenceNumber"]
            iterator = page["NextShardIterator"]

    def drain(self) -> int:
        """Deliver everything written so far; returns the records that passed the filters."""
        delivered = 0
        with self._lock:
            for shard in self._shards():
                self._positions.setdefault(shard, None)
                while True:
                    page = self._streams.get_records(ShardIterator=self._iterator(shard), Limit=1000)
                    raw = page.get("Records", [])
                    if not raw:
                        break
                    records = [self._lambda_record(r) for r in raw]
                    passed = [r for r in records if any(matches(p, r) for p in self._trigger.filters)]
                    for start in range(0, len(passed), self._trigger.batch_size):
                        self._deliver(shard, passed[start : start + self._trigger.batch_size])
                    delivered += len(passed)
                    self._positions[shard] = raw[-1]["dynamodb"]["SequenceNumber"]
        return delivered

    def _deliver(self, shard: str, batch: list[dict[str, Any]]) -> None:
        """Invoke with retries; a failing batch is split in two until the poison records stand alone."""
        pending = [batch]
        while pending:
            records = pending.pop(0)
            attempts, unhandled = 0, False
            retries = self._trigger.retry_attempts
            for _ in range((LOCAL_RETRIES if retries is None else retries) + 1):
                attempts += 1
                failed_from, unhandled = self._invoke(records)
                if failed_from is None:
                    break
                records = records[failed_from:]  # everything from the first failure is retried, in order
            else:
                if self._trigger.bisect_on_error and len(records) > 1:
                    half = len(records) // 2
                    pending[:0] = [records[:half], records[half:]]
                else:
                    self._set_aside(shard, records, attempts=attempts, unhandled=unhandled)

    def _set_aside(
        self, shard: str, records: list[dict[str, Any]], *, attempts: int, unhandled: bool
    ) -> None:
        letter = on_failure_record(
            shard,
            records,
            function_arn=getattr(self._context(), "invoked_function_arn", "arn:aws:lambda:local"),
            attempts=attempts,
            unhandled=unhandled,
        )
        self.dead_letters.append(letter)
        if self._on_failure is not None:
            self._on_failure(letter)

    def _invoke(self, records: list[dict[str, Any]]) -> tuple[int | None, bool]:
        """Where the retry starts (None: all done), and whether the function raised."""
        self.invocations += 1
        try:
            response = self._handler({"Records": records}, self._context()) or {}
        except Exception as exc:  # the whole batch failed
            print(f"[local] stream handler failed: {exc!r}")
            return 0, True
        failures = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        for position, record in enumerate(records):
            if record["dynamodb"]["SequenceNumber"] in failures:
                return position, False
        return None, False

    def _lambda_record(self, record: dict[str, Any]) -> dict[str, Any]:
        return lambda_record(record, region=self._region, stream_arn=self.arn)

    def run(self, stop: threading.Event, every: float = 0.2) -> None:
        """Poll until stopped (the local stack's background thread)."""
        while not stop.wait(every):
            try:
                self.drain()
            except Exception as exc:  # keep the local stack alive; the next poll retries
                print(f"[local] stream pump: {exc!r}")
                time.sleep(1)


def lambda_record(record: dict[str, Any], *, region: str, stream_arn: str) -> dict[str, Any]:
    """A record as GetRecords returns it, in the shape Lambda hands the function."""
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        change["ApproximateCreationDateTime"] = created.timestamp()
    return {
        "eventID": record.get("eventID") or uuid.uuid4().hex,
        "eventName": record["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": change,
        "eventSourceARN": stream_arn,
    }


def on_failure_record(
    shard: str, records: list[dict[str, Any]], *, function_arn: str, attempts: int, unhandled: bool
) -> dict[str, Any]:
    """What a stream trigger's on-failure destination receives for a batch it gives up on: the invocation
    record with ``DDBStreamBatchInfo`` (AWS Lambda guide, "services-dynamodb-errors"). No record data."""
    first, last = records[0], records[-1]
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": attempts,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            **({"functionError": "Unhandled"} if unhandled else {}),
        },
        "version": "1.0",
        "timestamp": _iso(datetime.now(UTC)),
        "DDBStreamBatchInfo": {
            "shardId": shard,
            "startSequenceNumber": first["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": last["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": _arrival(first),
            "approximateArrivalOfLastRecord": _arrival(last),
            "batchSize": len(records),
            "streamArn": first["eventSourceARN"],
        },
    }


def _arrival(record: dict[str, Any]) -> str:
    created = record["dynamodb"].get("ApproximateCreationDateTime")
    return _iso(datetime.fromtimestamp(created, UTC) if created is not None else datetime.now(UTC))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
