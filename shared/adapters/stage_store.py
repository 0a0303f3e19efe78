"""Stage state on the contacts table: the profile's stage attributes, the history/outbox, the due index.

Every write here sets ``lastWriter = stage``; the stream trigger never passes those (it passes the
writes of tracking, automations, the preference links and the nightly analytics), so the stage
function never triggers itself. Segment memberships (issue 13) are written with the stage write: the
profile's ``segments`` and an item per membership (``shared.adapters.segment_members``).

The history and outbox, in the contact's partition, cost what the work costs, however old the contact:

- stage moves (``ContactStageChanged``) and removals from the funnel (``ContactRemoved``: merged away,
  erased) under ``STAGE#<seq>#<n>``, kept (the card's history, the lifecycle
  metrics' ``stage_at``, which reads these alone); every other announcement (segment, threshold, quarter,
  lead routed) under ``ANNOUNCED#<seq>#<n>``, which expires ``kept`` after its time once published
  (``expiresAt``, the table's TTL; an unpublished one never expires);
- the keys still pending are listed on the profile (``stagePending``, a string set, changed in the same
  transactions as ``pendingOutputs``): ``pending`` reads those items by key, never the published history.

Written before this layout: every announcement under ``STAGE#`` and no ``stagePending``. Those still
pending make ``pendingOutputs`` exceed the listed keys, and only then is ``STAGE#`` queried for them, as
before; ``stage_at`` skips their non-move items with a filter (their number no longer grows).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from shared.adapters.contact_items import (
    BASELINE,
    SCORE,
    SCORE_ABOVE,
    SEGMENTS,
    partition,
    profile_key,
    record_from_item,
)
from shared.adapters.contact_profiles import read_profile
from shared.adapters.dynamodb import (
    error_code,
    exact_number,
    failure,
    n,
    query_all,
    retried,
    s,
    ss,
    transact_if,
)
from shared.adapters.expressions import EXPRESSION_LIMIT, Expression
from shared.adapters.sales_leads import LOOKUP_KEY, LOOKUP_SORT, owner_lookup_key, owner_lookup_sort
from shared.adapters.segment_members import membership_item, membership_key
from shared.adapters.tables import CONTACTS
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.engagement.events import ContactRemoved, ContactStageChanged, Output
from shared.engagement.routing import Salesperson
from shared.engagement.transitions import Evaluation
from shared.scoring.decay import Decay
from shared.scoring.model import DimensionScore
from shared.tracking.timestamps import format_time
from shared.usecases.engagement import Delivery, Pending

#: stage moves (before the layout above: every announcement)
HISTORY = "STAGE#"
#: The announcements kept under ``HISTORY`` for good: the stage history (moves, and removals from the funnel)
KEPT = (ContactStageChanged, ContactRemoved)
#: the stage function's other announcements: segment, threshold and quarter changes, leads routed
ANNOUNCED = "ANNOUNCED#"
#: profile: when the contact left its stage (merged away, or being erased): no stage write after it
REMOVED = "stageRemovedAt"
#: profile: the outbox keys not yet published (a string set)
PENDING = "stagePending"
#: an ``ANNOUNCED#`` item: when it may go once published (epoch seconds), copied to the TTL attribute then
KEEP_UNTIL = "keepUntil"
#: the contacts table's TTL attribute (``shared.adapters.tables.CONTACTS``)
EXPIRES = "expiresAt"
#: how long an announcement other than a stage move stays in the history (the card shows the latest)
ANNOUNCEMENTS_KEPT = timedelta(days=90)
WRITER = "stage"
BY_DUE = CONTACTS.global_indexes[0]
STORE = "the contact store"
_OUTPUT = TypeAdapter(Output)


@dataclass(frozen=True, slots=True)
class Fold:
    """One decaying sum's rebase: its old buckets removed and their value moved onto ``into``."""

    #: every bucket read (the old ones and ``into``) and the exact number stored, ``None`` if absent
    expected: tuple[tuple[str, str | None], ...]
    into: str
    value: dict[str, str]

    def write(self, x: Expression, conditions: list[str]) -> None:
        for attribute, exact in self.expected:
            name = x.name(attribute)
            if exact is not None:  # the stored number itself: a float would not compare equal
                conditions.append(f"{name} = {x.value({'N': exact})}")
            else:
                conditions.append(f"attribute_not_exists({name})")
            if attribute != self.into:
                x.remove(attribute)
        x.set(self.into, self.value)

    def size(self) -> tuple[int, int]:
        """At most what the fold adds to the update and to the condition expression, in characters.

        Per bucket: ``#abcd,`` removed (the last one ``#abcd=:abcd,`` set, plus ``REMOVE``) and
        `` AND attribute_not_exists(#abcd)`` at worst, with placeholders of up to five characters.
        """
        buckets = len(self.expected)
        return 16 * buckets, 32 * buckets


def _ride(x: Expression, conditions: list[str], folds: Sequence[Fold], *, one: bool = False) -> list[Fold]:
    """Add folds to a write while both its expressions stay under the limit; returns those left over.

    ``one``: a write of folds alone takes at least one, so writing them apart always makes progress.
    """
    left = list(folds)
    while left:
        update, condition = left[0].size()
        fits = (
            len(x.update_expression()) + update <= EXPRESSION_LIMIT
            and len(" AND ".join(conditions)) + condition <= EXPRESSION_LIMIT
        )
        if not fits and not (one and len(left) == len(folds)):
            break
        left.pop(0).write(x, conditions)
    return left


def due_shard(contact: ContactId, shards: int) -> str:
    return f"DUE#{zlib.crc32(str(contact).encode()) % shards}"


def due_key(contact: ContactId, due: datetime) -> str:
    """The due index's sort key: the due time first, so a range read finds what has come."""
    return f"{format_time(due)}#{contact}"


def due_entries(client: Any, table: str, shards: int, now: datetime) -> list[tuple[ContactId, str]]:
    """Every entry of the due index whose time has come, as (contact, sort key of the item): a profile
    (stages, lapses, anniversaries), a timer or a run left pending. One Query per shard, keys only."""
    upto = format_time(now) + "~"
    found: list[tuple[ContactId, str]] = []
    for shard in range(shards):
        request = {
            "TableName": table,
            "IndexName": BY_DUE.name,
            "KeyConditionExpression": "#p = :p AND #k <= :upto",
            "ExpressionAttributeNames": {"#p": BY_DUE.partition_key, "#k": BY_DUE.sort_key},
            "ExpressionAttributeValues": {":p": s(f"DUE#{shard}"), ":upto": s(upto)},
        }
        found += [
            (ContactId.parse(i["pk"]["S"].removeprefix("C#")), i["sk"]["S"])
            for i in query_all(client, request, "the due index")
        ]
    return found


class DynamoStageStore:
    def __init__(
        self,
        client: Any,
        *,
        contacts_table: str,
        decay: Decay,
        due_shards: int = 8,
        announcements_kept: timedelta = ANNOUNCEMENTS_KEPT,
    ) -> None:
        self._db = client
        self._table = contacts_table
        self._decay = decay
        self._shards = due_shards
        self._kept = announcements_kept

    def profile(self, contact: ContactId) -> ContactRecord | None:
        return read_profile(self._db, self._table, contact)

    def apply(
        self,
        contact: ContactId,
        record: ContactRecord,
        evaluation: Evaluation,
        outputs: Sequence[Output],
        owner: Salesperson | None,
        now: datetime,
    ) -> bool:
        """Write the evaluation if the contact's stage sequence is still the one it started from."""
        x = Expression()
        stamp = s(format_time(now))
        seq = record.stage_seq + 1
        x.set("stageSeq", n(seq))
        x.set("lastWriter", s(WRITER))
        x.set("quarter", s(evaluation.quarter.value))
        x.set("salesReady", {"BOOL": evaluation.sales_ready})
        if evaluation.stage_changed:
            x.set("stage", s(evaluation.stage))
            x.set("stageEnteredAt", stamp)
            self._baseline(x, record)
        if owner is not None:
            x.set("owner", s(owner.id))
            x.set("ownerName", s(owner.name))
            x.set("routedAt", stamp)
            # issue 14: the lead among the salesperson's, on the look-up index (``shared.adapters.sales_leads``)
            x.set(LOOKUP_KEY, s(owner_lookup_key(owner.id)))
            x.set(LOOKUP_SORT, s(owner_lookup_sort(now, contact)))
        if evaluation.write_due:
            if evaluation.due_at is None:
                x.remove("dueShard")
                x.remove("dueKey")
                x.remove("dueAt")
            else:
                due = format_time(evaluation.due_at)
                x.set("dueAt", s(due))
                x.set("dueShard", s(due_shard(contact, self._shards)))
                x.set("dueKey", s(due_key(contact, evaluation.due_at)))
        if evaluation.score_above != record.score_above:
            if evaluation.score_above:
                x.set(SCORE_ABOVE, ss(evaluation.score_above))
            else:
                x.remove(SCORE_ABOVE)
        if evaluation.segments is not None and evaluation.segments != record.segments:
            if evaluation.segments:
                x.set(SEGMENTS, ss(evaluation.segments))
            else:
                x.remove(SEGMENTS)
        if outputs:
            x.add("pendingOutputs", n(len(outputs)))
            x.add(PENDING, ss(history_key(seq, number, o) for number, o in enumerate(outputs)))
        sequence = x.name("stageSeq")
        expected = x.value(n(record.stage_seq))
        guard = f"({sequence} = {expected} OR (attribute_not_exists({sequence}) AND {expected} = {x.value(n(0))}))"
        conditions = [
            guard,
            f"attribute_not_exists({x.name('mergedInto')})",
            f"attribute_not_exists({x.name(REMOVED)})",  # removed from its stage: merged away, or being erased
            "attribute_exists(pk)",
        ]
        # A new stage rewrites the baseline snapshot anyway: fold only the scores then.
        folds = self._folds(record, now, baseline=not evaluation.stage_changed)
        rest = _ride(x, conditions, folds)
        items: list[dict[str, Any]] = [
            {"Update": x.update(self._table, profile_key(contact), " AND ".join(conditions))}
        ]
        for number, output in enumerate(outputs):
            items.append(
                {"Put": {"TableName": self._table, "Item": self._history(contact, seq, number, output)}}
            )
        items += self._memberships(contact, evaluation, now)
        if not transact_if(self._db, items, "the contact store"):
            return False
        self._fold_apart(contact, rest)
        return True

    def remove(self, contact: ContactId, record: ContactRecord, removal: ContactRemoved) -> bool:
        """The removal put in the history and outbox, the profile marked ``stageRemovedAt``: one transaction,
        on condition that the profile exists, its stage sequence is still the one read, it is not removed
        already and, for a merge, it is merged away."""
        x = Expression()
        seq = record.stage_seq + 1
        x.set("stageSeq", n(seq))
        x.set(REMOVED, s(format_time(removal.at)))
        x.set("lastWriter", s(WRITER))
        x.add("pendingOutputs", n(1))
        x.add(PENDING, ss([history_key(seq, 0, removal)]))
        sequence = x.name("stageSeq")
        expected = x.value(n(record.stage_seq))
        guard = f"({sequence} = {expected} OR (attribute_not_exists({sequence}) AND {expected} = {x.value(n(0))}))"
        conditions = [guard, "attribute_exists(pk)", f"attribute_not_exists({x.name(REMOVED)})"]
        if removal.reason == "merged":
            conditions.append(f"attribute_exists({x.name('mergedInto')})")
        condition = " AND ".join(conditions)
        items: list[dict[str, Any]] = [
            {"Update": x.update(self._table, profile_key(contact), condition)},
            {"Put": {"TableName": self._table, "Item": self._history(contact, seq, 0, removal)}},
        ]
        return transact_if(self._db, items, "the contact store")

    def _memberships(self, contact: ContactId, evaluation: Evaluation, now: datetime) -> list[dict[str, Any]]:
        """A membership item put for each segment entered, deleted for each left (issue 13)."""
        items: list[dict[str, Any]] = []
        for move in evaluation.moves:
            if move.kind != "segment":
                continue
            if move.target == "in":
                items.append(
                    {"Put": {"TableName": self._table, "Item": membership_item(contact, move.reason, now)}}
                )
            else:
                items.append(
                    {"Delete": {"TableName": self._table, "Key": membership_key(contact, move.reason)}}
                )
        return items

    def leave_segments(self, contact: ContactId, segments: frozenset[str]) -> None:
        """A merged-away contact's memberships deleted (a transaction per 100: deletes of what is gone
        already change nothing), then the profile's ``segments`` removed."""
        deletes = [
            {"Delete": {"TableName": self._table, "Key": membership_key(contact, segment)}}
            for segment in sorted(segments)
        ]
        for start in range(0, len(deletes), 100):
            transact_if(self._db, deletes[start : start + 100], "the contact store")
        x = Expression()
        x.remove(SEGMENTS)
        x.set("lastWriter", s(WRITER))
        request = x.update(self._table, profile_key(contact), f"attribute_exists({x.name('mergedInto')})")
        try:
            self._db.update_item(**request)
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise self._failure(exc) from exc

    def _folds(self, record: ContactRecord, now: datetime, baseline: bool) -> list[Fold]:
        """Decaying sums older than the previous bucket, to fold into it (rebase).

        The aggregation only adds to the current bucket, so folded buckets are quiet; each fold is
        conditional on the values read, in case a merge added to them meanwhile.
        """
        folds: list[Fold] = []
        baselines = {"global": record.stage_baseline} if record.stage_baseline and baseline else {}
        for prefix, dimensions in ((SCORE, record.scores), (BASELINE, baselines)):
            for dimension, score in dimensions.items():
                for memory in self._decay.memories:
                    sums = score.sums.get(memory.key, {})
                    into = memory.bucket(now) - 1
                    old = [bucket for bucket in sums if bucket < into]
                    if not old:
                        continue
                    attribute = f"{prefix}{dimension}:{memory.key}:"
                    folds.append(
                        Fold(
                            expected=tuple(
                                (attribute + str(b), record.stored_numbers.get(attribute + str(b)))
                                for b in [*old, into]
                            ),
                            into=attribute + str(into),
                            value=n(exact_number(memory.fold(sums, into)[into])),
                        )
                    )
        return folds

    def _fold_apart(self, contact: ContactId, folds: Sequence[Fold]) -> None:
        """Folds that did not fit in the stage write, in writes of their own that each fit.

        A fold changes no score, so it needs no stage sequence: its conditions on the exact values
        read make it apply once. A write that finds a value changed (a merge added to it) is skipped
        whole; the contact's next stage write folds what it held.
        """
        while folds:
            x = Expression()
            x.set("lastWriter", s(WRITER))
            conditions = ["attribute_exists(pk)", f"attribute_not_exists({x.name('mergedInto')})"]
            folds = _ride(x, conditions, folds, one=True)
            try:
                self._db.update_item(**x.update(self._table, profile_key(contact), " AND ".join(conditions)))
            except Exception as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise self._failure(exc) from exc

    def _baseline(self, x: Expression, record: ContactRecord) -> None:
        """The stage score restarts: snapshot the global score now, dropping the old snapshot's buckets."""
        overall = record.scores.get("global", DimensionScore())
        old = record.stage_baseline or DimensionScore()
        fresh = {(memory, bucket) for memory, buckets in overall.sums.items() for bucket in buckets}
        for memory, buckets in old.sums.items():
            for bucket in buckets:
                if (memory, bucket) not in fresh:
                    x.remove(f"{BASELINE}global:{memory}:{bucket}")
        x.set(f"{BASELINE}global:total", n(overall.total))
        for memory, buckets in overall.sums.items():
            for bucket, value in buckets.items():
                x.set(f"{BASELINE}global:{memory}:{bucket}", n(exact_number(value)))

    def _history(self, contact: ContactId, seq: int, number: int, output: Output) -> dict[str, Any]:
        detail = output.model_dump(mode="json", by_alias=True)
        item = {
            "pk": partition(contact),
            "sk": s(history_key(seq, number, output)),
            "type": s(output.detail_type),
            "at": s(format_time(output.at)),
            "output": s(json.dumps({"detail_type": output.detail_type, **detail}, separators=(",", ":"))),
            "published": {"BOOL": False},
        }
        if not isinstance(output, KEPT):
            item[KEEP_UNTIL] = n(int((output.at + self._kept).timestamp()))
        return item

    def history(self, contact: ContactId, limit: int) -> list[Output]:
        """The latest ``limit`` announcements, newest first: the latest of each prefix, merged."""
        items: list[dict[str, Any]] = []
        for prefix in (HISTORY, ANNOUNCED):
            try:
                page = retried(
                    lambda prefix=prefix: self._db.query(
                        TableName=self._table,
                        KeyConditionExpression="pk = :pk AND begins_with(sk, :h)",
                        ExpressionAttributeValues={":pk": partition(contact), ":h": s(prefix)},
                        ScanIndexForward=False,
                        Limit=limit,
                    ),
                    STORE,
                )
            except Exception as exc:
                raise failure(exc, STORE) from exc
            items += page.get("Items", [])
        items.sort(key=lambda item: write_order(item["sk"]["S"]), reverse=True)
        return [_output(item) for item in items[:limit]]

    def pending(self, contact: ContactId) -> list[Pending]:
        """The profile's pending keys, each item read by key; the ``STAGE#`` items queried only while
        announcements written before those keys were listed are still pending (``pendingOutputs`` counts
        more than the list)."""
        try:
            profile = (
                retried(
                    lambda: self._db.get_item(
                        TableName=self._table,
                        Key=profile_key(contact),
                        ProjectionExpression="#k, #c",
                        ExpressionAttributeNames={"#k": PENDING, "#c": "pendingOutputs"},
                        ConsistentRead=True,
                    ),
                    STORE,
                ).get("Item")
                or {}
            )
        except Exception as exc:
            raise failure(exc, STORE) from exc
        keys = set(profile.get(PENDING, {}).get("SS", ()))
        found: dict[str, dict[str, Any]] = {}
        if int(profile.get("pendingOutputs", {}).get("N", "0")) > len(keys):
            found = {item["sk"]["S"]: item for item in self._unlisted_pending(contact)}
        for key in sorted(keys - found.keys()):
            try:
                item = retried(
                    lambda key=key: self._db.get_item(
                        TableName=self._table,
                        Key={"pk": partition(contact), "sk": s(key)},
                        ConsistentRead=True,
                    ),
                    STORE,
                ).get("Item")
            except Exception as exc:
                raise failure(exc, STORE) from exc
            if item and not item.get("published", {}).get("BOOL", False):
                found[key] = item
        return [
            Pending(key=key, output=_output(item), done=_done(item))
            for key, item in sorted(found.items(), key=lambda pair: write_order(pair[0]))
        ]

    def _unlisted_pending(self, contact: ContactId) -> list[dict[str, Any]]:
        """Unpublished ``STAGE#`` items, the whole history queried (announcements written before the
        pending keys were listed on the profile)."""
        request = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :h)",
            "FilterExpression": "published = :no",
            "ExpressionAttributeValues": {
                ":pk": partition(contact),
                ":h": s(HISTORY),
                ":no": {"BOOL": False},
            },
            "ConsistentRead": True,
        }
        return query_all(self._db, request, STORE)

    def mark_delivered(self, contact: ContactId, deliveries: Sequence[Delivery]) -> None:
        """One transaction per 99 entries: channels added to ``delivered`` (a set: repeats are harmless),
        refusals as ``refused:<channel>``, and complete entries marked published, once each, with the
        contact's pending count lowered by as many.

        If another delivery completed one of them first, the transaction changes nothing; the entries
        are then marked one by one, so the others' progress is still recorded.
        """
        for start in range(0, len(deliveries), 99):
            chunk = deliveries[start : start + 99]
            if not transact_if(self._db, self._marks(contact, chunk), "the contact store"):
                for delivery in chunk:
                    transact_if(self._db, self._marks(contact, [delivery]), "the contact store")

    def _marks(self, contact: ContactId, deliveries: Sequence[Delivery]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for delivery in deliveries:
            x = Expression()
            if delivery.sent:
                x.add("delivered", ss(delivery.sent))
            for channel, code in sorted(delivery.refused.items()):
                x.set(f"refused:{channel}", s(code))
            condition = None
            if delivery.complete:
                x.set("published", {"BOOL": True})
                if delivery.key.startswith(ANNOUNCED):  # kept until then, once published
                    x.copy(EXPIRES, KEEP_UNTIL)
                condition = f"{x.name('published')} = {x.value({'BOOL': False})}"
            if x.sets or x.adds:
                key = {"pk": partition(contact), "sk": s(delivery.key)}
                items.append({"Update": x.update(self._table, key, condition)})
        complete = [d.key for d in deliveries if d.complete]
        if complete:
            items.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": profile_key(contact),
                        "UpdateExpression": "ADD pendingOutputs :minus DELETE #k :keys SET lastWriter = :w",
                        "ExpressionAttributeNames": {"#k": PENDING},
                        "ExpressionAttributeValues": {
                            ":minus": n(-len(complete)),
                            ":keys": ss(complete),
                            ":w": s(WRITER),
                        },
                    }
                }
            )
        return items

    @staticmethod
    def _failure(exc: Exception) -> BaseException:
        return failure(exc, "the contact store")


def history_key(seq: int, number: int, output: Output) -> str:
    """An announcement's sort key: its prefix by kind, then the write's sequence and its place in it."""
    prefix = HISTORY if isinstance(output, KEPT) else ANNOUNCED
    return f"{prefix}{seq:08d}#{number:02d}"


def write_order(key: str) -> tuple[int, int]:
    """(stage sequence, place in the write) of a history key, whatever its prefix."""
    _, seq, number = key.rsplit("#", 2)
    return int(seq), int(number)


def profile_from_stream(record: dict[str, Any]) -> ContactRecord | None:
    """The contact a stream record shows after the change; ``None`` for removals and non-profiles."""
    if record.get("eventName") == "REMOVE":
        return None
    change = record.get("dynamodb") or {}
    keys = change.get("Keys") or {}
    if keys.get("sk", {}).get("S") != "PROFILE":
        return None
    return record_from_item(change["NewImage"])


def _output(item: dict[str, Any]) -> Output:
    return _OUTPUT.validate_python(json.loads(item["output"]["S"]))


def _done(item: dict[str, Any]) -> frozenset[str]:
    """The channels an outbox entry went out on or was refused on."""
    refused = {name.removeprefix("refused:") for name in item if name.startswith("refused:")}
    return frozenset(item.get("delivered", {}).get("SS", [])) | refused
