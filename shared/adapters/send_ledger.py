"""The send ledger (``shared.delivery.ledger``) on the contacts table, in the contact's partition.

One item per delivery request: ``pk`` ``C#<contact>`` (the profile's partition, so erasure deletes it with
the rest), ``sk`` ``SEND#<request id without its "<contact>#" prefix>`` (``entry_key``), and

- ``requestId`` (the whole id), ``contactId``, ``automation``, ``channel``: what it is;
- ``status`` (``claimed``, ``sent``, ``skipped``, ``deferred``, ``held_out``, ``failed``), ``reason``,
  ``attempts`` (claims taken), ``at`` (last change), ``claimedAt``, ``sentAt``, ``providerId``,
  ``capsTaken`` (true once an attempt took the frequency caps and was released: kept from then on);
- while ``deferred``: ``dueAt``, the request itself as JSON (``request``: the only PII an entry keeps, until
  it is claimed again), and ``dueShard``/``dueKey`` on the ``byDue`` index, in the run store's format
  (``shared.adapters.stage_store.due_shard``/``due_key``), so the timer function finds it (``due()`` as a
  ``send`` entry) and queues the request again (``take_deferred``).

Every write after a claim (``complete``, ``release``, ``settle`` as skipped, ``defer``, ``drop_claim``)
has the condition that the entry exists and is ``claimed``: an erasure between the claim and that write
is never undone (least of all with the request as JSON).

Times are ``format_time`` text (milliseconds, UTC), so the conditions compare them as text. No write here
sets ``lastWriter``: the contacts table's stream triggers pass profile writes only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from shared.adapters.contact_items import partition
from shared.adapters.dynamodb import error_code, failure, n, plain_item, query_all, retried, s
from shared.adapters.expressions import Expression
from shared.adapters.stage_store import due_key, due_shard
from shared.contacts.identity import ContactId
from shared.delivery.ledger import CLAIM_LEASE_SECONDS, FINAL_STATUSES, SendRecord, entry_key
from shared.delivery.ports import Claim
from shared.delivery.requests import DeliveryRequest
from shared.tracking.timestamps import format_time

SEND = "SEND#"
STORE = "the send ledger"
#: the reason of a claimed entry whose provider call is in doubt (the provider may have taken it)
IN_DOUBT = "provider_in_doubt"
#: a deferred entry's request, as JSON
REQUEST = "request"
#: the attributes of an entry the card shows (everything but the deferred request)
CARD_ATTRIBUTES = (
    "requestId",
    "contactId",
    "automation",
    "channel",
    "#s",
    "reason",
    "attempts",
    "#at",
    "claimedAt",
    "sentAt",
    "providerId",
    "dueAt",
    "capsTaken",
)
#: statuses a held-out settlement may still write over (a final one stays)
_OPEN = ("claimed", "failed", "deferred")


def send_key(request: DeliveryRequest) -> dict[str, Any]:
    contact = ContactId.parse(request.contact_id)
    return {"pk": partition(contact), "sk": s(SEND + entry_key(request.id, request.contact_id))}


class DynamoSendLedger:
    """``SendLedger``: each transition one conditional ``UpdateItem`` on the entry."""

    def __init__(self, client: Any, *, contacts_table: str, due_shards: int = 8) -> None:
        self._db = client
        self._table = contacts_table
        self._shards = due_shards

    def claim(self, request: DeliveryRequest, now: datetime) -> Claim:
        """``claimed`` if the entry is absent, ``failed``, ``deferred`` and due, or ``claimed`` longer ago
        than ``CLAIM_LEASE_SECONDS`` (a crashed attempt: this one takes it over, and may send a second
        time: the use case sees it as ``record.status == "claimed"``). On ``claimed``, ``Claim.record`` is
        the entry as it was before this claim (None: new); on ``done`` or ``busy``, as it is."""
        x = self._described(request, now)
        x.set("status", s("claimed"))
        x.set("claimedAt", s(format_time(now)))
        x.add("attempts", n(1))
        for attribute in ("reason", "dueAt", "dueShard", "dueKey", REQUEST):
            x.remove(attribute)
        status = x.name("status")
        stamp = x.value(s(format_time(now)))
        stale = x.value(s(format_time(now - timedelta(seconds=CLAIM_LEASE_SECONDS))))
        condition = (
            f"attribute_not_exists(pk) OR {status} = {x.value(s('failed'))}"
            f" OR ({status} = {x.value(s('deferred'))} AND {x.name('dueAt')} <= {stamp})"
            f" OR ({status} = {x.value(s('claimed'))} AND {x.name('claimedAt')} <= {stale})"
        )
        update = x.update(
            self._table,
            send_key(request),
            condition,
            ReturnValues="ALL_OLD",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        try:
            answer = retried(lambda: self._db.update_item(**update), STORE)
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise failure(exc, STORE) from exc
            held = getattr(exc, "response", {}).get("Item")
            if not held:  # moto or an old SDK without the item: read it
                held = self._get(send_key(request))
            record = None if not held else _record(held)
            if record is None:  # deleted meanwhile (erasure): nothing to claim now
                return Claim("busy")
            return Claim("done" if record.status in FINAL_STATUSES else "busy", record)
        before = answer.get("Attributes")
        return Claim("claimed", _record(before) if before else None)

    def complete(self, request: DeliveryRequest, provider_id: str, now: datetime) -> None:
        """``claimed`` -> ``sent``; anything else is left as it is (a second completion, or a claim taken
        over: the first one written stands)."""
        x = self._described(request, now)
        x.set("status", s("sent"))
        x.set("sentAt", s(format_time(now)))
        x.set("providerId", s(provider_id))
        x.remove("reason")
        self._update_if(x, request, self._claimed(x))

    def release(
        self, request: DeliveryRequest, reason: str, now: datetime, *, caps_taken: bool = False
    ) -> None:
        """``claimed`` -> ``failed``; ``caps_taken`` sets ``capsTaken`` (never cleared)."""
        x = self._described(request, now)
        x.set("status", s("failed"))
        x.set("reason", s(reason))
        if caps_taken:
            x.set("capsTaken", {"BOOL": True})
        self._update_if(x, request, self._claimed(x))

    def mark_in_doubt(self, request: DeliveryRequest, now: datetime, *, caps_taken: bool = False) -> None:
        """Still ``claimed`` (``claimedAt`` unchanged: the lease runs on), reason ``provider_in_doubt``;
        ``caps_taken`` sets ``capsTaken``."""
        x = self._described(request, now)
        x.set("reason", s(IN_DOUBT))
        if caps_taken:
            x.set("capsTaken", {"BOOL": True})
        self._update_if(x, request, self._claimed(x))

    def drop_claim(self, request: DeliveryRequest) -> None:
        """Delete the entry if it is ``claimed``; anything else (absent too) is left as it is."""
        deletion = {
            "TableName": self._table,
            "Key": send_key(request),
            "ConditionExpression": "#s = :claimed",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":claimed": s("claimed")},
        }
        try:
            retried(lambda: self._db.delete_item(**deletion), STORE)
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise failure(exc, STORE) from exc

    def settle(
        self,
        request: DeliveryRequest,
        status: Literal["skipped", "held_out"],
        reason: str | None,
        now: datetime,
    ) -> None:
        """Final without a send: ``skipped`` only from ``claimed`` (a check after a claim); ``held_out``
        from any state but a final one (an absent entry too: a held-out request needs no claim). Anything
        else is left as it is."""
        x = self._described(request, now)
        x.set("status", s(status))
        if reason is None:
            x.remove("reason")
        else:
            x.set("reason", s(reason))
        for attribute in ("dueAt", "dueShard", "dueKey", REQUEST):
            x.remove(attribute)
        self._update_if(x, request, self._open(x) if status == "held_out" else self._claimed(x))

    def defer(self, request: DeliveryRequest, until: datetime, reason: str, now: datetime) -> None:
        """``claimed`` -> ``deferred`` until ``until``, with the request kept and the entry on the due
        index; anything else (absent too) is left as it is."""
        contact = ContactId.parse(request.contact_id)
        x = self._described(request, now)
        x.set("status", s("deferred"))
        x.set("reason", s(reason))
        x.set("dueAt", s(format_time(until)))
        x.set(REQUEST, s(request.model_dump_json()))
        x.set("dueShard", s(due_shard(contact, self._shards)))
        x.set("dueKey", s(due_key(contact, until)))
        self._update_if(x, request, self._claimed(x))

    def record(self, request_id: str) -> SendRecord | None:
        """The entry of a request id. The id starts with its contact, whose user id may itself hold a
        ``#``: each split is tried, the first (the usual case) first."""
        for position, char in enumerate(request_id):
            if char != "#" or position == 0:
                continue
            contact = request_id[:position]
            key = {
                "pk": partition(ContactId.parse(contact)),
                "sk": s(SEND + entry_key(request_id, contact)),
            }
            item = self._get(key)
            if item is not None and item.get("requestId", {}).get("S") == request_id:
                return _record(item)
        return None

    def records(self, contact_id: str, limit: int = 50) -> list[SendRecord]:
        """The contact's entries, newest change first: the whole of its ``SEND#`` range is read (without
        the deferred requests), as ``at`` is not in the key."""
        request = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
            "ProjectionExpression": ", ".join(CARD_ATTRIBUTES),
            "ExpressionAttributeNames": {"#s": "status", "#at": "at"},
            "ExpressionAttributeValues": {
                ":pk": partition(ContactId.parse(contact_id)),
                ":p": s(SEND),
            },
        }
        found = [_record(item) for item in query_all(self._db, request, STORE)]
        return sorted(found, key=lambda r: (r.at, r.id), reverse=True)[:limit]

    # --- writes ---------------------------------------------------------------------------------------

    def _described(self, request: DeliveryRequest, now: datetime) -> Expression:
        """What every write sets: what the entry is for, and when it changed."""
        x = Expression()
        x.set("requestId", s(request.id))
        x.set("contactId", s(request.contact_id))
        x.set("automation", s(request.automation))
        x.set("channel", s(request.channel))
        x.set("at", s(format_time(now)))
        return x

    def _claimed(self, x: Expression) -> str:
        """The entry is there and claimed (an absent one has no status: the condition fails)."""
        return f"{x.name('status')} = {x.value(s('claimed'))}"

    def _open(self, x: Expression) -> str:
        status = x.name("status")
        listed = ", ".join(x.value(s(state)) for state in _OPEN)
        return f"attribute_not_exists(pk) OR {status} IN ({listed})"

    def _update_if(self, x: Expression, request: DeliveryRequest, condition: str) -> bool:
        update = x.update(self._table, send_key(request), condition)
        try:
            retried(lambda: self._db.update_item(**update), STORE)
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise failure(exc, STORE) from exc
            return False
        return True

    def _get(self, key: Mapping[str, Any]) -> dict[str, Any] | None:
        try:
            found = retried(
                lambda: self._db.get_item(TableName=self._table, Key=dict(key), ConsistentRead=True),
                STORE,
            )
        except Exception as exc:
            raise failure(exc, STORE) from exc
        return found.get("Item")


def take_deferred(
    client: Any, table: str, contact: ContactId, key: str, now: datetime, retry_at: datetime
) -> DeliveryRequest | None:
    """The request of a deferred entry that has come due, taken for queueing again: its due index entry
    moves on to ``retry_at``, on condition it is still the one read, so of two timer runs one takes it,
    and a request that never reaches delivery falls due again then. None: not deferred, not due, or
    taken. (A claim removes the index entry; the entry keeps ``dueAt``, so the claim still finds it due.)"""
    item_key = {"pk": partition(contact), "sk": s(SEND + key)}
    try:
        found = retried(
            lambda: client.get_item(TableName=table, Key=item_key, ConsistentRead=True), STORE
        ).get("Item")
    except Exception as exc:
        raise failure(exc, STORE) from exc
    if not found or found.get("status", {}).get("S") != "deferred" or REQUEST not in found:
        return None
    seen = found.get("dueKey", {}).get("S")
    if seen is None or seen > format_time(now) + "~":
        return None
    try:
        retried(
            lambda: client.update_item(
                TableName=table,
                Key=item_key,
                UpdateExpression="SET dueKey = :next",
                ConditionExpression="#s = :deferred AND dueKey = :seen",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":next": s(due_key(contact, retry_at)),
                    ":deferred": s("deferred"),
                    ":seen": s(seen),
                },
            ),
            STORE,
        )
    except Exception as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise failure(exc, STORE) from exc
        return None
    return DeliveryRequest.model_validate_json(found[REQUEST]["S"])


def _record(item: Mapping[str, Any]) -> SendRecord:
    data = plain_item(item)
    return SendRecord.model_validate(
        {
            "id": data["requestId"],
            "contact_id": data["contactId"],
            "automation": data["automation"],
            "channel": data["channel"],
            "status": data["status"],
            "reason": data.get("reason"),
            "attempts": int(data.get("attempts", 0)),
            "at": data["at"],
            "claimed_at": data.get("claimedAt"),
            "sent_at": data.get("sentAt"),
            "provider_id": data.get("providerId"),
            "due_at": data.get("dueAt"),
            "caps_taken": bool(data.get("capsTaken", False)),
        }
    )
