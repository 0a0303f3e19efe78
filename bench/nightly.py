"""The nightly job at scale (issue 12): time, items read and requests per customer, and what a night costs.

The nightly pass is the system's one whole-population pass: extract (one parallel-scan segment of the
purchase index each), fit (every customer at once), apply (one part of the scores each). In AWS it runs on
Step Functions with Distributed Maps over the segments and the parts; locally the same steps run
in-process, in order (``infra.local.workflow.LocalWorkflow``, which this bench drives too). In one run:

1. **In-process, at 100,000 and 1,000,000 customers** (``bench.purchases.generate``: regular, irregular and
   one-off buyers with products and categories), through the real use cases
   (``shared.usecases.analytics``) with the fakes of ``tests.fakes`` for staging, the contacts' analytics
   and the bus. The purchase index at that size is ``PurchaseIndex``: DynamoDB's Scan of ``byPurchase``
   over the generated purchases, served to the real adapter (``DynamoPurchaseScan``) page by page by
   DynamoDB's rules (segments by a hash of the partition key, pages of at most 1 MB of index entries),
   because the fake scan reads ``MemoryContactStore``'s event log, which would hold 11 million tracked
   events at a million customers. Two nights: the first (every contact new), and one day later, each in
   an interpreter of its own (the contacts' analytics handed on in a file), so what a step measures is
   its own, as in a Lambda function.
2. **On moto, at 5,000 customers**, the three handlers as deployed (their environments and roles) over
   purchases written as tracking writes them (event items with ``purchasedAt`` and ``basket``, so the
   sparse index holds them): every request each function makes, counted on its own clients, and billed by
   ``bench.capacity``'s meter; the first night, an unchanged second night (one day later), a same-day
   re-run. The same population through part 1's machinery says what the fakes predict; both are shown.
3. **An estimate of a night's cost at 1,000,000 customers** from the measured counts and list prices.

``python -m bench nightly`` runs this section; ``python -m bench.nightly in-process CUSTOMERS DAY [--held
FILE] [--keep FILE]`` is the child that runs one night.
"""

from __future__ import annotations

import gc
import gzip
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.harness import ROOT, python_child
from infra.wiring import ANALYTICS_BUCKET
from shared.adapters.analytics_store import MARKS_PER_TRANSACTION
from shared.usecases.analytics import APPLY_WORKERS

#: the cut-off the generated histories end at (2024-10-04), as the rhythm bench's
CUTOFF = 20_000
SEED = 12
SCALES = (100_000, 1_000_000)
MOTO_CUSTOMERS = 5_000
#: DynamoDB's page: a Scan request reads at most 1 MB of items (of index entries, on an index)
PAGE_BYTES = 1024 * 1024
#: a read request unit: 4 KB, half a unit when eventually consistent (a Scan of a global index is)
READ_BLOCK = 4096
#: a purchase's event key (``E#<time>#<messageId>``, a server SDK's UUID): part of every index entry
MESSAGE_ID_LENGTH = 36
EVENT_KEY_LENGTH = len("E#") + len("2024-10-04T12:00:00.000Z") + len("#") + MESSAGE_ID_LENGTH


# --- measuring -----------------------------------------------------------------------------------------


def _status(field_name: str) -> int:
    """A ``/proc/self/status`` memory figure, in bytes (0 where there is no such file)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _reset_peak() -> bool:
    """Start the resident-set high-water mark again (Linux: ``clear_refs`` 5); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


@dataclass
class Measure:
    """CPU and wall seconds, summed over the runs of one step; the largest memory rise of one run."""

    cpu: float = 0.0
    wall: float = 0.0
    runs: int = 0
    #: the most a run raised the resident set above what the process held before it (bytes)
    peak_rise: int = 0
    #: the highest resident set during a run (bytes)
    peak: int = 0
    #: whether the memory was measured (Linux only)
    measured: bool = False

    @contextmanager
    def run(self) -> Iterator[None]:
        before = _status("VmRSS")
        tracked = _reset_peak()
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            yield
        finally:
            self.cpu += time.process_time() - cpu
            self.wall += time.perf_counter() - wall
            self.runs += 1
            if tracked:
                self.measured = True
                peak = _status("VmHWM")
                self.peak = max(self.peak, peak)
                self.peak_rise = max(self.peak_rise, peak - before)


# --- the purchase index of a generated population ------------------------------------------------------


class PurchaseIndex:
    """DynamoDB's Scan of the ``byPurchase`` index over a generated population: a client stand-in for the
    real adapter (``shared.adapters.purchase_index.DynamoPurchaseScan``).

    An index entry is what the index holds for a purchase: the keys (``pk``, the event key, ``purchasedAt``)
    and the projected ``revenue`` and ``basket``, in the wire format tracking writes; its size is counted by
    DynamoDB's rules (``bench.capacity.item_size``) with an event key of a server SDK's messageId. A
    segment holds the purchases of the contacts whose partition key hashes to it; a page stops before 1 MB
    of entries. The adapter asks for four attributes, which the page holds (the event key is read and
    billed, not returned). Counted: requests, entries read, bytes read, read units (eventually
    consistent), and the time spent building the pages (botocore's parsing of the pages, in Lambda).
    """

    def __init__(self, purchases: Any, *, page_bytes: int = PAGE_BYTES, seed: int = SEED) -> None:
        import numpy as np

        from bench.capacity import number_size
        from shared.analytics.history import day_date

        p = purchases
        rows = len(p)
        self._page_bytes = page_bytes
        self._pk = [f"C#user_id:{c}" for c in p.customers]
        self._customer = p.customer
        # the time of day of each purchase (the index's sort key: a time, not a day)
        rng = np.random.default_rng(seed)
        seconds = rng.integers(0, 86_400, rows)
        self._clock = seconds
        self._times = [f"T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}.000Z" for s in range(86_400)]
        first_day = int(p.day.min()) if rows else 0
        self._first_day = first_day
        self._dates = (
            [day_date(d).isoformat() for d in range(first_day, int(p.day.max()) + 1)] if rows else []
        )
        self._day = p.day
        # the revenue as tracking stores a number (cents, trailing zeros trimmed), by distinct amount
        cents, self._amount = np.unique(np.round(p.amount * 100).astype(np.int64), return_inverse=True)
        self._revenue = [
            f"{c // 100}" if c % 100 == 0 else f"{c / 100:.2f}".rstrip("0") for c in cents.tolist()
        ]
        revenue_size = np.array([number_size(t) for t in self._revenue], dtype=np.int64)[self._amount]
        # each row's basket as its JSON text, by distinct basket (entries coded 1.., 0 for none)
        entries = np.bincount(p.basket_row, minlength=rows)
        width = max(int(entries.max()) if rows else 0, 1)
        table = np.zeros((rows, width), dtype=np.int64)
        start = np.concatenate(([0], np.cumsum(entries)[:-1])) if rows else np.zeros(0, dtype=np.int64)
        place = np.arange(len(p.basket_row)) - start[p.basket_row]
        categories = len(p.categories) + 1
        table[p.basket_row, place] = (p.basket_product + 1) * categories + p.basket_category + 2
        base = (len(p.products) + 1) * categories + 1
        if base**width < 2**62:  # one number per basket: a faster unique than by rows
            key = np.zeros(rows, dtype=np.int64)
            for column in range(width):
                key = key * base + table[:, column]
            _, first, which = np.unique(key, return_index=True, return_inverse=True)
            distinct = table[first]
        else:
            distinct, which = np.unique(table, axis=0, return_inverse=True)
        texts = []
        for codes in distinct.tolist():
            pairs = []
            for code in codes:
                if code:
                    product, category = divmod(code - 1, categories)
                    pairs.append(
                        [
                            p.products[product - 1] if product else None,
                            p.categories[category - 1] if category else None,
                        ]
                    )
            texts.append(json.dumps(pairs, separators=(",", ":"), ensure_ascii=False) if pairs else None)
        self._basket = texts
        self._which = which.reshape(-1)
        basket_size = np.array([len("basket") + len(t.encode()) if t else 0 for t in texts], dtype=np.int64)
        pk_size = np.array([len(k.encode()) for k in self._pk], dtype=np.int64)
        self._size = (
            len("pk")
            + pk_size[p.customer]
            + len("sk")
            + EVENT_KEY_LENGTH
            + len("purchasedAt")
            + len("2024-10-04T12:00:00.000Z")
            + len("revenue")
            + revenue_size
            + basket_size[self._which]
        )
        self._segments: dict[int, list[tuple[Any, Any]]] = {}
        #: what the scans cost: requests, entries read, bytes read, read units, seconds building pages
        self.requests = 0
        self.read = 0
        self.bytes = 0
        self.read_units = 0.0
        self.seconds = 0.0

    @property
    def entry_bytes(self) -> float:
        return float(self._size.mean()) if len(self._size) else 0.0

    def _segment(self, segment: int, segments: int) -> tuple[Any, Any]:
        import numpy as np

        if segments not in self._segments:
            hashed = np.array([zlib.crc32(k.encode()) % segments for k in self._pk], dtype=np.int64)
            row_segment = hashed[self._customer]
            found = []
            for s in range(segments):
                rows = np.flatnonzero(row_segment == s)
                found.append((rows, np.cumsum(self._size[rows])))
            self._segments = {segments: found}
        return self._segments[segments][segment]

    def scan(self, **request: Any) -> dict[str, Any]:
        import numpy as np

        started = time.process_time()
        rows, ends = self._segment(request["Segment"], request["TotalSegments"])
        start = int(request.get("ExclusiveStartKey", {}).get("position", {}).get("N", 0))
        before = int(ends[start - 1]) if start else 0
        stop = int(np.searchsorted(ends, before + self._page_bytes, side="right"))
        stop = max(stop, min(start + 1, len(rows)))  # an entry larger than a page still comes alone
        if request.get("Limit"):
            stop = min(stop, start + int(request["Limit"]))
        page = rows[start:stop]
        pk, dates, times, revenue, basket = self._pk, self._dates, self._times, self._revenue, self._basket
        items = []
        for a, c, d, t, w in zip(
            self._amount[page].tolist(),
            self._customer[page].tolist(),
            (self._day[page] - self._first_day).tolist(),
            self._clock[page].tolist(),
            self._which[page].tolist(),
            strict=True,
        ):
            item = {
                "pk": {"S": pk[c]},
                "purchasedAt": {"S": dates[d] + times[t]},
                "revenue": {"N": revenue[a]},
            }
            if basket[w] is not None:
                item["basket"] = {"S": basket[w]}
            items.append(item)
        read = int(ends[stop - 1]) - before if stop > start else 0
        self.requests += 1
        self.read += len(items)
        self.bytes += read
        self.read_units += max(1, math.ceil(read / READ_BLOCK)) * 0.5
        answer: dict[str, Any] = {"Items": items, "Count": len(items), "ScannedCount": len(items)}
        if stop < len(rows):
            answer["LastEvaluatedKey"] = {"position": {"N": str(stop)}}
        self.seconds += time.process_time() - started
        return answer


# --- 1. in-process, through the use cases and the fakes -------------------------------------------------


@dataclass
class CountedStore:
    """The contacts' analytics (a fake), with its calls counted as the DynamoDB adapter makes requests:
    a write without changes is one ``UpdateItem``, with changes one ``TransactWriteItems``; marking a
    contact's announcements published one ``TransactWriteItems`` per 99; an unpublished one read back one
    ``GetItem``."""

    store: Any
    requests: Counter[str] = field(default_factory=Counter)
    #: contacts written with changes, and their announcements by kind
    changed: int = 0
    written: int = 0
    kinds: Counter[str] = field(default_factory=Counter)

    def record(self, contact: Any, analytics: Any, changes: Sequence[Any], previous: Any) -> Any:
        recorded = self.store.record(contact, analytics, changes, previous)
        self.requests["TransactWriteItems" if changes else "UpdateItem"] += 1
        if recorded.written:
            self.written += 1
            if changes:
                self.changed += 1
                self.kinds.update(a.kind for a in changes)
        return recorded

    def unpublished(self, contact: Any, keys: Any) -> Any:
        self.requests["GetItem"] += len(keys)
        return self.store.unpublished(contact, keys)

    def mark_published(self, contact: Any, published: Sequence[Any]) -> None:
        self.requests["TransactWriteItems"] += math.ceil(len(published) / MARKS_PER_TRANSACTION)
        self.store.mark_published(contact, published)

    def history(self, contact: Any, limit: int) -> Any:
        return self.store.history(contact, limit)

    def take(self) -> dict[str, Any]:
        """What was counted since the last ``take``; then it starts again."""
        taken = {
            "requests": dict(self.requests),
            "written": self.written,
            "changed": self.changed,
            "kinds": dict(self.kinds),
        }
        self.requests, self.kinds = Counter(), Counter()
        self.changed = self.written = 0
        return taken


class Timed:
    """A port's implementation with the CPU seconds of its calls counted (``<name>.<method>``)."""

    def __init__(self, inner: Any, seconds: Counter[str], name: str) -> None:
        self._inner, self._seconds, self._name = inner, seconds, name

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(self._inner, attribute)
        if not callable(value):
            return value
        key = f"{self._name}.{attribute}"

        def call(*args: Any, **kwargs: Any) -> Any:
            # the calling thread's CPU only: the apply step calls from several threads at once
            started = time.thread_time()
            try:
                return value(*args, **kwargs)
            finally:
                self._seconds[key] += time.thread_time() - started

        return call


@contextmanager
def timed_scoring(seconds: Counter[str]) -> Iterator[None]:
    """``shared.analytics.scoring.score`` (what the fit step imports when it runs) with its CPU seconds
    counted under ``score``: the models, apart from reading and writing the staged files."""
    from shared.analytics import scoring

    original = scoring.score

    def score(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            seconds["score"] += time.process_time() - started

    scoring.score = score  # type: ignore[assignment]
    try:
        yield
    finally:
        scoring.score = original  # type: ignore[assignment]


def run_time(day: int) -> datetime:
    """The run that scores ``day`` (days since 1970-01-01): 02:00 UTC the next day, as scheduled."""
    from shared.analytics.history import day_date

    return datetime.combine(day_date(day + 1), datetime.min.time(), tzinfo=UTC) + timedelta(hours=2)


def in_process(
    customers: int,
    day: int = CUTOFF,
    *,
    held: Path | None = None,
    keep: Path | None = None,
    seed: int = SEED,
    segments: int | None = None,
) -> dict[str, Any]:
    """The night that scores ``day``, for ``customers`` generated customers, through the use cases and the
    fakes. The contacts' analytics come from ``held`` (the file an earlier night kept; none: every contact
    is new) and are kept in ``keep`` for the next night. One night a process: a process that ran a night
    before runs the next slower (its heap fragmented by the first), which a Lambda function does not."""
    from bench.purchases import generate
    from infra.config import DeploymentConfig
    from infra.local.workflow import LocalWorkflow
    from infra.wiring import NIGHTLY_ANALYTICS
    from shared.adapters.purchase_index import DynamoPurchaseScan
    from shared.analytics.scoring import ScoringSettings
    from shared.contacts.identity import ContactId
    from shared.usecases import analytics
    from tests.fakes import (
        CountingTelemetry,
        MemoryAnalyticsStore,
        MemoryAnnouncer,
        MemoryContactStore,
        MemoryProfile,
        MemoryStaging,
    )

    config = DeploymentConfig()
    segments = segments or config.analytics_scan_segments
    started = time.perf_counter()
    synthetic = generate(customers, CUTOFF, seed=seed, end=CUTOFF + 1)  # a purchase on the next day too
    index = PurchaseIndex(synthetic.purchases, seed=seed)
    contacts = MemoryContactStore()
    for customer in synthetic.purchases.customers:  # every buyer is a contact
        contacts.profiles[ContactId.user(customer)] = MemoryProfile()
    memory_store = MemoryAnalyticsStore(contacts)
    if held is not None:
        load_analytics(held, memory_store)
    prepared = time.perf_counter() - started
    files, bus, within = MemoryStaging(), MemoryAnnouncer(), Counter[str]()
    staging, telemetry = Timed(files, within, "staging"), CountingTelemetry()
    store = CountedStore(Timed(memory_store, within, "store"))
    announcer = Timed(bus, within, "bus")
    extracting = analytics.Extracting(
        purchases=DynamoPurchaseScan(index, events_table="events"), staging=staging, telemetry=telemetry
    )
    fitting = analytics.Fitting(
        staging=staging,
        telemetry=telemetry,
        scoring=ScoringSettings(horizon_days=config.analytics_horizon_days),
        part_size=config.analytics_part_size,
    )
    applying = analytics.Applying(staging=staging, analytics=store, announcer=announcer, telemetry=telemetry)
    steps = {"analytics_extract": Measure(), "analytics_fit": Measure(), "analytics_apply": Measure()}

    applied: list[dict[str, Any]] = []

    def invoke(function: str, payload: dict[str, Any]) -> Any:
        # each step is a Lambda invocation of its own: the collector starts it as in a fresh process, with
        # what the process holds already (the fakes' state, the generated population) out of its rounds
        gc.collect()
        gc.freeze()
        with steps[function].run():
            if function == "analytics_extract":
                return analytics.extract(payload, extracting)
            if function == "analytics_fit":
                return analytics.fit(payload, fitting)
            answer = analytics.apply(payload, applying)
        bus.sent.clear()  # delivered: the bus keeps nothing
        applied.append(answer)  # the workflow keeps only how many parts it applied
        return answer

    with timed_scoring(within):
        state = LocalWorkflow(NIGHTLY_ANALYTICS, segments, invoke).run(run_time(day).isoformat())
    extracted, fitted = state["analytics_extract"], state["analytics_fit"]
    assert state["analytics_apply"] == {"parts": len(applied)}, state["analytics_apply"]
    compress = time.process_time()
    sizes = {
        key: (len(text.encode()), len(gzip.compress(text.encode(), compresslevel=5)))
        for key, text in files.files.items()
    }
    compress = time.process_time() - compress
    purchases_files = [v for k, v in sizes.items() if "/purchases/" in k]
    scores_files = [v for k, v in sizes.items() if "/scores/" in k]
    if keep is not None:
        keep_analytics(keep, memory_store)
    return {
        "customers": customers,
        "segments": segments,
        "part_size": config.analytics_part_size,
        "purchase_days": int((synthetic.purchases.day <= CUTOFF).sum()),
        "basket_entries": len(synthetic.purchases.basket_row),
        "entry_bytes": index.entry_bytes,
        "prepared_seconds": prepared,
        "max_rss": _max_rss(),
        "seconds": time.perf_counter() - started,
        "night": {
            "day": fitted["day"],
            "segments": segments,
            "steps": {name: asdict(m) for name, m in steps.items()},
            "within": dict(within),
            "read": sum(e["read"] for e in extracted),
            "purchases": sum(e["purchases"] for e in extracted),
            "scan": {
                "requests": index.requests,
                "read": index.read,
                "bytes": index.bytes,
                "read_units": index.read_units,
                "seconds": index.seconds,
            },
            "customers": fitted["customers"],
            "parts": len(fitted["parts"]),
            "updated": sum(a["updated"] for a in applied),
            "announced": sum(a["announced"] for a in applied),
            "apply": store.take(),
            "put_events": bus.calls,
            "staged": {
                "purchases_json": sum(v[0] for v in purchases_files),
                "purchases_gzip": sum(v[1] for v in purchases_files),
                "scores_json": sum(v[0] for v in scores_files),
                "scores_gzip": sum(v[1] for v in scores_files),
                "objects": len(sizes),
                "gzip_cpu": compress,
            },
        },
    }


def keep_analytics(path: Path, store: Any) -> None:
    """What the next night needs of the contacts: their analytics and unpublished keys, a line each."""
    with path.open("w") as out:
        for contact, profile in store.contacts.profiles.items():
            held = profile.stage.get("analytics")
            if held is not None:
                unpublished = sorted(store.unpublished_keys.get(contact, ()))
                out.write(f"{contact}\t{held.model_dump_json()}\t{json.dumps(unpublished)}\n")


def load_analytics(path: Path, store: Any) -> None:
    from shared.analytics.facts import Analytics
    from shared.contacts.identity import ContactId

    with path.open() as lines:
        for line in lines:
            contact_text, held, unpublished = line.rstrip("\n").split("\t")
            contact = ContactId.parse(contact_text)
            store.contacts.profiles[contact].stage["analytics"] = Analytics.model_validate_json(held)
            if keys := json.loads(unpublished):
                store.unpublished_keys[contact] = frozenset(keys)


def two_nights(customers: int) -> dict[str, Any]:
    """The first night and the next, each in an interpreter of its own, the contacts' analytics handed on."""
    with tempfile.TemporaryDirectory(prefix="bench-nightly-") as folder:
        kept = Path(folder) / "analytics.tsv"
        first = child(customers, CUTOFF, keep=kept)
        later = child(customers, CUTOFF + 1, held=kept)
    result = {key: value for key, value in first.items() if key not in ("night", "max_rss", "seconds")}
    result["nights"] = [first["night"], later["night"]]
    result["max_rss"] = max(first["max_rss"], later["max_rss"])
    result["seconds"] = first["seconds"] + later["seconds"]
    return result


# --- 2. on moto, through the handlers as deployed ----------------------------------------------------------

BUCKET = "bench-analytics"
BUS = "bench-bus"


@dataclass
class Calls:
    """Every request each function makes, counted on its own clients (botocore's parameter building: once
    per call, before any retry), with the entries of its ``PutEvents``."""

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    entries: int = 0

    def attach(self, function: str) -> Callable[[str, Any], None]:
        def on_client(service: str, client: Any) -> None:
            client.meta.events.register(
                f"before-parameter-build.{client.meta.service_model.service_id.hyphenize()}",
                lambda params, model, **_: self._count(function, params, model),
            )

        return on_client

    def _count(self, function: str, params: Mapping[str, Any], model: Any) -> None:
        self.requests[(function, model.name)] += 1
        if model.name == "PutEvents":
            self.entries += len(params.get("Entries", ()))

    def take(self) -> dict[str, Any]:
        taken = {
            "requests": {f"{f} {op}": n for (f, op), n in sorted(self.requests.items())},
            "entries": self.entries,
        }
        self.requests, self.entries = Counter(), 0
        return taken


def purchase_calls(purchases: Any, seed: int = SEED) -> Iterator[tuple[str, dict[str, Any], datetime]]:
    """The generated purchases as a back-end reports them (``Order Completed``, revenue, products with
    categories): (user, the call, when it arrived)."""
    import numpy as np

    from shared.analytics.history import day_date

    p = purchases
    rng = np.random.default_rng(seed)
    seconds = rng.integers(0, 86_400, len(p)).tolist()
    entries = np.searchsorted(p.basket_row, np.arange(len(p) + 1)).tolist()
    for row in range(len(p)):
        user = p.customers[int(p.customer[row])]
        at = datetime.combine(day_date(int(p.day[row])), datetime.min.time(), tzinfo=UTC) + timedelta(
            seconds=seconds[row]
        )
        products = [
            {
                "product_id": p.products[int(p.basket_product[j])],
                "category": p.categories[int(p.basket_category[j])],
            }
            for j in range(entries[row], entries[row + 1])
        ]
        call = {
            "userId": user,
            "event": "Order Completed",
            "messageId": str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | row)),
            "timestamp": at.isoformat().replace("+00:00", "Z"),
            "properties": {"revenue": round(float(p.amount[row]), 2), "products": products},
        }
        yield user, call, at + timedelta(seconds=2)


def profile_item(
    user: str, purchases: int, revenue: float, first: datetime, last: datetime
) -> dict[str, Any]:
    """A purchasing contact's profile before its first nightly pass: identity, traits, counts, revenue,
    scores and stage, about the size of the profiles the capacity section measures (its median, 792
    bytes). The apply step's writes are billed on the profile's size."""
    from shared.tracking.timestamps import format_time

    seen = format_time(last)
    return {
        "pk": {"S": f"C#user_id:{user}"},
        "sk": {"S": "PROFILE"},
        "contactId": {"S": f"user_id:{user}"},
        "userId": {"S": user},
        "anonymousIds": {"SS": [f"ajs-{uuid.uuid5(uuid.NAMESPACE_URL, user)}"]},
        "trait:email": {"S": json.dumps(f"{user}@shop.example")},
        "trait:first_name": {"S": json.dumps("Ann")},
        "trait:last_name": {"S": json.dumps("Example")},
        "trait:timezone": {"S": json.dumps("Europe/London")},
        "traitBytes": {"N": "92"},
        "eventCount": {"N": str(purchases * 6)},
        "count:purchase": {"N": str(purchases)},
        "count:page": {"N": str(purchases * 4)},
        "count:identify": {"N": "1"},
        "revenueTotal": {"N": f"{revenue:.2f}"},
        "firstSeenAt": {"S": format_time(first)},
        "lastSeenAt": {"S": seen},
        "lastPurchaseAt": {"S": seen},
        "last:purchase": {"S": seen},
        "last:visit": {"S": seen},
        "score:global:total": {"N": str(purchases * 15)},
        "score:global:sums": {"S": json.dumps({"90d": {"20000": purchases * 5.0}})},
        "stage": {"S": "customer"},
        "stageEnteredAt": {"S": format_time(first)},
        "stageSeq": {"N": "3"},
        "quarter": {"S": f"{last.year}-Q{(last.month - 1) // 3 + 1}"},
        "aggregatedThrough": {"S": f"{purchases:040d}"},
        "lastWriter": {"S": "tracking"},
    }


@contextmanager
def moto_system() -> Iterator[
    tuple[dict[str, str], Any, Any, Calls, Any, Callable[[str, dict[str, Any]], Any]]
]:
    """moto with the tables, the staging bucket and the bus; the nightly job's three functions hosted as
    deployed (their environments, their roles checked on every call), their requests counted. Yields the
    table names, the harness's own DynamoDB and S3 clients, the counts, a meter to install around what it
    should bill, and ``invoke``."""
    from moto import mock_aws

    from bench.capacity import Meter
    from infra.config import DeploymentConfig, environment
    from infra.local.gateway import LambdaContext, load_handler
    from infra.local.moto_dynamodb import serialise
    from infra.local.permissions import function_scope
    from infra.wiring import NIGHTLY_ANALYTICS, function
    from shared import runtime, scope
    from shared.adapters import aws
    from shared.adapters.tables import TABLES, create_table_request

    serialise()
    names = {spec.id: f"bench-{spec.id}" for spec in TABLES}
    calls = Calls()
    config = DeploymentConfig()
    quiet = {
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    with mock_aws(), ExitStack() as stack:
        region = os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
        runtime.reset()
        db = aws.client("dynamodb")
        for spec in TABLES:
            db.create_table(**create_table_request(spec, names[spec.id]))
        aws.client("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": region}
        )
        aws.client("events").create_event_bus(Name=BUS)
        handlers = {}
        for step in NIGHTLY_ANALYTICS.steps:
            spec = function(step.function)
            env = {
                **environment(spec, names, config, {"events": BUS}, bucket_names={"analytics": BUCKET}),
                **quiet,
            }
            scope.host(spec.handler, function_scope(spec, env, client_hooks=(calls.attach(spec.name),)))
            handlers[spec.name] = (load_handler(spec.handler), spec.timeout_seconds)
        stack.callback(scope.unhost_all)
        stack.callback(runtime.reset)
        meter = Meter({names[spec.id]: spec for spec in TABLES})

        def invoke(name: str, payload: dict[str, Any]) -> Any:
            handler, timeout = handlers[name]
            return handler(payload, LambdaContext(f"lifecycle-{name}", "bench", timeout_seconds=timeout))

        yield names, db, aws.client("s3"), calls, meter, invoke


def _backend_items(table: str) -> list[dict[str, Any]]:
    """A table's items as stored (read from moto's backend: not requests)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    from bench.capacity import image

    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][os.environ["AWS_DEFAULT_REGION"]]
    return [image(item) for item in backend.get_table(table).all_items()]


def _write(table: str, items: Sequence[dict[str, Any]]) -> None:
    """The harness's own writes, straight into moto's backend (not requests: nothing counts them)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][os.environ["AWS_DEFAULT_REGION"]]
    for item in items:
        backend.put_item(table, item)


def kept(invoke: Callable[[str, dict[str, Any]], Any], applied: list[dict[str, Any]]) -> Callable[..., Any]:
    """``invoke``, with the apply steps' answers kept in ``applied`` (the workflow keeps only their count)."""

    def run(function: str, payload: dict[str, Any]) -> Any:
        answer = invoke(function, payload)
        if function == "analytics_apply":
            applied.append(answer)
        return answer

    return run


def on_moto(customers: int = MOTO_CUSTOMERS, *, seed: int = SEED) -> dict[str, Any]:
    """The nightly job's three handlers on moto over ``customers`` generated customers' tracked purchases:
    the first night, one day later, and that night again."""
    from bench.capacity import item_size
    from bench.purchases import generate
    from infra.config import DeploymentConfig
    from infra.local.workflow import LocalWorkflow
    from infra.wiring import NIGHTLY_ANALYTICS
    from shared.adapters.contact_items import Retention, event_item
    from shared.contacts.identity import ContactId
    from shared.tracking.messages import parse_calls
    from shared.tracking.timestamps import format_time
    from shared.tracking.wire import Limits

    synthetic = generate(customers, CUTOFF, seed=seed, end=CUTOFF + 1)
    segments = DeploymentConfig().analytics_scan_segments
    nights = []
    with moto_system() as (names, _, s3, calls, meter, invoke):
        started = time.perf_counter()
        items, bought = [], {}
        for user, call, received in purchase_calls(synthetic.purchases, seed):
            (event,) = parse_calls(
                "/v1/track", {**call, "type": "track"}, received_at=received, limits=Limits()
            )
            items.append(
                event_item(
                    ContactId.user(user), event, format_time(received), (), Retention(), uuid.uuid4().hex
                )
            )
            first, last, count, revenue = bought.get(user, (received, received, 0, 0.0))
            bought[user] = (
                min(first, received),
                max(last, received),
                count + 1,
                revenue + float(event.revenue or 0),
            )
        _write(names["events"], items)
        profiles = [profile_item(u, n, r, f, la) for u, (f, la, n, r) in bought.items()]
        _write(names["contacts"], profiles)
        written = time.perf_counter() - started

        profile_bytes = _median([item_size(p) for p in profiles])
        event_bytes = _median([item_size(i) for i in items])
        runs = [("first night", CUTOFF), ("one day later", CUTOFF + 1), ("the same day again", CUTOFF + 1)]
        history: set[tuple[str, str]] = set()
        profile_after = 0
        for label, day in runs:
            calls.take()
            meter.clear()
            cpu, wall = time.process_time(), time.perf_counter()
            applied: list[dict[str, Any]] = []  # the workflow keeps only how many parts it applied
            with meter.installed():
                state = LocalWorkflow(NIGHTLY_ANALYTICS, segments, kept(invoke, applied)).run(
                    run_time(day).isoformat()
                )
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            staged = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"analytics/{state['analytics_fit']['day']}/")
            held = _backend_items(names["contacts"])
            recorded = {(i["pk"]["S"], i["sk"]["S"]) for i in held if i["sk"]["S"].startswith("ANALYTICS#")}
            new, history = recorded - history, recorded
            if not profile_after:  # the profile with its analytics, after the first night
                profile_after = _median([item_size(i) for i in held if i["sk"]["S"] == "PROFILE"])
            extracted, fitted = state["analytics_extract"], state["analytics_fit"]
            assert state["analytics_apply"] == {"parts": len(applied)}, state["analytics_apply"]
            nights.append(
                {
                    "label": label,
                    "day": fitted["day"],
                    "read": sum(e["read"] for e in extracted),
                    "purchases": sum(e["purchases"] for e in extracted),
                    "customers": fitted["customers"],
                    "parts": len(fitted["parts"]),
                    "updated": sum(a["updated"] for a in applied),
                    "announced": sum(a["announced"] for a in applied),
                    "changed": len({pk for pk, _ in new}),
                    "history_items": len(new),
                    "calls": calls.take(),
                    "staged_bytes": sum(o["Size"] for o in staged.get("Contents", [])),
                    "staged_objects": staged.get("KeyCount", 0),
                    "rru": {" ".join(k): v for k, v in meter.by("read", "function", "operation").items()},
                    "wru": {
                        f"{f} {op}{' (transaction)' if t else ''}": v
                        for (f, op, t), v in meter.by(
                            "write", "function", "operation", "transactional"
                        ).items()
                    },
                    "errors": {f"{f} {op} {e}": n for (f, op, e), n in meter.errors.items()},
                    "cpu": cpu,
                    "wall": wall,
                }
            )
    return {
        "customers": customers,
        "segments": segments,
        "index_items": len(items),
        "profile_bytes": profile_bytes,
        "profile_bytes_after": profile_after,
        "event_bytes": event_bytes,
        "written_seconds": written,
        "nights": nights,
    }


# --- 3. a night's cost at 1,000,000 customers, estimated ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prices:
    """List prices, us-east-1 (on-demand DynamoDB, Standard table class; Lambda; Step Functions Standard;
    EventBridge custom events; S3 Standard)."""

    per_million_wru: float = 0.625
    per_million_rru: float = 0.125
    lambda_gb_second_arm: float = 0.0000133334
    lambda_gb_second_x86: float = 0.0000166667
    lambda_per_million_requests: float = 0.20
    per_thousand_transitions: float = 0.025
    per_million_events: float = 1.00
    s3_per_thousand_puts: float = 0.005
    s3_per_thousand_gets: float = 0.0004
    s3_gb_month: float = 0.023


@dataclass(frozen=True, slots=True)
class Latency:
    """What the estimate assumes a request keeps a function waiting (seconds); these are assumptions,
    not measurements: only CPU is measured here."""

    write: float = 0.008
    transaction: float = 0.020
    put_events: float = 0.030
    scan_page: float = 0.100
    s3_object: float = 0.100


#: Lambda's CPU share: a full vCPU at 1,769 MB, in proportion below
FULL_CPU_MB = 1769
#: state transitions: the three states of the run, and per child execution of a Distributed Map its start
#: and its one task state
RUN_TRANSITIONS = 3
CHILD_TRANSITIONS = 2
#: days the staging bucket keeps a night's files (its lifecycle rule)
STAGED_DAYS = ANALYTICS_BUCKET.expire_days


def lambda_seconds(cpu: float, memory_mb: int, waiting: float) -> float:
    """A function's billed duration: the CPU measured here at its memory's share of a vCPU, plus waiting."""
    return cpu / min(1.0, memory_mb / FULL_CPU_MB) + waiting


def night_cost(
    night: Mapping[str, Any],
    customers: int,
    wru: Mapping[str, float],
    prices: Prices = Prices(),
    latency: Latency = Latency(),
) -> dict[str, Any]:
    """One night at ``customers`` from what part 1 counted at that size (``night``) and the write units a
    contact costs on moto (``wru``: ``changed``, ``unchanged``): dollars by service, and how they came."""
    from infra.wiring import function

    changed = night["apply"]["changed"]
    unchanged = night["customers"] - changed
    write_units = changed * wru["changed"] + unchanged * wru["unchanged"]
    read_units = night["scan"]["read_units"]
    requests = night["apply"]["requests"]
    parts, segments = night["parts"], night["segments"]
    steps = night["steps"]
    memory = {name: function(name).memory_mb for name in steps}
    waiting = {
        "analytics_extract": night["scan"]["requests"] * latency.scan_page + segments * latency.s3_object,
        "analytics_fit": (segments + parts) * latency.s3_object,
        # a part's contacts, and its announcements' batches, are sent APPLY_WORKERS at a time
        "analytics_apply": (
            requests.get("UpdateItem", 0) * latency.write
            + requests.get("GetItem", 0) * latency.write
            + requests.get("TransactWriteItems", 0) * latency.transaction
            + night["put_events"] * latency.put_events
        )
        / APPLY_WORKERS
        + parts * latency.s3_object,
    }
    seconds = {name: lambda_seconds(steps[name]["cpu"], memory[name], waiting[name]) for name in steps}
    gb_seconds = {name: seconds[name] * memory[name] / 1024 for name in steps}
    x86 = {name for name in steps if function(name).architecture == "x86_64"}
    invocations = segments + 1 + parts
    transitions = RUN_TRANSITIONS + CHILD_TRANSITIONS * (segments + parts)
    staged = night["staged"]["purchases_gzip"] + night["staged"]["scores_gzip"]
    dollars = {
        "DynamoDB writes": write_units / 1e6 * prices.per_million_wru,
        "DynamoDB reads": read_units / 1e6 * prices.per_million_rru,
        "Lambda": sum(
            gb * (prices.lambda_gb_second_x86 if name in x86 else prices.lambda_gb_second_arm)
            for name, gb in gb_seconds.items()
        )
        + invocations / 1e6 * prices.lambda_per_million_requests,
        "Step Functions": transitions / 1000 * prices.per_thousand_transitions,
        "EventBridge": night["announced"] / 1e6 * prices.per_million_events,
        "S3": (segments + parts) / 1000 * prices.s3_per_thousand_puts
        + (segments + parts) / 1000 * prices.s3_per_thousand_gets
        + staged / 1024**3 * prices.s3_gb_month * STAGED_DAYS / 30,
    }
    return {
        "customers": customers,
        "changed": changed,
        "write_units": write_units,
        "read_units": read_units,
        "seconds": seconds,
        "gb_seconds": gb_seconds,
        "memory": memory,
        "transitions": transitions,
        "invocations": invocations,
        "announced": night["announced"],
        "staged": staged,
        "dollars": dollars,
        "total": sum(dollars.values()),
    }


def write_units_per_contact(moto: Mapping[str, Any]) -> dict[str, float]:
    """Write units a contact costs a night on moto: ``changed`` from the first night (every contact new:
    the refused write, the transaction with its history, the marking), ``unchanged`` from the second
    night's (its changed contacts taken out at the first night's rate)."""
    first, second = moto["nights"][0], moto["nights"][1]
    changed = sum(first["wru"].values()) / max(first["updated"], 1)
    moved = second["changed"]
    rest = max(second["customers"] - moved, 1)
    unchanged = (sum(second["wru"].values()) - moved * changed) / rest
    return {"changed": changed, "unchanged": unchanged}


# --- the section ---------------------------------------------------------------------------------------------


def child(
    customers: int, day: int = CUTOFF, *, held: Path | None = None, keep: Path | None = None
) -> dict[str, Any]:
    """``in_process`` in an interpreter of its own (its memory is its own, and given back)."""
    command = [sys.executable, "-m", "bench.nightly", "in-process", str(customers), str(day)]
    command += ["--held", str(held)] if held else []
    command += ["--keep", str(keep)] if keep else []
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command[2:])} failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _mb(value: float) -> str:
    return f"{value / 1e6:,.1f} MB"


def _gb(value: float) -> str:
    return f"{value / 1024**3:.2f} GiB"


def _seconds(step: Mapping[str, float]) -> str:
    return f"{step['cpu']:,.1f} / {step['wall']:,.1f}"


def _per(count: float, of: float, digits: int = 2) -> str:
    return f"{count / of:.{digits}f}" if of else "-"


def in_process_rows(scales: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """The in-process table: its column heads and its rows (one column per size and night)."""
    columns = [(r, n) for r in scales for n in r["nights"]]
    heads = [
        f"{r['customers']:,}, {'first night' if i == 0 else 'one day later'}"
        for r in scales
        for i, _ in enumerate(r["nights"])
    ]

    def row(label: str, value: Callable[[Mapping[str, Any], Mapping[str, Any]], str]) -> str:
        return f"| {label} | " + " | ".join(value(r, n) for r, n in columns) + " |"

    def within(n: Mapping[str, Any], *names: str) -> float:
        return sum(n["within"].get(name, 0.0) for name in names)

    rows = [
        row("customers scored", lambda r, n: f"{n['customers']:,}"),
        row(
            "purchase index items read (per customer)",
            lambda r, n: f"{n['read']:,} ({n['read'] / n['customers']:.2f})",
        ),
        row(
            f"Scan requests, {scales[0]['segments']} segments of 1 MB pages (per 1,000 customers)",
            lambda r, n: f"{n['scan']['requests']:,} ({1000 * n['scan']['requests'] / n['customers']:.2f})",
        ),
        row(
            "read units (per customer; index entry {:.0f} bytes)".format(scales[0]["entry_bytes"]),
            lambda r, n: f"{n['scan']['read_units']:,.0f} ({n['scan']['read_units'] / n['customers']:.4f})",
        ),
        row("**extract**: CPU / wall s (16 runs)", lambda r, n: _seconds(n["steps"]["analytics_extract"])),
        row(
            "&nbsp;&nbsp;of which the index stand-in building the pages",
            lambda r, n: f"{n['scan']['seconds']:,.1f}",
        ),
        row(
            "&nbsp;&nbsp;of which staging the JSON (the fake)",
            lambda r, n: f"{within(n, 'staging.save_purchases'):,.1f}",
        ),
        row(
            "&nbsp;&nbsp;most memory one run added",
            lambda r, n: _mb(n["steps"]["analytics_extract"]["peak_rise"]),
        ),
        row("**fit**: CPU / wall s", lambda r, n: _seconds(n["steps"]["analytics_fit"])),
        row(
            "&nbsp;&nbsp;of which reading the staged purchases (validated)",
            lambda r, n: f"{within(n, 'staging.purchases'):,.1f}",
        ),
        row("&nbsp;&nbsp;of which `score` (the models)", lambda r, n: f"{within(n, 'score'):,.1f}"),
        row(
            "&nbsp;&nbsp;of which the purchase histories and the scores' files",
            lambda r, n: (
                f"{n['steps']['analytics_fit']['cpu'] - within(n, 'staging.purchases', 'score'):,.1f}"
            ),
        ),
        row(
            "&nbsp;&nbsp;memory it added (the process's peak)",
            lambda r, n: (
                f"{_gb(n['steps']['analytics_fit']['peak_rise'])} ({_gb(n['steps']['analytics_fit']['peak'])})"
            ),
        ),
        row(
            "staged purchases: JSON / gzip",
            lambda r, n: f"{_mb(n['staged']['purchases_json'])} / {_mb(n['staged']['purchases_gzip'])}",
        ),
        row(
            "staged scores: JSON / gzip",
            lambda r, n: f"{_mb(n['staged']['scores_json'])} / {_mb(n['staged']['scores_gzip'])}",
        ),
        row("parts (apply runs)", lambda r, n: f"{n['parts']}"),
        row("**apply**: CPU / wall s", lambda r, n: _seconds(n["steps"]["analytics_apply"])),
        row(
            "&nbsp;&nbsp;of which the fakes (store, bus, staging)",
            lambda r, n: (
                f"{within(n, 'store.record', 'store.unpublished', 'store.mark_published', 'bus.announce', 'staging.scores'):,.1f}"
            ),
        ),
        row(
            "contacts changed (announcements)", lambda r, n: f"{n['apply']['changed']:,} ({n['announced']:,})"
        ),
        row(
            "DynamoDB requests per contact: UpdateItem + TransactWriteItems + GetItem",
            lambda r, n: " + ".join(
                _per(n["apply"]["requests"].get(op, 0), n["customers"], 3)
                for op in ("UpdateItem", "TransactWriteItems", "GetItem")
            ),
        ),
        row("PutEvents per announcement", lambda r, n: _per(n["put_events"], n["announced"], 2)),
        row(
            "**the night**: CPU per customer",
            lambda r, n: f"{1e6 * sum(m['cpu'] for m in n['steps'].values()) / n['customers']:,.0f} µs",
        ),
    ]
    return heads, rows


def moto_rows(moto: Mapping[str, Any], predicted: Mapping[str, Any]) -> list[str]:
    rows = []
    fakes = [*predicted["nights"], None]  # the fakes ran the first two nights
    for night, fake in zip(moto["nights"], fakes, strict=True):
        customers = night["customers"]
        requests = night["calls"]["requests"]
        dynamodb = {
            op: n
            for key, n in requests.items()
            for f, op in [key.split(" ", 1)]
            if f == "analytics_apply" and op in ("UpdateItem", "TransactWriteItems", "GetItem")
        }
        scans = requests.get("analytics_extract Scan", 0)
        s3 = sum(
            n
            for key, n in requests.items()
            if key.split(" ", 1)[1] in ("PutObject", "GetObject", "ListObjectsV2")
        )
        announced = night["announced"]
        counted = " + ".join(
            _per(dynamodb.get(op, 0), customers, 3) for op in ("UpdateItem", "TransactWriteItems", "GetItem")
        )
        expected = (
            " + ".join(
                _per(fake["apply"]["requests"].get(op, 0), fake["customers"], 3)
                for op in ("UpdateItem", "TransactWriteItems", "GetItem")
            )
            if fake
            else "-"
        )
        rows.append(
            f"| {night['label']} | {night['updated']:,} | {night['changed']:,} ({announced:,}) | "
            f"{scans} ({1000 * scans / customers:.2f}) | {night['read'] / customers:.2f} | "
            f"{night['rru'].get('analytics_extract Scan', 0.0) / customers:.4f} | {counted} | {expected} | "
            f"{sum(night['wru'].values()) / customers:.2f} | "
            f"{_per(requests.get('analytics_apply PutEvents', 0), announced)} | {s3} | "
            f"{night['cpu']:.0f} / {night['wall']:.0f} |"
        )
    return rows


def cost_rows(costs: Sequence[Mapping[str, Any]]) -> tuple[list[str], str]:
    services = list(costs[0]["dollars"])
    rows = [
        f"| {service} | " + " | ".join(f"${c['dollars'][service]:,.3f}" for c in costs) + " |"
        for service in services
    ]
    rows.append("| **a night** | " + " | ".join(f"**${c['total']:,.2f}**" for c in costs) + " |")
    basis = " | ".join(
        f"{c['write_units'] / 1e6:,.2f} M WRU, {c['read_units'] / 1e3:,.0f} k RRU; "
        + ", ".join(
            f"{name.removeprefix('analytics_')} {c['gb_seconds'][name]:,.0f} GB-s" for name in c["gb_seconds"]
        )
        + f"; {c['transitions']} transitions; {c['announced']:,} events; {c['invocations']} invocations"
        for c in costs
    )
    return rows, basis


def _price(value: float) -> str:
    return f"${value:.10f}".rstrip("0").rstrip(".")


#: a need above this share of a function's memory or timeout is reported as near its limit
MARGIN = 0.8


def _against(need: float, limit: float) -> str:
    if need > limit:
        return "**over**"
    return "within" if need <= MARGIN * limit else "**near**"


def verdicts(
    largest: Mapping[str, Any], baselines: Mapping[str, int], costs: Sequence[Mapping[str, Any]]
) -> list[str]:
    """What the measured figures say of each step's memory and timeout at the largest size (the larger of
    the two nights)."""
    from infra.wiring import function

    lines = []
    nights = largest["nights"]
    for name in ("analytics_extract", "analytics_fit", "analytics_apply"):
        spec = function(name)
        grew = max(n["steps"][name]["peak_rise"] for n in nights)
        measured = all(n["steps"][name].get("measured") for n in nights)
        need = baselines.get(name, 0) + grew
        runs = [
            n["segments"]
            if name == "analytics_extract"
            else 1
            if name == "analytics_fit"
            else max(n["parts"], 1)
            for n in nights
        ]
        seconds = max(c["seconds"][name] / r for c, r in zip(costs, runs, strict=True))
        memory = (
            f"memory at least {need / 1024**2:,.0f} MB ({baselines[name] / 1024**2:,.0f} MB loaded before its work, "
            f"{grew / 1024**2:,.0f} MB while it ran{' its largest segment' if name == 'analytics_extract' else ''}): "
            f"{_against(need, spec.memory_mb * 1024**2)} its {spec.memory_mb:,} MB; "
            if name in baselines and measured
            else ""
        )
        lines.append(
            f"`{name}`: {memory}about {seconds:,.0f} s a run (estimated, below): "
            f"{_against(seconds, spec.timeout_seconds)} its {spec.timeout_seconds} s"
        )
    return lines


def section(
    where: str,
    scales: Sequence[Mapping[str, Any]],
    predicted: Mapping[str, Any],
    moto: Mapping[str, Any],
    costs: Sequence[Mapping[str, Any]],
    wru: Mapping[str, float],
    baselines: Mapping[str, int],
    minutes: float,
) -> str:
    heads, rows = in_process_rows(scales)
    largest = scales[-1]
    first, later = largest["nights"]
    extract, apply = first["steps"]["analytics_extract"], first["steps"]["analytics_apply"]
    cost_lines, basis = cost_rows(costs)
    prices, latency = Prices(), Latency()
    fakes_in_extract = first["scan"]["seconds"] + first["within"].get("staging.save_purchases", 0.0)
    fakes_in_apply = sum(
        first["within"].get(k, 0.0)
        for k in (
            "store.record",
            "store.unpublished",
            "store.mark_published",
            "bus.announce",
            "staging.scores",
        )
    )
    checks = "\n".join(f"  - {line}" for line in verdicts(largest, baselines, costs))
    return f"""
Measured by `python -m bench nightly` (also part of `make bench`) on {where}; the section took
{minutes:.0f} minutes here. The machine's two CPUs are shared with other work: CPU seconds are the figures to
compare, wall seconds what it took.

**The whole population in-process** (`bench/nightly.py`): customers generated by `bench/purchases.py`
(regular buyers of consumables, Poisson buyers, one-off buyers of kitchen appliances, with products and
categories; {largest["purchase_days"] / largest["customers"]:.1f} purchase days per customer), the three steps run
by the local workflow runner through the real use cases: extract for each of {largest["segments"]} segments, fit,
apply for each part of {largest["part_size"]:,} customers. Staging, the contacts' analytics and the bus are the
fakes of `tests/fakes.py`. The purchase index is a stand-in for DynamoDB's Scan of `byPurchase`, served to the
real adapter (`DynamoPurchaseScan`) page by page by DynamoDB's rules (segments by a hash of the partition key,
at most 1 MB of index entries a page, read units of 4 KB halved): the fake scan reads the fake event log, which
would hold {largest["purchase_days"]:,} tracked events. The first night every contact is new; one day later is the
next night (with that day's purchases). Each night runs in an interpreter of its own (the contacts' analytics
handed on in a file), as each step runs in a Lambda function of its own; a step's memory is how much the
process grew while it ran (its peak resident set over what it held before: at least what the step needs).

| | {" | ".join(heads)} |
|---|{"---|" * len(heads)}
{chr(10).join(rows)}

- **Items read per customer** are the customer's purchase days in the index, each read once a night:
  {first["read"] / first["customers"]:.2f} at {first["customers"]:,} customers, in
  {1000 * first["scan"]["requests"] / first["customers"]:.2f} Scan requests per 1,000 customers
  ({first["scan"]["requests"] / largest["segments"]:.0f} pages a segment).
- **Time**: a night at {largest["customers"]:,} customers is {sum(m["cpu"] for m in first["steps"].values()) / 60:.0f}
  minutes of CPU here, the next night {sum(m["cpu"] for m in later["steps"].values()) / 60:.0f}. In AWS the
  extract's {largest["segments"]} segments run side by side ({extract["cpu"] / largest["segments"]:.0f} s of CPU each
  here), the apply's {first["parts"]} parts 10 at a time ({apply["cpu"] / first["parts"]:.1f} s of CPU each here,
  waiting on DynamoDB much longer), the fit once ({first["steps"]["analytics_fit"]["cpu"]:.0f} s).
- **Memory and timeouts at {largest["customers"]:,}** (a step's memory: what its handler and libraries take in
  a fresh interpreter, plus what it grew by here; "near": above {MARGIN:.0%} of the limit):
{checks}
- **Changes are rare after the first night**: {later["apply"]["changed"]:,} of {later["customers"]:,} contacts
  ({later["apply"]["changed"] / later["customers"]:.2%}) changed segment or risk level one day later
  ({later["announced"]:,} announcements); every other contact cost one conditional `UpdateItem`.
- **The fakes' share**: the page stand-in and the staging fake are {fakes_in_extract / max(extract["cpu"], 1e-9):.0%}
  of the extract's CPU (in Lambda botocore parses the pages, and gzip compresses the file: that gzip took
  {first["staged"]["gzip_cpu"]:.0f} s of CPU for all the night's files at this size); the fake store and bus are
  {fakes_in_apply / max(apply["cpu"], 1e-9):.0%} of the apply's. They do not dominate: the adapter's parsing and
  validation, the histories and the models do.

**On moto, through the handlers as deployed** ({moto["customers"]:,} customers; {moto["index_items"]:,}
purchases written as tracking writes them, event items with `purchasedAt` and `basket`, so the sparse index
holds them; median event item {moto["event_bytes"]:,.0f} bytes; median profile {moto["profile_bytes"]:,.0f} bytes
before the first night, {moto["profile_bytes_after"]:,.0f} with its analytics). Each function runs in its own
scope with its environment and role; every request is counted on its own clients and billed by
`bench.capacity`'s meter. "The fakes predicted" is part 1's count for the same population:

| night | contacts written | changed (announcements) | Scan requests (per 1,000 customers) | index items read per customer | RRU per customer | DynamoDB requests per contact: UpdateItem + TransactWriteItems + GetItem | the fakes predicted | WRU per contact | PutEvents per announcement | S3 requests | CPU / wall s |
|---|---|---|---|---|---|---|---|---|---|---|---|
{chr(10).join(moto_rows(moto, predicted))}

moto ends a Scan page at 1 MB of whole event items (DynamoDB at 1 MB of index entries, as the stand-in does),
so it makes more pages than DynamoDB would ({predicted["nights"][0]["scan"]["requests"]} for these customers by
DynamoDB's rule); the items and read units do not depend on it (moto's meter billed
{moto["nights"][0]["rru"].get("analytics_extract Scan", 0.0):,.1f} read units a night, the stand-in of part 1
{predicted["nights"][0]["scan"]["read_units"]:,.1f}). A contact that changed
costs {wru["changed"]:.1f} write units (the refused conditional write, the transaction of the profile with its
history items, the transaction marking them published), one that did not {wru["unchanged"]:.2f} (one `UpdateItem`
of the profile; a profile over 1 KB with its analytics would cost 2).

**Estimated cost of a night at {largest["customers"]:,} customers**: an estimate from the counts measured above
and list prices (us-east-1): DynamoDB on-demand {_price(prices.per_million_wru)} per million write units and
{_price(prices.per_million_rru)} per million read units; Lambda {_price(prices.lambda_gb_second_arm)} per GB-second on
arm64 (extract, apply) and {_price(prices.lambda_gb_second_x86)} on x86_64 (fit), {_price(prices.lambda_per_million_requests)}
per million requests; Step Functions {_price(prices.per_thousand_transitions)} per 1,000 state transitions
({RUN_TRANSITIONS} for the run, {CHILD_TRANSITIONS} per child execution of a Distributed Map); EventBridge
{_price(prices.per_million_events)} per million events; S3 {_price(prices.s3_per_thousand_puts)} per 1,000 PUTs,
{_price(prices.s3_per_thousand_gets)} per 1,000 GETs, {_price(prices.s3_gb_month)} per GB-month, files kept
{STAGED_DAYS} days. Write units: {wru["changed"]:.1f} per contact that changed and {wru["unchanged"]:.2f} per contact
that did not (moto), for the contacts that changed at {largest["customers"]:,}. Lambda durations are the CPU
measured in-process at the function's share of a vCPU (its memory / {FULL_CPU_MB} MB), plus waits that are
assumed, not measured: {latency.write * 1000:.0f} ms per single-item write, {latency.transaction * 1000:.0f} ms per
transaction, {latency.put_events * 1000:.0f} ms per `PutEvents` (the apply waits on {APPLY_WORKERS} contacts at once), {latency.scan_page * 1000:.0f} ms per Scan page,
{latency.s3_object * 1000:.0f} ms per S3 object.

| | first night (every contact new) | a night later ({later["apply"]["changed"]:,} changed) |
|---|---|---|
{chr(10).join(cost_lines)}
| counted | {basis} |

A month of nights like the second costs about ${30 * costs[-1]["total"]:,.0f}; the first night, once, about
${costs[0]["total"]:,.2f}, {costs[0]["dollars"]["DynamoDB writes"] / costs[0]["total"]:.0%} of it the write units of
{largest["customers"]:,} contacts new to the analytics and {costs[0]["dollars"]["EventBridge"] / costs[0]["total"]:.0%} their
{costs[0]["announced"]:,} announcements.
"""


#: what each step has loaded when it starts its work: its handler, and (the fit) the models it imports
LOADED = {
    "analytics_extract": "import functions.analytics_extract.handler, shared.adapters.purchase_index",
    "analytics_fit": "import functions.analytics_fit.handler, shared.analytics.scoring",
    "analytics_apply": "import functions.analytics_apply.handler, shared.adapters.analytics_store",
}


def loaded(name: str) -> int:
    """The resident set (bytes) of a fresh interpreter that loaded the step's handler, its AWS client and
    (the fit) the models: what the step holds before its work, as a Lambda instance does."""
    code = (
        f"{LOADED[name]}\nimport boto3\nboto3.client('dynamodb', region_name='us-east-1')\n"
        "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS:')))"
    )
    try:
        return int(python_child(code, dict(os.environ)) * 1024)
    except (subprocess.CalledProcessError, ValueError, StopIteration):
        return 0


def run(where: str) -> str:
    """The section; a size that cannot run is reported, and fails nothing else."""
    started = time.perf_counter()
    scales = []
    for customers in SCALES:
        result = two_nights(customers)
        scales.append(result)
        for n in result["nights"]:
            steps = ", ".join(
                f"{k.removeprefix('analytics_')} {v['cpu']:.0f} s CPU" for k, v in n["steps"].items()
            )
            print(
                f"nightly: {customers:,} customers, {n['day']}: {steps}; {n['read'] / n['customers']:.2f} items read "
                f"per customer; {n['apply']['changed']:,} changed; fit added {_gb(n['steps']['analytics_fit']['peak_rise'])}",
                flush=True,
            )
    predicted = two_nights(MOTO_CUSTOMERS)
    moto = on_moto(MOTO_CUSTOMERS)
    for n in moto["nights"]:
        print(f"nightly: moto {MOTO_CUSTOMERS:,}, {n['label']}: {n['calls']['requests']}", flush=True)
    wru = write_units_per_contact(moto)
    baselines = {name: loaded(name) for name in LOADED}
    print(f"nightly: loaded before a step: {baselines}", flush=True)
    costs = [night_cost(n, scales[-1]["customers"], wru) for n in scales[-1]["nights"]]
    for c in costs:
        print(
            f"nightly: estimated ${c['total']:.2f} a night at {c['customers']:,} ({c['dollars']})", flush=True
        )
    return section(
        where, scales, predicted, moto, costs, wru, baselines, (time.perf_counter() - started) / 60
    )


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def _max_rss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments[:1] == ["in-process"]:
        options = dict(zip(arguments[3::2], arguments[4::2], strict=True))
        result = in_process(
            int(arguments[1]),
            int(arguments[2]),
            held=Path(options["--held"]) if "--held" in options else None,
            keep=Path(options["--keep"]) if "--keep" in options else None,
        )
        print(json.dumps(result), flush=True)
