"""The contact store on DynamoDB: the hot path that records events.

One ``TransactWriteItems`` carries, per contact, a conditional put of each new
event (keyed by messageId, so a replay fails its condition) and one blind
update of the profile (guarded by ``attribute_not_exists(mergedInto)``, so
writes to a merged-away contact are re-routed). Changes for many contacts
share a transaction up to DynamoDB's 100-item limit. No reads. A change that
declares identity merges sets ``mergeRequested`` on the profile in that same
update; the merge function, triggered by that write, does the merges
(``shared.adapters.contact_merges``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from shared.adapters.contact_items import (
    COUNT,
    GROUP,
    MERGE_REQUESTED,
    RULE,
    SCORE,
    TAG,
    TRAIT,
    TRAIT_BYTES,
    WRITER,
    Retention,
    event_item,
    profile_key,
    record_from_item,
    rule_uses,
)
from shared.adapters.contact_profiles import STORE, move_if, read_profile
from shared.adapters.dynamodb import (
    error_code,
    exact_number,
    failure,
    js,
    n,
    plain_item,
    retried,
    s,
    ss,
    transact,
)
from shared.adapters.expressions import EXPRESSION_LIMIT, Expression
from shared.contacts.changes import MAX_PROFILE_TRAIT_BYTES, ContactChange, trait_bytes
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.errors import LifecycleError
from shared.scoring.engine import RuleUse, ScoreChange
from shared.tracking.messages import TrackedEvent
from shared.tracking.timestamps import format_time
from shared.usecases.recording import ChangeCapacity, CommitOutcome

MAX_TRANSACTION_ITEMS = 100
#: Stay under the 4 MB transaction limit, counting each item's body and keys.
MAX_TRANSACTION_BYTES = 3_500_000
TRAIT_CAP = f"{MAX_PROFILE_TRAIT_BYTES // 1024} KB of traits (the limit per contact)"
ITEM_CAP = "400 KB (the limit of a contact's profile)"
#: Events older than this when they arrive are history being imported, not live behaviour.
IMPORT_HORIZON = timedelta(days=1)


class DynamoContactStore:
    """Recording (``ContactStore``): each contact's change with its new events, in shared transactions."""

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
        cancelled = transact(self._db, items, STORE, sleep=self._sleep)  # e.g. a ValidationException: a 500
        if cancelled is not None:
            self._rejected(cancelled.error, cancelled.reasons, owners, changes, updates, outcomes)
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
        change truly fits, the bound is reset, on condition nobody changed it meanwhile, to the size the
        traits will have once the change applies less what the change adds, so that its retry (which
        adds that much again) passes and leaves the exact size; ``False`` if it truly does not fit.
        Until the retry lands the bound understates by at most what the change replaces.
        """
        if TRAIT_BYTES not in update["ExpressionAttributeNames"].values():
            return True  # the change adds no traits: another condition refused it
        bound = item.get(TRAIT_BYTES, {}).get("N")
        if bound is not None and int(bound) + change.trait_bytes <= MAX_PROFILE_TRAIT_BYTES:
            return True
        stored = record_from_item(item).traits
        after = trait_bytes(change.traits_after(stored))
        if after > MAX_PROFILE_TRAIT_BYTES:
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
                        ":exact": n(max(0, after - change.trait_bytes)),
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
