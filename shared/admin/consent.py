"""Consent set by an administrator: ``PUT /admin/contacts/{contactId}/consent``.

The body names the channels granted (``true``) or revoked (``false``) and the source (``admin`` unless
given). It is recorded as a ``Consent Updated`` event in the contact's log, a server fact
(``shared.contacts.consent.consent_event``), and the aggregation folds it into the profile as it folds
tracked consent, so the history shows who changed what and when. The event's messageId is derived from
the request: the contact, the body, an ``Idempotency-Key`` header if sent, and the consent the profile
holds now for those channels; a retried PUT is one event, and the same PUT once the first has been folded
in (or with another key) is a new one.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.admin.dependencies import Admin
from shared.contacts.consent import ADMIN_SOURCE, MAX_SOURCE_LENGTH, consent_event, consent_message_id
from shared.contacts.identity import ContactId
from shared.delivery.consent import CONSENT_CHANNELS, ConsentChannel
from shared.errors import InvalidRequest, NotFound, invalid_field
from shared.http import json_body
from shared.usecases.recording import NewEntry, resolve

if TYPE_CHECKING:
    from shared.http import HttpRequest

IDEMPOTENCY_HEADER = "idempotency-key"


class ConsentChangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    email: bool | None = None
    sms: bool | None = None
    source: str = Field(ADMIN_SOURCE, min_length=1, max_length=MAX_SOURCE_LENGTH, pattern=r"\S")

    @model_validator(mode="after")
    def _a_channel(self) -> ConsentChangeRequest:
        if self.email is None and self.sms is None:
            raise ValueError("name at least one channel: email or sms (true grants, false revokes)")
        return self

    @property
    def granted(self) -> dict[ConsentChannel, bool]:
        return {c: v for c in CONSENT_CHANNELS if (v := getattr(self, c)) is not None}


class ConsentRecorded(BaseModel):
    contact_id: str
    #: the event in the contact's log (``GET .../events``)
    message_id: str
    #: False: the same request was recorded before (a retry), nothing new
    recorded: bool
    email: bool | None
    sms: bool | None
    source: str


def put_consent(request: HttpRequest, deps: Admin) -> ConsentRecorded:
    raw = request.path_parameters.get("contactId", "")
    contact = resolve(ContactId.parse(raw), deps.contacts)
    change = _request(json_body(request))
    record = deps.contacts.profile(contact)
    if record is None:
        raise NotFound(f"no contact {contact}")
    held = {c: record.consent[c].model_dump(mode="json") for c in change.granted if c in record.consent}
    message_id = consent_message_id(
        "admin-consent",
        str(contact),
        change.model_dump_json(),
        request.headers.get(IDEMPOTENCY_HEADER, ""),
        json.dumps(held, sort_keys=True),
    )
    event = consent_event(
        contact, message_id=message_id, at=deps.clock.now(), source=change.source, granted=change.granted
    )
    duplicates = deps.consent_log.append([NewEntry(contact, event, ())])
    return ConsentRecorded(
        contact_id=str(contact),
        message_id=message_id,
        recorded=message_id not in duplicates,
        email=change.email,
        sms=change.sms,
        source=change.source,
    )


def _request(body: object) -> ConsentChangeRequest:
    if not isinstance(body, dict):
        raise InvalidRequest('body: send {"email": true|false, "sms": true|false}', code="invalid_consent")
    try:
        return ConsentChangeRequest.model_validate(body)
    except ValidationError as exc:
        raise invalid_field(exc.errors(include_url=False)[0], code="invalid_consent", whole="body") from None


ROUTES = {
    "PUT /admin/contacts/{contactId}/consent": put_consent,
}
