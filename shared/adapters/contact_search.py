"""Contact search on the contacts table (issue 14): terms as items of the ``byLookup`` index.

Under each contact's partition (so erasure deletes them with the rest):

- ``SEARCH``: the contact's terms as stored (``terms``: sorted, one a line) and the stream position of the
  change that wrote them (``position``). Not in any index. The condition of every write.
- ``SEARCH#<term>``, one per term: ``lookupKey`` ``SEARCH#<first two characters of the term>`` and
  ``lookupSort`` ``<term>#<contact id>``: the keys of the sparse, keys-only ``byLookup`` index (which
  salespeople's leads share under ``OWNER#...`` keys). Terms never hold ``#`` (``shared.contacts.search``).

A replacement is one transaction: the ``SEARCH`` item updated on condition of the terms and position it
holds, a put per term added, a delete per term removed and, when a term is added, a condition on the
profile (it exists, not merged away, not removed from its stage: being erased). A search is one Query of
the index (``lookupKey`` = the word's partition, ``begins_with(lookupSort, word)``) and one BatchGetItem
of the page's profiles. No Scan.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from shared.adapters.contact_items import PROFILE, TRAIT, partition, profile_key, record_from_item
from shared.adapters.dynamodb import failure, retried, s, transact_if
from shared.adapters.tables import CONTACTS
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.contacts.search import SEARCHED_TRAITS, TERM_HEAD, search_terms
from shared.usecases.search import FoundPage, StoredTerms, TermsChange

STORE = "the contact search"
STATE, TERM = "SEARCH", "SEARCH#"
BY_LOOKUP = next(index for index in CONTACTS.global_indexes if index.name == "byLookup")
#: A BatchGetItem reads at most 100 keys.
MAX_BATCH = 100
#: The stream position of a record: its sequence number padded, so text order is stream order.
POSITION_DIGITS = 40


def term_item(contact: ContactId, term: str) -> dict[str, Any]:
    return {
        "pk": partition(contact),
        "sk": s(TERM + term),
        BY_LOOKUP.partition_key: s(TERM + term[:TERM_HEAD]),
        BY_LOOKUP.sort_key: s(f"{term}#{contact}"),
    }


def _terms_text(terms: frozenset[str]) -> str:
    return "\n".join(sorted(terms))


class DynamoContactSearch:
    """``SearchTerms`` (the stage function, the back-fill) and ``ContactFinder`` (the admin)."""

    def __init__(self, client: Any, *, contacts_table: str) -> None:
        self._db = client
        self._table = contacts_table

    # --- keeping the terms ---------------------------------------------------------------------------

    def replace(
        self, contact: ContactId, terms: frozenset[str], *, was: frozenset[str], position: str
    ) -> bool:
        added, removed = sorted(terms - was), sorted(was - terms)
        condition = "(#position < :position AND #terms = :was)"
        if not was:
            condition = f"attribute_not_exists(sk) OR {condition}"
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"pk": partition(contact), "sk": s(STATE)},
                    "UpdateExpression": "SET #terms = :terms, #position = :position",
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": {"#terms": "terms", "#position": "position"},
                    "ExpressionAttributeValues": {
                        ":terms": s(_terms_text(terms)),
                        ":was": s(_terms_text(was)),
                        ":position": s(position),
                    },
                }
            },
            *({"Put": {"TableName": self._table, "Item": term_item(contact, term)}} for term in added),
            *(
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": {"pk": partition(contact), "sk": s(TERM + term)},
                    }
                }
                for term in removed
            ),
        ]
        if added:
            items.append(
                {
                    "ConditionCheck": {
                        "TableName": self._table,
                        "Key": profile_key(contact),
                        "ConditionExpression": (
                            "attribute_exists(pk) AND attribute_not_exists(mergedInto)"
                            " AND attribute_not_exists(stageRemovedAt)"
                        ),
                    }
                }
            )
        return transact_if(self._db, items, STORE)

    def stored(self, contact: ContactId) -> StoredTerms | None:
        try:
            item = retried(
                lambda: self._db.get_item(
                    TableName=self._table,
                    Key={"pk": partition(contact), "sk": s(STATE)},
                    ConsistentRead=True,
                ),
                STORE,
            ).get("Item")
        except Exception as exc:
            raise failure(exc, STORE) from exc
        if item is None:
            return None
        text = item.get("terms", {}).get("S", "")
        return StoredTerms(terms=frozenset(text.split("\n")) - {""}, position=item["position"]["S"])

    # --- searching -----------------------------------------------------------------------------------

    def find(self, word: str, limit: int, after: str | None = None) -> FoundPage:
        key = s(TERM + word[:TERM_HEAD])
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": BY_LOOKUP.name,
            "KeyConditionExpression": "#key = :key AND begins_with(#sort, :word)",
            "ExpressionAttributeNames": {"#key": BY_LOOKUP.partition_key, "#sort": BY_LOOKUP.sort_key},
            "ExpressionAttributeValues": {":key": key, ":word": s(word)},
            "Limit": limit,
        }
        if after is not None:
            term, _, contact = after.partition("#")
            request["ExclusiveStartKey"] = {
                **term_item(ContactId.parse(contact), term),
                BY_LOOKUP.partition_key: key,
            }
        try:
            page = retried(lambda: self._db.query(**request), STORE)
        except Exception as exc:
            raise failure(exc, STORE) from exc
        found = [item[BY_LOOKUP.sort_key]["S"] for item in page.get("Items", [])]
        contacts = [ContactId.parse(sort.partition("#")[2]) for sort in found]
        more = "LastEvaluatedKey" in page and found
        return FoundPage(contacts=contacts, after=found[-1] if more else None)

    def profiles(self, contacts: Sequence[ContactId]) -> Mapping[ContactId, ContactRecord]:
        wanted = list(dict.fromkeys(contacts))[:MAX_BATCH]
        if not wanted:
            return {}
        pending: dict[str, Any] = {self._table: {"Keys": [profile_key(c) for c in wanted]}}
        found: dict[ContactId, ContactRecord] = {}
        for _ in range(6):  # keys DynamoDB left unprocessed (throttled) are asked for again
            try:
                answer = retried(lambda batch=pending: self._db.batch_get_item(RequestItems=batch), STORE)
            except Exception as exc:
                raise failure(exc, STORE) from exc
            for item in answer.get("Responses", {}).get(self._table, []):
                record = record_from_item(item)
                found[ContactId.parse(record.contact_id)] = record
            pending = answer.get("UnprocessedKeys") or {}
            if not pending:
                return found
        from shared.errors import DependencyUnavailable

        raise DependencyUnavailable(f"{STORE} is throttled; retry")


def image_terms(image: Mapping[str, Any]) -> frozenset[str]:
    """The terms of a profile as a stream image holds it (its searched traits alone are decoded); none for
    a contact merged away or removed from its stage (being erased)."""
    if not image or "mergedInto" in image or "stageRemovedAt" in image:
        return frozenset()
    traits: dict[str, Any] = {}
    for name in SEARCHED_TRAITS:
        value = image.get(TRAIT + name, {}).get("S")
        if value is not None:
            try:
                traits[name] = json.loads(value)
            except ValueError:
                continue
    return search_terms(traits)


def terms_change_from_stream(record: Mapping[str, Any]) -> TermsChange | None:
    """The change of a contact's terms a profile write made, from its stream record; ``None`` when its
    terms are the same before and after (no request is made for it), and for anything but a profile."""
    if record.get("eventName") not in ("INSERT", "MODIFY"):
        return None
    change = record.get("dynamodb") or {}
    if (change.get("Keys") or {}).get("sk", {}).get("S") != PROFILE:
        return None
    was, terms = image_terms(change.get("OldImage") or {}), image_terms(change.get("NewImage") or {})
    if was == terms:
        return None
    contact = ContactId.parse(str(change["Keys"]["pk"]["S"]).removeprefix("C#"))
    position = str(change["SequenceNumber"]).zfill(POSITION_DIGITS)
    return TermsChange(contact=contact, was=was, terms=terms, position=position)
