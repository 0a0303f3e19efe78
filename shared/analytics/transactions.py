"""Transactions and scores as CSV: what the ``lifecycle-analytics`` command reads and writes, and what the
nightly fit reads the same way.

``read_transactions`` takes CSV text with a header naming ``customer_id``, ``timestamp`` and ``amount``
(optionally ``product`` and ``category``; in any order; other columns are ignored) and gives the
purchase histories. Every row is checked, and the first bad one raises ``BadTransactions`` naming the
line, the column and what is wrong with it (never another row's data).

``write_scores`` writes one ``CustomerScore`` per line under ``SCORE_COLUMNS``; ``read_scores`` reads
that back.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from typing import Protocol, TextIO

from pydantic import ValidationError

from shared.analytics.facts import SEGMENT_NAMES, CustomerScore
from shared.analytics.history import EPOCH, Purchase, Purchases
from shared.analytics.rfm import RfmSettings

REQUIRED_COLUMNS = ("customer_id", "timestamp", "amount")
OPTIONAL_COLUMNS = ("product", "category")
SCORE_COLUMNS = (
    "customer_id",
    "p_no_purchase",
    "churn_risk",
    "risk_level",
    "expected_next_purchase",
    "typical_gap_days",
    "r",
    "f",
    "m",
    "segment",
)
#: A plain decimal number: digits with an optional point and exponent (no sign words, no NaN, no separators).
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_EPOCH_ORDINAL = EPOCH.toordinal()
_SEGMENT_IDS = {name: segment for segment, name in SEGMENT_NAMES.items()}
#: How much of a bad value a message quotes.
_QUOTED = 40


class _CsvReader(Protocol):
    """What ``csv.reader`` returns, as far as it is used here."""

    line_num: int

    def __next__(self) -> list[str]: ...


class BadTransactions(ValueError):
    """The transactions cannot be read: the message names the line, the column and the problem."""


class BadScores(ValueError):
    """A scores file cannot be read: the message names the line and the problem."""


def read_transactions(lines: Iterable[str], *, until: int | None = None) -> Purchases:
    """The purchase histories of CSV text (a header, then one purchase or order line per row; blank lines
    are skipped). Every row is checked; with ``until`` (a day number) only rows on or before that day are
    kept."""
    customer_ids: list[str] = []
    days: list[int] = []
    amounts: list[float] = []
    products: list[str | None] = []
    categories: list[str | None] = []
    for row in _purchases(lines, until):
        customer_ids.append(row.customer_id)
        days.append(row.day)
        amounts.append(row.amount)
        products.append(row.product)
        categories.append(row.category)
    return Purchases.from_columns(customer_ids, days, amounts, products, categories)


def _records(reader: _CsvReader, bad: type[ValueError]) -> Iterator[list[str]]:
    """The reader's records; what the csv module refuses (a field longer than its limit, a quote in the
    wrong place) as ``bad`` naming the line, never the data."""
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            line = reader.line_num
            if "field larger than field limit" in str(error):
                raise bad(
                    f"line {line}: a field is longer than {csv.field_size_limit():,} characters"
                ) from None
            raise bad(f"line {line}: not valid CSV ({error})") from None
        yield fields


def _purchases(lines: Iterable[str], until: int | None) -> Iterator[Purchase]:
    reader = csv.reader(lines)
    records = _records(reader, BadTransactions)
    header = next(records, None)
    if header is None:
        raise BadTransactions(
            "the transactions are empty: expected a header with customer_id,timestamp,amount"
        )
    names = [name.strip().lstrip("\ufeff").lower() for name in header]
    duplicated = sorted({name for name in names if names.count(name) > 1 and name})
    if duplicated:
        raise BadTransactions(f"the header names column {duplicated[0]!r} twice")
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise BadTransactions(
            f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}: the header needs "
            f"customer_id,timestamp,amount (optionally product,category)"
        )
    width = len(names)
    who, when, how_much = (names.index(name) for name in REQUIRED_COLUMNS)
    product = names.index("product") if "product" in names else None
    category = names.index("category") if "category" in names else None
    days: dict[str, int] = {}  # a date without a time is usually repeated: parse it once
    for fields in records:
        if not fields:
            continue
        line = reader.line_num
        if len(fields) != width:
            raise BadTransactions(f"line {line}: {len(fields)} fields, but the header has {width}")
        customer_id = fields[who].strip()
        if not customer_id:
            raise BadTransactions(f"line {line}: customer_id is empty")
        text = fields[when].strip()
        day = days.get(text)
        if day is None:
            day = _day(text, line)
            if len(text) <= 10 and len(days) < 100_000:
                days[text] = day
        amount = _amount(fields[how_much].strip(), line)
        if until is not None and day > until:
            continue
        yield Purchase(
            customer_id=customer_id,
            day=day,
            amount=amount,
            product=(fields[product].strip() or None) if product is not None else None,
            category=(fields[category].strip() or None) if category is not None else None,
        )


def _day(text: str, line: int) -> int:
    """The UTC day of an ISO 8601 date or date-time (an offset is converted to UTC; no offset is UTC)."""
    if not text:
        raise BadTransactions(f"line {line}: timestamp is empty")
    try:
        if len(text) <= 10:
            return date.fromisoformat(text).toordinal() - _EPOCH_ORDINAL
        when = datetime.fromisoformat(text)
    except ValueError:
        raise BadTransactions(
            f"line {line}: timestamp {_quote(text)} is not an ISO 8601 date or date-time "
            "(e.g. 2024-05-01 or 2024-05-01T09:30:00+02:00)"
        ) from None
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.date().toordinal() - _EPOCH_ORDINAL


def _amount(text: str, line: int) -> float:
    if not text:
        raise BadTransactions(f"line {line}: amount is empty")
    if not _DECIMAL.fullmatch(text):
        raise BadTransactions(f"line {line}: amount {_quote(text)} is not a decimal number (e.g. 49.90)")
    value = float(text)
    if not math.isfinite(value):
        raise BadTransactions(f"line {line}: amount {_quote(text)} is too large")
    if value < 0:
        raise BadTransactions(f"line {line}: amount {_quote(text)} is negative (amounts are 0 or more)")
    return value + 0.0  # -0 is 0


def _quote(text: str) -> str:
    return repr(text if len(text) <= _QUOTED else text[:_QUOTED] + "...")


def write_scores(rows: Iterable[CustomerScore], out: TextIO) -> None:
    """The scores as CSV under ``SCORE_COLUMNS``: probabilities with 6 decimals, the typical gap in days
    with 1, the expected next purchase as an ISO date, the segment by its display name ("At Risk");
    empty where unknown."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SCORE_COLUMNS)
    for row in rows:
        writer.writerow(
            (
                row.customer_id,
                f"{row.p_no_purchase:.6f}",
                f"{row.churn_risk:.6f}",
                row.risk_level,
                row.expected_next_purchase.isoformat() if row.expected_next_purchase else "",
                "" if row.typical_gap_days is None else f"{row.typical_gap_days:.1f}",
                "" if row.r is None else row.r,
                "" if row.f is None else row.f,
                "" if row.m is None else row.m,
                "" if row.segment is None else SEGMENT_NAMES[row.segment],
            )
        )


def read_scores(lines: Iterable[str], *, premium_m: int = RfmSettings().premium_m) -> Iterator[CustomerScore]:
    """The rows ``write_scores`` wrote (``premium``, not a column, is ``m >= premium_m`` again)."""
    reader = csv.reader(lines)
    records = _records(reader, BadScores)
    header = next(records, None)
    if header is None or tuple(name.strip().lstrip("\ufeff") for name in header) != SCORE_COLUMNS:
        raise BadScores(f"the scores need the header {','.join(SCORE_COLUMNS)}")
    for fields in records:
        if not fields:
            continue
        line = reader.line_num
        if len(fields) != len(SCORE_COLUMNS):
            raise BadScores(f"line {line}: {len(fields)} fields, but the header has {len(SCORE_COLUMNS)}")
        values: dict[str, str | None] = {
            name: (value.strip() or None) for name, value in zip(SCORE_COLUMNS, fields, strict=True)
        }
        segment = values["segment"]
        if segment is not None:
            if segment not in _SEGMENT_IDS:
                raise BadScores(f"line {line}: segment {_quote(segment)} is not an RFM segment")
            values["segment"] = _SEGMENT_IDS[segment]
        try:
            score = CustomerScore.model_validate(values)
        except ValidationError as error:
            problem = error.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            raise BadScores(f"line {line}: {where}: {problem['msg']}") from None
        yield score.model_copy(update={"premium": score.m is not None and score.m >= premium_m})
