"""The items of the contacts and events tables: keys, attribute names, and their codec.

A profile is one flat item (``trait:*``, ``tag:*``, ``count:*``, ``score:*``...) under ``C#<contact>`` /
``PROFILE``; each event is an item ``M#<messageId>`` under the same partition of the events table. The
stores write these shapes and read them back here, into the domain's models. No AWS calls.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from pydantic import TypeAdapter

from shared.adapters.dynamodb import js, n, plain_item, s
from shared.adapters.tables import EVENTS
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.delivery.consent import ConsentFact, ConsentRecord
from shared.recommendations.model import RecentProduct
from shared.recommendations.recent import MAX_RECENT
from shared.scoring.engine import ScoreChange
from shared.scoring.model import DimensionScore
from shared.tracking.baskets import basket
from shared.tracking.behaviours import Behaviour
from shared.tracking.messages import TrackedEvent
from shared.tracking.timestamps import format_time

if TYPE_CHECKING:  # read by the merge function and the admin API only, imported there on use
    from shared.analytics.facts import Analytics
    from shared.contacts.views import StoredEvent
    from shared.usecases.aggregation import NewEvent
    from shared.usecases.analytics import ScannedPurchase
    from shared.usecases.merging import MergeRequest
    from shared.usecases.recording import Retraction

PROFILE = "PROFILE"
#: Every profile write here says who made it; the stage function's trigger passes only these.
WRITER = "tracking"
#: Event keys: ``E#<stated time>#<messageId>`` for calls that carry their own time, ``M#<messageId>`` otherwise.
TIMED_PREFIX, EVENT_PREFIX = "E#", "M#"
#: On a profile: the stream position of the newest event folded in, so a redelivered record is never
#: folded in twice.
AGGREGATED = "aggregatedThrough"
#: On an event copied by a merge: the contact it came from (a copy of its own is not a duplicate).
MOVED_FROM = "movedFrom"
#: On every event: a token of the put that stored it, kept by copies; a replay's put has another.
INSERTED = "put"
#: On an event a re-route copied into its contact's log: that copy has been counted there.
FOLDED = "folded"
#: On a merged-away profile, per key of its log: what the merge took back for the copy it deleted (its
#: put, and the amounts), until a re-route of that very put gives it back (the copy was not counted).
RETRACTED = "retracted:"
#: On a profile write that asks for identity merges: the identities (a JSON list of contact ids).
MERGE_REQUESTED = "mergeRequested"
#: Who clears a request that needed no merge (not a tracking change: the stage function ignores it).
MERGE_WRITER = "merge"
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
#: Automations: when a behaviour inactivity triggers count from was last done (``last:<behaviour>``), the
#: score thresholds the contact is at or above (a string set), and re-entry marks (``entered:<automation>``).
LAST, SCORE_ABOVE, ENTERED = "last:", "scoreAbove", "entered:"
#: Consent facts per channel (``shared.delivery.consent``): ``consent:<channel>:granted`` and
#: ``consent:<channel>:revoked`` (maps ``{"source", "at"}``, the latest of each, written blindly by the
#: aggregation, the preferences function and the admin), ``consent:<channel>:confirmed`` (a time: the
#: double opt-in link was followed).
CONSENT = "consent:"
#: An upper bound of the bytes in the profile's ``trait:*`` attributes, kept without reading the profile.
TRAIT_BYTES = "traitBytes"
#: Purchases only (not refunds or cancellations): their time (the sparse purchase index's sort key) and
#: what they bought (JSON text: ``[[product, category], ...]``, either may be null; absent when unknown).
BY_PURCHASE = EVENTS.global_indexes[0]
PURCHASED_AT, BASKET = BY_PURCHASE.sort_key, "basket"


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


def event_item(
    contact: ContactId,
    event: TrackedEvent,
    received_at: str,
    ledger: tuple[ScoreChange, ...],
    retention: Retention,
    put: str,
) -> dict[str, Any]:
    """An event as the event log stores it, with what it scored (its ledger), when it expires, and the
    token of the put that stores it (``INSERTED``); a purchase also with its time and its basket, which
    put it in the purchase index (refunds and cancellations are not purchases there)."""
    item: dict[str, Any] = {
        "pk": partition(contact),
        "sk": s(event_key(event)),
        INSERTED: s(put),
        "call": s(event.call),
        "behaviour": s(event.behaviour.value),
        "timestamp": s(format_time(event.timestamp)),
        "receivedAt": s(received_at),
        "body": s(event.body),
        EVENTS.ttl_attribute: n(retention.expires_at(event)),
    }
    if event.event:
        item["event"] = s(event.event)
    if event.revenue is not None:
        item["revenue"] = n(event.revenue)
    if ledger:
        item["ledger"] = ledger_value(ledger)
    if event.behaviour is Behaviour.PURCHASE:
        item[PURCHASED_AT] = s(format_time(event.timestamp))
        bought = basket(event.properties)
        if bought:
            item[BASKET] = js(bought)
    return item


def event_key(event: TrackedEvent) -> str:
    """The event's sort key: the same for every copy of a call (SDK retries keep messageId and time)."""
    if event.stated_time is None:
        return EVENT_PREFIX + event.message_id
    return f"{TIMED_PREFIX}{format_time(event.stated_time)}#{event.message_id}"


def stated_time_of(sort_key: str) -> str | None:
    """The call's own time, as the key holds it (``E#<time>#<messageId>``); None for an untimed key."""
    return sort_key.split("#", 2)[1] if sort_key.startswith(TIMED_PREFIX) else None


def message_id_of(sort_key: str) -> str:
    if sort_key.startswith(TIMED_PREFIX):
        return sort_key.split("#", 2)[2]
    return sort_key.removeprefix(EVENT_PREFIX)


def ledger_value(ledger: tuple[ScoreChange, ...]) -> dict[str, Any]:
    return js([asdict(change) for change in ledger])


def retraction_value(retraction: Retraction) -> dict[str, str]:
    """What a merge took back for one put, as the merged-away profile keeps it (``RETRACTED``)."""
    r = retraction
    return js(
        {
            "messageId": r.message_id,
            "key": r.key,
            "put": r.put,
            "counts": dict(r.counts),
            "revenue": str(r.revenue),
            "scores": {d: score.model_dump(mode="json") for d, score in r.scores.items()},
            "ruleUses": dict(r.rule_uses),
            "eventCount": r.event_count,
        }
    )


def retraction_of(text: str) -> Retraction:
    from shared.usecases.recording import Retraction

    data = json.loads(text)
    return Retraction(
        message_id=data["messageId"],
        key=data["key"],
        put=data["put"],
        counts=data["counts"],
        revenue=Decimal(data["revenue"]),
        scores={d: DimensionScore.model_validate(score) for d, score in data["scores"].items()},
        rule_uses=data["ruleUses"],
        event_count=data["eventCount"],
    )


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
        "merged_at": data.get("mergedAt"),
        "traits": {},
        "tags": {},
        "counts": {},
        "groups": set(),
        "scores": _scores(data, SCORE),
        "rule_uses": rule_uses(data),
        "stage": data.get("stage"),
        "stage_entered_at": data.get("stageEnteredAt"),
        "stage_removed_at": data.get("stageRemovedAt"),
        "stage_baseline": _scores(data, BASELINE).get("global") if "stageEnteredAt" in data else None,
        "quarter": data.get("quarter"),
        "sales_ready": bool(data.get("salesReady", False)),
        "owner": data.get("owner"),
        "routed_at": data.get("routedAt"),
        "stage_seq": int(data.get("stageSeq", 0)),
        "due_at": data.get("dueAt"),
        "pending_outputs": int(data.get("pendingOutputs", 0)),
        "score_above": data.get(SCORE_ABOVE) or frozenset(),
        "aggregated_through": data.get(AGGREGATED),
        "analytics": data.get(ANALYTICS),
        "segments": data.get(SEGMENTS) or frozenset(),
        "recent_products": recent_products_of(data.get(RECENT_PRODUCTS) or ()),
        "last_times": {},
        "entered": {},
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
        elif name.startswith(LAST):
            fields["last_times"][name[len(LAST) :]] = value
        elif name.startswith(ENTERED):
            fields["entered"][name[len(ENTERED) :]] = value
    fields["consent"] = consent_from_item(data)
    return ContactRecord.model_validate(fields)


def consent_attribute(channel: str, part: str) -> str:
    """The profile attribute of one consent fact: ``part`` is ``granted``, ``revoked`` or ``confirmed``."""
    return f"{CONSENT}{channel}:{part}"


def consent_fact_value(source: str, at: datetime) -> dict[str, Any]:
    """A grant or revocation as the profile stores it (an AttributeValue map)."""
    return {"M": {"source": s(source), "at": s(format_time(at))}}


def consent_from_item(data: Mapping[str, Any]) -> dict[str, ConsentRecord]:
    """The consent facts of a profile (already made plain by ``plain_item``), by channel."""
    found: dict[str, dict[str, Any]] = {}
    for name, value in data.items():
        if not name.startswith(CONSENT):
            continue
        channel, _, part = name[len(CONSENT) :].partition(":")
        if part in ("granted", "revoked"):
            found.setdefault(channel, {})[part] = ConsentFact(source=value["source"], at=value["at"])
        elif part == "confirmed":
            found.setdefault(channel, {})["confirmed_at"] = value
    return {channel: ConsentRecord(**parts) for channel, parts in found.items()}


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


def rule_uses(data: Mapping[str, Any]) -> dict[str, tuple[int, str | None]]:
    """``rule:<id>:n`` and ``rule:<id>:day`` of a plain profile: each limited rule's uses and last day."""
    uses: dict[str, tuple[int, str | None]] = {}
    for name, value in data.items():
        if name.startswith(RULE) and name.endswith(":n"):
            rule_id = name[len(RULE) : -2]
            uses[rule_id] = (int(value), data.get(f"{RULE}{rule_id}:day"))
    return uses


def stored_event(item: Mapping[str, Any]) -> StoredEvent:
    """An event-log item as the domain reads it."""
    from shared.contacts.views import StoredEvent

    data = plain_item(item)
    return StoredEvent.model_validate(
        {
            "message_id": message_id_of(str(data["sk"])),
            "key": str(data["sk"]),
            "put": data.get(INSERTED),
            "folded": bool(data.get(FOLDED)),
            "call": data["call"],
            "behaviour": data["behaviour"],
            "event": data.get("event"),
            "timestamp": data["timestamp"],
            "received_at": data["receivedAt"],
            "revenue": data.get("revenue"),
            "body": data.get("body", "{}"),
            "ledger": data.get("ledger", "[]"),
        }
    )


def merge_request_from_stream(record: Mapping[str, Any]) -> MergeRequest | None:
    """The merges a profile write asked for, from its stream record (None if it asked for none)."""
    from shared.usecases.merging import MergeRequest

    change = record.get("dynamodb") or {}
    image = change.get("NewImage") or {}
    marker = image.get(MERGE_REQUESTED, {}).get("S")
    if not marker or image.get("sk", {}).get("S") != PROFILE or "mergedInto" in image:
        return None
    target = ContactId.parse(str(image["pk"]["S"]).removeprefix("C#"))
    sources = tuple(ContactId.parse(source) for source in json.loads(marker))
    return MergeRequest(target=target, sources=sources, marker=marker)


#: Stream sequence numbers are decimal strings of up to 40 digits; padded, text order is stream order.
POSITION_DIGITS = 40


def new_event_from_stream(record: Mapping[str, Any]) -> NewEvent | None:
    """An event the log recorded, from its stream record (None for anything else: a copy moved by a
    merge, a ledger corrected, an expiry)."""
    from shared.contacts.views import LedgerLine
    from shared.scoring.engine import ScoreChange
    from shared.tracking.messages import rebuild_event
    from shared.tracking.timestamps import parse_time
    from shared.usecases.aggregation import NewEvent

    change = record.get("dynamodb") or {}
    image = change.get("NewImage") or {}
    if record.get("eventName") != "INSERT" or MOVED_FROM in image or "body" not in image:
        return None
    data = plain_item(image)
    key = str(data["sk"])
    ledger = json.loads(data.get("ledger", "[]"))
    return NewEvent(
        contact=ContactId.parse(str(data["pk"]).removeprefix("C#")),
        event=rebuild_event(
            str(data["body"]),
            message_id=message_id_of(key),
            call=str(data["call"]),
            timestamp=parse_time(str(data["timestamp"])),
            received_at=parse_time(str(data["receivedAt"])),
            stated_time=parse_time(stated) if (stated := stated_time_of(key)) else None,
        ),
        key=key,
        ledger=tuple(ScoreChange(**LedgerLine.model_validate(line).model_dump()) for line in ledger),
        position=str(change["SequenceNumber"]).zfill(POSITION_DIGITS),
        item=image,
    )


# --- issue 13: segments ----------------------------------------------------------------------------------

#: On the profile, written by the stage function only: the segments the contact is in (a string set,
#: absent when none). Each membership is also an item of its own (``shared.adapters.segment_members``).
SEGMENTS = "segments"


# --- issue 12: the nightly analytics job ---------------------------------------------------------------------

#: On the profile, written by the nightly pass's apply step only: ``analytics`` (a map: ``day``, the cut-off
#: scored; ``rfm``, absent without a purchase in the look-back window; ``churn``: as
#: ``shared.analytics.facts.Analytics``) and ``analyticsUnpublished`` (a string set: the keys,
#: ``<day>#<kind>``, of its announcements not published yet). Its history and outbox:
#: ``ANALYTICS#<day>#<kind>`` items in the contact's partition.
ANALYTICS, ANALYTICS_UNPUBLISHED, ANALYTICS_HISTORY = "analytics", "analyticsUnpublished", "ANALYTICS#"
#: Who writes them (not "tracking": the stage function's trigger passes tracking's writes only).
ANALYTICS_WRITER = "analytics"


def analytics_value(analytics: Analytics) -> dict[str, Any]:
    """A contact's analytics as the profile stores them: a map, without the facts it does not have."""
    return _attribute(analytics.model_dump(mode="json", exclude_none=True))


def _attribute(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return n(Decimal(repr(value)))
    if isinstance(value, str):
        return s(value)
    if isinstance(value, Mapping):
        return {"M": {k: _attribute(v) for k, v in value.items()}}
    raise TypeError(f"no attribute value for {type(value).__name__}")


def scanned_purchases(items: Sequence[Mapping[str, Any]]) -> list[ScannedPurchase]:
    """Purchases as the purchase index gives them (their key, time, revenue and basket projected), a page
    validated at once."""
    from pydantic import TypeAdapter

    from shared.usecases.analytics import ScannedPurchase

    rows = []
    for item in items:
        revenue, bought = item.get("revenue"), item.get(BASKET)
        rows.append(
            {
                "contact_id": item["pk"]["S"].removeprefix("C#"),
                "purchased_at": item[PURCHASED_AT]["S"],
                "amount": revenue["N"] if revenue else 0,
                "basket": json.loads(bought["S"]) if bought else (),
            }
        )
    return TypeAdapter(list[ScannedPurchase]).validate_python(rows)


# --- issue 15: a contact's recent products -------------------------------------------------------------------

#: On the profile: the products the contact bought or viewed lately, a list of ``{"p": <product>, "k":
#: "purchase"|"view", "t": <time>}``. The aggregation puts each change's entries (at most ``MAX_RECENT``)
#: before the stored ones blindly, so the list may name a product more than once; it reads back folded
#: (``shared.recommendations.recent.merged``), and once it passes ``COMPACT_AT`` entries the aggregation
#: writes it back folded. A merge puts the merged-away contact's entries before the target's.
RECENT_PRODUCTS = "recentProducts"
#: Stored entries past which the list is written back folded: normally at most this many plus one change's
#: (``MAX_RECENT``) and a merged-away contact's (``MAX_RECENT``) entries, some 12 KB. Best effort, not a
#: bound: the write-back is conditional on the profile's ``rev`` and never retried on its own, so while
#: other writers keep changing the profile (or the write-back is throttled) each change may add up to
#: ``MAX_RECENT`` more entries until a later fold's write-back succeeds (about 80 bytes an entry).
COMPACT_AT = 2 * MAX_RECENT
#: Who writes the list back folded: not a writer the stage function or the merge function listens to
#: (nothing a contact is judged on changed, no merge is asked for again).
COMPACTION_WRITER = "recommendations"


def recent_products_value(entries: Sequence[RecentProduct]) -> dict[str, Any]:
    """Recent products as the profile stores them (an AttributeValue list)."""
    return {"L": [{"M": {"p": s(e.product_id), "k": s(e.kind), "t": s(format_time(e.at))}} for e in entries]}


class _StoredRecent(TypedDict):
    p: str
    k: Literal["purchase", "view"]
    t: str


@cache
def _recent_adapters() -> tuple[TypeAdapter[list[_StoredRecent]], TypeAdapter[tuple[RecentProduct, ...]]]:
    """Built when first used: a profile read without recent products never builds them."""
    return TypeAdapter(list[_StoredRecent]), TypeAdapter(tuple[RecentProduct, ...])


def recent_products_of(stored: Sequence[Mapping[str, Any]]) -> tuple[RecentProduct, ...]:
    """The stored entries (plain), folded as ``shared.recommendations.recent.merged`` folds them: one per
    product, a purchase if any entry bought it, at its latest time, newest first (ties by product id), at
    most ``MAX_RECENT``. Folded on the stored text (times are ``format_time``'s: text order is time order)
    and only the kept entries made models: every profile read (the stage function's stream records
    included) pays for at most 50, not for the up to 200 stored."""
    if not stored:
        return ()
    stored_entries, kept_entries = _recent_adapters()
    kinds: dict[str, str] = {}
    times: dict[str, str] = {}
    for entry in stored_entries.validate_python(stored):
        product = entry["p"]
        if kinds.get(product) != "purchase":
            kinds[product] = entry["k"]
        if product not in times or entry["t"] > times[product]:
            times[product] = entry["t"]
    newest = sorted(times)  # ties by product id, then newest first (a stable sort)
    newest.sort(key=times.__getitem__, reverse=True)
    return kept_entries.validate_python(
        [{"product_id": p, "kind": kinds[p], "at": times[p]} for p in newest[:MAX_RECENT]]
    )
