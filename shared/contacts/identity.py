"""Contact identity: who an event belongs to.

A contact is known by its ``userId`` or, until it identifies, by its
``anonymousId``. Ids follow Segment's Profile API form: ``user_id:ann`` and
``anonymous_id:43812558-...``; a bare id means a user id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.errors import InvalidRequest

Kind = Literal["user_id", "anonymous_id"]
KINDS: tuple[Kind, ...] = ("user_id", "anonymous_id")


@dataclass(frozen=True, slots=True, order=True)
class ContactId:
    kind: Kind
    value: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"

    @classmethod
    def parse(cls, text: str) -> ContactId:
        kind, sep, value = text.partition(":")
        if sep and kind in KINDS and value:
            return cls(kind, value)  # type: ignore[arg-type]
        if not text.strip():
            raise InvalidRequest("contact id is empty", code="invalid_contact_id")
        return cls("user_id", text)

    @classmethod
    def user(cls, user_id: str) -> ContactId:
        return cls("user_id", user_id)

    @classmethod
    def anonymous(cls, anonymous_id: str) -> ContactId:
        return cls("anonymous_id", anonymous_id)

    @classmethod
    def of(cls, user_id: str | None, anonymous_id: str | None) -> ContactId:
        """An event's contact: its user when known, else its anonymous visitor."""
        if user_id:
            return cls.user(user_id)
        if anonymous_id:
            return cls.anonymous(anonymous_id)
        raise ValueError("an event needs userId or anonymousId")
