"""Recipients: the contact's profile (a consistent read) as delivery reads it."""

from __future__ import annotations

from typing import Any

from shared.adapters.contact_profiles import read_profile
from shared.contacts.changes import TIMEZONE_TRAIT
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.delivery.consent import CONSENT_CHANNELS
from shared.delivery.ports import Recipient

#: how far merges are followed to the contact that holds the profile now
MAX_MERGE_HOPS = 4
EMAIL_TRAIT, PHONE_TRAIT = "email", "phone"


class DynamoRecipients:
    def __init__(self, client: Any, *, contacts_table: str) -> None:
        self._db = client
        self._table = contacts_table

    def recipient(self, contact_id: str) -> Recipient | None:
        """The profile holding the contact now: a merged-away one is followed to the contact it joined
        (at most ``MAX_MERGE_HOPS``); None if absent (unknown or erased) or the merges go on further."""
        contact = ContactId.parse(contact_id)
        for _ in range(MAX_MERGE_HOPS):
            record = read_profile(self._db, self._table, contact)
            if record is None:
                return None
            if not record.merged_into:
                traits = record.traits
                return Recipient(
                    contact_id=record.contact_id,
                    email=_text(traits.get(EMAIL_TRAIT)),
                    phone=_text(traits.get(PHONE_TRAIT)),
                    timezone=_text(traits.get(TIMEZONE_TRAIT)),
                    traits=traits,
                    tags=tuple(sorted(record.tags)),
                    stage=record.stage,
                    consent={c: r for c, r in record.consent.items() if c in CONSENT_CHANNELS},
                )
            contact = ContactId.parse(record.merged_into)
        return None

    def profile(self, contact: ContactId) -> ContactRecord | None:
        """issue 15: the profile as stored (``Profiles``: a template's recommendations read its recent
        products)."""
        return read_profile(self._db, self._table, contact)


def _text(value: object) -> str | None:
    """A trait as an address: a non-empty string, else none."""
    return (value.strip() or None) if isinstance(value, str) else None
