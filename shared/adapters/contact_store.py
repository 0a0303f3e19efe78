"""The contact store on DynamoDB.

Hot path: one ``TransactWriteItems`` carries, per contact, a conditional put of
each new event (keyed by messageId, so a replay fails its condition) and one
blind update of the profile (guarded by ``attribute_not_exists(mergedInto)``,
so writes to a merged-away contact are re-routed). Changes for many contacts
share a transaction up to DynamoDB's 100-item limit. No reads.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.adapters.dynamodb import (
    RETRYABLE_REASONS,
    Expression,
    cancellation_codes,
    error_code,
    is_transient,
    js,
    n,
    plain_item,
    s,
    ss,
    transact_if,
    unavailable,
)
from shared.adapters.tables import EVENTS
from shared.contacts.changes import ContactChange
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.contacts.recording import ChangeCapacity, Claim, CommitOutcome, MergePlan
from shared.errors import DependencyUnavailable, InvalidRequest, PayloadTooLarge
from shared.scoring.engine import RuleUse, ScoreChange
from shared.scoring.model import DimensionScore
from shared.tracking.behaviours import Behaviour
from shared.tracking.messages import TrackedEvent
from shared.tracking.timestamps import format_time

PROFILE = "PROFILE"
#: Every profile write here says who made it; the stage function's trigger passes only these.
WRITER = "tracking"
EVENT_PREFIX = "M#"
MERGED_PREFIX = "MERGED#"
TRAIT, TAG, COUNT, GROUP, SCORE, RULE, BASELINE = (
    "trait:",
    "tag:",
    "count:",
    "group:",
    "score:",
    "rule:",
    "stageBase:",
)
MAX_TRANSACTION_ITEMS = 100
#: Stay under the 4 MB transaction limit, counting each item's body and keys.
MAX_TRANSACTION_BYTES = 3_500_000
ATTEMPTS = 4


@dataclass(frozen=True, slots=True)
class Retention:
    """How long the event log keeps events; purchases stay longer for RFM, churn and programs."""

    days: int = 395
    purchase_days: int = 3650

    def expires_at(self, event: TrackedEvent) -> int:
        keep = self.purchase_days if event.behaviour in _LONG_LIVED else self.days
        return int((event.received_at + timedelta(days=keep)).timestamp())


_LONG_LIVED = frozenset({Behaviour.PURCHASE, Behaviour.REFUND, Behaviour.ORDER_CANCELLED})


def partition(contact: ContactId) -> dict[str, str]:
    return s(f"C#{contact}")


def profile_key(contact: ContactId) -> dict[str, Any]:
    return {"pk": partition(contact), "sk": s(PROFILE)}


class DynamoContactStore:
    capacity = ChangeCapacity(max_events=MAX_TRANSACTION_ITEMS - 1, max_keys=300)

    def __init__(
        self,
        client: Any,
        *,
        contacts_table: str,
        events_table: str,
        retention: Retention = Retention(),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._db = client
        self._contacts = contacts_table
        self._events = events_table
        self._retention = retention
        self._sleep = sleep

    # --- hot path -----------------------------------------------------------------

    def commit(self, changes: Sequence[ContactChange]) -> list[CommitOutcome]:
        outcomes: list[CommitOutcome | None] = [None] * len(changes)
        for indices in _pack(changes):
            self._transact(indices, changes, outcomes)
        return [o or CommitOutcome(committed=False) for o in outcomes]

    def _transact(
        self, indices: list[int], changes: Sequence[ContactChange], outcomes: list[CommitOutcome | None]
    ) -> None:
        items: list[dict[str, Any]] = []
        owners: list[tuple[int, str | None]] = []  # (change index, messageId or None for the profile)
        for index in indices:
            change = changes[index]
            received_at = format_time(change.last_seen)
            for event in change.events:
                ledger = change.scored.ledger.get(event.message_id, ())
                items.append({"Put": self._event_put(change.contact, event, received_at, ledger)})
                owners.append((index, event.message_id))
            items.append({"Update": self._profile_update(change)})
            owners.append((index, None))
        for attempt in range(ATTEMPTS):
            try:
                self._db.transact_write_items(TransactItems=items)
            except Exception as exc:  # noqa: BLE001 - classified below
                code = error_code(exc)
                reasons = cancellation_codes(exc)
                if reasons is not None:
                    if "ConditionalCheckFailed" in reasons:
                        self._rejected(exc.response["CancellationReasons"], owners, outcomes)  # type: ignore[attr-defined]
                        return
                    if "ValidationError" in reasons:
                        raise PayloadTooLarge(
                            "a contact's profile would exceed DynamoDB's item size; remove traits or tags"
                        ) from exc
                    if not RETRYABLE_REASONS.intersection(reasons):
                        raise unavailable(exc, "the contact store") from exc
                elif code == "ValidationException":
                    raise InvalidRequest(
                        f"the store rejected the write: {exc}", code="invalid_event"
                    ) from exc
                elif not is_transient(exc):
                    raise
                if attempt + 1 == ATTEMPTS:
                    raise unavailable(exc, "the contact store") from exc
                self._sleep(random.uniform(0, 0.025 * 4**attempt))
                continue
            for index in indices:
                outcomes[index] = CommitOutcome(committed=True)
            return

    @staticmethod
    def _rejected(
        reasons: list[Mapping[str, Any]],
        owners: list[tuple[int, str | None]],
        outcomes: list[CommitOutcome | None],
    ) -> None:
        duplicates: dict[int, set[str]] = {}
        merged: dict[int, ContactId] = {}
        uses: dict[int, dict[str, RuleUse]] = {}
        for (index, message_id), reason in zip(owners, reasons, strict=False):
            duplicates.setdefault(index, set())
            if reason.get("Code") != "ConditionalCheckFailed":
                continue
            if message_id is not None:
                duplicates[index].add(message_id)
                continue
            item = reason.get("Item") or {}
            into = item.get("mergedInto", {}).get("S")
            if into:
                merged[index] = ContactId.parse(into)
            else:
                uses[index] = {k: RuleUse(c, d) for k, (c, d) in _rule_uses(plain_item(item)).items()}
        for index, found in duplicates.items():
            outcomes[index] = CommitOutcome(
                committed=False,
                duplicates=frozenset(found),
                merged_into=merged.get(index),
                rule_uses=uses.get(index),
            )

    def _event_put(
        self, contact: ContactId, event: TrackedEvent, received_at: str, ledger: tuple[ScoreChange, ...]
    ) -> dict[str, Any]:
        happened = format_time(event.timestamp)
        item: dict[str, Any] = {
            "pk": partition(contact),
            "sk": s(EVENT_PREFIX + event.message_id),
            "at": s(f"{happened}#{event.message_id}"),
            "messageId": s(event.message_id),
            "call": s(event.call),
            "behaviour": s(event.behaviour.value),
            "timestamp": s(happened),
            "receivedAt": s(received_at),
            "body": s(event.body),
            EVENTS.ttl_attribute: n(self._retention.expires_at(event)),
        }
        if event.event:
            item["event"] = s(event.event)
        if event.revenue is not None:
            item["revenue"] = n(event.revenue)
        if ledger:
            item["scoredAt"] = item["at"]
            item["ledger"] = js([asdict(change) for change in ledger])
        return {"TableName": self._events, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}

    def _profile_update(self, change: ContactChange) -> dict[str, Any]:
        x = Expression()
        contact = change.contact
        x.set("contactId", s(str(contact)))
        x.set("lastWriter", s(WRITER))
        if contact.kind == "user_id":
            x.set("userId", s(contact.value))
        x.set_if_absent("firstSeenAt", s(format_time(change.first_seen)))
        x.set("lastSeenAt", s(format_time(change.last_seen)))
        x.set("updatedAt", s(format_time(change.last_seen)))
        for name, value in change.traits_set.items():
            x.set(TRAIT + name, js(value))
        for name in change.traits_unset:
            x.remove(TRAIT + name)
        if change.timezone_hint:
            x.set_if_absent(TRAIT + "timezone", js(change.timezone_hint))
        stamp = s(format_time(change.last_seen))
        for tag in change.tags_add:
            x.set_if_absent(TAG + tag, stamp)
        for tag in change.tags_remove:
            x.remove(TAG + tag)
        for group in change.groups:
            x.set_if_absent(GROUP + group, stamp)
        if change.last_purchase_at is not None:
            x.set("lastPurchaseAt", s(format_time(change.last_purchase_at)))
        x.add("eventCount", n(len(change.events)))
        x.add("rev", n(1))
        for behaviour, count in change.counts.items():
            x.add(COUNT + behaviour, n(count))
        if change.anonymous_ids:
            x.add("anonymousIds", ss(change.anonymous_ids))
        if change.revenue:
            x.add("revenueTotal", n(change.revenue))
        scored = change.scored
        for dimension, points in scored.totals.items():
            x.add(f"{SCORE}{dimension}:total", n(points))
        for (dimension, memory, bucket), value in scored.sums.items():
            x.add(f"{SCORE}{dimension}:{memory}:{bucket}", n(_number(value)))
        conditions = [f"attribute_not_exists({x.name('mergedInto')})"]
        for claim in scored.limits:
            count = x.name(f"{RULE}{claim.rule_id}:n")
            x.add(f"{RULE}{claim.rule_id}:n", n(claim.count))
            if claim.per_contact is not None:
                ceiling = x.value(n(claim.per_contact - claim.count))
                conditions.append(f"(attribute_not_exists({count}) OR {count} <= {ceiling})")
            if claim.first_day is not None:
                day = x.name(f"{RULE}{claim.rule_id}:day")
                x.set(f"{RULE}{claim.rule_id}:day", s(claim.last_day))
                conditions.append(f"(attribute_not_exists({day}) OR {day} < {x.value(s(claim.first_day))})")
        return x.update(
            self._contacts,
            profile_key(contact),
            " AND ".join(conditions),
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )

    # --- reads ------------------------------------------------------------------------

    def profile(self, contact: ContactId) -> ContactRecord | None:
        try:
            item = self._db.get_item(
                TableName=self._contacts, Key=profile_key(contact), ConsistentRead=True
            ).get("Item")
        except Exception as exc:
            raise self._failure(exc) from exc
        return record_from_item(item) if item else None

    # --- identity merges -------------------------------------------------------------------

    def claim(self, source: ContactId, target: ContactId, at: datetime) -> Claim:
        """Mark ``source`` as merged into ``target`` unless it already belongs somewhere; who owns it now."""
        x = Expression()
        x.set("mergedInto", s(str(target)))
        x.set_if_absent("contactId", s(str(source)))
        x.set("mergedAt", s(format_time(at)))
        x.set("lastWriter", s(WRITER))
        for attribute in ("dueAt", "dueShard", "dueKey"):  # a merged-away contact is never due again
            x.remove(attribute)
        x.add("rev", n(1))
        condition = f"attribute_not_exists({x.name('mergedInto')})"
        try:
            self._db.update_item(
                **x.update(
                    self._contacts,
                    profile_key(source),
                    condition,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                item = getattr(exc, "response", {}).get("Item") or {}
                owner = item.get("mergedInto", {}).get("S")
                return Claim(
                    ContactId.parse(owner) if owner else source, completed="mergeCompletedAt" in item
                )
            raise self._failure(exc) from exc
        return Claim(target)

    def move_events(self, source: ContactId, target: ContactId, limit: int) -> int:
        moved = 0
        start: dict[str, Any] | None = None
        while moved < limit:
            request: dict[str, Any] = {
                "TableName": self._events,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": partition(source)},
                "ConsistentRead": True,
                "Limit": min(100, limit - moved),
            }
            if start:
                request["ExclusiveStartKey"] = start
            try:
                page = self._db.query(**request)
            except Exception as exc:
                raise self._failure(exc) from exc
            items = page.get("Items", [])
            self._batch_write([{"PutRequest": {"Item": {**item, "pk": partition(target)}}} for item in items])
            self._batch_write(
                [{"DeleteRequest": {"Key": {"pk": item["pk"], "sk": item["sk"]}}} for item in items]
            )
            moved += len(items)
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        return moved

    def absorb(self, target: ContactId, plan: MergePlan, at: datetime) -> bool:
        x = Expression()
        stamp = s(format_time(at))
        for name, value in plan.traits.items():
            x.set_if_absent(TRAIT + name, js(value))
        for tag, added in plan.tags.items():
            x.set_if_absent(TAG + tag, s(format_time(added)))
        for group in plan.groups:
            x.set_if_absent(GROUP + group, stamp)
        for behaviour, count in plan.counts.items():
            x.add(COUNT + behaviour, n(count))
        if plan.anonymous_ids:
            x.add("anonymousIds", ss(plan.anonymous_ids))
        if plan.event_count:
            x.add("eventCount", n(plan.event_count))
        if plan.revenue:
            x.add("revenueTotal", n(plan.revenue))
        for dimension, score in plan.scores.items():
            if score.total:
                x.add(f"{SCORE}{dimension}:total", n(score.total))
            for memory, buckets in score.sums.items():
                for bucket, value in buckets.items():
                    if value:
                        x.add(f"{SCORE}{dimension}:{memory}:{bucket}", n(_number(value)))
        for rule_id, (count, day) in plan.rule_uses.items():
            x.add(f"{RULE}{rule_id}:n", n(count))
            if day is not None:
                x.set(f"{RULE}{rule_id}:day", s(day))
        for attribute, value in (
            ("firstSeenAt", plan.first_seen_at),
            ("lastSeenAt", plan.last_seen_at),
            ("lastPurchaseAt", plan.last_purchase_at),
        ):
            if value is not None:
                x.set(attribute, s(format_time(value)))
        x.set("updatedAt", stamp)
        x.set_if_absent("contactId", s(str(target)))
        x.set("lastWriter", s(WRITER))
        x.add("rev", n(1))
        marker = {"pk": partition(target), "sk": s(MERGED_PREFIX + str(plan.source)), "mergedAt": stamp}
        done = Expression()
        done.set("mergeCompletedAt", stamp)
        return transact_if(
            self._db,
            [
                {
                    "Put": {
                        "TableName": self._contacts,
                        "Item": marker,
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Update": x.update(
                        self._contacts, profile_key(target), f"attribute_not_exists({x.name('mergedInto')})"
                    )
                },
                {"Update": done.update(self._contacts, profile_key(plan.source))},
            ],
            "the contact store",
        )

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        for start in range(0, len(requests), 25):
            pending = {self._events: requests[start : start + 25]}
            for attempt in range(ATTEMPTS + 2):
                try:
                    pending = self._db.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                except Exception as exc:
                    raise self._failure(exc) from exc
                if not pending:
                    break
                self._sleep(random.uniform(0, 0.025 * 2**attempt))
            if pending:
                raise DependencyUnavailable("the event log is throttled; retry")

    @staticmethod
    def _failure(exc: Exception) -> Exception:
        return unavailable(exc, "the contact store") if is_transient(exc) else exc


def _pack(changes: Sequence[ContactChange]) -> list[list[int]]:
    """Group changes into transactions: at most 100 items and ~3.5 MB, one change per contact each."""
    batches: list[list[int]] = []
    current: list[int] = []
    contacts: set[ContactId] = set()
    items = size = 0
    for index, change in enumerate(changes):
        need = len(change.events) + 1
        weight = sum(len(e.body) + 600 for e in change.events) + 4000
        if current and (
            items + need > MAX_TRANSACTION_ITEMS
            or size + weight > MAX_TRANSACTION_BYTES
            or change.contact in contacts
        ):
            batches.append(current)
            current, contacts, items, size = [], set(), 0, 0
        current.append(index)
        contacts.add(change.contact)
        items += need
        size += weight
    if current:
        batches.append(current)
    return batches


def record_from_item(item: Mapping[str, Any]) -> ContactRecord:
    """Fold the flat profile item (``trait:*``, ``tag:*``, ``count:*``...) into a ``ContactRecord``."""
    data = plain_item(item)
    fields: dict[str, Any] = {
        "contact_id": data.get("contactId") or str(data["pk"]).removeprefix("C#"),
        "user_id": data.get("userId"),
        "anonymous_ids": data.get("anonymousIds") or frozenset(),
        "event_count": int(data.get("eventCount", 0)),
        "first_seen_at": data.get("firstSeenAt"),
        "last_seen_at": data.get("lastSeenAt"),
        "revenue_total": data.get("revenueTotal", 0),
        "last_purchase_at": data.get("lastPurchaseAt"),
        "merged_into": data.get("mergedInto"),
        "traits": {},
        "tags": {},
        "counts": {},
        "groups": set(),
        "scores": _scores(data, SCORE),
        "rule_uses": _rule_uses(data),
        "stage": data.get("stage"),
        "stage_entered_at": data.get("stageEnteredAt"),
        "stage_baseline": _scores(data, BASELINE).get("global") if "stageEnteredAt" in data else None,
        "quarter": data.get("quarter"),
        "sales_ready": bool(data.get("salesReady", False)),
        "owner": data.get("owner"),
        "stage_seq": int(data.get("stageSeq", 0)),
        "due_at": data.get("dueAt"),
        "pending_outputs": int(data.get("pendingOutputs", 0)),
        "stored_numbers": {
            name: str(value)
            for name, value in data.items()
            if name.startswith((SCORE, BASELINE)) and not name.endswith(":total")
        },
    }
    for name, value in data.items():
        if name.startswith(TRAIT):
            fields["traits"][name[len(TRAIT) :]] = json.loads(value)
        elif name.startswith(TAG):
            fields["tags"][name[len(TAG) :]] = value
        elif name.startswith(COUNT):
            fields["counts"][name[len(COUNT) :]] = int(value)
        elif name.startswith(GROUP):
            fields["groups"].add(name[len(GROUP) :])
    return ContactRecord.model_validate(fields)


def _scores(data: Mapping[str, Any], prefix: str) -> dict[str, DimensionScore]:
    """``score:<dimension>:total`` and ``score:<dimension>:<memory>:<bucket>`` into per-dimension scores."""
    totals: dict[str, Decimal] = {}
    sums: dict[str, dict[str, dict[int, float]]] = {}
    for name, value in data.items():
        if not name.startswith(prefix):
            continue
        rest = name[len(prefix) :]
        if rest.endswith(":total"):
            totals[rest[: -len(":total")]] = value
            continue
        dimension, memory, bucket = rest.rsplit(":", 2)
        sums.setdefault(dimension, {}).setdefault(memory, {})[int(bucket)] = float(value)
    return {
        dimension: DimensionScore(total=totals.get(dimension, Decimal(0)), sums=sums.get(dimension, {}))
        for dimension in {*totals, *sums}
    }


def _rule_uses(data: Mapping[str, Any]) -> dict[str, tuple[int, str | None]]:
    uses: dict[str, tuple[int, str | None]] = {}
    for name, value in data.items():
        if name.startswith(RULE) and name.endswith(":n"):
            rule_id = name[len(RULE) : -2]
            uses[rule_id] = (int(value), data.get(f"{RULE}{rule_id}:day"))
    return uses


def _number(value: float) -> Decimal:
    """A float as a DynamoDB number: 17 significant digits round-trip exactly."""
    return Decimal(format(value, ".17g"))
