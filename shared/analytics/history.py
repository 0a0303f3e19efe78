"""Purchase histories as arrays: one row per customer and purchase day, and summaries at a cut-off.

Every model reads these. A day is a whole UTC day, counted from 1970-01-01; several purchases on one day
are one transaction (the BTYD convention: the models count purchase occasions, not order lines), with
the day's amounts summed and the products and categories of all of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np

EPOCH = date(1970, 1, 1)


def day_number(when: date | datetime) -> int:
    """The day a time falls on (UTC), counted from 1970-01-01."""
    if isinstance(when, datetime):
        when = (when if when.tzinfo is None else when.astimezone(UTC)).date()
    return (when - EPOCH).days


def day_date(number: int) -> date:
    return date.fromordinal(EPOCH.toordinal() + int(number))


@dataclass(frozen=True, slots=True)
class Purchase:
    """One input row: an order (or an order line: rows of one customer and day are added up)."""

    customer_id: str
    day: int
    amount: float
    product: str | None = None
    category: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Purchases:
    """Purchase days, sorted by customer, then day.

    ``customer[i]`` indexes ``customers``; ``day[i]`` and ``amount[i]`` are that customer's day and the
    day's total. What was bought that day is in the basket arrays: ``basket_row[j]`` is the row,
    ``basket_product[j]`` and ``basket_category[j]`` index ``products`` and ``categories`` (-1: not
    given). A row has at most one basket entry per distinct (product, category).
    """

    customers: tuple[str, ...]
    customer: np.ndarray
    day: np.ndarray
    amount: np.ndarray
    products: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    basket_row: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    basket_product: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    basket_category: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @classmethod
    def from_rows(cls, rows: Iterable[Purchase]) -> Purchases:
        """Rows in any order, any number per customer and day. Customers are numbered in id order, so
        the result does not depend on the rows' order."""
        customer_ids: list[str] = []
        days: list[int] = []
        amounts: list[float] = []
        products: list[str | None] = []
        categories: list[str | None] = []
        for row in rows:
            customer_ids.append(row.customer_id)
            days.append(row.day)
            amounts.append(row.amount)
            products.append(row.product)
            categories.append(row.category)
        return cls.from_columns(customer_ids, days, amounts, products, categories)

    @classmethod
    def from_columns(
        cls,
        customer_ids: Sequence[str],
        days: Sequence[int] | np.ndarray,
        amounts: Sequence[float] | np.ndarray,
        products: Sequence[str | None] | None = None,
        categories: Sequence[str | None] | None = None,
    ) -> Purchases:
        """The same as ``from_rows``, from columns (one entry per input row), vectorised: a few million rows
        take seconds."""
        count = len(customer_ids)
        customers = tuple(sorted(set(customer_ids)))
        if not count:
            return cls(customers=(), customer=_ints(()), day=_ints(()), amount=np.zeros(0))
        code = {c: i for i, c in enumerate(customers)}
        customer = np.fromiter((code[c] for c in customer_ids), dtype=np.int64, count=count)
        day = np.asarray(days, dtype=np.int64)
        amount = np.asarray(amounts, dtype=np.float64)
        first_day = int(day.min())
        span = int(day.max()) - first_day + 1
        # one row per (customer, day), in customer then day order: the keys sort that way
        keys, row_of = np.unique(customer * span + (day - first_day), return_inverse=True)
        totals = np.bincount(row_of, weights=amount, minlength=len(keys))
        product_names, product_code = _coded(products, count)
        category_names, category_code = _coded(categories, count)
        bought = (product_code >= 0) | (category_code >= 0)
        width = len(category_names) + 1
        depth = (len(product_names) + 1) * width
        basket = np.unique(
            row_of[bought] * depth + (product_code[bought] + 1) * width + category_code[bought] + 1
        )
        return cls(
            customers=customers,
            customer=keys // span,
            day=keys % span + first_day,
            amount=totals,
            products=product_names,
            categories=category_names,
            basket_row=basket // depth,
            basket_product=(basket % depth) // width - 1,
            basket_category=basket % width - 1,
        )

    def __len__(self) -> int:
        return len(self.day)

    def until(self, cutoff: int) -> Purchases:
        """Only what happened on or before day ``cutoff``: the customers who bought by then (renumbered,
        still in id order), their purchase days up to it, and those days' baskets."""
        keep = self.day <= cutoff
        if keep.all():
            return self
        kept_customers = np.flatnonzero(np.bincount(self.customer[keep], minlength=len(self.customers)))
        renumber = np.full(len(self.customers), -1, dtype=np.int64)
        renumber[kept_customers] = np.arange(len(kept_customers))
        row_map = np.full(len(self.day), -1, dtype=np.int64)
        row_map[keep] = np.arange(int(keep.sum()))
        basket_keep = keep[self.basket_row] if len(self.basket_row) else np.zeros(0, dtype=bool)
        return Purchases(
            customers=tuple(self.customers[i] for i in kept_customers),
            customer=renumber[self.customer[keep]],
            day=self.day[keep],
            amount=self.amount[keep],
            products=self.products,
            categories=self.categories,
            basket_row=row_map[self.basket_row[basket_keep]],
            basket_product=self.basket_product[basket_keep],
            basket_category=self.basket_category[basket_keep],
        )

    def between(self, start: int, end: int) -> np.ndarray:
        """Per customer: how many purchase days fall in ``start < day <= end`` (a holdout's count)."""
        inside = (self.day > start) & (self.day <= end)
        return np.bincount(self.customer[inside], minlength=len(self.customers))


@dataclass(frozen=True, slots=True, eq=False)
class Summary:
    """Each customer's history at a cut-off, in days (the BTYD inputs and more), by customer code.

    ``x``: repeat purchase days (purchase days minus one); ``t_x``: first to last purchase; ``T``: first
    purchase to the cut-off; ``recency``: last purchase to the cut-off; ``monetary``: total spent;
    ``gaps`` with ``gap_start``: each customer's gaps between purchase days, ``gaps[gap_start[c]:
    gap_start[c + 1]]`` (``x[c]`` of them).
    """

    cutoff: int
    n: np.ndarray
    first: np.ndarray
    last: np.ndarray
    monetary: np.ndarray
    gaps: np.ndarray
    gap_start: np.ndarray

    @property
    def x(self) -> np.ndarray:
        return self.n - 1

    @property
    def t_x(self) -> np.ndarray:
        return (self.last - self.first).astype(np.float64)

    @property
    def T(self) -> np.ndarray:
        return (self.cutoff - self.first).astype(np.float64)

    @property
    def recency(self) -> np.ndarray:
        return (self.cutoff - self.last).astype(np.float64)

    def customer_gaps(self, c: int) -> np.ndarray:
        return self.gaps[self.gap_start[c] : self.gap_start[c + 1]]


def summarise(purchases: Purchases, cutoff: int) -> Summary:
    """The customers' histories up to day ``cutoff`` (rows after it are ignored); every customer of
    ``purchases.until(cutoff)`` has ``n >= 1``."""
    p = purchases.until(cutoff)
    count = len(p.customers)
    n = np.bincount(p.customer, minlength=count)
    starts = np.concatenate(([0], np.cumsum(n)))
    first = p.day[starts[:-1]] if count else np.zeros(0, dtype=np.int64)
    last = p.day[starts[1:] - 1] if count else np.zeros(0, dtype=np.int64)
    monetary = np.bincount(p.customer, weights=p.amount, minlength=count)
    same = np.diff(p.customer) == 0 if len(p.day) else np.zeros(0, dtype=bool)
    gaps = np.diff(p.day)[same].astype(np.float64) if len(p.day) else np.zeros(0)
    gap_start = np.concatenate(([0], np.cumsum(np.maximum(n - 1, 0))))
    return Summary(
        cutoff=cutoff, n=n, first=first, last=last, monetary=monetary, gaps=gaps, gap_start=gap_start
    )


def _ints(values: Iterable[int]) -> np.ndarray:
    return np.asarray(list(values), dtype=np.int64)


def _coded(names: Sequence[str | None] | None, count: int) -> tuple[tuple[str, ...], np.ndarray]:
    """The distinct names in order, and each row's code (-1: none given)."""
    if names is None:
        return (), np.full(count, -1, dtype=np.int64)
    vocabulary = tuple(sorted({name for name in names if name is not None}))
    code = {name: i for i, name in enumerate(vocabulary)}
    return vocabulary, np.fromiter((code.get(n, -1) if n is not None else -1 for n in names), np.int64, count)
