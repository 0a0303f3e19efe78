"""A segment: a named filter over what is known about a contact (``PUT /admin/segments/{segmentId}``).

An administrator writes one as JSON; pydantic validates it with unknown keys forbidden, so a bad one
is a 400 naming the field as written (``filter.all.1.colour``). Each stored version is kept (versions
never repeat), as for automations.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from shared.errors import InvalidRequest, body_part, invalid_field
from shared.segments.filters import KINDS, Filter, kind_of

#: At most this many segments are stored: every contact change evaluates them all.
MAX_SEGMENTS = 100
#: At most this many conditions in one segment's filter, and this many levels of groups.
MAX_CONDITIONS, MAX_DEPTH = 50, 5
#: At most this many conditions in all segments together: every contact change evaluates every one.
MAX_TOTAL_CONDITIONS = 1000
#: A segment as written, at most (its JSON).
MAX_SEGMENT_BYTES = 16 * 1024
INVALID = "invalid_segment"

#: A segment's id: lower-case letters, digits, ``-`` and ``_`` (no ``:``, which names RFM segments
#: ``rfm:<id>`` in ``SegmentChanged``, and no ``#``, which keys its members).
SEGMENT_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"
SegmentId = Annotated[str, StringConstraints(pattern=SEGMENT_ID)]


class Segment(BaseModel):
    """A segment as an administrator writes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: SegmentId
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: str = Field("", max_length=2000)
    filter: Filter
    #: a paused segment's membership is kept as it is: nobody enters or leaves until it is resumed
    paused: bool = False

    @model_validator(mode="after")
    def _bounded(self) -> Segment:
        if self.filter.conditions() > MAX_CONDITIONS:
            raise ValueError(f"filter: {self.filter.conditions()} conditions; at most {MAX_CONDITIONS}")
        if self.filter.depth() > MAX_DEPTH:
            raise ValueError(f"filter: groups nested {self.filter.depth()} deep; at most {MAX_DEPTH}")
        return self


class StoredSegment(Segment):
    version: int = Field(ge=1)
    updated_at: datetime | None = None


_SEGMENT = TypeAdapter(Segment)


def parse_segment(segment_id: str, body: Any) -> Segment:
    """Validate an administrator's segment; a bad one is a 400 naming the field (``filter.all.0.colour``).

    ``id`` may be left out (the path names it); ``version`` and ``updated_at``, as a GET shows them, are
    ignored, so what a GET returns can be PUT back as it is.
    """
    if not isinstance(body, Mapping):
        raise InvalidRequest("the segment must be a JSON object", code=INVALID)
    if len(json.dumps(body, separators=(",", ":"), default=str)) > MAX_SEGMENT_BYTES:
        raise InvalidRequest(f"segment: over {MAX_SEGMENT_BYTES // 1024} KB", code=INVALID)
    if "id" in body and body["id"] != segment_id:
        raise InvalidRequest(
            f"id: {body['id']!r} does not match the path ({segment_id!r})", code=INVALID, field="id"
        )
    fields = {k: v for k, v in body.items() if k not in ("version", "updated_at")}
    try:
        return _SEGMENT.validate_python({**fields, "id": segment_id})
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        written = {**fields, "id": segment_id}
        raise invalid_field(
            error,
            code=INVALID,
            location=written_path(error["loc"], written),
            message=describe(error, written),
        ) from None


def check_stages(segment: Segment, stage_ids: Collection[str]) -> None:
    """``InvalidRequest`` naming the stages the filter compares the contact's stage with that are not
    stages of the funnel (``stage_ids``: the funnel's, as stored when the segment is saved): a typo would
    otherwise match nobody, silently. Quarters, directions and the nightly pass's values are checked when
    the filter is read (they are fixed); stages are the administrator's."""
    unknown = sorted(segment.filter.values_of("stage") - set(stage_ids))
    if unknown:
        names = ", ".join(repr(s) for s in unknown)
        raise InvalidRequest(
            f"filter: stage {names} {'is' if len(unknown) == 1 else 'are'} not in the funnel; its stages "
            f"are {', '.join(stage_ids)}",
            code=INVALID,
            field="filter",
        )


def stored_segment(segment: Segment, version: int, at: datetime) -> StoredSegment:
    """An administrator's segment as stored at ``version``."""
    return StoredSegment.model_validate({**segment.model_dump(), "version": version, "updated_at": at})


def with_paused(segment: StoredSegment, paused: bool) -> Segment:
    """The segment as stored, paused or resumed (its version and time stamp are the store's)."""
    return Segment.model_validate({**segment.model_dump(exclude={"version", "updated_at"}), "paused": paused})


#: the tags pydantic adds to a location for a moment's two forms
_MOMENT_TAGS = ("relative", "absolute")


def describe(error: Mapping[str, Any], body: Any) -> str:
    """``<field path>: <what is wrong>``, the path as the administrator wrote the JSON (pydantic's location
    also names the kind of condition it tried, which the body does not have)."""
    path = written_path(error["loc"], body)
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "unknown_condition":
        found = error.get("input")
        if isinstance(found, Mapping):
            keys = ", ".join(repr(k) for k in found) or "nothing"
            message = f"not a condition (it has {keys}); a condition starts with one of {', '.join(KINDS)}"
        else:
            message = f"a condition is an object starting with one of {', '.join(KINDS)}"
    return f"{'.'.join(path)}: {message}" if path else message


def written_path(location: Sequence[str | int], body: Any) -> list[str]:
    """The location without the union tags pydantic adds: a condition's kind is the first part after
    entering the condition's object; a moment's form (``relative``, ``absolute``) is never written."""
    path: list[str] = []
    value, entered = body, True
    for part in location:
        if part in _MOMENT_TAGS and not (isinstance(value, Mapping) and part in value):
            continue
        if entered and isinstance(value, Mapping) and kind_of(value) == part and path[:1] == ["filter"]:
            entered = False
            continue
        path.append(str(part))
        value, entered = body_part(value, part)
    return path
