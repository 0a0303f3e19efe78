"""Back-fills by hand: start a run of a back-fill workflow, and read a run's status.

``POST /admin/backfills/{workflow}`` starts a run (``contacts_backfill``: every contact re-evaluated;
``purchases_backfill``: purchases the purchase index lacks, indexed; ``metrics_backfill``: the stage history
counted into the lifecycle metrics, what was counted already found counted), named by the body's ``name`` or, by
default, ``manual-<UTC minute>`` (two clicks within a minute are one run). A name starts one run: the answer
says whether this request started it. ``GET /admin/backfills/{workflow}/{name}`` reads the run.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.admin.dependencies import Admin
from shared.errors import NotFound, invalid_field
from shared.http import json_body
from shared.usecases.backfills import BackfillRun, check_run

if TYPE_CHECKING:
    from shared.http import HttpRequest


class StartRequest(BaseModel):
    """``POST /admin/backfills/{workflow}``'s body (optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the run's name (1 to 80 letters, digits, ``-`` and ``_``): a name starts one run
    name: str | None = Field(None, min_length=1, max_length=80)


class Started(BaseModel):
    """Whether this request started the run (``false``: a run of that name was started before)."""

    workflow: str
    name: str
    started: bool
    #: where to read the run
    status: str


def manual_name(now: datetime) -> str:
    """A by-hand run's default name: ``manual-20261123T1205``, one per minute."""
    return f"manual-{now:%Y%m%dT%H%M}"


def start_backfill(request: HttpRequest, deps: Admin) -> Started:
    workflow = request.path_parameters.get("workflow", "")
    body = json_body(request) if (request.body or "").strip() else {}
    try:
        wanted = StartRequest.model_validate(body)
    except ValidationError as exc:
        raise invalid_field(exc.errors(include_url=False)[0], code="invalid_backfill", whole="body") from None
    name = wanted.name or manual_name(deps.clock.now())
    check_run(workflow, name)
    started = deps.backfills.start(workflow, name)
    return Started(
        workflow=workflow, name=name, started=started, status=f"/admin/backfills/{workflow}/{name}"
    )


def backfill_run(request: HttpRequest, deps: Admin) -> BackfillRun:
    workflow = request.path_parameters.get("workflow", "")
    name = request.path_parameters.get("name", "")
    check_run(workflow, name)
    found = deps.backfills.run(workflow, name)
    if found is None:
        raise NotFound(f"no run {name!r} of {workflow}")
    return found


ROUTES = {
    "POST /admin/backfills/{workflow}": start_backfill,
    "GET /admin/backfills/{workflow}/{name}": backfill_run,
}
