"""Tags by hand (issue 14): ``POST /admin/contacts/{contactId}/tags`` with ``{"tag": "vip"}`` adds one,
``DELETE /admin/contacts/{contactId}/tags/{tag}`` removes one.

Each is an ``identify`` call with the ``tags`` trait in the contact's log, a server fact from the admin
API (``shared.contacts.tagging``): the aggregation folds it into the profile as it folds tracked tags, so
segments, automations and the stage function react as they would to tracking. The answer is the
contact's tags once the change is made (sorted); the card shows it as soon as the aggregation has folded
the event in (the same stream as tracking). A change the profile shows already records nothing, and an
``Idempotency-Key`` header (or none) makes a retried call the same event: one effect.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote

from pydantic import BaseModel

from shared.admin.dependencies import Admin
from shared.contacts.identity import ContactId
from shared.contacts.tagging import checked_tag, tag_event, tag_message_id, wanted
from shared.errors import InvalidRequest, NotFound
from shared.http import json_body
from shared.usecases.recording import NewEntry, resolve

if TYPE_CHECKING:
    from shared.http import HttpRequest

IDEMPOTENCY_HEADER = "idempotency-key"


class ContactTags(BaseModel):
    contact_id: str
    #: the contact's tags after the change, sorted
    tags: list[str]


def add_tag(request: HttpRequest, deps: Admin) -> ContactTags:
    body = json_body(request)
    if not isinstance(body, dict):
        raise InvalidRequest('tag: send {"tag": "<name>"}', code="invalid_tag", field="tag")
    return _change(request, deps, checked_tag(body.get("tag")), present=True)


def remove_tag(request: HttpRequest, deps: Admin) -> ContactTags:
    tag = checked_tag(unquote(request.path_parameters.get("tag", "")))
    return _change(request, deps, tag, present=False)


def _change(request: HttpRequest, deps: Admin, tag: str, *, present: bool) -> ContactTags:
    contact = resolve(ContactId.parse(request.path_parameters.get("contactId", "")), deps.contacts)
    record = deps.contacts.profile(contact)
    if record is None or record.merged_into:
        raise NotFound(f"no contact {contact}")
    if wanted(record.tags, tag, present):
        folded = f"{record.aggregated_through or ''}/{record.event_count}"
        message_id = tag_message_id(
            contact, tag, present, request.headers.get(IDEMPOTENCY_HEADER, ""), folded
        )
        event = tag_event(contact, tag=tag, present=present, message_id=message_id, at=deps.clock.now())
        deps.consent_log.append([NewEntry(contact, event, ())])
    after = set(record.tags) | {tag} if present else set(record.tags) - {tag}
    return ContactTags(contact_id=str(contact), tags=sorted(after))


ROUTES = {
    "POST /admin/contacts/{contactId}/tags": add_tag,
    "DELETE /admin/contacts/{contactId}/tags/{tag}": remove_tag,
}
