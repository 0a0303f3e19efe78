"""Automation runs and timers on the contacts table, in the contact's partition.

- ``RUN#<automation>#<occurrence>#<step>``: a recorded run, its plan as JSON, ``pending`` until its
  effects are done. While pending it is on the due index (``RESUME_AFTER`` later), so the timer function
  finishes a run a crash left half done.
- ``TIMER#<key>``: something to do later (a series' next occurrence, the rest of a run after a wait, a
  follow-up), on the due index at its time.
- ``SEND#<key>`` (the send ledger's, ``shared.adapters.send_ledger``): a deferred send is on the due index
  too; ``due()`` lists it as a ``send`` entry and ``take_deferred_send`` hands its request back to queue.

A run is recorded with the timers it arms, the re-entry mark it takes (on the profile) and the timer it
consumes in one transaction (``start``), so a replayed trigger finds it recorded and does nothing new.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.adapters.contact_items import ENTERED, PROFILE, partition, profile_key
from shared.adapters.dynamodb import error_code, failure, n, query_all, retried, s, transact
from shared.adapters.send_ledger import SEND, take_deferred
from shared.adapters.stage_store import due_entries, due_key, due_shard
from shared.automations.engine import Coupon, Plan, Timer
from shared.automations.model import PointsStep
from shared.automations.views import RunView, TimerView
from shared.contacts.identity import ContactId
from shared.delivery.requests import DeliveryRequest
from shared.tracking.timestamps import format_time, parse_time
from shared.usecases.automation import RESUME_AFTER, Consumed, DueItem, Entry, Started

RUN, TIMER = "RUN#", "TIMER#"
WRITER = "automation"
STORE = "the automation store"
PENDING, DONE = "pending", "done"
NEVER = "never"


# --- the codec: a plan and its timers as JSON, exactly ----------------------------------------------------


def plan_json(plan: Plan) -> str:
    return json.dumps(
        {
            "contact_id": plan.contact_id,
            "automation": plan.automation,
            "version": plan.version,
            "occurrence": plan.occurrence,
            "step": plan.step,
            "status": plan.status,
            "requests": [r.model_dump(mode="json") for r in plan.requests],
            "tags_added": list(plan.tags_added),
            "tags_removed": list(plan.tags_removed),
            "points": [p.model_dump(mode="json") for p in plan.points],
            "stage": plan.stage,
            "coupon": None
            if plan.coupon is None
            else {"code": plan.coupon.code, "value": plan.coupon.value, "unit": plan.coupon.unit},
            "timers": [timer_data(t) for t in plan.timers],
            "notes": list(plan.notes),
        },
        separators=(",", ":"),
        ensure_ascii=False,
        default=_json_default,
    )


def plan_of(text: str) -> Plan:
    data = json.loads(text)
    coupon = data.get("coupon")
    return Plan(
        contact_id=data["contact_id"],
        automation=data["automation"],
        version=data["version"],
        occurrence=data["occurrence"],
        step=data["step"],
        status=data["status"],
        requests=tuple(DeliveryRequest.model_validate(r) for r in data["requests"]),
        tags_added=tuple(data["tags_added"]),
        tags_removed=tuple(data["tags_removed"]),
        points=tuple(PointsStep.model_validate(p) for p in data["points"]),
        stage=data["stage"],
        coupon=None
        if coupon is None
        else Coupon(code=coupon["code"], value=coupon["value"], unit=coupon["unit"]),
        timers=tuple(timer_of(t) for t in data["timers"]),
        notes=tuple(data["notes"]),
    )


def timer_data(timer: Timer) -> dict[str, Any]:
    """A timer as JSON data; times in full ISO-8601 (to the microsecond, with their offset)."""
    return {
        "automation": timer.automation,
        "key": timer.key,
        "due": timer.due.isoformat(),
        "kind": timer.kind,
        "n": timer.n,
        "occurrence": timer.occurrence,
        "step": timer.step,
        "origin": None if timer.origin is None else timer.origin.isoformat(),
        "values": json.loads(json.dumps(dict(timer.values), default=_json_default)),
    }


def timer_of(data: Mapping[str, Any]) -> Timer:
    return Timer(
        automation=data["automation"],
        key=data["key"],
        due=datetime.fromisoformat(data["due"]),
        kind=data["kind"],
        n=data["n"],
        occurrence=data["occurrence"],
        step=data["step"],
        origin=None if data["origin"] is None else datetime.fromisoformat(data["origin"]),
        values=data["values"],
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


# --- the store --------------------------------------------------------------------------------------------


class DynamoRunStore:
    """``RunStore`` on the contacts table; ``runs`` and ``timers`` list them for the contact's card."""

    def __init__(self, client: Any, *, contacts_table: str, due_shards: int = 8) -> None:
        self._db = client
        self._table = contacts_table
        self._shards = due_shards

    def start(
        self,
        contact: ContactId,
        run: Plan,
        *,
        now: datetime,
        entry: Entry | None = None,
        consumed: Consumed | None = None,
    ) -> Started:
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": self._run_item(contact, run, now),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        # a continuation that waits again arms the very timer it consumes: one write does both
        replaced = consumed is not None and any(t.key == consumed.key for t in run.timers)
        for timer in run.timers:
            put: dict[str, Any] = {"TableName": self._table, "Item": self._timer_item(contact, timer)}
            if replaced and consumed is not None and timer.key == consumed.key:
                put.update(_still_at(consumed))
            items.append({"Put": put})
        entry_at = None
        if entry is not None:
            entry_at = len(items)
            items.append({"Update": self._entry_update(contact, entry, now)})
        consumed_at = None
        if consumed is not None and not replaced:
            consumed_at = len(items)
            items.append(self._consume_item(contact, consumed))
        elif consumed is not None:
            consumed_at = next(number + 1 for number, t in enumerate(run.timers) if t.key == consumed.key)
        cancelled = transact(self._db, items, STORE)
        if cancelled is None:
            return "started"
        failed = {number for number, code in enumerate(cancelled.codes) if code == "ConditionalCheckFailed"}
        if not failed or any(
            code not in ("ConditionalCheckFailed", "None", None) for code in cancelled.codes
        ):
            raise failure(cancelled.error, STORE) from cancelled.error
        if 0 in failed:
            return "duplicate"
        if entry_at in failed:
            return "limited"
        if consumed_at in failed:
            return "duplicate"  # someone else consumed the timer: its run is theirs
        raise failure(cancelled.error, STORE) from cancelled.error

    def pending(self, contact: ContactId, run_key: str) -> Plan | None:
        item = self._get(contact, RUN + run_key)
        if item is None or item.get("status", {}).get("S") != PENDING:
            return None
        return plan_of(item["plan"]["S"])

    def done(self, contact: ContactId, run_key: str) -> None:
        try:
            retried(
                lambda: self._db.update_item(
                    TableName=self._table,
                    Key={"pk": partition(contact), "sk": s(RUN + run_key)},
                    UpdateExpression="SET #s = :done REMOVE dueShard, dueKey",
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":done": s(DONE)},
                ),
                STORE,
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise failure(exc, STORE) from exc

    def arm(self, contact: ContactId, timers: Sequence[Timer]) -> int:
        armed = 0
        for timer in timers:
            try:
                retried(
                    lambda timer=timer: self._db.put_item(
                        TableName=self._table,
                        Item=self._timer_item(contact, timer),
                        ConditionExpression="attribute_not_exists(pk)",
                    ),
                    STORE,
                )
            except Exception as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise failure(exc, STORE) from exc
                continue
            armed += 1
        return armed

    def timer(self, contact: ContactId, key: str) -> Timer | None:
        item = self._get(contact, TIMER + key)
        return None if item is None else _timer_from_item(item)

    def consume(self, contact: ContactId, consumed: Consumed) -> bool:
        ((kind, request),) = self._consume_item(contact, consumed).items()
        call = self._db.put_item if kind == "Put" else self._db.delete_item
        try:
            retried(lambda: call(**request), STORE)
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise failure(exc, STORE) from exc
            return False
        return True

    def due(self, now: datetime) -> list[DueItem]:
        found: list[DueItem] = []
        for contact, sort_key in due_entries(self._db, self._table, self._shards, now):
            if sort_key == PROFILE:
                found.append(DueItem(contact, "profile"))
            elif sort_key.startswith(TIMER):
                found.append(DueItem(contact, "timer", sort_key.removeprefix(TIMER)))
            elif sort_key.startswith(RUN):
                found.append(DueItem(contact, "run", sort_key.removeprefix(RUN)))
            elif sort_key.startswith(SEND):
                found.append(DueItem(contact, "send", sort_key.removeprefix(SEND)))
        return found

    def take_deferred_send(
        self, contact: ContactId, key: str, now: datetime, retry_at: datetime
    ) -> DeliveryRequest | None:
        """A deferred entry of the send ledger (``shared.adapters.send_ledger``), taken to queue again."""
        return take_deferred(self._db, self._table, contact, key, now, retry_at)

    # --- the contact's card ---------------------------------------------------------------------------

    def runs(self, contact: ContactId, limit: int = 50) -> list[RunView]:
        """The contact's runs, newest first."""
        views = [_run_view(item) for item in self._items(contact, RUN)]
        return sorted(views, key=lambda v: v.at, reverse=True)[:limit]

    def timers(self, contact: ContactId) -> list[TimerView]:
        """The contact's timers, soonest first."""
        views = [TimerView.of(_timer_from_item(item)) for item in self._items(contact, TIMER)]
        return sorted(views, key=lambda v: v.due)

    # --- items ----------------------------------------------------------------------------------------

    def _run_item(self, contact: ContactId, run: Plan, now: datetime) -> dict[str, Any]:
        return {
            "pk": partition(contact),
            "sk": s(RUN + run.key),
            "plan": s(plan_json(run)),
            "status": s(PENDING),
            "runStatus": s(run.status),
            "automation": s(run.automation),
            "at": s(format_time(now)),
            "dueShard": s(due_shard(contact, self._shards)),
            "dueKey": s(due_key(contact, now + RESUME_AFTER)),
        }

    def _timer_item(self, contact: ContactId, timer: Timer) -> dict[str, Any]:
        item = {
            "pk": partition(contact),
            "sk": s(TIMER + timer.key),
            "automation": s(timer.automation),
            "kind": s(timer.kind),
            "n": n(timer.n),
            "occurrence": s(timer.occurrence),
            "step": n(timer.step),
            "values": s(json.dumps(timer_data(timer)["values"], separators=(",", ":"), ensure_ascii=False)),
            "dueAt": s(format_time(timer.due)),
            "dueShard": s(due_shard(contact, self._shards)),
            "dueKey": s(due_key(contact, timer.due)),
        }
        if timer.origin is not None:
            item["origin"] = s(format_time(timer.origin))
        return item

    def _entry_update(self, contact: ContactId, entry: Entry, now: datetime) -> dict[str, Any]:
        return {
            "TableName": self._table,
            "Key": profile_key(contact),
            "UpdateExpression": "SET #e = :until, lastWriter = :w",
            "ConditionExpression": (
                "attribute_exists(pk) AND (attribute_not_exists(#e) OR (#e <> :never AND #e <= :now))"
            ),
            "ExpressionAttributeNames": {"#e": ENTERED + entry.automation},
            "ExpressionAttributeValues": {
                ":until": s(NEVER if entry.until is None else format_time(entry.until)),
                ":never": s(NEVER),
                ":now": s(format_time(now)),
                ":w": s(WRITER),
            },
        }

    def _consume_item(self, contact: ContactId, consumed: Consumed) -> dict[str, Any]:
        """The timer replaced by its next occurrence, or deleted, if it is still at occurrence ``n``."""
        if consumed.then is not None:
            item = self._timer_item(contact, consumed.then)
            return {"Put": {"TableName": self._table, "Item": item, **_still_at(consumed)}}
        key = {"pk": partition(contact), "sk": s(TIMER + consumed.key)}
        return {"Delete": {"TableName": self._table, "Key": key, **_still_at(consumed)}}

    def _get(self, contact: ContactId, sort_key: str) -> dict[str, Any] | None:
        try:
            found = retried(
                lambda: self._db.get_item(
                    TableName=self._table,
                    Key={"pk": partition(contact), "sk": s(sort_key)},
                    ConsistentRead=True,
                ),
                STORE,
            )
        except Exception as exc:
            raise failure(exc, STORE) from exc
        return found.get("Item")

    def _items(self, contact: ContactId, prefix: str) -> list[dict[str, Any]]:
        request = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
            "ExpressionAttributeValues": {":pk": partition(contact), ":p": s(prefix)},
        }
        return query_all(self._db, request, STORE)


def _still_at(consumed: Consumed) -> dict[str, Any]:
    return {
        "ConditionExpression": "#n = :expected",
        "ExpressionAttributeNames": {"#n": "n"},
        "ExpressionAttributeValues": {":expected": n(consumed.n)},
    }


def _timer_from_item(item: Mapping[str, Any]) -> Timer:
    origin = item.get("origin", {}).get("S")
    return Timer(
        automation=item["automation"]["S"],
        key=item["sk"]["S"].removeprefix(TIMER),
        due=parse_time(item["dueAt"]["S"]),
        kind=item["kind"]["S"],
        n=int(item["n"]["N"]),
        occurrence=item["occurrence"]["S"],
        step=int(item["step"]["N"]),
        origin=None if origin is None else parse_time(origin),
        values=json.loads(item["values"]["S"]),
    )


def _run_view(item: Mapping[str, Any]) -> RunView:
    return RunView.of(plan_of(item["plan"]["S"]), item["status"]["S"], parse_time(item["at"]["S"]))
