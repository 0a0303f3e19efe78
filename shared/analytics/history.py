"""Purchase histories as arrays: one row per customer and purchase day, and summaries at a cut-off.

Every model reads these. A day is a whole UTC day, counted from 1970-01-01; several purchases on one day
are one transaction (the BTYD convention: the models count purchase occasions, not order lines), with
the day's amounts summed and the products and categories of all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
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
        days: dict[tuple[str, int], float] = {}
        baskets: dict[tuple[str, int], set[tuple[str | None, str | None]]] = {}
        for row in rows:
            key = (row.customer_id, row.day)
            days[key] = days.get(key, 0.0) + float(row.amount)
            if row.product is not None or row.category is not None:
                baskets.setdefault(key, set()).add((row.product, row.category))
        keys = sorted(days)
        customers = tuple(sorted({c for c, _ in keys}))
        code = {c: i for i, c in enumerate(customers)}
        products = tuple(sorted({p for b in baskets.values() for p, _ in b if p is not None}))
        categories = tuple(sorted({c for b in baskets.values() for _, c in b if c is not None}))
        product_code = {p: i for i, p in enumerate(products)}
        category_code = {c: i for i, c in enumerate(categories)}
        b_row: list[int] = []
        b_product: list[int] = []
        b_category: list[int] = []
        for i, key in enumerate(keys):
            for product, category in sorted(baskets.get(key, ()), key=lambda pc: (pc[0] or "", pc[1] or "")):
                b_row.append(i)
                b_product.append(product_code[product] if product is not None else -1)
                b_category.append(category_code[category] if category is not None else -1)
        return cls(
            customers=customers,
            customer=np.fromiter((code[c] for c, _ in keys), dtype=np.int64, count=len(keys)),
            day=np.fromiter((d for _, d in keys), dtype=np.int64, count=len(keys)),
            amount=np.fromiter((days[k] for k in keys), dtype=np.float64, count=len(keys)),
            products=products,
            categories=categories,
            basket_row=np.asarray(b_row, dtype=np.int64),
            basket_product=np.asarray(b_product, dtype=np.int64),
            basket_category=np.asarray(b_category, dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.day)

    def until(self, cutoff: int) -> Purchases:
        """Only what happened on or before day ``cutoff``: the customers who bought by then (renumbered,
        still in id order), their purchase days up to it, and those days' baskets."""
        keep = self.day <= cutoff
        if keep.all():
            return self
        kept_customers = np.unique(self.customer[keep])
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
