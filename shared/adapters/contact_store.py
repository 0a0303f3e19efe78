"""The contact store on DynamoDB.

One ``TransactWriteItems`` carries, per contact, a conditional put of each new
event (keyed by messageId, so a replay fails its condition) and one blind
update of the profile (guarded by ``attribute_not_exists(mergedInto)``, so
writes to a merged-away contact are re-routed). Changes for many contacts
share a transaction up to DynamoDB's 100-item limit. No reads. A change that
declares identity merges sets ``mergeRequested`` on the profile in that same
update; the merge function, triggered by that write, does the merges.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from shared.adapters.contact_items import (
    COUNT,
    EVENT_PREFIX,
    GROUP,
    MERGE_REQUESTED,
    MERGE_WRITER,
    MERGED_PREFIX,
    MOVED_FROM,
    RULE,
    SCORE,
    TAG,
    TRAIT,
    TRAIT_BYTES,
    WRITER,
    Retention,
    event_item,
    partition,
    profile_key,
    record_from_item,
    rule_uses,
    stored_event,
)
from shared.adapters.contact_profiles import STORE, move_if, read_profile
from shared.adapters.dynamodb import (
    ATTEMPTS,
    backoff,
    cancellation_codes,
    error_code,
    exact_number,
    failure,
    js,
    n,
    plain_item,
    retried,
    s,
    ss,
)
from shared.adapters.expressions import EXPRESSION_LIMIT, Clause, Expression, packed
from shared.adapters.tables import EVENTS
from shared.contacts.changes import MAX_PROFILE_TRAIT_BYTES, ContactChange, trait_bytes
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.contacts.views import StoredEvent
from shared.errors import DependencyUnavailable, LifecycleError
from shared.scoring.engine import RuleUse, ScoreChange
from shared.tracking.messages import TrackedEvent
from shared.tracking.timestamps import format_time
from shared.usecases.recording import (
    Absorbed,
    ChangeCapacity,
    Claim,
    CommitOutcome,
    MergePlan,
    Moved,
    Retraction,
)

MAX_TRANSACTION_ITEMS = 100
#: Stay under the 4 MB transaction limit, counting each item's body and keys.
MAX_TRANSACTION_BYTES = 3_500_000
TRAIT_CAP = f"{MAX_PROFILE_TRAIT_BYTES // 1024} KB of traits (the limit per contact)"
ITEM_CAP = "400 KB (the limit of a contact's profile)"
#: Events older than this when they arrive are history being imported, not live behaviour.
IMPORT_HORIZON = timedelta(days=1)
BY_TIME = EVENTS.local_indexes[0].name


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
        updates = [self._profile_update(change) for change in changes]
        fitting = []
        for index, update in enumerate(updates):
            if max(len(update["UpdateExpression"]), len(update["ConditionExpression"])) > EXPRESSION_LIMIT:
                outcomes[index] = CommitOutcome(committed=False, oversized=True)
            else:
                fitting.append(index)
        if len(fitting) < len(changes):
            # Split (or refuse) the oversized first and write nothing meanwhile: a 413 then finds
            # nothing of the request written.
            return [o or CommitOutcome(committed=False) for o in outcomes]
        for indices in _pack([changes[i] for i in fitting]):
            self._transact([fitting[i] for i in indices], changes, updates, outcomes)
        for index, outcome in enumerate(outcomes):
            if outcome is not None and outcome.committed:
                self._imported_times(changes[index])
        return [o or CommitOutcome(committed=False) for o in outcomes]

    def _imported_times(self, change: ContactChange) -> None:
        """History sent late (``/v1/import``) may hold the earliest visit or the latest purchase; those
        times move only one way, by conditional writes, so an old import never moves them back."""
        horizon = change.last_seen - IMPORT_HORIZON
        moves = []
        if change.first_seen < horizon:
            moves.append(("firstSeenAt", s(format_time(change.first_seen)), ">"))
        if change.last_purchase_at is not None and change.last_purchase_at < horizon:
            moves.append(("lastPurchaseAt", s(format_time(change.last_purchase_at)), "<"))
        for attribute, value, op in moves:
            move_if(self._db, self._contacts, change.contact, attribute, value, op, sleep=self._sleep)

    def _transact(
        self,
        indices: list[int],
        changes: Sequence[ContactChange],
        updates: Sequence[dict[str, Any]],
        outcomes: list[CommitOutcome | None],
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
            items.append({"Update": updates[index]})
            owners.append((index, None))
        try:
            retried(
                lambda: self._db.transact_write_items(TransactItems=items),
                STORE,
                sleep=self._sleep,
            )
        except LifecycleError:
            raise
        except Exception as exc:
            reasons = (getattr(exc, "response", None) or {}).get("CancellationReasons")
            if cancellation_codes(exc) is None or not reasons:
                raise failure(exc, STORE) from exc  # e.g. a ValidationException: a 500
            self._rejected(exc, reasons, owners, changes, updates, outcomes)
            return
        for index in indices:
            outcomes[index] = CommitOutcome(committed=True)

    def _rejected(
        self,
        exc: Exception,
        reasons: list[Mapping[str, Any]],
        owners: list[tuple[int, str | None]],
        changes: Sequence[ContactChange],
        updates: Sequence[dict[str, Any]],
        outcomes: list[CommitOutcome | None],
    ) -> None:
        """Why a transaction was cancelled, per change: duplicates, a merge, a rule limit, a full profile.

        Changes cancelled only for another's sake (or by a conflict) get a plain "not committed" and are
        planned again.
        """
        duplicates: dict[int, set[str]] = {}
        merged: dict[int, ContactId] = {}
        uses: dict[int, dict[str, RuleUse]] = {}
        refused: dict[int, str] = {}
        for (index, message_id), reason in zip(owners, reasons, strict=False):
            duplicates.setdefault(index, set())
            code = reason.get("Code")
            if code == "ValidationError":
                if "maximum allowed size" not in (reason.get("Message") or ""):
                    raise exc  # not something the caller sent: our bug, a 500 (logged, no internals shown)
                refused[index] = ITEM_CAP
                continue
            if code != "ConditionalCheckFailed":
                continue
            if message_id is not None:
                duplicates[index].add(message_id)
                continue
            item = reason.get("Item") or {}
            into = item.get("mergedInto", {}).get("S")
            if into:
                merged[index] = ContactId.parse(into)
                continue
            uses[index] = {k: RuleUse(c, d) for k, (c, d) in rule_uses(plain_item(item)).items()}
            if item and not self._trait_bytes_fit(changes[index], updates[index], item):
                refused[index] = TRAIT_CAP
        for index, found in duplicates.items():
            outcomes[index] = CommitOutcome(
                committed=False,
                duplicates=frozenset(found),
                merged_into=merged.get(index),
                rule_uses=uses.get(index),
                refused=refused.get(index),
            )

    def _trait_bytes_fit(
        self, change: ContactChange, update: Mapping[str, Any], item: Mapping[str, Any]
    ) -> bool:
        """After the trait cap refused a change: does it fit the profile's real traits?

        ``traitBytes`` only grows (a trait replaced is counted again), so it may overstate. When the
        change truly fits, the bound is reset to the exact size, on condition nobody changed it
        meanwhile, and the change is planned again; ``False`` if it truly does not fit.
        """
        if TRAIT_BYTES not in update["ExpressionAttributeNames"].values():
            return True  # the change adds no traits: another condition refused it
        bound = item.get(TRAIT_BYTES, {}).get("N")
        if bound is not None and int(bound) + change.trait_bytes <= MAX_PROFILE_TRAIT_BYTES:
            return True
        stored = record_from_item(item).traits
        if trait_bytes(change.traits_after(stored)) > MAX_PROFILE_TRAIT_BYTES:
            return False
        unchanged = f"{TRAIT_BYTES} = :was" if bound is not None else f"attribute_not_exists({TRAIT_BYTES})"
        try:
            retried(
                lambda: self._db.update_item(
                    TableName=self._contacts,
                    Key=profile_key(change.contact),
                    UpdateExpression=f"SET {TRAIT_BYTES} = :exact",
                    ConditionExpression=f"attribute_exists(pk) AND {unchanged}",
                    ExpressionAttributeValues={
                        ":exact": n(trait_bytes(stored)),
                        **({":was": n(int(bound))} if bound is not None else {}),
                    },
                ),
                STORE,
                sleep=self._sleep,
            )
        except LifecycleError:
            raise
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise failure(exc, STORE) from exc
        return True

    def _event_put(
        self, contact: ContactId, event: TrackedEvent, received_at: str, ledger: tuple[ScoreChange, ...]
    ) -> dict[str, Any]:
        item = event_item(contact, event, received_at, ledger, self._retention)
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
        added = change.trait_bytes
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
        if (
            change.last_purchase_at is not None
            and change.last_purchase_at >= change.last_seen - IMPORT_HORIZON
        ):
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
            x.add(f"{SCORE}{dimension}:{memory}:{bucket}", n(exact_number(value)))
        if change.merge_from:
            x.set(MERGE_REQUESTED, s(json.dumps(sorted(str(source) for source in change.merge_from))))
        conditions = [f"attribute_not_exists({x.name('mergedInto')})"]
        if added:  # the trait cap, without a read: the bound grows by what this change may add
            x.add(TRAIT_BYTES, n(added))
            bound, ceiling = x.name(TRAIT_BYTES), x.value(n(MAX_PROFILE_TRAIT_BYTES - added))
            conditions.append(f"(attribute_not_exists({x.name('pk')}) OR {bound} <= {ceiling})")
        else:
            x.set_if_absent(TRAIT_BYTES, n(0))
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
        return read_profile(self._db, self._contacts, contact)

    # --- identity merges -------------------------------------------------------------------

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
        try:
            retried(
                lambda: self._db.transact_write_items(TransactItems=items),
                STORE,
                sleep=self._sleep,
            )
        except LifecycleError:
            raise
        except Exception as exc:
            codes = cancellation_codes(exc)
            if codes and codes[0] == "ConditionalCheckFailed":
                item = exc.response["CancellationReasons"][0].get("Item") or {}  # type: ignore[attr-defined]
                owner = item.get("mergedInto", {}).get("S")
                return Claim(
                    ContactId.parse(owner) if owner else source, completed="mergeCompletedAt" in item
                )
            if codes and len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                return Claim(target, target_moved=True)
            raise failure(exc, STORE) from exc
        return Claim(target)

    def move_events(self, source: ContactId, target: ContactId, limit: int) -> Moved:
        """Copy the source's newest events (by time) to the target, then delete them from the source.

        An event whose messageId the target already holds (and not as a copy from this source, made by
        an earlier attempt) stays on the source and is reported as a duplicate, to be retracted.
        """
        moved = 0
        duplicates: list[StoredEvent] = []
        start: dict[str, Any] | None = None
        while moved < limit:
            request: dict[str, Any] = {
                "TableName": self._events,
                "IndexName": BY_TIME,
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
            held = self._held_by(target, [item["sk"] for item in items])
            ours = [held.get(item["sk"]["S"], str(source)) == str(source) for item in items]
            fresh = [item for item, mine in zip(items, ours, strict=True) if mine]
            duplicates += [stored_event(item) for item, mine in zip(items, ours, strict=True) if not mine]
            self._batch_write(
                [
                    {"PutRequest": {"Item": {**item, "pk": partition(target), MOVED_FROM: s(str(source))}}}
                    for item in fresh
                ]
            )
            self._batch_write(
                [{"DeleteRequest": {"Key": {"pk": item["pk"], "sk": item["sk"]}}} for item in fresh]
            )
            moved += len(items)
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        return Moved(count=moved - len(duplicates), duplicates=tuple(duplicates))

    def _held_by(self, contact: ContactId, sort_keys: Sequence[dict[str, str]]) -> dict[str, str]:
        """Which of these event keys the contact holds: sort key -> the contact it was copied from
        (``""`` for its own events). Strongly consistent, so a copy just made is seen."""
        held: dict[str, str] = {}
        keys = [{"pk": partition(contact), "sk": sk} for sk in sort_keys]
        for first in range(0, len(keys), 100):
            pending: dict[str, Any] = {
                self._events: {
                    "Keys": keys[first : first + 100],
                    "ProjectionExpression": "sk, #from",
                    "ExpressionAttributeNames": {"#from": MOVED_FROM},
                    "ConsistentRead": True,
                }
            }
            for _ in backoff(ATTEMPTS + 2, self._sleep):  # unprocessed keys: throttled, ask again
                try:
                    response = self._db.batch_get_item(RequestItems=pending)
                except Exception as exc:
                    raise self._failure(exc) from exc
                for item in response.get("Responses", {}).get(self._events, []):
                    held[item["sk"]["S"]] = item.get(MOVED_FROM, {}).get("S", "")
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
            if pending:
                raise DependencyUnavailable("the event log is throttled; retry")
        return held

    def retract(self, source: ContactId, target: ContactId, retraction: Retraction) -> Absorbed:
        """Delete the source's copy of a duplicate event and take back what it added, in one transaction:
        the copy's deletion is the condition, so a resumed merge never retracts twice."""
        x = Expression()
        x.add("eventCount", n(retraction.event_count))
        for behaviour, count in retraction.counts.items():
            x.add(COUNT + behaviour, n(count))
        if retraction.revenue:
            x.add("revenueTotal", n(retraction.revenue))
        for dimension, score in retraction.scores.items():
            if score.total:
                x.add(f"{SCORE}{dimension}:total", n(score.total))
            for memory, buckets in score.sums.items():
                for bucket, value in buckets.items():
                    x.add(f"{SCORE}{dimension}:{memory}:{bucket}", n(exact_number(value)))
        for rule, count in retraction.rule_uses.items():
            x.add(f"{RULE}{rule}:n", n(count))
        x.set("lastWriter", s(WRITER))
        x.add("rev", n(1))
        items = [
            {
                "Delete": {
                    "TableName": self._events,
                    "Key": {"pk": partition(source), "sk": s(EVENT_PREFIX + retraction.message_id)},
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
            {
                "Update": x.update(
                    self._contacts, profile_key(target), f"attribute_not_exists({x.name('mergedInto')})"
                )
            },
        ]
        try:
            retried(
                lambda: self._db.transact_write_items(TransactItems=items),
                STORE,
                sleep=self._sleep,
            )
        except LifecycleError:
            raise
        except Exception as exc:
            codes = cancellation_codes(exc)
            if codes and codes[0] == "ConditionalCheckFailed":
                return Absorbed.ALREADY
            if codes and len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                return Absorbed.MOVED
            raise failure(exc, STORE) from exc
        return Absorbed.DONE

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
                items.append({"Update": done.update(self._contacts, profile_key(plan.source))})
            try:
                self._write(lambda: self._db.transact_write_items(TransactItems=items))
                outcome = Absorbed.DONE
            except Exception as exc:
                codes = cancellation_codes(exc)
                if codes and len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                    return Absorbed.MOVED
                if not (codes and codes[0] == "ConditionalCheckFailed"):
                    raise self._failure(exc) from exc  # a part already applied is skipped; others go on
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
        for start in range(0, len(requests), 25):
            pending = {self._events: requests[start : start + 25]}
            for _ in backoff(ATTEMPTS + 2, self._sleep):  # unprocessed items: throttled, send them again
                try:
                    answer = self._write(lambda batch=pending: self._db.batch_write_item(RequestItems=batch))
                except Exception as exc:
                    raise self._failure(exc) from exc
                pending = answer.get("UnprocessedItems") or {}
                if not pending:
                    break
            if pending:
                raise DependencyUnavailable("the event log is throttled; retry")

    def _write(self, call: Callable[[], Any]) -> Any:
        """One write, retried while DynamoDB throttles it or a transaction conflicts with it."""
        return retried(call, STORE, sleep=self._sleep)

    @staticmethod
    def _failure(exc: Exception) -> BaseException:
        return failure(exc, STORE)


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
