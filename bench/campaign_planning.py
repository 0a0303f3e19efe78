"""Issue 13: campaign send planning at 100,000 recipients, and the same on moto at 2,000.

1. **In-process** (``in_process``): the planner's use case (``shared.usecases.campaigns.advance_campaigns``)
   run once a minute (a ``FixedClock`` moved a minute each run) until the campaign is sent, with the fakes
   of ``tests.fakes`` for the campaigns, their states and the exposures (``MemoryExposures`` counts the
   requests and items ``DynamoExposures`` would send), a queue counting the ``SendMessageBatch`` calls
   ``SqsDeliveryQueue`` would make (its own ``batches``), and the segment's members read by the real
   adapter (``DynamoSegmentMembers``) from ``MemberIndex``: DynamoDB's Query of the ``bySegment`` index over
   the generated members, paged and billed by DynamoDB's rules. Counted: requests and items per recipient,
   planner runs, CPU per 1,000 recipients, the holdout's share.
2. **On moto** (``on_moto``): the campaigns function hosted as deployed (``bench.hosted``), the members'
   membership items in the contacts table, invoked once a minute as its schedule does; every request
   counted on its clients and billed by ``bench.capacity``'s meter. The same population in-process says
   what the fakes predict.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

#: when the campaign is sent (the clock every run reads)
START = datetime(2026, 12, 1, 9, tzinfo=UTC)
SEGMENT = "newsletter"
RECIPIENTS = 100_000
MOTO_RECIPIENTS = 2_000
RATES = (1_000, 10_000)
HOLDOUT_PERCENT = 10
#: a read request unit: 4 KB, half a unit eventually consistent (a global index's Query is)
READ_BLOCK = 4096
PAGE_BYTES = 1024 * 1024


def recipients(count: int) -> list[str]:
    """The segment's members: ``user_id:r000001``... (contact ids as the index holds them)."""
    return [f"user_id:r{n:07d}" for n in range(1, count + 1)]


class MemberIndex:
    """DynamoDB's Query of the contacts table's ``bySegment`` index (keys only) over the members of one
    segment: a client stand-in for the real adapter (``shared.adapters.segment_members.DynamoSegmentMembers``).

    A segment's members are in 16 index partitions (``<segment>#<n>``, ``n`` the member's shard), each in
    ``segmentMember`` order. A page holds at most ``Limit`` entries and stops before ``page_bytes`` of
    them (an entry: the table's keys and the index's, sized by ``bench.capacity.item_size``); DynamoDB
    returns ``LastEvaluatedKey`` when a page stopped on the limit or the size, even when nothing is
    left after it (the next page is then empty). ``Select=COUNT`` pages the same way and returns counts.
    Billed: read units of the entries read, eventually consistent (a global index), at least half a
    unit a request. Counted: ``requests``, ``read`` (entries), ``bytes``, ``read_units``, ``seconds``."""

    def __init__(self, segment: str, members: Sequence[str], *, page_bytes: int = PAGE_BYTES) -> None:
        from bench.capacity import item_size
        from shared.adapters.segment_members import MEMBER_SHARDS, membership_item
        from shared.contacts.identity import ContactId

        self._segment = segment
        self._page_bytes = page_bytes
        at = START
        self._partitions: dict[str, list[tuple[str, dict[str, Any], int]]] = {}
        for member in members:
            item = membership_item(ContactId.parse(member), segment, at)
            entry = {k: item[k] for k in ("pk", "sk", "segmentShard", "segmentMember")}
            self._partitions.setdefault(entry["segmentShard"]["S"], []).append(
                (member, entry, item_size(entry))
            )
        for held in self._partitions.values():
            held.sort(key=lambda row: row[0])
        assert len(self._partitions) <= MEMBER_SHARDS
        self.requests = 0
        self.read = 0
        self.bytes = 0
        self.read_units = 0.0
        self.seconds = 0.0

    def query(self, **request: Any) -> dict[str, Any]:
        import bisect

        started = time.process_time()
        assert request.get("IndexName") == "bySegment", request
        partition = request["ExpressionAttributeValues"][":p"]["S"]
        rows = self._partitions.get(partition, [])
        start = 0
        if "ExclusiveStartKey" in request:
            last = request["ExclusiveStartKey"]["segmentMember"]["S"]
            start = bisect.bisect_right([row[0] for row in rows], last) if rows else 0
        limit = int(request["Limit"]) if request.get("Limit") else None
        taken, size = [], 0
        stopped = False
        for row in rows[start:]:
            if len(taken) == limit or size + row[2] > self._page_bytes:
                stopped = True
                break
            taken.append(row)
            size += row[2]
        if limit is not None and len(taken) == limit:
            stopped = True  # DynamoDB stops on the limit and says where, whether or not more follow
        self.requests += 1
        self.read += len(taken)
        self.bytes += size
        self.read_units += max(1, math.ceil(size / READ_BLOCK)) * 0.5
        answer: dict[str, Any] = {"Count": len(taken), "ScannedCount": len(taken)}
        if request.get("Select") != "COUNT":
            answer["Items"] = [dict(row[1]) for row in taken]
        if stopped and taken:
            answer["LastEvaluatedKey"] = dict(taken[-1][1])
        self.seconds += time.process_time() - started
        return answer


@dataclass
class CountedQueue:
    """The delivery queue (``MemoryDeliveryQueue``), with the ``SendMessageBatch`` calls ``SqsDeliveryQueue``
    makes for each hand-over (its ``batches``: 10 messages, 256 KB) and their entries counted."""

    queue: Any
    batches: int = 0
    messages: int = 0
    bytes: int = 0

    def enqueue(self, requests: Sequence[Any]) -> None:
        from shared.adapters.delivery_queue import batches, message_body

        bodies = [message_body(r) for r in requests]
        self.batches += len(batches(bodies))
        self.messages += len(bodies)
        self.bytes += sum(len(b.encode()) for b in bodies)
        self.queue.enqueue(requests)


def campaign(rate: int) -> Any:
    from shared.campaigns.model import Campaign

    return Campaign.model_validate(
        {
            "id": "december",
            "name": "December sale",
            "segment": SEGMENT,
            "template": "december",
            "variants": [{"id": "A", "split": 50}, {"id": "B", "split": 50, "template": "december-b"}],
            "holdout_percent": HOLDOUT_PERCENT,
            "send_rate_per_minute": rate,
        }
    )


@dataclass
class Planned:
    """What planning a whole campaign took, run by run."""

    runs: int = 0
    planned: int = 0
    queued: int = 0
    cpu: float = 0.0
    per_run: list[int] = field(default_factory=list)


def in_process(count: int, rate: int, *, page_bytes: int = PAGE_BYTES) -> dict[str, Any]:
    """Plan a campaign to ``count`` members at ``rate`` per minute, a planner run a minute, until sent."""
    from shared.adapters.segment_members import DynamoSegmentMembers
    from shared.campaigns.model import HOLDOUT, sending_state
    from shared.clock import FixedClock
    from shared.usecases.campaigns import Campaigning, advance_campaigns
    from tests.fakes import (
        CountingTelemetry,
        MemoryCampaignRepository,
        MemoryCampaignStates,
        MemoryDeliveryQueue,
        MemoryExposures,
    )

    members = recipients(count)
    index = MemberIndex(SEGMENT, members, page_bytes=page_bytes)
    clock = FixedClock(START)
    campaigns, states = MemoryCampaignRepository(), MemoryCampaignStates()
    stored = campaigns.save(campaign(rate), START, None)
    assert states.create(sending_state(stored, START))
    states.requests = 0
    exposures, queue = MemoryExposures(), CountedQueue(MemoryDeliveryQueue())
    deps = Campaigning(
        clock=clock,
        campaigns=campaigns,
        states=states,
        members=DynamoSegmentMembers(index, table="contacts"),
        exposures=exposures,
        queue=queue,
        telemetry=CountingTelemetry(),
    )
    done = Planned()
    for _ in range(10 * count // max(rate, 1) + 20):
        clock.advance(timedelta(minutes=1))
        started = time.process_time()
        advanced = advance_campaigns(deps)
        done.cpu += time.process_time() - started
        done.runs += 1
        done.planned += advanced.planned
        done.queued += advanced.queued
        done.per_run.append(advanced.queued)
        if states.states[stored.id].status == "sent":
            break
    state = states.states[stored.id]
    assert state.status == "sent", state
    arms = Counter(e.arm for e in exposures.exposed.values())
    held = arms.get(HOLDOUT, 0)
    share = held / count
    spread = math.sqrt(HOLDOUT_PERCENT / 100 * (1 - HOLDOUT_PERCENT / 100) / count)
    return {
        "recipients": count,
        "rate": rate,
        "runs": done.runs,
        "planned": done.planned,
        "queued": done.queued,
        "most_queued_in_a_run": max(done.per_run),
        "exposed": len(exposures.exposed),
        "arms": dict(arms),
        "holdout_share": share,
        "holdout_sigmas": (share - HOLDOUT_PERCENT / 100) / spread,
        "member_queries": index.requests,
        "member_entries_read": index.read,
        "member_rru": index.read_units,
        "index_seconds": index.seconds,
        "exposure_requests": exposures.requests,
        "exposure_items": exposures.items,
        "state_requests": states.requests,
        "send_message_batches": queue.batches,
        "messages": queue.messages,
        "message_bytes": queue.bytes,
        "queued_ids_unique": len({r.id for r in queue.queue.sent}) == len(queue.queue.sent),
        "cpu": done.cpu,
        "cpu_per_1000": done.cpu / count * 1000,
    }


def on_moto(count: int = MOTO_RECIPIENTS, rate: int = RATES[0]) -> dict[str, Any]:
    """The campaigns function as deployed, once a minute, over ``count`` members, until the campaign is
    sent: its requests by operation, and what the meter billed."""
    import io
    from contextlib import redirect_stdout

    from bench.hosted import hosted
    from shared.adapters.campaign_store import DynamoCampaignStates, DynamoCampaignStore
    from shared.adapters.segment_members import membership_item
    from shared.adapters.tables import CONFIG, CONTACTS
    from shared.campaigns.model import HOLDOUT, sending_state
    from shared.contacts.identity import ContactId

    with hosted(("campaigns",), start=START) as running:
        running.put(
            CONTACTS.id,
            [membership_item(ContactId.parse(m), SEGMENT, START) for m in recipients(count)],
        )
        config = running.names[CONFIG.id]
        stored = DynamoCampaignStore(running.db, table=config, cache_seconds=0).save(
            campaign(rate), START, None
        )
        states = DynamoCampaignStates(running.db, table=config)
        assert states.create(sending_state(stored, START))
        runs = 0
        cpu = 0.0
        with running.measuring():
            for _ in range(10 * count // max(rate, 1) + 20):
                running.clock.advance(timedelta(minutes=1))
                started = time.process_time()
                with redirect_stdout(io.StringIO()):  # its metrics (EMF lines), not wanted here
                    running.invoke("campaigns", {})
                cpu += time.process_time() - started
                runs += 1
                state = states.state(stored.id)
                if state is not None and state.status == "sent":
                    break
            requests = running.requests.of("campaigns")
            tables = {
                f"{op} {table}{' ' + index if index else ''}": n
                for (f, op, table, index), n in sorted(running.requests.tables.items(), key=str)
                if f == "campaigns"
            }
            entries = {op: n for (f, op), n in running.requests.entries.items() if f == "campaigns"}
            wru = running.meter.units("write", function="campaigns")
            rru = running.meter.units("read", function="campaigns")
            member_rru = running.meter.units("read", function="campaigns", index="bySegment")
            wru_by = {
                f"{op}{' (transaction)' if t else ''} {table}{' ' + index if index else ''}": units
                for (op, t, table, index), units in running.meter.by(
                    "write", "operation", "transactional", "table", "index"
                ).items()
            }
        exposures = [i for i in running.items(CONTACTS.id) if i["sk"]["S"].startswith("EXPOSURE#")]
        arms = Counter(i["arm"]["S"] for i in exposures)
        messages = _queue_depth(running)  # the harness's read of the queue (not a function's request)
    return {
        "recipients": count,
        "rate": rate,
        "runs": runs,
        "requests": requests,
        "tables": tables,
        "entries": entries,
        "wru": wru,
        "rru": rru,
        "member_rru": member_rru,
        "wru_by": wru_by,
        "exposed": len(exposures),
        "holdout": arms.get(HOLDOUT, 0),
        "messages": messages,
        "cpu": cpu,
    }


def _queue_depth(running: Any) -> int:
    from shared.adapters import aws

    url = next(iter(running.queue_urls.values()))
    answer = aws.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(answer["Attributes"]["ApproximateNumberOfMessages"])


def run(count: int = RECIPIENTS, moto_count: int = MOTO_RECIPIENTS) -> dict[str, Any]:
    """At ``count`` for each rate, and on moto at ``moto_count`` with the fakes' prediction for it."""
    return {
        "at_scale": [in_process(count, rate) for rate in RATES],
        "predicted": in_process(moto_count, RATES[0]),
        "moto": on_moto(moto_count, RATES[0]),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(in_process(MOTO_RECIPIENTS, RATES[0]), indent=1, default=str))
    print(json.dumps(on_moto(), indent=1, default=str))
