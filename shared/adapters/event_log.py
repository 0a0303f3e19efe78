"""The event log on DynamoDB: the tracking path's only write.

Each new event is one conditional ``PutItem`` on its key (``contact_items.event_key``): a replay, an SDK
retry or a concurrent copy fails its condition and is counted as a duplicate. No transaction (which
bills every item twice), no index (which bills every item again), no read. A request's puts run
side by side. The events table's stream then delivers each new event once to the aggregation
function, which folds it into the profile (``shared.usecases.aggregation``).
"""

from __future__ import annotations

import contextvars
import secrets
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from shared.adapters.contact_items import POSITION_DIGITS, Retention, event_item, ledger_value, partition
from shared.adapters.contact_store import fits, profile_update
from shared.adapters.dynamodb import batch_write, error_code, failure, retried
from shared.contacts.changes import ContactChange
from shared.contacts.identity import ContactId
from shared.errors import LifecycleError
from shared.scoring.engine import ScoreChange
from shared.tracking.timestamps import format_time
from shared.usecases.recording import NewEntry

LOG = "the event log"
#: The widest stream position (``contact_items.POSITION_DIGITS``), for sizing the aggregation's update.
_POSITION = "9" * POSITION_DIGITS
#: Puts in flight at once for one request (boto3's default pool holds 10 connections).
PARALLEL_PUTS = 8


class DynamoEventLog:
    """Appending (``EventLog``): each event once, keyed by its call."""

    def __init__(
        self,
        client: Any,
        *,
        events_table: str,
        retention: Retention = Retention(),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._db = client
        self._events = events_table
        self._retention = retention
        self._sleep = sleep
        self._pool: ThreadPoolExecutor | None = None

    def append(self, entries: Sequence[NewEntry]) -> frozenset[str]:
        """Put every entry unless its key is taken; the messageIds that were there already.

        An error after some puts leaves those in place: the client's retry finds them and adds the rest.
        """
        if len(entries) <= 1:
            return frozenset(m for m in map(self._put, entries) if m)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(PARALLEL_PUTS, thread_name_prefix="event-log")
        futures = [self._pool.submit(contextvars.copy_context().run, self._put, e) for e in entries]
        return frozenset(m for m in (f.result() for f in futures) if m)

    def _put(self, entry: NewEntry) -> str | None:
        item = event_item(
            entry.contact,
            entry.event,
            format_time(entry.event.received_at),
            entry.ledger,
            self._retention,
            put=secrets.token_urlsafe(6),
        )
        try:
            retried(
                lambda: self._db.put_item(
                    TableName=self._events, Item=item, ConditionExpression="attribute_not_exists(pk)"
                ),
                LOG,
                sleep=self._sleep,
            )
        except LifecycleError:
            raise
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise failure(exc, LOG) from exc
            return entry.event.message_id
        return None

    def fits(self, change: ContactChange) -> bool:
        """As the aggregation will write it: with the stream positions its condition carries."""
        positioned = replace(change, first_position=_POSITION, last_position=_POSITION)
        return fits(profile_update(positioned, self._events))

    def forget(self, contact: ContactId, keys: Sequence[str]) -> None:
        deletes = [{"DeleteRequest": {"Key": {"pk": partition(contact), "sk": {"S": k}}}} for k in keys]
        batch_write(self._db, self._events, deletes, LOG, sleep=self._sleep)

    def rewrite_ledger(self, contact: ContactId, key: str, ledger: tuple[ScoreChange, ...]) -> None:
        """Correct what an event says it scored, once the aggregation knew more (a rule's limit)."""
        expression = "SET ledger = :l" if ledger else "REMOVE ledger"
        try:
            retried(
                lambda: self._db.update_item(
                    TableName=self._events,
                    Key={"pk": partition(contact), "sk": {"S": key}},
                    UpdateExpression=expression,
                    ConditionExpression="attribute_exists(pk)",
                    **({"ExpressionAttributeValues": {":l": ledger_value(ledger)}} if ledger else {}),
                ),
                LOG,
                sleep=self._sleep,
            )
        except LifecycleError:
            raise
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":  # moved by a merge meanwhile
                raise failure(exc, LOG) from exc
