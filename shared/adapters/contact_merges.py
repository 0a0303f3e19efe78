"""Identity merges on DynamoDB: each step of ``shared.usecases.recording.link``, safe to repeat.

The merge function runs these off the request path (``shared.usecases.merging``). Claiming marks the
merged-away profile; its events are copied to the target and then deleted; a copy the target already
held is retracted with what it added; the profile is absorbed in parts under 4 KB, each with a marker
of its own, so a merge cut short resumes and adds nothing twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from shared.adapters.contact_items import (
    COUNT,
    EVENT_PREFIX,
    FOLDED,
    GROUP,
    MERGE_REQUESTED,
    MERGE_WRITER,
    MERGED_PREFIX,
    MOVED_FROM,
    RECENT_PRODUCTS,
    RETRACTED,
    RULE,
    SCORE,
    TAG,
    TRAIT,
    TRAIT_BYTES,
    WRITER,
    partition,
    profile_key,
    recent_products_value,
    retraction_value,
    stored_event,
)
from shared.adapters.contact_profiles import STORE, move_if, read_profile, retraction_update, taken_back
from shared.adapters.dynamodb import (
    batch_write,
    error_code,
    exact_number,
    failure,
    js,
    n,
    retried,
    s,
    ss,
    transact,
)
from shared.adapters.expressions import Clause, Expression, packed
from shared.adapters.sales_leads import LOOKUP_KEY, LOOKUP_SORT
from shared.contacts.changes import trait_bytes
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.contacts.views import StoredEvent
from shared.tracking.timestamps import format_time
from shared.usecases.recording import Absorbed, Claim, MergePlan, Moved, Retraction

#: Events copied per transaction: each up to 32 KB of call plus its ledger, well within 4 MB.
COPIES_PER_TRANSACTION = 25


class DynamoMergeStore:
    """The merge steps (``MergeRequests``): the contacts table's profiles and the events table's log."""

    def __init__(
        self,
        client: Any,
        *,
        contacts_table: str,
        events_table: str,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._db = client
        self._contacts = contacts_table
        self._events = events_table
        self._sleep = sleep

    def profile(self, contact: ContactId) -> ContactRecord | None:
        return read_profile(self._db, self._contacts, contact)

    def claim(self, source: ContactId, target: ContactId, at: datetime) -> Claim:
        """Mark ``source`` as merged into ``target`` unless it already belongs somewhere; who owns it now.

        The target must not be merged away itself: two aliases in opposite directions cannot both win.
        """
        x = Expression()
        x.set("mergedInto", s(str(target)))
        x.set_if_absent("contactId", s(str(source)))
        x.set("mergedAt", s(format_time(at)))
        x.set("lastWriter", s(WRITER))
        for attribute in ("dueAt", "dueShard", "dueKey"):  # a merged-away contact is never due again
            x.remove(attribute)
        for attribute in (LOOKUP_KEY, LOOKUP_SORT):  # issue 14: nor anybody's lead (the survivor may be)
            x.remove(attribute)
        x.add("rev", n(1))
        condition = f"attribute_not_exists({x.name('mergedInto')})"
        items = [
            {
                "Update": x.update(
                    self._contacts,
                    profile_key(source),
                    condition,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            },
            {
                "ConditionCheck": {
                    "TableName": self._contacts,
                    "Key": profile_key(target),
                    "ConditionExpression": "attribute_not_exists(mergedInto)",
                }
            },
        ]
        cancelled = transact(self._db, items, STORE, sleep=self._sleep)
        if cancelled is not None:
            codes = cancelled.codes
            if codes[0] == "ConditionalCheckFailed":
                item = cancelled.reasons[0].get("Item") or {}
                owner = item.get("mergedInto", {}).get("S")
                return Claim(
                    ContactId.parse(owner) if owner else source, completed="mergeCompletedAt" in item
                )
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                return Claim(target, target_moved=True)
            raise failure(cancelled.error, STORE) from cancelled.error
        return Claim(target)

    def count_events(self, contact: ContactId) -> int:
        request: dict[str, Any] = {
            "TableName": self._events,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": partition(contact)},
            "Select": "COUNT",
            "ConsistentRead": True,
        }
        count = 0
        while True:
            try:
                page = self._db.query(**request)
            except Exception as exc:
                raise self._failure(exc) from exc
            count += page.get("Count", 0)
            if not page.get("LastEvaluatedKey"):
                return count
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def move_events(self, source: ContactId, target: ContactId, limit: int) -> Moved:
        """Copy the source's newest events (by key: time) to the target, then delete them from the source.

        An event whose messageId the target already holds (and not as a copy from this source, made by
        an earlier attempt) stays on the source and is reported as a duplicate, to be retracted.
        """
        moved = 0
        duplicates: list[StoredEvent] = []
        start: dict[str, Any] | None = None
        while moved < limit:
            request: dict[str, Any] = {
                "TableName": self._events,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": partition(source)},
                "ScanIndexForward": False,
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
            held = self._copy(items, source, target)
            duplicates += [stored_event(item) for item in held]
            self._batch_write(
                [
                    {"DeleteRequest": {"Key": {"pk": item["pk"], "sk": item["sk"]}}}
                    for item in items
                    if item not in held
                ]
            )
            moved += len(items)
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        return Moved(count=moved - len(duplicates), duplicates=tuple(duplicates))

    def _copy(
        self, items: Sequence[dict[str, Any]], source: ContactId, target: ContactId
    ) -> list[dict[str, Any]]:
        """Copy events to the target unless it holds the messageId already (sent there by the tracking
        path, before the merge or while it runs; a copy from this source, made by an earlier attempt,
        is taken again): a conditional put each, in transactions. The events the target holds come
        back, to be retracted rather than counted twice."""
        late: list[dict[str, Any]] = []
        pending = list(items)
        while pending:
            chunk, pending = pending[:COPIES_PER_TRANSACTION], pending[COPIES_PER_TRANSACTION:]
            puts = [
                {
                    "Put": {
                        "TableName": self._events,
                        "Item": {**item, "pk": partition(target), MOVED_FROM: s(str(source))},
                        # a copy from this source made by an earlier attempt is taken again, but not one
                        # a re-route made and counted (``folded``): replacing it would lose that mark
                        "ConditionExpression": "attribute_not_exists(pk) OR (#from = :source AND attribute_not_exists(#folded))",
                        "ExpressionAttributeNames": {"#from": MOVED_FROM, "#folded": FOLDED},
                        "ExpressionAttributeValues": {":source": s(str(source))},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
                for item in chunk
            ]
            cancelled = transact(self._db, puts, STORE, sleep=self._sleep)
            if cancelled is None:
                continue
            refused = [
                (item, reason.get("Item") or {})
                for item, reason in zip(chunk, cancelled.reasons, strict=False)
                if reason.get("Code") == "ConditionalCheckFailed"
            ]
            if not refused:
                raise failure(cancelled.error, STORE) from cancelled.error
            # the target's own copy: a duplicate to retract; a re-route's copy from this source: moved
            held = [item for item, there in refused if there.get(MOVED_FROM, {}).get("S") != str(source)]
            late += held
            done = [item for item, _ in refused]
            pending = [item for item in chunk if item not in done] + pending  # the rest, again
        return late

    def retract(self, source: ContactId, target: ContactId, retraction: Retraction) -> Absorbed:
        """Delete the source's copy of a duplicate event and take back what it added, in one transaction:
        the copy's deletion is the condition, so a resumed merge never retracts twice. The source keeps
        what was taken back for that put: a copy still on its way (not counted by the source's profile)
        gets it back when its re-route finds the target's own copy (``DynamoContactStore.give_back``)."""
        x = retraction_update(retraction)
        key = retraction.key or EVENT_PREFIX + retraction.message_id
        items = [
            {
                "Delete": {
                    "TableName": self._events,
                    "Key": {"pk": partition(source), "sk": s(key)},
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
            {
                "Update": x.update(
                    self._contacts, profile_key(target), f"attribute_not_exists({x.name('mergedInto')})"
                )
            },
        ]
        if retraction.put:
            mark = Expression()
            mark.set(RETRACTED + key, retraction_value(retraction))
            mark.set("lastWriter", s(MERGE_WRITER))  # not a tracking change: the stage function ignores it
            items.append({"Update": mark.update(self._contacts, profile_key(source))})
        return taken_back(transact(self._db, items, STORE, sleep=self._sleep))

    def absorb(self, target: ContactId, plan: MergePlan, at: datetime) -> Absorbed:
        """Add the source's profile to the target, once, in writes that each fit DynamoDB's limits.

        1. Traits, tags and groups the target lacks (``if_not_exists``: safe to repeat).
        2. Counters and scores, in parts; each part commits with a marker of its own, so none is
           ever added twice; the last part also marks the source's merge complete.
        3. Times and rule days, moved only forward (or, for first-seen, back): monotonic, repeatable.
        """
        stamp = s(format_time(at))
        fills: list[Clause] = [("if_absent", TRAIT + k, js(v)) for k, v in plan.traits.items()]
        fills += [("if_absent", TAG + tag, s(format_time(added))) for tag, added in plan.tags.items()]
        fills += [("if_absent", GROUP + group, stamp) for group in plan.groups]
        guard = "attribute_not_exists(mergedInto)"
        for number, part in enumerate(packed(fills)):
            part.set("lastWriter", s(WRITER))
            part.remove(MERGE_REQUESTED)  # this write merges: it is no longer a request
            if number == 0 and plan.traits:
                # the trait cap's bound grows by what the fills may add: it may overstate (a trait the
                # target already has, a repeated part), never understate; the cap check corrects it
                part.add(TRAIT_BYTES, n(trait_bytes(plan.traits)))
            try:
                request = part.update(self._contacts, profile_key(target), guard)
                self._write(lambda request=request: self._db.update_item(**request))
            except Exception as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    return Absorbed.MOVED
                raise self._failure(exc) from exc

        adds: list[Clause] = [("add", COUNT + b, n(c)) for b, c in plan.counts.items()]
        adds += [("add", f"{RULE}{rule}:n", n(count)) for rule, (count, _) in plan.rule_uses.items()]
        for dimension, score in plan.scores.items():
            if score.total:
                adds.append(("add", f"{SCORE}{dimension}:total", n(score.total)))
            for memory, buckets in score.sums.items():
                adds += [
                    ("add", f"{SCORE}{dimension}:{memory}:{b}", n(exact_number(v)))
                    for b, v in buckets.items()
                    if v
                ]
        if plan.anonymous_ids:
            adds.append(("add", "anonymousIds", ss(plan.anonymous_ids)))
        if plan.event_count:
            adds.append(("add", "eventCount", n(plan.event_count)))
        if plan.revenue:
            adds.append(("add", "revenueTotal", n(plan.revenue)))
        parts = packed(adds) or [Expression()]
        if plan.recent_products:  # issue 15: the union, with the counters (their marker: once)
            parts[0].prepend(RECENT_PRODUCTS, recent_products_value(plan.recent_products))
        outcome = Absorbed.ALREADY
        for number, part in enumerate(parts):
            part.set("updatedAt", stamp)
            part.set_if_absent("contactId", s(str(target)))
            part.set("lastWriter", s(WRITER))
            part.remove(MERGE_REQUESTED)
            part.add("rev", n(1))
            marker = f"{MERGED_PREFIX}{plan.source}" + (f"#{number}" if number else "")
            items: list[dict[str, Any]] = [
                {
                    "Put": {
                        "TableName": self._contacts,
                        "Item": {"pk": partition(target), "sk": s(marker), "mergedAt": stamp},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Update": part.update(
                        self._contacts,
                        profile_key(target),
                        f"attribute_not_exists({part.name('mergedInto')})",
                    )
                },
            ]
            if number == len(parts) - 1:
                done = Expression()
                done.set("mergeCompletedAt", stamp)
                # not a change the stage function evaluates: it removed the source on the claim's write
                done.set("lastWriter", s(MERGE_WRITER))
                items.append({"Update": done.update(self._contacts, profile_key(plan.source))})
            cancelled = transact(self._db, items, STORE, sleep=self._sleep)
            if cancelled is None:
                outcome = Absorbed.DONE
                continue
            codes = cancelled.codes
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                return Absorbed.MOVED
            if codes[0] != "ConditionalCheckFailed":
                raise failure(cancelled.error, STORE) from cancelled.error
            # a part already applied (its marker exists) is skipped; the others go on
        self._monotonic(target, plan)
        return outcome

    def clear_merge_request(self, target: ContactId, marker: str) -> None:
        """Remove the request unless a newer one replaced it (that one's own write is delivered too)."""
        try:
            self._write(
                lambda: self._db.update_item(
                    TableName=self._contacts,
                    Key=profile_key(target),
                    UpdateExpression="REMOVE #r SET #w = :w",
                    ConditionExpression="#r = :r",
                    ExpressionAttributeNames={"#r": MERGE_REQUESTED, "#w": "lastWriter"},
                    ExpressionAttributeValues={":r": s(marker), ":w": s(MERGE_WRITER)},
                )
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise self._failure(exc) from exc

    def _monotonic(self, target: ContactId, plan: MergePlan) -> None:
        """Times that only move one way, each a conditional write: a stale read can never move them back."""
        moves = [
            ("firstSeenAt", plan.first_seen_at, ">"),
            ("lastSeenAt", plan.last_seen_at, "<"),
            ("lastPurchaseAt", plan.last_purchase_at, "<"),
        ]
        values = [
            (attribute, s(format_time(value)), op) for attribute, value, op in moves if value is not None
        ]
        values += [(f"{RULE}{rule}:day", s(day), "<") for rule, (_, day) in plan.rule_uses.items() if day]
        for attribute, value, op in values:
            move_if(self._db, self._contacts, target, attribute, value, op, sleep=self._sleep)

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        batch_write(self._db, self._events, requests, STORE, sleep=self._sleep)

    def _write(self, call: Callable[[], Any]) -> Any:
        """One write, retried while DynamoDB throttles it or a transaction conflicts with it."""
        return retried(call, STORE, sleep=self._sleep)

    @staticmethod
    def _failure(exc: Exception) -> BaseException:
        return failure(exc, STORE)
