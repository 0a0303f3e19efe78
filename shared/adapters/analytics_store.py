"""The nightly pass's analytics on the contacts table: the profile's ``analytics``, the history and its outbox.

``record`` is one conditional ``UpdateItem`` when there is nothing to announce (its old image, returned
at no read cost, tells the use case what was there; a refusal returns the image too), and a transaction
of the profile's update with the history items (``ANALYTICS#<day>#<kind>``, unpublished, their keys added
to the profile's ``analyticsUnpublished`` set) when there is. The apply step reads the history by key
only (``unpublished``: the keys come with the profile's image), never by query.
Every condition requires the profile to exist and not to be merged away, so an erased contact is never
recreated, and its analytics to be of an earlier day (the day guard). Profile writes set ``lastWriter``
to ``analytics``: the stage function's trigger passes only tracking's writes, so the nightly pass does not
wake it for every contact.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from shared.adapters.contact_items import (
    ANALYTICS,
    ANALYTICS_HISTORY,
    ANALYTICS_UNPUBLISHED,
    ANALYTICS_WRITER,
    analytics_value,
    partition,
    profile_key,
)
from shared.adapters.dynamodb import error_code, failure, plain, retried, s, ss, transact
from shared.adapters.expressions import Expression
from shared.analytics.changes import Announcement
from shared.analytics.events import AnalyticsOutput
from shared.analytics.facts import Analytics
from shared.contacts.identity import ContactId
from shared.errors import LifecycleError
from shared.tracking.timestamps import format_time
from shared.usecases.analytics import Held, Outcome, Previous, Recorded

STORE = "the contact store"
#: Marks per transaction (DynamoDB takes 100 items: these and the profile's list).
MARKS_PER_TRANSACTION = 99
_OUTPUT: TypeAdapter[AnalyticsOutput] = TypeAdapter(
    Annotated[AnalyticsOutput, Field(discriminator="detail_type")]  # type: ignore[arg-type]
)


class DynamoAnalyticsStore:
    def __init__(
        self, client: Any, *, contacts_table: str, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._db = client
        self._table = contacts_table
        self._sleep = sleep

    def record(
        self, contact: ContactId, analytics: Analytics, changes: Sequence[Announcement], previous: Previous
    ) -> Recorded:
        update = self._update(contact, analytics, [a.key for a in changes], previous)
        if not changes:
            return self._update_alone(update)
        items: list[dict[str, Any]] = [
            {"Update": {**update, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}
        ]
        items += [{"Put": {"TableName": self._table, "Item": self._history(contact, a)}} for a in changes]
        cancelled = transact(self._db, items, STORE, sleep=self._sleep)
        if cancelled is None:
            return Recorded(written=True, found=None)  # a transaction returns no old image
        reason = cancelled.reasons[0]
        if reason.get("Code") != "ConditionalCheckFailed":
            raise failure(cancelled.error, STORE) from cancelled.error
        return Recorded(written=False, found=_held(reason.get("Item")))

    def _update_alone(self, update: dict[str, Any]) -> Recorded:
        try:
            answer = retried(
                lambda: self._db.update_item(
                    **update, ReturnValues="ALL_OLD", ReturnValuesOnConditionCheckFailure="ALL_OLD"
                ),
                STORE,
                sleep=self._sleep,
            )
        except LifecycleError:
            raise
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise failure(exc, STORE) from exc
            return Recorded(written=False, found=_held((getattr(exc, "response", None) or {}).get("Item")))
        return Recorded(written=True, found=_held(answer.get("Attributes")))

    def _update(
        self, contact: ContactId, analytics: Analytics, changes: int, previous: Previous
    ) -> dict[str, Any]:
        x = Expression()
        x.set(ANALYTICS, analytics_value(analytics))
        x.set("lastWriter", s(ANALYTICS_WRITER))
        if changes:
            x.add(ANALYTICS_UNPUBLISHED, ss(changes))
        held = x.name(ANALYTICS)
        conditions = ["attribute_exists(pk)", f"attribute_not_exists({x.name('mergedInto')})"]
        if previous.unchanged:  # an earlier day's, with the segment and the risk level written now
            conditions.append(f"{held}.{x.name('day')} < {x.value(s(analytics.day.isoformat()))}")
            segment = f"{held}.{x.name('rfm')}"
            if analytics.rfm is None:
                conditions.append(f"attribute_not_exists({segment})")
            else:
                conditions.append(f"{segment}.{x.name('segment')} = {x.value(s(analytics.rfm.segment))}")
            level = f"{held}.{x.name('churn')}"
            if analytics.churn is None:
                conditions.append(f"attribute_not_exists({level})")
            else:
                conditions.append(f"{level}.{x.name('level')} = {x.value(s(analytics.churn.level))}")
        elif previous.analytics is None:
            conditions.append(f"attribute_not_exists({held})")
        else:  # exactly those: a write of a day is whole, so its day names it
            conditions.append(f"{held}.{x.name('day')} = {x.value(s(previous.analytics.day.isoformat()))}")
        return x.update(self._table, profile_key(contact), " AND ".join(conditions))

    def _history(self, contact: ContactId, announcement: Announcement) -> dict[str, Any]:
        output = announcement.output
        detail = {"detail_type": output.detail_type, **output.model_dump(mode="json", by_alias=True)}
        return {
            "pk": partition(contact),
            "sk": s(ANALYTICS_HISTORY + announcement.key),
            "type": s(output.detail_type),
            "at": s(format_time(output.at)),
            "output": s(json.dumps(detail, separators=(",", ":"))),
            "published": {"BOOL": False},
        }

    def unpublished(self, contact: ContactId, keys: Collection[str]) -> list[Announcement]:
        """A consistent GetItem per key: the function reads its history by key only."""
        found = []
        for key in sorted(keys):
            try:
                item = retried(
                    lambda key=key: self._db.get_item(
                        TableName=self._table,
                        Key={"pk": partition(contact), "sk": s(ANALYTICS_HISTORY + key)},
                        ConsistentRead=True,
                    ),
                    STORE,
                    sleep=self._sleep,
                ).get("Item")
            except LifecycleError:
                raise
            except Exception as exc:
                raise failure(exc, STORE) from exc
            if item and not item.get("published", {}).get("BOOL", False):
                found.append(_announcement(item))
        return found

    def mark_published(self, contact: ContactId, published: Sequence[tuple[Announcement, Outcome]]) -> None:
        """One transaction per 99 announcements: each marked published (with the refusal's code if it was
        refused for good), and their keys taken out of the profile's list of unpublished ones. Neither
        write recreates an erased item: if one is gone, the others are marked one by one."""
        for start in range(0, len(published), MARKS_PER_TRANSACTION):
            chunk = published[start : start + MARKS_PER_TRANSACTION]
            if not self._mark(contact, chunk):
                for one in chunk:
                    self._mark(contact, [one])

    def _mark(self, contact: ContactId, published: Sequence[tuple[Announcement, Outcome]]) -> bool:
        items: list[dict[str, Any]] = []
        for announcement, outcome in published:
            x = Expression()
            x.set("published", {"BOOL": True})
            if outcome.refused is not None:
                x.set("refused", s(outcome.refused))
            key = {"pk": partition(contact), "sk": s(ANALYTICS_HISTORY + announcement.key)}
            items.append({"Update": x.update(self._table, key, "attribute_exists(pk)")})
        items.append(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": profile_key(contact),
                    "UpdateExpression": "DELETE #u :keys SET lastWriter = :w",
                    "ConditionExpression": "attribute_exists(pk)",
                    "ExpressionAttributeNames": {"#u": ANALYTICS_UNPUBLISHED},
                    "ExpressionAttributeValues": {
                        ":keys": ss(a.key for a, _ in published),
                        ":w": s(ANALYTICS_WRITER),
                    },
                }
            }
        )
        cancelled = transact(self._db, items, STORE, sleep=self._sleep)
        if cancelled is None:
            return True
        if "ConditionalCheckFailed" not in cancelled.codes:
            raise failure(cancelled.error, STORE) from cancelled.error
        return False

    def history(self, contact: ContactId, limit: int) -> list[AnalyticsOutput]:
        try:
            page = retried(
                lambda: self._db.query(
                    TableName=self._table,
                    KeyConditionExpression="pk = :pk AND begins_with(sk, :h)",
                    ExpressionAttributeValues={":pk": partition(contact), ":h": s(ANALYTICS_HISTORY)},
                    ScanIndexForward=False,
                    Limit=limit,
                ),
                STORE,
                sleep=self._sleep,
            )
        except LifecycleError:
            raise
        except Exception as exc:
            raise failure(exc, STORE) from exc
        return [_announcement(item).output for item in page.get("Items", [])]


def _held(item: Mapping[str, Any] | None) -> Held | None:
    """What a profile's image says of its analytics; None for no profile, or a merged-away one."""
    if not item or "mergedInto" in item:
        return None
    stored = item.get(ANALYTICS)
    return Held(
        analytics=Analytics.model_validate(plain(stored)) if stored else None,
        unpublished=frozenset(item.get(ANALYTICS_UNPUBLISHED, {}).get("SS", ())),
    )


def _announcement(item: Mapping[str, Any]) -> Announcement:
    """A history item: its kind is what follows ``ANALYTICS#<day>#`` in its key."""
    kind = item["sk"]["S"].removeprefix(ANALYTICS_HISTORY).split("#", 1)[1]
    return Announcement(kind, _OUTPUT.validate_python(json.loads(item["output"]["S"])))
