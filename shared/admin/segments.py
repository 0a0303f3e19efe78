"""Admin operations on segments under ``/admin/segments``: list, read with history, store a new version,
delete, pause and resume, and list or count a segment's members. ``If-Match: <version>`` makes a change
conditional (409 otherwise). Members are read from the membership index (O(members), never a Scan)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from shared.admin.dependencies import Admin
from shared.errors import InvalidRequest, NotFound
from shared.http import if_match_version, json_body
from shared.observability import logger
from shared.segments.model import (
    INVALID,
    MAX_SEGMENTS,
    MAX_TOTAL_CONDITIONS,
    StoredSegment,
    check_stages,
    parse_segment,
    with_paused,
)
from shared.usecases.backfills import CONTACTS_BACKFILL, segment_run_name
from shared.versioning import expect_version

if TYPE_CHECKING:
    from shared.http import HttpRequest

#: members per page: by default, and at most
PAGE, MAX_PAGE = 100, 1000


class SegmentList(BaseModel):
    segments: list[StoredSegment]


class SegmentDetail(BaseModel):
    segment: StoredSegment
    #: every stored version, newest first (a deletion is marked by a newer tombstone)
    history: list[StoredSegment]


class BackfillStart(BaseModel):
    """The contacts back-fill a change of a segment starts (``seg-<id>-v<version>``)."""

    workflow: str
    name: str
    #: true: this request started it; false: a run of that name was started before (a retried save);
    #: null: starting it failed (``error``). The change is saved all the same: start the run by its name,
    #: ``POST /admin/backfills/contacts_backfill {"name": <name>}`` (a retried save is a 409)
    started: bool | None
    #: where to read the run
    status: str
    #: why starting it failed, when it did
    error: str | None = None


class SavedSegment(StoredSegment):
    """A segment saved, paused or resumed, and the back-fill that brings existing contacts in line with it
    (``null``: none was needed: a name or description edit, a pause, or nothing changed)."""

    backfill: BackfillStart | None = None


class Deleted(BaseModel):
    deleted: str
    version: int
    #: the back-fill that empties it (``SavedSegment.backfill``)
    backfill: BackfillStart | None = None


class Members(BaseModel):
    segment: str
    #: contact ids (``user_id:…``, ``anonymous_id:…``)
    members: list[str]
    #: pass as ``after`` for the next page; ``null``: no more
    after: str | None = None


class MemberCount(BaseModel):
    segment: str
    count: int


def list_segments(request: HttpRequest, deps: Admin) -> SegmentList:
    return SegmentList(segments=deps.segments.stored())


def get_segment(request: HttpRequest, deps: Admin) -> SegmentDetail:
    segment = _current(request, deps)
    return SegmentDetail(segment=segment, history=deps.segments.history(segment.id))


def put_segment(request: HttpRequest, deps: Admin) -> SavedSegment:
    segment = parse_segment(_segment_id(request), json_body(request))
    if segment.filter.values_of("stage"):  # a stage typo matches nobody: the funnel's stages, as stored
        funnel, _ = deps.funnels.stored_funnel()
        check_stages(segment, [stage.id for stage in funnel.stages])
    stored = deps.segments.stored()
    others = [s for s in stored if s.id != segment.id]
    before = next((s for s in stored if s.id == segment.id), None)
    if len(others) >= MAX_SEGMENTS:
        raise InvalidRequest(
            f"{MAX_SEGMENTS} segments are stored already, the most there may be", code=INVALID
        )
    total = segment.filter.conditions() + sum(s.filter.conditions() for s in others)
    if total > MAX_TOTAL_CONDITIONS:
        raise InvalidRequest(
            f"filter: the segments would hold {total} conditions in all; at most {MAX_TOTAL_CONDITIONS} "
            "(every contact change evaluates them all)",
            code=INVALID,
            field="filter",
        )
    saved = deps.segments.save(segment, deps.clock.now(), if_match_version(request))
    # a name or description edit moves nobody: no back-fill (``backfill: null``)
    backfill = None if _same_members(before, saved) else start_backfill(deps, saved.id, saved.version)
    return _answer(saved, backfill)


def delete_segment(request: HttpRequest, deps: Admin) -> Deleted:
    segment_id = _segment_id(request)
    removed = deps.segments.remove(segment_id, deps.clock.now(), if_match_version(request))
    backfill = start_backfill(deps, segment_id, removed.version + 1)
    return Deleted(deleted=segment_id, version=removed.version, backfill=backfill)


def pause_segment(request: HttpRequest, deps: Admin) -> SavedSegment:
    return _set_paused(request, deps, paused=True)


def resume_segment(request: HttpRequest, deps: Admin) -> SavedSegment:
    return _set_paused(request, deps, paused=False)


def list_members(request: HttpRequest, deps: Admin) -> Members:
    segment = _current(request, deps)
    page = deps.segment_members.page(segment.id, request.query.get("after") or None, _limit(request))
    return Members(segment=segment.id, members=page.contact_ids, after=page.after)


def count_members(request: HttpRequest, deps: Admin) -> MemberCount:
    segment = _current(request, deps)
    return MemberCount(segment=segment.id, count=deps.segment_members.count(segment.id))


# --- back-fills ----------------------------------------------------------------------------------------


def start_backfill(deps: Admin, segment_id: str, version: int) -> BackfillStart:
    """A saved, resumed or deleted segment re-evaluates every contact (the contacts back-fill, a
    Distributed Map over the contacts table's scan segments), so those already there enter it (or leave
    it), announced as ``initial``. The run is named after the version (``seg-<id>-v<version>``: at most
    80 characters), so a retried request starts it once.

    The version is stored before: should starting fail, the change still stands and the answer says so
    (``started: null`` and the error, logged without personal data), for the operator to start the run by
    its name (``POST /admin/backfills/contacts_backfill {"name": ...}``)."""
    name = segment_run_name(segment_id, version)
    status = f"/admin/backfills/{CONTACTS_BACKFILL}/{name}"
    try:
        started: bool | None = deps.backfills.start(CONTACTS_BACKFILL, name)
    except Exception as exc:  # noqa: BLE001 - the save stands; the answer and the log say what failed
        logger.warning(
            "the back-fill of a saved segment did not start: start it by its name",
            extra={"workflow": CONTACTS_BACKFILL, "run": name, "error": type(exc).__name__},
            exc_info=True,
        )
        return BackfillStart(
            workflow=CONTACTS_BACKFILL,
            name=name,
            started=None,
            status=status,
            error=f"{type(exc).__name__}: {exc}",
        )
    return BackfillStart(workflow=CONTACTS_BACKFILL, name=name, started=started, status=status)


def _same_members(before: StoredSegment | None, saved: StoredSegment) -> bool:
    """Whether ``saved`` directly replaced ``before`` (the current version read before the save: no write
    in between) with the same filter and paused state: a name or description edit, which moves nobody."""
    return (
        before is not None
        and saved.version == before.version + 1
        and saved.filter == before.filter
        and saved.paused == before.paused
    )


def _answer(saved: StoredSegment, backfill: BackfillStart | None) -> SavedSegment:
    return SavedSegment.model_validate({**saved.model_dump(), "backfill": backfill})


def _set_paused(request: HttpRequest, deps: Admin, *, paused: bool) -> SavedSegment:
    """A new version paused (or resumed); one already so is returned as it is. The change is made against
    the version read, so an edit in between is a Conflict rather than undone."""
    current = _current(request, deps)
    expect_version("segment", current.id, current.version, if_match_version(request))
    if current.paused == paused:
        return _answer(current, None)
    saved = deps.segments.save(with_paused(current, paused), deps.clock.now(), current.version)
    # while paused, nobody entered or left: resuming catches up
    return _answer(saved, None if paused else start_backfill(deps, saved.id, saved.version))


def _segment_id(request: HttpRequest) -> str:
    return request.path_parameters.get("segmentId", "")


def _current(request: HttpRequest, deps: Admin) -> StoredSegment:
    segment_id = _segment_id(request)
    found = next((s for s in deps.segments.stored() if s.id == segment_id), None)
    if found is None:
        raise NotFound(f"no segment {segment_id}")
    return found


def _limit(request: HttpRequest) -> int:
    limit = request.query.get("limit", str(PAGE))
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_PAGE:
        raise InvalidRequest(
            f"limit must be a whole number from 1 to {MAX_PAGE}", code="invalid_limit", field="limit"
        )
    return int(limit)


ROUTES = {
    "GET /admin/segments": list_segments,
    "GET /admin/segments/{segmentId}": get_segment,
    "PUT /admin/segments/{segmentId}": put_segment,
    "DELETE /admin/segments/{segmentId}": delete_segment,
    "POST /admin/segments/{segmentId}/pause": pause_segment,
    "POST /admin/segments/{segmentId}/resume": resume_segment,
    "GET /admin/segments/{segmentId}/members": list_members,
    "GET /admin/segments/{segmentId}/count": count_members,
}
