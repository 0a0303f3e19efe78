"""The nightly analytics job: purchases extracted, scored, and applied to the contacts, exactly once.

Three steps, which a Step Functions workflow runs every night (locally, the same handlers in-process),
each safe to retry and to run twice:

1. **extract** (one per scan segment, in parallel): the purchase index's segment ``i`` of ``N``, up to
   the run's day, gathered into columns page by page and staged as one file (``purchases_key``).
   Re-running it writes the same file again.
2. **fit**: every segment's file of the day (all ``N``, else it fails and is retried), read one at a time
   into compact purchase histories and scored by ``shared.analytics.scoring.score``, the code of the
   ``lifecycle-analytics`` command; the scores are staged in parts (``scores_key``). The only step that
   loads numpy: it imports the models when it runs, so the other two never do.
3. **apply** (one per part, in parallel): each score written onto its contact's profile, once per
   contact and day, and its changes (segment entered or left, risk level) announced; a part's contacts
   are applied a few at once, each contact's calls in order.

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
run names the same day, however long it takes. A time later than the clock's now is refused: its day is
not over yet.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.analytics.changes import Announcement, announcements
from shared.analytics.events import AnalyticsOutput
from shared.analytics.facts import Analytics, CustomerScore
from shared.clock import Clock, SystemClock
from shared.contacts.identity import ContactId
from shared.errors import DependencyUnavailable, InvalidRequest, NotFound

if TYPE_CHECKING:  # numpy: imported by the fit step only, when it runs
    import numpy as np

    from shared.analytics.history import Purchases
    from shared.analytics.scoring import ScoringSettings

#: Scan segments a run may have (the staged files' names hold four digits).
MAX_SEGMENTS = 9999
#: Attempts to apply one contact whose analytics changed under the step (another run of the same day).
MAX_ATTEMPTS = 4
#: How far a step's ``time`` may be ahead of the clock (the schedule's time is the run's start; clocks
#: differ by seconds): a later time would score a day not over yet.
MAX_CLOCK_SKEW = timedelta(minutes=5)
#: Parts of the scores a run may have: Step Functions' state (256 KB) holds their keys (about 50 bytes
#: each), and the apply map's result the answers of its runs (about 75 bytes each).
MAX_PARTS = 2000
#: Contacts of a part applied at once, and batches of announcements published at once (each contact's
#: calls stay in order; the AWS clients keep ten connections).
APPLY_WORKERS = 8
#: Announcements a call to the announcer publishes (PutEvents takes ten).
ANNOUNCED_TOGETHER = 10
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


class TimedStep(BaseModel):
    """A nightly workflow step's input: the run's time. The recommendations pass's steps share it too,
    with a ``day`` of their own (``shared.usecases.recommendation_nightly``)."""

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


class ExtractStep(TimedStep):
    segment: int = Field(ge=0)
    segments: int = Field(ge=1, le=MAX_SEGMENTS)

    @model_validator(mode="after")
    def _within(self) -> ExtractStep:
        if self.segment >= self.segments:
            raise ValueError(f"segment {self.segment} is not one of 0 to {self.segments - 1}")
        return self


class FitStep(TimedStep):
    segments: int = Field(ge=1, le=MAX_SEGMENTS)


class ApplyStep(TimedStep):
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


Step = TypeVar("Step", bound=TimedStep)


def step_input(model: type[Step], event: Mapping[str, Any], now: datetime) -> Step:
    """The step's input, or ``InvalidRequest`` naming what is wrong with it (nothing is read or written).

    A ``time`` later than ``now`` (beyond ``MAX_CLOCK_SKEW``) is refused: its day is not over, and the
    day guard would then keep every real night up to it from writing anything."""
    try:
        step = model.model_validate(event)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise InvalidRequest(f"{model.__name__}: {problems}", code="invalid_step_input") from None
    if step.time > now + MAX_CLOCK_SKEW:
        raise InvalidRequest(
            f"{model.__name__}: time {step.time.isoformat()} is later than now "
            f"({now.astimezone(UTC).isoformat(timespec='seconds')}): a run scores the last day over before "
            "its time, so its time cannot be in the future",
            code="invalid_step_input",
        )
    return step


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
        cls, day: date, segment: int, segments: int, purchases: Iterable[ScannedPurchase]
    ) -> StagedPurchases:
        """The segment's file of those of ``purchases`` up to ``day``."""
        columns = PurchaseColumns(day)
        columns.add(purchases)
        return columns.staged(segment, segments)


class PurchaseColumns:
    """A segment's purchases up to a day, gathered page by page into the staged file's columns as the scan
    reads them (the extract step): each contact's id, each day and each product or category name held
    once, so the scan's pages can go as soon as they are added."""

    def __init__(self, day: date) -> None:
        self.day = day
        self._contacts: dict[str, int] = {}
        self._days: dict[date, date] = {}
        self._names: dict[str, str] = {}
        self._contact: list[int] = []
        self._purchased_on: list[date] = []
        self._amount: list[float] = []
        self._basket: list[list[tuple[str | None, str | None]]] = []

    def __len__(self) -> int:
        return len(self._contact)

    def add(self, purchases: Iterable[ScannedPurchase]) -> None:
        """Add those of ``purchases`` made on or before the day (later ones are left out)."""
        contacts, days, names = self._contacts, self._days, self._names
        for p in purchases:
            on = p.purchased_at.astimezone(UTC).date()
            if on > self.day:
                continue
            self._contact.append(contacts.setdefault(p.contact_id, len(contacts)))
            self._purchased_on.append(days.setdefault(on, on))
            self._amount.append(p.amount)
            self._basket.append(
                [
                    (
                        None if product is None else names.setdefault(product, product),
                        None if category is None else names.setdefault(category, category),
                    )
                    for product, category in p.basket
                ]
            )

    def staged(self, segment: int, segments: int) -> StagedPurchases:
        return StagedPurchases(
            day=self.day,
            segment=segment,
            segments=segments,
            contacts=list(self._contacts),
            contact=self._contact,
            purchased_on=self._purchased_on,
            amount=self._amount,
            basket=self._basket,
        )


class PurchaseHistories:
    """The staged segments' purchases as the models take them (``Purchases.from_columns``), gathered a
    segment at a time in compact arrays (the fit step): no row object is made, and each segment's file can
    go once it is added. One input row per basket entry, the purchase's amount on its first (a purchase
    with an empty basket is one row without product or category); a negative amount counts as 0.

    Loads numpy: the fit step's alone."""

    #: the columns, a list of arrays (one per segment) each: customer, day, amount, product, category
    _COLUMNS = 5

    def __init__(self) -> None:
        self._customers: dict[str, int] = {}
        self._products: dict[str, int] = {}
        self._categories: dict[str, int] = {}
        self._columns: list[list[np.ndarray]] = [[] for _ in range(self._COLUMNS)]

    def add(self, staged: StagedPurchases) -> None:
        import numpy as np

        from shared.analytics.history import day_number

        customers, products, categories = self._customers, self._products, self._categories
        count = len(staged.contact)
        entries = np.fromiter((len(b) or 1 for b in staged.basket), np.int64, count)
        rows = int(entries.sum())
        first = np.cumsum(entries) - entries  # each purchase's first row
        code = np.fromiter(
            (customers.setdefault(c, len(customers)) for c in staged.contacts), np.int32, len(staged.contacts)
        )
        numbers = {on: day_number(on) for on in set(staged.purchased_on)}
        amount = np.zeros(rows)
        amount[first] = np.fmax(np.fromiter(staged.amount, np.float64, count), 0.0)
        bought = [entry for basket in staged.basket for entry in (basket or _NOTHING)]
        for column, values in zip(
            self._columns,
            (
                np.repeat(code[np.fromiter(staged.contact, np.int32, count)], entries),
                np.repeat(np.fromiter((numbers[on] for on in staged.purchased_on), np.int32, count), entries),
                amount,
                np.fromiter((_code(products, p) for p, _ in bought), np.int32, rows),
                np.fromiter((_code(categories, c) for _, c in bought), np.int32, rows),
            ),
            strict=True,
        ):
            column.append(values)

    def purchases(self) -> Purchases:
        """Every segment's purchases at once (what ``Purchases.from_rows`` makes of the same rows); the
        gathered arrays are let go as they are joined."""
        import numpy as np

        from shared.analytics.history import Purchases

        def joined(k: int) -> np.ndarray:
            parts = self._columns[k]
            found = np.concatenate(parts) if parts else np.zeros(0, np.float64 if k == 2 else np.int32)
            parts.clear()
            return found

        def named(coded: dict[str, int], codes: np.ndarray) -> np.ndarray:
            """Each row's name (None for -1): pointers to the names, each held once (what from_columns
            takes as a sequence)."""
            return np.array([*coded, None], dtype=object)[codes]

        customer_ids = named(self._customers, joined(0))
        days, amounts = joined(1), joined(2)
        products = named(self._products, joined(3))
        categories = named(self._categories, joined(4))
        return Purchases.from_columns(customer_ids, days, amounts, products, categories)


_NOTHING: list[tuple[str | None, str | None]] = [(None, None)]


def _code(names: dict[str, int], name: str | None) -> int:
    return -1 if name is None else names.setdefault(name, len(names))


class StagedScores(_Staged):
    """One part of the fit's scores (the apply step's input): the command's rows, in customer id order."""

    day: date
    part: int = Field(ge=0)
    #: the horizon ``p_no_purchase`` was computed for
    horizon_days: int = Field(ge=1)
    scores: list[CustomerScore]


# --- the ports ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScannedPage:
    purchases: list[ScannedPurchase]
    #: items the scan read for it (what it is billed for)
    read: int


class PurchaseScan(Protocol):
    def scan(self, segment: int, segments: int) -> Iterator[ScannedPage]:
        """Every purchase of scan segment ``segment`` of ``segments`` (the segments divide the purchases
        between them: each is in exactly one), with its contact, time, amount and basket, page by page as
        they are read (a page is let go once the next is asked for)."""
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
    #: a step's ``time`` may not be later than its now (``MAX_CLOCK_SKEW``)
    clock: Clock = field(default_factory=SystemClock)


@dataclass(frozen=True, slots=True)
class Fitting:
    staging: Staging
    telemetry: Telemetry
    #: what ``score`` runs with (horizon, RFM window and edges, risk levels)
    scoring: ScoringSettings
    #: customers per staged part of the scores (one apply step each)
    part_size: int = 10_000
    clock: Clock = field(default_factory=SystemClock)


@dataclass(frozen=True, slots=True)
class Applying:
    staging: Staging
    analytics: AnalyticsStore
    announcer: Announcer
    telemetry: Telemetry
    clock: Clock = field(default_factory=SystemClock)
    #: contacts applied at once
    workers: int = APPLY_WORKERS


# --- the steps ----------------------------------------------------------------------------------------------


def extract(event: Mapping[str, Any], deps: Extracting) -> dict[str, Any]:
    """Stage one scan segment's purchases up to the run's day, gathered page by page as the scan reads."""
    step = step_input(ExtractStep, event, deps.clock.now())
    day = step.day
    columns = PurchaseColumns(day)
    read = 0
    for page in deps.purchases.scan(step.segment, step.segments):
        read += page.read
        columns.add(page.purchases)
    deps.staging.save_purchases(columns.staged(step.segment, step.segments))
    deps.telemetry.count("AnalyticsPurchasesRead", read)
    return {"day": day.isoformat(), "segment": step.segment, "purchases": len(columns), "read": read}


def fit(event: Mapping[str, Any], deps: Fitting) -> dict[str, Any]:
    """Score every customer from the staged segments and stage the scores in parts."""
    step = step_input(FitStep, event, deps.clock.now())
    day = step.day
    from shared.analytics.history import day_number
    from shared.analytics.scoring import score

    purchases = _staged_histories(step, deps.staging)
    size = deps.part_size
    customers = len(purchases.customers)  # all scored: the staged purchases are up to the day
    if -(-customers // size) > MAX_PARTS:
        raise InvalidRequest(
            f"{customers} customers make {-(-customers // size)} parts of {size}, more than the workflow's "
            f"state holds ({MAX_PARTS}): raise the part size (analyticsPartSize)"
        )
    scores = score(purchases, day_number(day), deps.scoring)
    del purchases
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


def _staged_histories(step: FitStep, staging: Staging) -> Purchases:
    """Every staged segment of the run's day, read one at a time into the histories (each file let go
    once added); ``DependencyUnavailable`` naming those not staged yet."""
    day = step.day
    histories = PurchaseHistories()
    missing: list[int] = []
    for segment in range(step.segments):
        found = staging.purchases(day, segment, step.segments)
        if found is None:
            missing.append(segment)
        elif (found.day, found.segment, found.segments) != (day, segment, step.segments):
            raise InvalidRequest(
                f"the staged file of segment {segment} of {step.segments} for {day.isoformat()} holds "
                f"segment {found.segment} of {found.segments} for {found.day.isoformat()}"
            )
        elif not missing:  # once one is missing the step fails: the others are only checked
            histories.add(found)
        del found
    if missing:
        raise DependencyUnavailable(
            f"the purchases of segment(s) {', '.join(map(str, missing))} of {step.segments} for "
            f"{day.isoformat()} are not staged: the extract step has not finished; retry"
        )
    return histories.purchases()


def apply(event: Mapping[str, Any], deps: Applying) -> dict[str, Any]:
    """Write a part's scores onto the contacts (``deps.workers`` contacts at a time) and announce what
    changed. A contact that fails does not stop the others: they are written and their changes published,
    then the step fails with its error, and the retry does it (the day guard skips the rest). Likewise if
    the bus refused some for now: the step fails after recording what went, and its retry publishes the
    rest."""
    step = step_input(ApplyStep, event, deps.clock.now())
    staged = deps.staging.scores(step.part)
    if staged is None:
        raise NotFound(f"no scores are staged at {step.part} (expired, or not written by this run's fit)")
    if staged.day != step.day:
        raise InvalidRequest(f"{step.part} holds the scores of {staged.day.isoformat()}, not of {step.day}")

    def one(scored: CustomerScore) -> tuple[ContactId, bool, list[Announcement]]:
        contact = ContactId.parse(scored.customer_id)
        after = Analytics(day=staged.day, rfm=scored.rfm, churn=scored.churn(staged.horizon_days))
        return (contact, *apply_one(contact, after, step.time, deps.analytics))

    updated = 0
    pending: list[tuple[ContactId, Announcement]] = []
    failed: list[Exception] = []
    for outcome in each_at_once(one, staged.scores, deps.workers):
        if isinstance(outcome, Exception):
            failed.append(outcome)
            continue
        contact, written, to_publish = outcome
        updated += written
        pending += [(contact, a) for a in to_publish]
    published = publish(pending, deps)
    deps.telemetry.count("AnalyticsProfilesUpdated", updated)
    deps.telemetry.count("AnalyticsAnnounced", published.sent)
    if failed:
        first = failed[0]
        first.add_note(
            f"{len(failed)} of the {len(staged.scores)} contacts of {step.part} failed; the others were "
            "applied and their changes published: a retry applies the rest"
        )
        raise first
    if published.failed:
        raise published.failed[0]
    if published.waiting:
        raise DependencyUnavailable(
            f"{published.waiting} announcement(s) of {step.day} could not be published now; retry"
        )
    return {
        "day": step.day.isoformat(),
        "customers": len(staged.scores),
        "updated": updated,
        "announced": published.sent,
    }


Item = TypeVar("Item")
Result = TypeVar("Result")


def each_at_once(
    run: Callable[[Item], Result], items: Sequence[Item], workers: int
) -> list[Result | Exception]:
    """``run`` on every item, ``workers`` at a time (each in a copy of the caller's context), every one
    to its end: each item's result, or the exception it raised, in the items' order."""

    def guarded(item: Item) -> Result | Exception:
        try:
            return run(item)
        except Exception as exc:  # noqa: BLE001 - reported to the caller, after the others are done
            return exc

    if workers <= 1 or len(items) <= 1:
        return [guarded(item) for item in items]
    with ThreadPoolExecutor(min(workers, len(items)), thread_name_prefix="analytics-apply") as pool:
        futures = [pool.submit(contextvars.copy_context().run, guarded, item) for item in items]
        return [future.result() for future in futures]


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


@dataclass(frozen=True, slots=True)
class Published:
    sent: int = 0
    #: announcements failed for now: left unpublished for a retry
    waiting: int = 0
    #: what went wrong announcing a batch or marking a contact's (those are left for a retry too)
    failed: tuple[Exception, ...] = ()


def publish(pending: Sequence[tuple[ContactId, Announcement]], deps: Applying) -> Published:
    """Publish the announcements, ``ANNOUNCED_TOGETHER`` a call and ``deps.workers`` calls at once, then
    mark those done per contact (contacts at once too); what fails is left unpublished for a retry."""
    if not pending:
        return Published()
    outputs = [a.output for _, a in pending]
    batches = [
        outputs[start : start + ANNOUNCED_TOGETHER] for start in range(0, len(outputs), ANNOUNCED_TOGETHER)
    ]
    outcomes: list[Outcome] = []
    failed: list[Exception] = []
    for batch, answer in zip(
        batches, each_at_once(deps.announcer.announce, batches, deps.workers), strict=True
    ):
        if isinstance(answer, Exception):  # the whole batch failed for now
            failed.append(answer)
            outcomes += [Outcome()] * len(batch)
        else:
            outcomes += answer
    done: dict[ContactId, list[tuple[Announcement, Outcome]]] = {}
    for (contact, announcement), outcome in zip(pending, outcomes, strict=True):
        if outcome.done:
            done.setdefault(contact, []).append((announcement, outcome))
    marked = each_at_once(lambda item: deps.analytics.mark_published(*item), list(done.items()), deps.workers)
    failed += [answer for answer in marked if isinstance(answer, Exception)]
    deps.telemetry.count("AnalyticsAnnouncementsRefused", sum(1 for o in outcomes if o.refused is not None))
    return Published(
        sent=sum(1 for o in outcomes if o.sent),
        waiting=sum(1 for o in outcomes if not o.done),
        failed=tuple(failed),
    )
