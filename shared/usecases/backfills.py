"""Back-fills: whole-population passes started on demand, one parallel-scan segment per step run.

Three workflows (``infra.wiring``: a Step Functions Distributed Map over the scan segments in the cloud,
the same steps in-process locally), each started by name (``Backfills.start``):

- ``contacts_backfill`` re-evaluates every contact: its segment of the contacts table's profiles, each
  through the stage function's own evaluation (``shared.usecases.engagement.on_change`` on the scanned
  image), which reads and writes only when something changes. A new or edited definition (a segment, a
  funnel) thus reaches existing contacts; what changes is recorded and announced as a stream change is,
  the entries and departures of the segment whose save started the run (``seg-<id>-v<version>``) marked
  ``initial`` (what the contacts already were); a run by hand marks none initial.
- ``purchases_backfill`` puts purchases stored before the purchase index existed into it: its segment of
  the event log's purchases lacking ``purchasedAt`` each get it (and their basket), as tracking writes
  them today, by a conditional update that never overwrites.
- ``metrics_backfill`` seeds the lifecycle stage counters from the stage history: its segment of the
  contacts table's history entries (stage moves and removals from the funnel) each counted by the
  metrics function's own ``count_stage_move``, under the marker of the event's id, which the live
  counting kept for good: what was counted live is found counted, what happened before (or was lost)
  is added.

At-least-once runs, exactly-once effects: a step run again (Step Functions retries it, an operator
redrives the run) finds the work done and writes nothing; a run is started once per name
(``Backfills.start`` answers ``False`` for a name already used), so a segment saved twice, or a start
retried, is one run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.contacts.model import ContactRecord
from shared.engagement.events import ContactRemoved, ContactStageChanged
from shared.errors import InvalidRequest, NotFound
from shared.segments.catalogue import FixedSegments, SegmentSource
from shared.tracking.baskets import Basket, basket
from shared.usecases.engagement import Backfill, Engagement, on_change
from shared.usecases.metrics import StageMetering, count_stage_move
from shared.usecases.search import SearchTerms, index_existing

#: The workflows a back-fill runs (``infra.wiring.BACKFILLS``): names of their state machines' role.
CONTACTS_BACKFILL = "contacts_backfill"
PURCHASES_BACKFILL = "purchases_backfill"
METRICS_BACKFILL = "metrics_backfill"
BACKFILLS: tuple[str, ...] = (CONTACTS_BACKFILL, PURCHASES_BACKFILL, METRICS_BACKFILL)
#: A run's name: Step Functions' execution names (1 to 80 letters, digits, ``-`` and ``_``), unique per
#: workflow for 90 days after the run ends, which makes a start exactly-once.
RUN_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
#: Scan segments a run may have.
MAX_SEGMENTS = 1000
#: The contacts back-fill a segment's save starts: ``seg-<id>-v<version>`` (a segment id is at most 64
#: characters, so the name fits Step Functions' 80).
SEGMENT_RUN = re.compile(r"^seg-(?P<segment>[a-z0-9][a-z0-9_-]{0,63})-v(?P<version>[0-9]+)$")


def segment_run_name(segment_id: str, version: int) -> str:
    """The name of the contacts back-fill that saving (resuming, deleting) ``segment_id`` at ``version``
    starts: one run per version, so a retried save starts it once."""
    return f"seg-{segment_id}-v{version}"


def run_segment(name: str | None) -> str | None:
    """The segment whose save started the run named ``name`` (``segment_run_name``); none for a run
    started by hand (any other name)."""
    found = SEGMENT_RUN.match(name) if name else None
    return found["segment"] if found else None


def check_run(workflow: str, name: str) -> None:
    """``NotFound`` for a workflow that is no back-fill, ``InvalidRequest`` for a name Step Functions
    would refuse (nothing is started)."""
    if workflow not in BACKFILLS:
        raise NotFound(f"no back-fill {workflow!r}: the back-fills are {', '.join(BACKFILLS)}")
    if not isinstance(name, str) or not RUN_NAME.match(name):
        raise InvalidRequest(
            f"name: {name!r} is not a run name (1 to 80 letters, digits, '-' and '_')",
            code="invalid_backfill",
        )


# --- starting a run, and its status (the admin's port) -----------------------------------------------------

RunStatus = Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"]


class BackfillRun(BaseModel):
    """A run as Step Functions describes its execution."""

    model_config = ConfigDict(frozen=True)

    workflow: str
    name: str
    status: RunStatus
    started_at: datetime
    stopped_at: datetime | None = None
    #: what the run did, summed over its segments (``summary``): once it succeeded
    result: dict[str, int] | None = None
    #: why it failed (the error's name and its cause)
    error: str | None = None
    cause: str | None = None


class Backfills(Protocol):
    """The back-fill workflows (``BACKFILLS``), started by name: a Step Functions execution each."""

    def start(self, workflow: str, name: str) -> bool:
        """Start a run of ``workflow`` named ``name``: ``True`` if this call started it, ``False`` if a run
        of that name was started before (running or ended within 90 days: nothing is started)."""
        ...

    def run(self, workflow: str, name: str) -> BackfillRun | None:
        """The run of ``workflow`` named ``name``, or ``None`` if there is none."""
        ...


def summary(output: Any) -> dict[str, int] | None:
    """A run's final state summed over its step's segment answers: contacts (or purchases), items read,
    changed... (``None`` when the state holds no list of answers)."""
    if not isinstance(output, Mapping):
        return None
    totals: dict[str, int] = {}
    for name in BACKFILL_STEPS:
        answers = output.get(name)
        if not isinstance(answers, list):
            continue
        totals["segments"] = totals.get("segments", 0) + len(answers)
        for answer in answers:
            if not isinstance(answer, Mapping):
                continue
            for key, value in answer.items():
                if (
                    key not in ("segment", "segments")
                    and isinstance(value, int)
                    and not isinstance(value, bool)
                ):
                    totals[key] = totals.get(key, 0) + value
    return totals or None


# --- a step's input ----------------------------------------------------------------------------------------


class SegmentStep(BaseModel):
    """One step run: scan segment ``segment`` of ``segments``, for the run started at ``time`` and named
    ``run`` (the execution's name: the cloud's map passes ``$states.context.Execution.Name``, the local
    runner the same; none from an older definition: treated as a run by hand)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    time: datetime
    segment: int = Field(ge=0)
    segments: int = Field(ge=1, le=MAX_SEGMENTS)
    run: str | None = None

    @field_validator("time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _within(self) -> SegmentStep:
        if self.segment >= self.segments:
            raise ValueError(f"segment {self.segment} is not one of 0 to {self.segments - 1}")
        return self


def segment_step(event: Mapping[str, Any]) -> SegmentStep:
    """The step's input, or ``InvalidRequest`` naming what is wrong with it (nothing is read or written)."""
    try:
        return SegmentStep.model_validate(event)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in error["loc"]) or "input"
        raise InvalidRequest(f"{where}: {error['msg']}", code="invalid_step") from None


class SegmentIncomplete(RuntimeError):
    """Some items of a segment failed: the others are done; the step fails, to be retried (what was done
    is found done and costs no write) and, if it keeps failing, to fail the run visibly."""


class Telemetry(Protocol):
    def count(self, name: str, value: int) -> None: ...

    def failure(self, what: str) -> None:
        """Record the exception being handled (logged with its traceback, no personal data)."""
        ...


# --- contacts: every profile re-evaluated --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProfilePage:
    #: the page's profiles (items of other kinds are not in it)
    profiles: list[ContactRecord]
    #: items the scan read for it (what it is billed for): profiles and the contacts' other items
    read: int
    #: issue 14: contacts of the page whose search terms are stored (the back-fill leaves them alone)
    indexed: frozenset[str] = frozenset()


class ProfileScan(Protocol):
    def scan(self, segment: int, segments: int) -> Iterator[ProfilePage]:
        """Every contact's profile of scan segment ``segment`` of ``segments`` (the segments divide the
        contacts between them: each is in exactly one), page by page as they are read."""
        ...


@dataclass(frozen=True, slots=True)
class ContactsBackfilling:
    profiles: ProfileScan
    #: the stage function's use case: each profile is evaluated as a stream change would be
    engagement: Engagement
    telemetry: Telemetry
    #: the segments, read uncached once per run (the stage function's own copy may be older than the save
    #: that started it); none: the engagement's as they are
    segments: SegmentSource | None = None
    #: issue 14: each contact's search terms, written where none are stored (contacts stored before the
    #: search existed); none: not indexed
    search: SearchTerms | None = None


def backfill_contacts(event: Mapping[str, Any], deps: ContactsBackfilling) -> dict[str, Any]:
    """Re-evaluate every contact of one scan segment: ``{"segment", "segments", "contacts", "read",
    "changed", "indexed"}`` (contacts evaluated, items read, contacts whose evaluation wrote, contacts
    whose search terms were written: those stored before the search existed)."""
    step = segment_step(event)
    engagement = deps.engagement
    if deps.segments is not None:  # the segments as stored now: the save that started the run included
        engagement = replace(engagement, segments=FixedSegments(deps.segments.book()))
    # authoritative segments; the moves of the segment whose save started the run (if one did) are initial
    backfill = Backfill(segment=run_segment(step.run), authoritative=deps.segments is not None)
    contacts = read = changed = failed = indexed = 0
    for page in deps.profiles.scan(step.segment, step.segments):
        read += page.read
        for record in page.profiles:
            contacts += 1
            try:
                changed += 1 if on_change(record, engagement, backfill=backfill) else 0
                if deps.search is not None and record.contact_id not in page.indexed:
                    indexed += index_existing(record, deps.search)
            except Exception:  # noqa: BLE001 - one contact's failure does not stop the others
                failed += 1
                deps.telemetry.failure("back-fill of a contact")
    deps.telemetry.count("BackfillContactsRead", read)
    deps.telemetry.count("BackfillContactsChanged", changed)
    deps.telemetry.count("BackfillContactsIndexed", indexed)
    if failed:
        raise SegmentIncomplete(
            f"{failed} of {contacts} contacts of segment {step.segment} of {step.segments} failed"
        )
    return {
        "segment": step.segment,
        "segments": step.segments,
        "contacts": contacts,
        "read": read,
        "changed": changed,
        # issue 14: contacts whose search terms were written (stored before the search existed)
        "indexed": indexed,
    }


# --- purchases: the purchase index back-filled ----------------------------------------------------------------


class UnindexedPurchase(BaseModel):
    """A purchase of the event log that the purchase index lacks: its key, its time and what it bought."""

    model_config = ConfigDict(frozen=True)

    #: the event item's keys (``C#<contact>``, ``E#<time>#<messageId>``)
    partition: str = Field(min_length=3)
    key: str = Field(min_length=1)
    #: the purchase's time, as the event holds it (``timestamp``): the index's sort key
    timestamp: datetime
    #: the call's properties, where its basket is
    properties: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UnindexedPage:
    purchases: list[UnindexedPurchase]
    #: items the scan read for it: every event of the segment's page, not only purchases
    read: int
    #: purchases without a readable time: left out of the index (and of ``purchases``)
    unreadable: int = 0


class UnindexedPurchases(Protocol):
    def scan(self, segment: int, segments: int) -> Iterator[UnindexedPage]:
        """The purchases of scan segment ``segment`` of ``segments`` that are not in the purchase index
        (no ``purchasedAt``), page by page."""
        ...

    def index(self, purchase: UnindexedPurchase, bought: Basket) -> bool:
        """Put the purchase in the index: its time as ``purchasedAt`` and its basket (when it has one), on
        condition that it is still there and still lacks ``purchasedAt``. ``True`` if this call did it."""
        ...


@dataclass(frozen=True, slots=True)
class PurchasesBackfilling:
    purchases: UnindexedPurchases
    telemetry: Telemetry


def backfill_purchases(event: Mapping[str, Any], deps: PurchasesBackfilling) -> dict[str, Any]:
    """Index the purchases of one scan segment that the purchase index lacks: ``{"segment", "segments",
    "purchases", "read", "indexed", "unreadable"}`` (purchases found lacking it, items read, purchases
    this run indexed: one found indexed meanwhile, or gone, is left as it is; purchases without a
    readable time, left out)."""
    step = segment_step(event)
    found = read = indexed = unreadable = 0
    for page in deps.purchases.scan(step.segment, step.segments):
        read += page.read
        unreadable += page.unreadable
        for purchase in page.purchases:
            found += 1
            indexed += 1 if deps.purchases.index(purchase, basket(purchase.properties)) else 0
    deps.telemetry.count("BackfillEventsRead", read)
    deps.telemetry.count("BackfillPurchasesIndexed", indexed)
    return {
        "segment": step.segment,
        "segments": step.segments,
        "purchases": found,
        "read": read,
        "indexed": indexed,
        "unreadable": unreadable,
    }


# --- metrics: the lifecycle stage counters seeded from the stage history ---------------------------------------

#: A stage history entry the lifecycle metrics count: a stage move, or a removal from the funnel (told
#: apart by ``detail_type``, as the history stores it).
HistoryEntry = Annotated[ContactStageChanged | ContactRemoved, Field(discriminator="detail_type")]


@dataclass(frozen=True, slots=True)
class HistoryPage:
    #: the page's stage moves and removals, as announced (their event ids the bus events' ids)
    entries: list[ContactStageChanged | ContactRemoved]
    #: items the scan read for it (what it is billed for): every item of the contacts' partitions
    read: int
    #: history entries of those kinds that do not parse: left uncounted (and out of ``entries``)
    unreadable: int = 0


class StageHistoryScan(Protocol):
    def scan(self, segment: int, segments: int) -> Iterator[HistoryPage]:
        """Every stage move and removal from the funnel of the stage history (``STAGE#`` items) of scan
        segment ``segment`` of ``segments`` (each contact's history is in exactly one segment), page by
        page as read, each contact's entries together and in the order they were written (a partition's
        items in key order, as a Scan returns them); the other announcements stored there before issue 13
        are left out."""
        ...


@dataclass(frozen=True, slots=True)
class MetricsBackfilling:
    history: StageHistoryScan
    #: the metrics function's counting: the same markers, kept for good, and the same counters
    metering: StageMetering
    telemetry: Telemetry


def backfill_metrics(event: Mapping[str, Any], deps: MetricsBackfilling) -> dict[str, Any]:
    """Count the stage history of one scan segment into the lifecycle metrics, each entry once ever:
    ``{"segment", "segments", "entries", "read", "counted", "unreadable"}`` (moves and removals found,
    items read, entries this run counted: the others were counted before, live or by an earlier run;
    entries that do not parse, left out). An entry whose counting fails does not stop the others; the
    step then fails, to be retried (what was counted is found counted)."""
    step = segment_step(event)
    entries = read = counted = unreadable = failed = 0
    previous: ContactStageChanged | ContactRemoved | None = None
    for page in deps.history.scan(step.segment, step.segments):
        read += page.read
        unreadable += page.unreadable
        for entry in page.entries:
            entry, previous = timed(entry, previous), entry
            entries += 1
            try:
                counted += 1 if count_stage_move(entry, deps.metering) else 0
            except Exception:  # noqa: BLE001 - one entry's failure does not stop the others
                failed += 1
                deps.telemetry.failure("back-fill of a stage history entry")
    deps.telemetry.count("BackfillHistoryRead", read)
    deps.telemetry.count("BackfillStageMovesCounted", counted)
    if failed:
        raise SegmentIncomplete(
            f"{failed} of {entries} history entries of segment {step.segment} of {step.segments} failed"
        )
    return {
        "segment": step.segment,
        "segments": step.segments,
        "entries": entries,
        "read": read,
        "counted": counted,
        "unreadable": unreadable,
    }


def timed(
    entry: ContactStageChanged | ContactRemoved, previous: ContactStageChanged | ContactRemoved | None
) -> ContactStageChanged | ContactRemoved:
    """A move written before issue 13 carries no ``from_entered_at`` (when the contact entered the stage it
    left): it is the time of the contact's move into that stage, the entry before it in its history. With
    it, a seeded move counts its time in stage and its conversion as a live one does. Any other entry is
    as written (the marker does not depend on it)."""
    if (
        isinstance(entry, ContactStageChanged)
        and entry.from_stage is not None
        and entry.from_entered_at is None
        and isinstance(previous, ContactStageChanged)
        and previous.contact_id == entry.contact_id
        and previous.to_stage == entry.from_stage
        and previous.at <= entry.at
    ):
        return entry.model_copy(update={"from_entered_at": previous.at})
    return entry


#: The step function of each back-fill (their answers, under these names in a run's final state).
BACKFILL_STEPS: tuple[str, ...] = ("backfill_contacts", "backfill_purchases", "backfill_metrics")
