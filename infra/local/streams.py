"""DynamoDB Streams to Lambda, locally: poll moto's stream, filter, batch, invoke, retry, set aside.

Mirrors the event source mapping the wiring declares: the same filters, batch size, partial batch
failure reporting (``batchItemFailures``), bounded retries with bisection, and a dead-letter list.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from infra.local.filters import matches
from infra.wiring import StreamTrigger

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


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
        self.dead_letters: list[dict[str, Any]] = []
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
                        self._deliver(passed[start : start + self._trigger.batch_size])
                    delivered += len(passed)
                    self._positions[shard] = raw[-1]["dynamodb"]["SequenceNumber"]
        return delivered

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        """Invoke with retries; a failing batch is split in two until the poison records stand alone."""
        pending = [batch]
        while pending:
            records = pending.pop(0)
            for _ in range(self._trigger.retry_attempts + 1):
                failed_from = self._invoke(records)
                if failed_from is None:
                    break
                records = records[failed_from:]  # everything from the first failure is retried, in order
            else:
                if self._trigger.bisect_on_error and len(records) > 1:
                    half = len(records) // 2
                    pending[:0] = [records[:half], records[half:]]
                else:
                    self.dead_letters.extend(records)

    def _invoke(self, records: list[dict[str, Any]]) -> int | None:
        self.invocations += 1
        try:
            response = self._handler({"Records": records}, self._context()) or {}
        except Exception as exc:  # the whole batch failed
            print(f"[local] stream handler failed: {exc!r}")
            return 0
        failures = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        for position, record in enumerate(records):
            if record["dynamodb"]["SequenceNumber"] in failures:
                return position
        return None

    def _lambda_record(self, record: dict[str, Any]) -> dict[str, Any]:
        change = dict(record["dynamodb"])
        created = change.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            change["ApproximateCreationDateTime"] = created.timestamp()
        return {
            "eventID": record.get("eventID") or uuid.uuid4().hex,
            "eventName": record["eventName"],
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": self._region,
            "dynamodb": change,
            "eventSourceARN": self.arn,
        }

    def run(self, stop: threading.Event, every: float = 0.2) -> None:
        """Poll until stopped (the local stack's background thread)."""
        while not stop.wait(every):
            try:
                self.drain()
            except Exception as exc:  # keep the local stack alive; the next poll retries
                print(f"[local] stream pump: {exc!r}")
                time.sleep(1)
