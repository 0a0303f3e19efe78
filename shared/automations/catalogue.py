"""The automations an administrator stores, and how a change to one is read and checked."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from shared.automations.book import AutomationBook
from shared.automations.model import Automation, StoredAutomation
from shared.errors import InvalidRequest, body_part, invalid_field

#: the fields that tell a trigger or a step apart: pydantic names the chosen one in an error's location
DISCRIMINATORS = ("type", "action")
INVALID = "invalid_automation"


class AutomationRepository(Protocol):
    def stored(self) -> list[StoredAutomation]:
        """The current version of every automation, by id."""
        ...

    def history(self, automation_id: str) -> list[StoredAutomation]:
        """Every version of one automation, newest first (a deletion's tombstone included)."""
        ...

    def save(self, automation: Automation, at: datetime, expected_version: int | None) -> StoredAutomation:
        """Store the next version (never one used before); ``expected_version`` other than the current
        one (0: none stored) is a Conflict."""
        ...

    def remove(self, automation_id: str, at: datetime, expected_version: int | None) -> StoredAutomation:
        """Delete the current version (NotFound if none), leaving a tombstone; returns what was deleted."""
        ...


class AutomationSource(Protocol):
    def book(self) -> AutomationBook: ...


#: an automation as stored, at most (its runs copy rendered content: they must stay well within 400 KB)
MAX_AUTOMATION_BYTES = 64 * 1024


def parse_automation(automation_id: str, body: Any) -> Automation:
    """Validate an administrator's automation; a bad one is a 400 naming the field (``trigger.days``).

    ``id`` may be left out (the path names it); ``version`` and ``updated_at``, as a GET shows them, are
    ignored, so what a GET returns can be PUT back as it is.
    """
    if not isinstance(body, Mapping):
        raise InvalidRequest("the automation must be a JSON object", code=INVALID)
    if len(json.dumps(body, separators=(",", ":"), default=str)) > MAX_AUTOMATION_BYTES:
        raise InvalidRequest(
            f"automation: over {MAX_AUTOMATION_BYTES // 1024} KB; keep long content in templates",
            code=INVALID,
        )
    if "id" in body and body["id"] != automation_id:
        raise InvalidRequest(
            f"id: {body['id']!r} does not match the path ({automation_id!r})", code=INVALID, field="id"
        )
    fields = {k: v for k, v in body.items() if k not in ("version", "updated_at")}
    try:
        return Automation.model_validate({**fields, "id": automation_id})
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        raise invalid_field(
            error, code=INVALID, location=written_field(error, body), message=describe(error, body)
        ) from None


def describe(error: Mapping[str, Any], body: Any) -> str:
    """``<field path>: <what is wrong>``, the path as the administrator wrote the JSON: pydantic's
    location also names the trigger type or step action it tried (``trigger.inactivity.days``), which
    the body does not have (``trigger.days``)."""
    path = written_field(error, body)
    message = str(error["msg"]).removeprefix("Value error, ")
    context = error.get("ctx") or {}
    if error["type"] == "union_tag_invalid":
        message = f"{context.get('tag')!r} is not one of {context.get('expected_tags')}"
    elif error["type"] == "union_tag_not_found":
        message = "Field required"
    return f"{'.'.join(path) or 'automation'}: {message}"


def written_field(error: Mapping[str, Any], body: Any) -> list[str]:
    """The field a validation error is about, as the administrator wrote the JSON: the written path
    (``written_path``), and for a missing or unknown ``type`` / ``action``, that key itself."""
    path = written_path(error["loc"], body)
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        path += [str((error.get("ctx") or {}).get("discriminator", "")).strip("'")]
    return path


def written_path(location: Sequence[str | int], body: Any) -> list[str]:
    """The location without the union tags pydantic adds: a tag is the first part after entering an
    object whose ``type`` or ``action`` it equals."""
    path: list[str] = []
    value, entered = body, True
    for part in location:
        if entered and isinstance(value, Mapping) and any(value.get(f) == part for f in DISCRIMINATORS):
            entered = False
            continue
        path.append(str(part))
        value, entered = body_part(value, part)
    return path


def stored_automation(automation: Automation, version: int, at: datetime) -> StoredAutomation:
    """An administrator's automation as stored at ``version``."""
    return StoredAutomation.model_validate({**automation.model_dump(), "version": version, "updated_at": at})


def with_paused(automation: StoredAutomation, paused: bool) -> Automation:
    """The automation as stored, paused or resumed (its version and time stamp are the store's)."""
    fields = automation.model_dump(exclude={"version", "updated_at"})
    return Automation.model_validate({**fields, "paused": paused})
