"""The contact store on DynamoDB: folding new events into profiles, off the request path.

The tracking path only appends events (``shared.adapters.event_log``). The aggregation function,
triggered by the events table's stream, folds each contact's new events into its profile with one
blind update per contact and batch (guarded by ``attribute_not_exists(mergedInto)``, so events of a
merged-away contact are re-routed, and by the profile's stream position, so a redelivered record is
never folded in twice). No reads, and no transaction, except for the rare events sent to a contact
after it was merged away: those are folded into the contact it joined in one transaction with their
copies in its log (``_reroute``), and a call of theirs that contact held already reads what a merge
took back for it, to give it back (``give_back``). A change that declares identity merges sets
``mergeRequested`` on the profile in that same update; the merge function, triggered by that write,
does the merges (``shared.adapters.contact_merges``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from shared.adapters.contact_items import (
    AGGREGATED,
    COMPACT_AT,
    COMPACTION_WRITER,
    COUNT,
    FOLDED,
    GROUP,
    INSERTED,
    LAST,
    MERGE_REQUESTED,
    MERGE_WRITER,
    MOVED_FROM,
    RECENT_PRODUCTS,
    RETRACTED,
    RULE,
    SCORE,
    TAG,
    TRAIT,
    TRAIT_BYTES,
    WRITER,
    consent_attribute,
    consent_fact_value,
    partition,
    profile_key,
    recent_products_of,
    recent_products_value,
    record_from_item,
    retraction_of,
    rule_uses,
)
from shared.adapters.contact_profiles import STORE, move_if, read_profile, retraction_update, taken_back
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
from shared.scoring.engine import RuleUse
from shared.tracking.timestamps import format_time
from shared.usecases.recording import Absorbed, ChangeCapacity, CommitOutcome

TRAIT_CAP = f"{MAX_PROFILE_TRAIT_BYTES // 1024} KB of traits (the limit per contact)"
ITEM_CAP = "400 KB (the limit of a contact's profile)"
#: Events older than this when they arrive are history being imported, not live behaviour.
IMPORT_HORIZON = timedelta(days=1)


class DynamoContactStore:
    """Aggregation (``ContactStore``): each contact's new events folded into its profile, once."""

    #: 99 events and the profile: a re-routed change is one transaction of at most 100 items
    capacity = ChangeCapacity(max_events=99, max_keys=300)

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

    def commit(
        self, changes: Sequence[ContactChange], copies: Mapping[str, Mapping[str, Any]] = {}
    ) -> list[CommitOutcome]:
        outcomes = []
        for change in changes:
            update = profile_update(change, self._contacts)
            if not fits(update):
                outcomes.append(CommitOutcome(committed=False, oversized=True))
                continue
            if change.origin is None:
                outcome = self._apply(change, update)
            else:
                outcome = self._reroute(change, update, copies)
            if outcome.committed:
                self._imported_times(change)
            outcomes.append(outcome)
        return outcomes

    def _imported_times(self, change: ContactChange) -> None:
        """History sent late (``/v1/import``) may hold the earliest visit or the latest purchase; those
        times move only one way, by conditional writes, so an old import never moves them back."""
        if not change.activity:
            return
        horizon = change.last_seen - IMPORT_HORIZON
        moves = []
        if change.first_seen < horizon:
            moves.append(("firstSeenAt", s(format_time(change.first_seen)), ">"))
        if change.last_purchase_at is not None and change.last_purchase_at < horizon:
            moves.append(("lastPurchaseAt", s(format_time(change.last_purchase_at)), "<"))
        for attribute, value, op in moves:
            move_if(self._db, self._contacts, change.contact, attribute, value, op, sleep=self._sleep)

    def _apply(self, change: ContactChange, update: dict[str, Any]) -> CommitOutcome:
        """One conditional update; why it was refused: folded in before, a merge, a rule limit, a full
        profile. A change refused for a condition it can meet once re-planned gets what it needs."""
        if change.recent_products:  # what the list holds now: it may be due for compaction
            update = {**update, "ReturnValues": "UPDATED_NEW"}
        try:
            written = retried(lambda: self._db.update_item(**update), STORE, sleep=self._sleep)
        except LifecycleError:
            raise
        except Exception as exc:
            code = error_code(exc)
            if code == "ValidationException" and "maximum allowed size" in str(exc):
                return CommitOutcome(committed=False, refused=ITEM_CAP)
            if code != "ConditionalCheckFailedException":
                raise failure(exc, STORE) from exc
            return self._refused(change, update, (getattr(exc, "response", None) or {}).get("Item") or {})
        self._compact(change.contact, (written or {}).get("Attributes") or {})
        return CommitOutcome(committed=True)

    def _compact(self, contact: ContactId, written: Mapping[str, Any]) -> None:
        """Issue 15: a recent-products list grown past ``COMPACT_AT`` entries, written back folded (at
        most ``MAX_RECENT``), on condition nothing wrote the profile since (its ``rev``): otherwise the
        next fold does it. One extra write per some 50 new entries at the most; no read. Never fails the
        change, which is committed: a throttled or refused write-back is left to the next fold."""
        entries = written.get(RECENT_PRODUCTS, {}).get("L")
        rev = written.get("rev", {}).get("N")
        if entries is None or rev is None or len(entries) <= COMPACT_AT:
            return
        folded = recent_products_of(plain_item({RECENT_PRODUCTS: {"L": entries}})[RECENT_PRODUCTS])
        try:
            retried(
                lambda: self._db.update_item(
                    TableName=self._contacts,
                    Key=profile_key(contact),
                    UpdateExpression="SET #r = :r, #w = :w",
                    ConditionExpression="#v = :v",
                    ExpressionAttributeNames={"#r": RECENT_PRODUCTS, "#v": "rev", "#w": "lastWriter"},
                    ExpressionAttributeValues={
                        ":r": recent_products_value(folded),
                        ":v": n(int(rev)),
                        ":w": s(COMPACTION_WRITER),
                    },
                ),
                STORE,
                sleep=self._sleep,
            )
        except Exception:  # noqa: BLE001 - the list stays longer until the next fold past the bound
            return

    def _reroute(
        self, change: ContactChange, update: dict[str, Any], copies: Mapping[str, Mapping[str, Any]]
    ) -> CommitOutcome:
        """Events a merged-away contact recorded, folded into its contact together with copying them into
        its log, in one transaction: a copy the contact holds already (a replay, or the merge moved it)
        fails its condition, so each event counts once. Rare: only calls sent under an identity after
        it was merged away."""
        events = change.events
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._events,
                    "Item": {
                        **copies[e.message_id],
                        "pk": partition(change.contact),
                        MOVED_FROM: s(str(change.origin)),
                        FOLDED: {"BOOL": True},
                    },
                    # free, or holding a merge's copy (``movedFrom``: not the contact's own put) of this
                    # very put (its token: not a replay's) that nobody counted (no ``folded``): the merges
                    # moved it meanwhile. Not ``movedFrom = origin``: each merge of a chain renames it
                    # after its own source, so a copy moved twice would never be counted (see
                    # docs/decisions.md); the put token alone names the call's one put.
                    "ConditionExpression": (
                        "attribute_not_exists(pk) OR "
                        "(attribute_exists(#from) AND #put = :put AND attribute_not_exists(#folded))"
                    ),
                    "ExpressionAttributeNames": {"#from": MOVED_FROM, "#folded": FOLDED, "#put": INSERTED},
                    "ExpressionAttributeValues": {":put": copies[e.message_id][INSERTED]},
                }
            }
            for e in events
        ]
        items.append({"Update": update})
        cancelled = transact(self._db, items, STORE, sleep=self._sleep)
        if cancelled is None:
            return CommitOutcome(committed=True)
        reasons = cancelled.reasons
        held = frozenset(
            e.message_id
            for e, r in zip(events, reasons, strict=False)
            if r.get("Code") == "ConditionalCheckFailed"
        )
        last = reasons[len(events)] if len(reasons) > len(events) else {}
        if last.get("Code") == "ValidationError" and "maximum allowed size" in (last.get("Message") or ""):
            return CommitOutcome(committed=False, duplicates=held, refused=ITEM_CAP)
        if last.get("Code") == "ConditionalCheckFailed":
            outcome = self._refused(change, update, last.get("Item") or {})
            return replace(outcome, duplicates=held)
        if not held:
            raise failure(cancelled.error, STORE) from cancelled.error
        return CommitOutcome(committed=False, duplicates=held)

    def _refused(
        self, change: ContactChange, update: Mapping[str, Any], item: Mapping[str, Any]
    ) -> CommitOutcome:
        into = item.get("mergedInto", {}).get("S")
        through = item.get(AGGREGATED, {}).get("S")
        if into:  # what it folded in before it was merged away went with its profile
            return CommitOutcome(committed=False, merged_into=ContactId.parse(into), applied_through=through)
        if change.origin is None and change.first_position and through and through >= change.first_position:
            return CommitOutcome(committed=False, applied_through=through)
        uses = {k: RuleUse(c, d) for k, (c, d) in rule_uses(plain_item(item)).items()}
        refused = TRAIT_CAP if item and not self._trait_bytes_fit(change, update, item) else None
        return CommitOutcome(committed=False, rule_uses=uses, refused=refused)

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

    def give_back(self, source: ContactId, target: ContactId, copy: Mapping[str, Any]) -> Absorbed:
        """What the merge of ``source`` took back for this very put (its mark on the source's profile,
        read consistently), added back to ``target`` in one transaction with removing the mark: once.
        Rare: only a re-routed call the target holds already (a replay, or the same call on both)."""
        mark = RETRACTED + str(copy["sk"]["S"])
        try:
            found = self._db.get_item(
                TableName=self._contacts,
                Key=profile_key(source),
                ProjectionExpression="#m",
                ExpressionAttributeNames={"#m": mark},
                ConsistentRead=True,
            ).get("Item", {})
        except Exception as exc:
            raise failure(exc, STORE) from exc
        taken = found.get(mark)
        retraction = retraction_of(taken["S"]) if taken else None
        if retraction is None or retraction.put != copy.get(INSERTED, {}).get("S"):
            return Absorbed.ALREADY  # nothing taken back for this put (a replay), or given back before
        back = retraction_update(retraction, sign=-1)
        done = Expression()
        done.remove(mark)
        done.set("lastWriter", s(MERGE_WRITER))
        items = [
            {
                "Update": done.update(
                    self._contacts, profile_key(source), f"{done.name(mark)} = {done.value(taken)}"
                )
            },
            {
                "Update": back.update(
                    self._contacts, profile_key(target), f"attribute_not_exists({back.name('mergedInto')})"
                )
            },
        ]
        return taken_back(transact(self._db, items, STORE, sleep=self._sleep))

    # --- reads ------------------------------------------------------------------------

    def profile(self, contact: ContactId) -> ContactRecord | None:
        return read_profile(self._db, self._contacts, contact)


def profile_update(change: ContactChange, table: str) -> dict[str, Any]:
    """The blind update that folds a change into the contact's profile (pure: no AWS call)."""
    x = Expression()
    contact = change.contact
    x.set("contactId", s(str(contact)))
    x.set("lastWriter", s(WRITER))
    if contact.kind == "user_id":
        x.set("userId", s(contact.value))
    active = len(change.activity)
    if active:  # points an automation awarded alone are no activity
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
    if change.last_purchase_at is not None and change.last_purchase_at >= change.last_seen - IMPORT_HORIZON:
        x.set("lastPurchaseAt", s(format_time(change.last_purchase_at)))
    for behaviour, at in sorted(change.last_times.items()):  # only those automations count from
        if at >= change.last_seen - IMPORT_HORIZON:
            x.set(LAST + behaviour, s(format_time(at)))
    if active:
        x.add("eventCount", n(active))
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
    for (channel, kind), fact in sorted(change.consent.items()):  # the latest of the change, blindly
        x.set(consent_attribute(channel, kind), consent_fact_value(fact.source, fact.at))
    if change.recent_products:  # issue 15: before the stored ones, blindly (folded when read)
        x.prepend(RECENT_PRODUCTS, recent_products_value(change.recent_products))
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
    if change.last_position and change.origin is None:  # re-routed events are guarded by their copies
        mark = x.name(AGGREGATED)
        x.set(AGGREGATED, s(change.last_position))
        conditions.append(f"(attribute_not_exists({mark}) OR {mark} < {x.value(s(change.first_position))})")
    return x.update(
        table,
        profile_key(contact),
        " AND ".join(conditions),
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )


def fits(update: Mapping[str, Any]) -> bool:
    """Whether the update is within DynamoDB's 4 KB per expression."""
    return max(len(update["UpdateExpression"]), len(update["ConditionExpression"])) <= EXPRESSION_LIMIT
