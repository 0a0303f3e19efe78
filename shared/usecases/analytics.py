"""The nightly analytics job: purchases extracted, scored, and applied to the contacts, exactly once.

Three steps, which a Step Functions workflow runs every night (locally, the same handlers in-process),
each safe to retry and to run twice:

1. **extract** (one per scan segment, in parallel): the purchase index's segment ``i`` of ``N``, up to
   the run's day, staged as one file (``purchases_key``). Re-running it writes the same file again.
2. **fit**: every segment's file of the day (all ``N``, else it fails and is retried), turned into
   purchase histories and scored by ``shared.analytics.scoring.score``, the code of the
   ``lifecycle-analytics`` command; the scores are staged in parts (``scores_key``). The only step that
   loads numpy: it imports the models when it runs, so the other two never do.
3. **apply** (one per part, in parallel): each score written onto its contact's profile, once per
   contact and day, and its changes (segment entered or left, risk level) announced.

Applying a contact costs one conditional write when its segment and risk level did not change (the
common case; no read: the write's old image says what was there). When they did, that write is refused
with the profile's old image, and a transaction writes the profile together with the changes in the
contact's history (the outbox, unpublished, their keys listed on the profile). The changes are then
published on the bus and marked. A day guard on the profile (its analytics' day) makes a retried part, a
re-run or a second execution of a double-fired schedule change nothing; what such a run finds listed
unpublished (a crash between the transaction and the publishing, a bus that was down) it reads by key
and publishes. Consumers deduplicate on the
announcements' stable ids, so a crash after publishing and before marking publishes twice, never
loses one.

The run's day is the last complete UTC day before the run's time (``analytics_day``): every step of a
run names the same day, however long it takes.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.analytics.changes import Announcement, announcements
from shared.analytics.events import AnalyticsOutput
from shared.analytics.facts import Analytics, CustomerScore
from shared.contacts.identity import ContactId
from shared.errors import DependencyUnavailable, InvalidRequest, NotFound

if TYPE_CHECKING:  # numpy: imported by the fit step only, when it runs
    from shared.analytics.history import Purchase
    from shared.analytics.scoring import ScoringSettings

#: Scan segments a run may have (the staged files' names hold four digits).
MAX_SEGMENTS = 9999
#: Attempts to apply one contact whose analytics changed under the step (another run of the same day).
MAX_ATTEMPTS = 4
#: Where the steps leave their work (the staging bucket): keys of the contract with the workflow.
STAGING_PREFIX = "analytics/"
STAGED_SUFFIX = ".json.gz"
_SCORES_KEY = re.compile(r"^analytics/(\d{4}-\d{2}-\d{2})/scores/part-(\d{5})\.json\.gz$")


def analytics_day(time: datetime) -> date:
    """The day a run scores: the last complete UTC day before ``time`` (its cut-off)."""
    moment = time.replace(tzinfo=UTC) if time.tzinfo is None else time.astimezone(UTC)
    return moment.date() - timedelta(days=1)


def purchases_key(day: date, segment: int, segments: int) -> str:
    return (
        f"{STAGING_PREFIX}{day.isoformat()}/purchases/segment-{segment:04d}-of-{segments:04d}{STAGED_SUFFIX}"
    )


def scores_key(day: date, part: int) -> str:
    return f"{STAGING_PREFIX}{day.isoformat()}/scores/part-{part:05d}{STAGED_SUFFIX}"


# --- the steps' inputs ------------------------------------------------------------------------------------


class _Step(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    #: the run's time (the schedule's): every step of a run scores the day before it
    time: datetime

    @field_validator("time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @property
    def day(self) -> date:
        return analytics_day(self.time)


class ExtractStep(_Step):
    segment: int = Field(ge=0)
    segments: int = Field(ge=1, le=MAX_SEGMENTS)

    @model_validator(mode="after")
    def _within(self) -> ExtractStep:
        if self.segment >= self.segments:
            raise ValueError(f"segment {self.segment} is not one of 0 to {self.segments - 1}")
        return self


class FitStep(_Step):
    segments: int = Field(ge=1, le=MAX_SEGMENTS)


class ApplyStep(_Step):
    #: a key the fit step returned (``scores_key``) for this run's day
    part: str

    @model_validator(mode="after")
    def _of_the_day(self) -> ApplyStep:
        match = _SCORES_KEY.match(self.part)
        if match is None:
            raise ValueError(
                f"part {self.part!r} is not a key of staged scores (analytics/<day>/scores/part-<n>.json.gz)"
            )
        if match[1] != self.day.isoformat():
            raise ValueError(f"part {self.part!r} is not of this run's day, {self.day.isoformat()}")
        return self


Step = TypeVar("Step", bound=_Step)


def step_input(model: type[Step], event: Mapping[str, Any]) -> Step:
    """The step's input, or ``InvalidRequest`` naming what is wrong with it (nothing is read or written)."""
    try:
        return model.model_validate(event)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise InvalidRequest(f"{model.__name__}: {problems}", code="invalid_step_input") from None


# --- what the steps stage -----------------------------------------------------------------------------------


class _Staged(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ScannedPurchase(_Staged):
    """One purchase as the purchase index holds it (validated as the scan reads it)."""

    contact_id: str
    purchased_at: datetime
    #: the order's revenue; 0 when it gave none
    amount: float = 0.0
    #: what it bought: (product, category), either may be None
    basket: tuple[tuple[str | None, str | None], ...] = ()


class StagedPurchases(_Staged):
    """One scan segment's purchases up to the run's day, in columns (the extract step's file).

    ``contact[j]`` indexes ``contacts``; ``purchased_on[j]``, ``amount[j]`` and ``basket[j]`` are the rest
    of purchase ``j``.
    """

    day: date
    segment: int = Field(ge=0)
    segments: int = Field(ge=1, le=MAX_SEGMENTS)
    contacts: list[str]
    contact: list[int]
    purchased_on: list[date]
    amount: list[float]
    basket: list[list[tuple[str | None, str | None]]]

    @model_validator(mode="after")
    def _aligned(self) -> StagedPurchases:
        count = len(self.contact)
        if not len(self.purchased_on) == len(self.amount) == len(self.basket) == count:
            raise ValueError("the purchase columns differ in length")
        if self.contact and not 0 <= min(self.contact) <= max(self.contact) < len(self.contacts):
            raise ValueError("a purchase names no contact of the file")
        if any(on > self.day for on in self.purchased_on):
            raise ValueError(f"a purchase is after the day, {self.day.isoformat()}")
        return self

    @classmethod
    def of(
        cls, day: date, segment: int, segments: int, purchases: Sequence[ScannedPurchase]
    ) -> StagedPurchases:
        code: dict[str, int] = {}
        for p in purchases:
            code.setdefault(p.contact_id, len(code))
        return cls(
            day=day,
            segment=segment,
            segments=segments,
            contacts=list(code),
            contact=[code[p.contact_id] for p in purchases],
            purchased_on=[p.purchased_at.astimezone(UTC).date() for p in purchases],
            amount=[p.amount for p in purchases],
            basket=[list(p.basket) for p in purchases],
        )

    def rows(self) -> Iterator[Purchase]:
        """The purchases as the models take them: one row per basket entry (the amount on the first)."""
        from shared.analytics.history import Purchase, day_number

        days = {on: day_number(on) for on in set(self.purchased_on)}
        for j, c in enumerate(self.contact):
            customer, day, amount = self.contacts[c], days[self.purchased_on[j]], max(0.0, self.amount[j])
            bought = self.basket[j] or [(None, None)]
            for n, (product, category) in enumerate(bought):
                yield Purchase(customer, day, amount if n == 0 else 0.0, product, category)


class StagedScores(_Staged):
    """One part of the fit's scores (the apply step's input): the command's rows, in customer id order."""

    day: date
    part: int = Field(ge=0)
    #: the horizon ``p_no_purchase`` was computed for
    horizon_days: int = Field(ge=1)
    scores: list[CustomerScore]


# --- the ports ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scanned:
    purchases: list[ScannedPurchase]
    #: items the scan read (what it is billed for)
    read: int


class PurchaseScan(Protocol):
    def scan(self, segment: int, segments: int) -> Scanned:
        """Every purchase of scan segment ``segment`` of ``segments`` (the segments divide the purchases
        between them: each is in exactly one), with its contact, time, amount and basket."""
        ...


class Staging(Protocol):
    """The staging bucket: files the steps hand on, read back validated. Saving again overwrites."""

    def save_purchases(self, staged: StagedPurchases) -> str:
        """Stage a segment's purchases at ``purchases_key``; returns the key."""
        ...

    def purchases(self, day: date, segment: int, segments: int) -> StagedPurchases | None:
        """The segment's staged purchases, None if not staged."""
        ...

    def save_scores(self, staged: StagedScores) -> str:
        """Stage a part of the scores at ``scores_key``; returns the key."""
        ...

    def scores(self, key: str) -> StagedScores | None: ...


@dataclass(frozen=True, slots=True)
class Held:
    """A contact's analytics as its profile held them (before a write, or instead of it)."""

    analytics: Analytics | None
    #: the history keys (``Announcement.key``) of its announcements not published yet
    unpublished: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Previous:
    """What a write assumes the profile holds; where it does not, the write changes nothing.

    ``unchanged``: analytics of an earlier day with the same segment and risk level as the write (so there
    is nothing to announce). Otherwise exactly ``analytics`` (by its day), or none at all.
    """

    analytics: Analytics | None = None
    unchanged: bool = False


@dataclass(frozen=True, slots=True)
class Recorded:
    written: bool
    #: what the profile held (before the write, or instead of it); None: no such contact, or merged away
    found: Held | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What publishing one announcement achieved: sent, refused for good (recorded, never retried), or
    neither (failed for now: tried again by the next attempt)."""

    sent: bool = False
    refused: str | None = None

    @property
    def done(self) -> bool:
        return self.sent or self.refused is not None


class AnalyticsHistory(Protocol):
    def history(self, contact: ContactId, limit: int) -> list[AnalyticsOutput]:
        """The contact's segment and risk changes, newest first."""
        ...


class AnalyticsStore(AnalyticsHistory, Protocol):
    """Analytics on the contacts' profiles, with their history and its outbox."""

    def record(
        self, contact: ContactId, analytics: Analytics, changes: Sequence[Announcement], previous: Previous
    ) -> Recorded:
        """Write ``analytics`` onto an existing, not merged-away profile whose analytics are of an earlier
        day and as ``previous`` says, with ``changes`` in the history (unpublished), all or nothing."""
        ...

    def unpublished(self, contact: ContactId, keys: Collection[str]) -> list[Announcement]:
        """Those of the contact's announcements at ``keys`` (``Held.unpublished``) that are still not
        published, in key order (reads by key: no query)."""
        ...

    def mark_published(self, contact: ContactId, published: Sequence[tuple[Announcement, Outcome]]) -> None:
        """Announcements done (sent, or refused for good) are published: out of ``Held.unpublished``."""
        ...


class Announcer(Protocol):
    def announce(self, outputs: Sequence[AnalyticsOutput]) -> list[Outcome]:
        """Publish each on the bus; one outcome per output, in order."""
        ...


class Telemetry(Protocol):
    def count(self, name: str, value: int) -> None: ...


@dataclass(frozen=True, slots=True)
class Extracting:
    purchases: PurchaseScan
    staging: Staging
    telemetry: Telemetry


@dataclass(frozen=True, slots=True)
class Fitting:
    staging: Staging
    telemetry: Telemetry
    #: what ``score`` runs with (horizon, RFM window and edges, risk levels)
    scoring: ScoringSettings
    #: customers per staged part of the scores (one apply step each)
    part_size: int = 10_000


@dataclass(frozen=True, slots=True)
class Applying:
    staging: Staging
    analytics: AnalyticsStore
    announcer: Announcer
    telemetry: Telemetry


# --- the steps ----------------------------------------------------------------------------------------------


def extract(event: Mapping[str, Any], deps: Extracting) -> dict[str, Any]:
    """Stage one scan segment's purchases up to the run's day."""
    step = step_input(ExtractStep, event)
    day = step.day
    scanned = deps.purchases.scan(step.segment, step.segments)
    kept = [p for p in scanned.purchases if p.purchased_at.astimezone(UTC).date() <= day]
    deps.staging.save_purchases(StagedPurchases.of(day, step.segment, step.segments, kept))
    deps.telemetry.count("AnalyticsPurchasesRead", scanned.read)
    return {"day": day.isoformat(), "segment": step.segment, "purchases": len(kept), "read": scanned.read}


def fit(event: Mapping[str, Any], deps: Fitting) -> dict[str, Any]:
    """Score every customer from the staged segments and stage the scores in parts."""
    step = step_input(FitStep, event)
    day = step.day
    staged: list[StagedPurchases] = []
    missing: list[int] = []
    for segment in range(step.segments):
        found = deps.staging.purchases(day, segment, step.segments)
        if found is None:
            missing.append(segment)
        elif (found.day, found.segment, found.segments) != (day, segment, step.segments):
            raise InvalidRequest(
                f"the staged file of segment {segment} of {step.segments} for {day.isoformat()} holds "
                f"segment {found.segment} of {found.segments} for {found.day.isoformat()}"
            )
        else:
            staged.append(found)
    if missing:
        raise DependencyUnavailable(
            f"the purchases of segment(s) {', '.join(map(str, missing))} of {step.segments} for "
            f"{day.isoformat()} are not staged: the extract step has not finished; retry"
        )
    from shared.analytics.history import Purchases, day_number
    from shared.analytics.scoring import score

    purchases = Purchases.from_rows(row for segment in staged for row in segment.rows())
    scores = score(purchases, day_number(day), deps.scoring)
    size = deps.part_size
    parts = [
        deps.staging.save_scores(
            StagedScores(
                day=day, part=n, horizon_days=deps.scoring.horizon_days, scores=scores[start : start + size]
            )
        )
        for n, start in enumerate(range(0, len(scores), size))
    ]
    deps.telemetry.count("AnalyticsCustomersScored", len(scores))
    return {"day": day.isoformat(), "customers": len(scores), "parts": parts}


def apply(event: Mapping[str, Any], deps: Applying) -> dict[str, Any]:
    """Write a part's scores onto the contacts and announce what changed; raise (after recording what
    went) if the bus refused some for now, so the step is retried and publishes the rest."""
    step = step_input(ApplyStep, event)
    staged = deps.staging.scores(step.part)
    if staged is None:
        raise NotFound(f"no scores are staged at {step.part} (expired, or not written by this run's fit)")
    if staged.day != step.day:
        raise InvalidRequest(f"{step.part} holds the scores of {staged.day.isoformat()}, not of {step.day}")
    updated = 0
    pending: list[tuple[ContactId, Announcement]] = []
    for scored in staged.scores:
        contact = ContactId.parse(scored.customer_id)
        after = Analytics(day=staged.day, rfm=scored.rfm, churn=scored.churn(staged.horizon_days))
        written, to_publish = apply_one(contact, after, step.time, deps.analytics)
        updated += written
        pending += [(contact, a) for a in to_publish]
    sent, waiting = publish(pending, deps)
    deps.telemetry.count("AnalyticsProfilesUpdated", updated)
    deps.telemetry.count("AnalyticsAnnounced", sent)
    if waiting:
        raise DependencyUnavailable(
            f"{waiting} announcement(s) of {step.day} could not be published now; retry"
        )
    return {
        "day": step.day.isoformat(),
        "customers": len(staged.scores),
        "updated": updated,
        "announced": sent,
    }


def apply_one(
    contact: ContactId, after: Analytics, at: datetime, store: AnalyticsStore
) -> tuple[bool, list[Announcement]]:
    """Write one contact's analytics of the day unless it holds them already (or is unknown, or merged
    away); whether it wrote, and the contact's announcements to publish now (its changes, and any left
    unpublished before)."""
    changes: list[Announcement] = []
    previous = Previous(unchanged=True)  # the common case: nothing to announce, and no read to know it
    seen: Held | None = None
    for _ in range(MAX_ATTEMPTS):
        recorded = store.record(contact, after, changes, previous)
        if recorded.written:
            # what was there: the write's old image, else the refusal's it was conditioned on (leftovers
            # of an earlier day can only have been published since, never added: that moves the day)
            known = recorded.found or seen
            if known is None or not known.unpublished:
                return True, changes
            return True, store.unpublished(contact, known.unpublished | {a.key for a in changes})
        found = seen = recorded.found
        if found is None:  # unknown (erased), or merged away: its purchases count for its contact
            return False, []
        held = found.analytics
        if held is not None and held.day >= after.day:  # applied already (this day, or a later one)
            return False, store.unpublished(contact, found.unpublished) if found.unpublished else []
        changes = announcements(str(contact), held, after, at)
        previous = Previous(analytics=held)
    raise DependencyUnavailable(
        f"the analytics of a contact kept changing during {MAX_ATTEMPTS} attempts; retry"
    )


def publish(pending: Sequence[tuple[ContactId, Announcement]], deps: Applying) -> tuple[int, int]:
    """Publish the announcements (the announcer batches them), then mark those done per contact; returns
    (sent, left for a retry)."""
    if not pending:
        return 0, 0
    outcomes = deps.announcer.announce([a.output for _, a in pending])
    done: dict[ContactId, list[tuple[Announcement, Outcome]]] = {}
    for (contact, announcement), outcome in zip(pending, outcomes, strict=True):
        if outcome.done:
            done.setdefault(contact, []).append((announcement, outcome))
    for contact, published in done.items():
        deps.analytics.mark_published(contact, published)
    refused = sum(1 for o in outcomes if o.refused is not None)
    deps.telemetry.count("AnalyticsAnnouncementsRefused", refused)
    return sum(1 for o in outcomes if o.sent), sum(1 for o in outcomes if not o.done)
