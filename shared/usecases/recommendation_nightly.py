"""The nightly recommendations pass (issue 15): every contact's recent products -> the item-to-item model ->
the neighbour items and the popularity item serving reads (``shared.recommendations.stored``).

Three steps of a workflow of their own (``infra.wiring.NIGHTLY_RECOMMENDATIONS``), the distributed-engine
pattern of the nightly analytics pass, each safe to retry and to run twice:

1. **extract** (one per parallel-scan segment): the segment's profiles, only their key and
   ``recentProducts`` read (a projection; merged-away profiles and profiles without products are filtered
   out), staged as one file of interactions (``interactions_key``). Re-running it writes the same file.
2. **fit**: every segment's file of the night (all of them, else it fails and is retried) streamed into
   ``shared.recommendations.model.fit`` (numpy and scipy: this step's layer only); the neighbour lists
   and the popularity list staged in parts of ``part_size`` products (``model_key``), the popularity list
   in part 0; with them the products whose neighbours the night before stored and this night has none
   (read from the night before's staged parts, still in the bucket), for the write step to delete.
3. **write** (one per part): the part's items put into the config table (BatchWriteItem, 25 a request),
   and its products without neighbours any more deleted. A put replaces the whole item, so a retried part
   or a second run of the night writes the same items.

A product whose neighbours an older night stored, when the night before did not run (its files expired),
keeps its item until it has neighbours again: its ``fittedOn`` is older than the popularity item's, which
says so to serving.

The night's day (``fittedOn``) is the UTC date of the run's time: every step of a run names the same day.
A time later than the clock's now is refused (``step_input``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.clock import Clock
from shared.errors import DependencyUnavailable, InvalidRequest, NotFound
from shared.recommendations.model import (
    Interaction,
    ItemModel,
    Kind,
    ModelSettings,
    Neighbour,
    RecentProduct,
)
from shared.usecases import analytics
from shared.usecases.analytics import MAX_PARTS, MAX_SEGMENTS, STAGED_SUFFIX, STAGING_PREFIX, step_input

#: Where the pass leaves its work in the staging bucket (under the analytics prefix its grants cover).
RECOMMENDATIONS_PREFIX = f"{STAGING_PREFIX}recommendations/"
_MODEL_KEY = re.compile(r"^analytics/recommendations/(\d{4}-\d{2}-\d{2})/model/part-(\d{5})\.json\.gz$")
#: Digits of a similarity or popularity kept in the stored items: the same model writes the same numbers.
SCORE_DIGITS = 6


def night_of(time: datetime) -> date:
    """The night a run fits: the UTC date of its time."""
    return (time.replace(tzinfo=UTC) if time.tzinfo is None else time.astimezone(UTC)).date()


def interactions_key(day: date, segment: int, segments: int) -> str:
    return (
        f"{RECOMMENDATIONS_PREFIX}{day.isoformat()}/interactions/"
        f"segment-{segment:04d}-of-{segments:04d}{STAGED_SUFFIX}"
    )


def model_key(day: date, part: int) -> str:
    return f"{RECOMMENDATIONS_PREFIX}{day.isoformat()}/model/part-{part:05d}{STAGED_SUFFIX}"


# --- the steps' inputs ------------------------------------------------------------------------------------


class _Night:
    """The recommendations pass's steps fit the night of their run's time (not the day before it, as the
    analytics pass scores): otherwise their inputs are the analytics pass's."""

    time: datetime

    @property
    def day(self) -> date:
        return night_of(self.time)


class ExtractStep(_Night, analytics.ExtractStep):
    pass


class FitStep(_Night, analytics.FitStep):
    pass


class WriteStep(_Night, analytics.TimedStep):
    #: a key the fit step returned (``model_key``) for this run's night
    part: str

    @model_validator(mode="after")
    def _of_the_night(self) -> WriteStep:
        match = _MODEL_KEY.match(self.part)
        if match is None:
            raise ValueError(
                f"part {self.part!r} is not a key of a staged model "
                "(analytics/recommendations/<day>/model/part-<n>.json.gz)"
            )
        if match[1] != self.day.isoformat():
            raise ValueError(f"part {self.part!r} is not of this run's night, {self.day.isoformat()}")
        return self


# --- what the steps stage -----------------------------------------------------------------------------------


class _Staged(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True, slots=True)
class ScannedProfile:
    """A profile as the scan reads it: its contact and its recent products."""

    contact_id: str
    recent_products: tuple[RecentProduct, ...]


class StagedInteractions(_Staged):
    """One scan segment's contacts and their recent products (the extract step's file): ``rows`` are
    (index in ``contacts``, index in ``products``, kind, time)."""

    day: date
    segment: int = Field(ge=0)
    segments: int = Field(ge=1, le=MAX_SEGMENTS)
    contacts: list[str]
    products: list[str]
    rows: list[tuple[int, int, Kind, datetime]]

    @model_validator(mode="after")
    def _named(self) -> StagedInteractions:
        for contact, product, _, _ in self.rows:
            if not (0 <= contact < len(self.contacts) and 0 <= product < len(self.products)):
                raise ValueError("a row names no contact or no product of the file")
        return self

    @classmethod
    def of(
        cls, day: date, segment: int, segments: int, profiles: Iterable[ScannedProfile]
    ) -> StagedInteractions:
        contacts: dict[str, int] = {}
        products: dict[str, int] = {}
        rows: list[tuple[int, int, Kind, datetime]] = []
        for profile in profiles:
            c = contacts.setdefault(profile.contact_id, len(contacts))
            for entry in profile.recent_products:
                p = products.setdefault(entry.product_id, len(products))
                rows.append((c, p, entry.kind, entry.at))
        return cls(
            day=day,
            segment=segment,
            segments=segments,
            contacts=list(contacts),
            products=list(products),
            rows=rows,
        )

    def interactions(self) -> Iterator[Interaction]:
        for contact, product, kind, at in self.rows:
            yield Interaction(self.contacts[contact], self.products[product], kind, at)


class StagedModelPart(_Staged):
    """A part of the night's model (the fit step's file): neighbour lists of some products, and in part 0
    the popularity list; each list (product, score) best first."""

    day: date
    part: int = Field(ge=0)
    neighbours: dict[str, list[tuple[str, float]]]
    popular: list[tuple[str, float]] | None = None
    #: products whose neighbours the night before stored and this night has none: their items go
    gone: list[str] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StoredModelItem:
    """One item the write step puts: a product's neighbours (``product_id``), or the popularity list
    (``product_id`` None); scores as the item stores them."""

    product_id: str | None
    entries: tuple[tuple[str, Decimal], ...]
    fitted_on: date


def stored_score(score: float) -> Decimal:
    """A score as stored: ``SCORE_DIGITS`` significant digits (DynamoDB numbers are decimal)."""
    return Decimal(f"{score:.{SCORE_DIGITS}g}")


def model_items(part: StagedModelPart) -> list[StoredModelItem]:
    """The items of a staged part, the popularity item (part 0) first, then products in name order."""

    def entries(ranked: Sequence[tuple[str, float]]) -> tuple[tuple[str, Decimal], ...]:
        return tuple((p, stored_score(s)) for p, s in ranked)

    items = [] if part.popular is None else [StoredModelItem(None, entries(part.popular), part.day)]
    items += [StoredModelItem(p, entries(part.neighbours[p]), part.day) for p in sorted(part.neighbours)]
    return items


# --- ports -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScannedPage:
    profiles: list[ScannedProfile]
    #: items the page read (before the filter): what the scan paid for
    read: int = 0


class ProfileScan(Protocol):
    def scan(self, segment: int, segments: int) -> Iterator[ScannedPage]:
        """Segment ``segment`` of ``segments`` of the profiles with recent products, a page at a time."""
        ...


class Staging(Protocol):
    def save_interactions(self, staged: StagedInteractions) -> str: ...

    def interactions(self, day: date, segment: int, segments: int) -> StagedInteractions | None: ...

    def save_model(self, staged: StagedModelPart) -> str: ...

    def model(self, key: str) -> StagedModelPart | None: ...

    def model_keys(self, day: date) -> list[str]:
        """The keys of the night's staged parts (none once they expired)."""
        ...


class ModelStore(Protocol):
    def put(self, items: Sequence[StoredModelItem], gone: Sequence[str] = ()) -> int:
        """Put the items (each replacing what is stored under its key) and delete the neighbours items of
        the ``gone`` products; how many requests it took."""
        ...


class Telemetry(Protocol):
    def count(self, name: str, value: int) -> None: ...


Fit = Callable[[Iterable[Interaction], ModelSettings], ItemModel]


def _model_fit(interactions: Iterable[Interaction], settings: ModelSettings) -> ItemModel:
    from shared.recommendations.model import fit  # numpy and scipy, when it runs: the fit step's layer

    return fit(interactions, settings)


@dataclass(frozen=True, slots=True)
class Extracting:
    profiles: ProfileScan
    staging: Staging
    telemetry: Telemetry
    clock: Clock


@dataclass(frozen=True, slots=True)
class Fitting:
    staging: Staging
    telemetry: Telemetry
    clock: Clock
    settings: ModelSettings = field(default_factory=ModelSettings)
    #: products per staged part of the model: one write step each
    part_size: int = 10_000
    fit: Fit = field(default=_model_fit)


@dataclass(frozen=True, slots=True)
class Writing:
    staging: Staging
    store: ModelStore
    telemetry: Telemetry
    clock: Clock


# --- the steps ------------------------------------------------------------------------------------------------


def extract(event: Mapping[str, Any], deps: Extracting) -> dict[str, Any]:
    """Stage one scan segment's contacts with their recent products."""
    step = step_input(ExtractStep, event, deps.clock.now())
    profiles: list[ScannedProfile] = []
    read = 0
    for page in deps.profiles.scan(step.segment, step.segments):
        read += page.read
        profiles += page.profiles
    staged = StagedInteractions.of(step.day, step.segment, step.segments, profiles)
    deps.staging.save_interactions(staged)
    deps.telemetry.count("RecommendationProfilesRead", read)
    return {
        "day": step.day.isoformat(),
        "segment": step.segment,
        "contacts": len(staged.contacts),
        "interactions": len(staged.rows),
        "read": read,
    }


def fit(event: Mapping[str, Any], deps: Fitting) -> dict[str, Any]:
    """Fit the model on every staged segment of the night and stage it in parts."""
    step = step_input(FitStep, event, deps.clock.now())
    day = step.day
    staged = _staged_segments(step, deps.staging)
    model = deps.fit((i for s in staged for i in s.interactions()), deps.settings)
    contacts = sum(len(s.contacts) for s in staged)
    del staged
    products = sorted(model.neighbours)
    gone = sorted(_stored_before(day, deps.staging) - set(products))
    size = deps.part_size
    count = max(1, -(-len(products) // size), -(-len(gone) // size))
    if count > MAX_PARTS:
        raise InvalidRequest(
            f"{len(products)} products make {count} parts of {size}, more than the workflow's state holds "
            f"({MAX_PARTS}): raise the part size (recommendationsPartSize)"
        )
    parts = [
        deps.staging.save_model(
            StagedModelPart(
                day=day,
                part=n,
                neighbours={p: _ranked(model.neighbours[p]) for p in products[n * size : (n + 1) * size]},
                popular=_ranked(model.popular) if n == 0 else None,
                gone=gone[n * size : (n + 1) * size],
            )
        )
        for n in range(count)
    ]
    deps.telemetry.count("RecommendationProductsFitted", len(products))
    return {
        "day": day.isoformat(),
        "contacts": contacts,
        "products": len(products),
        "popular": len(model.popular),
        "gone": len(gone),
        "parts": parts,
    }


def _stored_before(day: date, staging: Staging) -> set[str]:
    """The products whose neighbours the night before stored (its staged parts; none if it did not run)."""
    before = day - timedelta(days=1)
    found: set[str] = set()
    for key in staging.model_keys(before):
        part = staging.model(key)
        if part is not None and part.day == before:
            found.update(part.neighbours)
    return found


def _ranked(neighbours: Sequence[Neighbour]) -> list[tuple[str, float]]:
    return [(n.product_id, n.score) for n in neighbours]


def _staged_segments(step: FitStep, staging: Staging) -> list[StagedInteractions]:
    """Every staged segment of the night; ``DependencyUnavailable`` naming those not staged yet."""
    found: list[StagedInteractions] = []
    missing: list[int] = []
    for segment in range(step.segments):
        staged = staging.interactions(step.day, segment, step.segments)
        if staged is None:
            missing.append(segment)
        elif (staged.day, staged.segment, staged.segments) != (step.day, segment, step.segments):
            raise InvalidRequest(
                f"the staged file of segment {segment} of {step.segments} for {step.day.isoformat()} holds "
                f"segment {staged.segment} of {staged.segments} for {staged.day.isoformat()}"
            )
        else:
            found.append(staged)
    if missing:
        raise DependencyUnavailable(
            f"segments {missing} of {step.segments} for {step.day.isoformat()} are not staged yet; retry"
        )
    return found


def write(event: Mapping[str, Any], deps: Writing) -> dict[str, Any]:
    """Put one staged part's items into the config table: the same items however often it runs."""
    step = step_input(WriteStep, event, deps.clock.now())
    staged = deps.staging.model(step.part)
    if staged is None:
        raise NotFound(f"no model is staged at {step.part} (expired, or not written by this run's fit)")
    if staged.day != step.day:
        raise InvalidRequest(f"{step.part} holds the model of {staged.day.isoformat()}, not of {step.day}")
    items = model_items(staged)
    requests = deps.store.put(items, staged.gone)
    deps.telemetry.count("RecommendationItemsWritten", len(items))
    deps.telemetry.count("RecommendationItemsDeleted", len(staged.gone))
    return {
        "day": step.day.isoformat(),
        "part": staged.part,
        "items": len(items),
        "deleted": len(staged.gone),
        "requests": requests,
    }
