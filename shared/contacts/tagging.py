"""Tags an administrator adds or removes by hand (issue 14: the contact card's "add a tag").

A tag by hand goes the way tracked tags go: an ``identify`` call whose ``tags`` trait adds the tag
(``["vip"]``) or removes it (``["-vip"]``, Mautic's convention; ``shared.contacts.changes.tag_changes``),
recorded in the contact's log as a server fact sent by the admin API (``context.source`` ``admin``, its
messageId ``admin-tag:...``). The aggregation folds it into the profile like any identify, so the card, the
stage function, segments, automations and the event log see exactly what a tracked tag does. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.contacts.changes import TAGS_TRAIT
from shared.contacts.consent import ADMIN_SOURCE, consent_message_id
from shared.contacts.identity import ContactId
from shared.errors import InvalidRequest
from shared.tracking.messages import MAX_TAG_LENGTH, TrackedEvent, rebuild_event
from shared.tracking.proofs import Provenance
from shared.tracking.stored import dumps, with_provenance


def checked_tag(value: Any) -> str:
    """A tag as tracking accepts it (1 to ``MAX_TAG_LENGTH`` characters), as it is stored (surrounding
    spaces dropped); a leading ``-`` would remove the tag, so it is refused. ``InvalidRequest`` naming the
    field ``tag`` otherwise."""
    tag = value.strip() if isinstance(value, str) else ""
    if not tag or len(tag) > MAX_TAG_LENGTH or tag.startswith("-"):
        raise InvalidRequest(
            f"tag: a tag is 1 to {MAX_TAG_LENGTH} characters, not starting with '-'",
            code="invalid_tag",
            field="tag",
        )
    return tag


def tag_message_id(contact: ContactId, tag: str, present: bool, idempotency_key: str, folded: str) -> str:
    """The event's messageId: the same contact, tag, change, ``Idempotency-Key`` and profile state
    (``folded``: how far the aggregation has folded the contact's log in), the same event (the log keeps
    one), so a call retried before its event is folded in has one effect; once it is, the profile shows
    the change and the caller records nothing (``wanted``). A later change back and forth is new."""
    change = "add" if present else "remove"
    return consent_message_id("admin-tag", str(contact), tag, change, idempotency_key, folded)


def wanted(tags: Mapping[str, Any], tag: str, present: bool) -> bool:
    """Whether the change is still to make: a tag the contact has is not added again, nor one it has not
    removed (so a retry after the change is folded in records nothing)."""
    return (tag in tags) != present


def tag_event(contact: ContactId, *, tag: str, present: bool, message_id: str, at: datetime) -> TrackedEvent:
    """The ``identify`` call that adds (``present``) or removes the tag, a server fact, untimed (its key
    is ``M#<message_id>``, so the same message id is one event)."""
    identity = {"userId": contact.value} if contact.kind == "user_id" else {"anonymousId": contact.value}
    body = with_provenance(
        {
            **identity,
            "traits": {TAGS_TRAIT: [tag if present else f"-{tag}"]},
            "context": {"source": ADMIN_SOURCE},
        },
        Provenance.SERVER,
        None,
    )
    return rebuild_event(dumps(body), message_id=message_id, call="identify", timestamp=at, received_at=at)
