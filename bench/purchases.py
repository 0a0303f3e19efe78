"""Synthetic purchase histories with a known truth: who had lapsed at the cut-off.

Three kinds of customer, each buying what fits its kind:

- **regular** buyers of a consumable (water filters every ~30 days, coffee beans every ~14, ink every
  ~120...): gaps between purchase days are gamma with the customer's own mean (the product's cycle
  times a personal factor, 7 to 120 days) and shape (2 to 50, log-uniform: from loose to clockwork);
- **irregular** buyers (books, clothing, toys, gifts): Poisson buyers (gamma shape 1), mean gap 7 to
  120 days, a different product each time;
- **durable** buyers: a kitchen appliance, bought again only years later (gamma, mean 1,500 days).

Every customer starts on a day spread over ``history_days`` before the cut-off and, after every
purchase (the first included), drops out for good with a probability drawn once per customer from
Beta(a, b), the story BG/NBD and MBG tell; the day of the purchase after which they dropped is the
truth. A customer who dropped out on or before the cut-off had lapsed by then.

Generation is vectorised (one round per purchase number, over the customers still buying), so a
million customers take seconds; ``Synthetic.purchases`` is the columnar history the models read and
``Synthetic.rows()`` the same as ``Purchase`` rows (``Purchases.from_rows(rows())`` rebuilds it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.analytics.history import Purchase, Purchases


@dataclass(frozen=True, slots=True)
class ProductLine:
    product: str
    category: str
    cycle_days: float
    price: float


#: consumables bought again on a cycle
REGULAR_LINES: tuple[ProductLine, ...] = (
    ProductLine("water filter", "water filters", 30, 25.0),
    ProductLine("coffee beans", "coffee", 14, 12.0),
    ProductLine("cat food", "pet supplies", 21, 30.0),
    ProductLine("contact lenses", "eye care", 90, 60.0),
    ProductLine("vitamins", "health", 60, 20.0),
    ProductLine("printer ink", "office", 120, 45.0),
    ProductLine("razor blades", "personal care", 45, 15.0),
    ProductLine("nappies", "baby", 7, 20.0),
)
#: categories of things bought once each, at no particular rhythm (products ``<category> 1..40``)
IRREGULAR_CATEGORIES: tuple[str, ...] = ("books", "clothing", "toys", "gifts")
IRREGULAR_PRODUCTS_PER_CATEGORY = 40
#: durables: bought again only years later
APPLIANCES: tuple[str, ...] = ("stand mixer", "espresso machine", "blender", "air fryer")
APPLIANCE_CATEGORY = "kitchen appliances"

KINDS: tuple[str, ...] = ("regular", "irregular", "durable")


@dataclass(frozen=True, slots=True)
class Mix:
    """What the generated population is made of."""

    #: shares of regular, irregular and durable buyers
    shares: tuple[float, float, float] = (0.55, 0.30, 0.15)
    #: dropout probability per purchase ~ Beta(a, b)
    dropout_a: float = 0.6
    dropout_b: float = 8.0
    #: customers start buying over this many days before the cut-off
    history_days: int = 1095
    #: a regular buyer's mean gap: the line's cycle times lognormal(0, this), clipped to 7..120 days
    personal_spread: float = 0.3
    shape_low: float = 2.0
    shape_high: float = 50.0
    #: share of a regular buyer's purchases with a one-off extra item (a gift, a book)
    extra_share: float = 0.1
    durable_gap_days: float = 1500.0
    durable_shape: float = 2.0


@dataclass(frozen=True, slots=True, eq=False)
class Truth:
    """By customer code of ``Synthetic.purchases``."""

    kind: np.ndarray  # index into KINDS
    #: the day of the purchase after which the customer dropped out, -1: still buying at the end
    dropped_day: np.ndarray
    mean_gap: np.ndarray
    shape: np.ndarray

    def lapsed(self, cutoff: int) -> np.ndarray:
        """Dropped out after a purchase on or before day ``cutoff``."""
        return (self.dropped_day >= 0) & (self.dropped_day <= cutoff)


@dataclass(frozen=True, slots=True, eq=False)
class Synthetic:
    purchases: Purchases
    truth: Truth
    cutoff: int

    def rows(self) -> list[Purchase]:
        """One ``Purchase`` per basket entry (the day's amount on its first entry, per-item amounts are
        not kept), in customer and day order."""
        p = self.purchases
        first = np.ones(len(p.basket_row), dtype=bool)
        first[1:] = p.basket_row[1:] != p.basket_row[:-1]
        rows = []
        for j in range(len(p.basket_row)):
            row = int(p.basket_row[j])
            rows.append(
                Purchase(
                    customer_id=p.customers[int(p.customer[row])],
                    day=int(p.day[row]),
                    amount=float(p.amount[row]) if first[j] else 0.0,
                    product=p.products[int(p.basket_product[j])],
                    category=p.categories[int(p.basket_category[j])],
                )
            )
        return rows


def generate(count: int, cutoff: int, seed: int = 12, mix: Mix = Mix(), end: int | None = None) -> Synthetic:
    """``count`` customers (ids ``c0000000``...) buying until day ``end`` (default: the cut-off)."""
    rng = np.random.default_rng(seed)
    end = cutoff if end is None else end
    kind = rng.choice(len(KINDS), size=count, p=np.asarray(mix.shares) / sum(mix.shares))
    regular, irregular, durable = kind == 0, kind == 1, kind == 2

    line = rng.integers(len(REGULAR_LINES), size=count)
    cycles = np.array([pl.cycle_days for pl in REGULAR_LINES])
    mean = np.where(
        regular,
        np.clip(cycles[line] * rng.lognormal(0.0, mix.personal_spread, count), 7.0, 120.0),
        np.exp(rng.uniform(np.log(7.0), np.log(120.0), count)),
    )
    mean[durable] = mix.durable_gap_days
    shape = np.exp(rng.uniform(np.log(mix.shape_low), np.log(mix.shape_high), count))
    shape[irregular] = 1.0
    shape[durable] = mix.durable_shape
    p_drop = rng.beta(mix.dropout_a, mix.dropout_b, count)
    category_of_irregular = rng.integers(len(IRREGULAR_CATEGORIES), size=count)

    first = cutoff - rng.uniform(0.0, mix.history_days, count)
    dropped_day = np.full(count, -1, dtype=np.int64)
    buyer: list[np.ndarray] = []
    when: list[np.ndarray] = []
    active = np.flatnonzero(first <= end)
    t = first[active]
    while active.size:
        day = np.floor(t).astype(np.int64)
        buyer.append(active)
        when.append(day)
        drops = rng.random(active.size) < p_drop[active]
        dropped_day[active[drops]] = day[drops]
        gap = np.maximum(rng.gamma(shape[active], mean[active] / shape[active]), 1.0)
        t = t + gap
        going = ~drops & (np.floor(t) <= end)
        active, t = active[going], t[going]

    customer = np.concatenate(buyer) if buyer else np.zeros(0, dtype=np.int64)
    days = np.concatenate(when) if when else np.zeros(0, dtype=np.int64)
    order = np.lexsort((days, customer))
    customer, days = customer[order], days[order]
    rows = len(customer)

    # what each purchase day holds: the customer's line, a one-off product of their category, or an appliance
    product_names = sorted(
        {pl.product for pl in REGULAR_LINES}
        | {f"{c} {i}" for c in IRREGULAR_CATEGORIES for i in range(1, IRREGULAR_PRODUCTS_PER_CATEGORY + 1)}
        | set(APPLIANCES)
    )
    category_names = sorted(
        {pl.category for pl in REGULAR_LINES} | set(IRREGULAR_CATEGORIES) | {APPLIANCE_CATEGORY}
    )
    product_code = {name: i for i, name in enumerate(product_names)}
    category_code = {name: i for i, name in enumerate(category_names)}
    line_product = np.array([product_code[pl.product] for pl in REGULAR_LINES])
    line_category = np.array([category_code[pl.category] for pl in REGULAR_LINES])
    line_price = np.array([pl.price for pl in REGULAR_LINES])
    one_off = np.array(
        [
            [product_code[f"{c} {i}"] for i in range(1, IRREGULAR_PRODUCTS_PER_CATEGORY + 1)]
            for c in IRREGULAR_CATEGORIES
        ]
    )
    one_off_category = np.array([category_code[c] for c in IRREGULAR_CATEGORIES])
    appliance = np.array([product_code[a] for a in APPLIANCES])

    row_kind = kind[customer]
    main_product = np.empty(rows, dtype=np.int64)
    main_category = np.empty(rows, dtype=np.int64)
    main_amount = np.empty(rows, dtype=np.float64)
    reg, irr, dur = row_kind == 0, row_kind == 1, row_kind == 2
    main_product[reg] = line_product[line[customer[reg]]]
    main_category[reg] = line_category[line[customer[reg]]]
    main_amount[reg] = line_price[line[customer[reg]]] * rng.choice([1, 1, 1, 2], size=int(reg.sum()))
    cats = category_of_irregular[customer[irr]]
    main_product[irr] = one_off[cats, rng.integers(IRREGULAR_PRODUCTS_PER_CATEGORY, size=int(irr.sum()))]
    main_category[irr] = one_off_category[cats]
    main_amount[irr] = np.round(rng.uniform(10.0, 80.0, int(irr.sum())), 2)
    main_product[dur] = appliance[rng.integers(len(APPLIANCES), size=int(dur.sum()))]
    main_category[dur] = category_code[APPLIANCE_CATEGORY]
    main_amount[dur] = np.round(rng.uniform(150.0, 900.0, int(dur.sum())), 2)

    extra_rows = np.flatnonzero(reg & (rng.random(rows) < mix.extra_share))
    extra_cats = rng.integers(len(IRREGULAR_CATEGORIES), size=extra_rows.size)
    extra_product = one_off[extra_cats, rng.integers(IRREGULAR_PRODUCTS_PER_CATEGORY, size=extra_rows.size)]
    extra_amount = np.round(rng.uniform(10.0, 40.0, extra_rows.size), 2)
    amount = main_amount.copy()
    np.add.at(amount, extra_rows, extra_amount)

    basket_row = np.concatenate((np.arange(rows), extra_rows))
    basket_product = np.concatenate((main_product, extra_product))
    basket_category = np.concatenate((main_category, one_off_category[extra_cats]))
    order = np.lexsort((basket_product, basket_row))
    purchases = Purchases(
        customers=tuple(f"c{i:07d}" for i in range(count)),
        customer=customer,
        day=days,
        amount=amount,
        products=tuple(product_names),
        categories=tuple(category_names),
        basket_row=basket_row[order],
        basket_product=basket_product[order],
        basket_category=basket_category[order],
    )
    return Synthetic(
        purchases=purchases,
        truth=Truth(kind=kind, dropped_day=dropped_day, mean_gap=mean, shape=shape),
        cutoff=cutoff,
    )


#: an irregular buyer's gaps: 13 purchases from first to last as far apart as the water-filter customer's
IRREGULAR_GAPS: tuple[int, ...] = (3, 62, 5, 41, 2, 77, 12, 8, 70, 4, 45, 31)


def water_filter_customer(last: int, customer: str = "water-filter") -> list[Purchase]:
    """The issue's first customer: water filters every 30 days for a year, the last on day ``last``."""
    return [Purchase(customer, last - 30 * i, 25.0, "water filter", "water filters") for i in range(13)]


def irregular_customer(last: int, customer: str = "irregular") -> list[Purchase]:
    """The same count, first and last purchase (and product) as ``water_filter_customer``, at no rhythm."""
    days = np.concatenate(([0], np.cumsum(IRREGULAR_GAPS))) + last - sum(IRREGULAR_GAPS)
    return [Purchase(customer, int(d), 25.0, "water filter", "water filters") for d in days]


def appliance_customer(
    day: int, customer: str = "appliance", product: str | None = "espresso machine"
) -> Purchase:
    """The issue's second customer: one expensive kitchen appliance, on day ``day``."""
    return Purchase(customer, day, 649.0, product, APPLIANCE_CATEGORY if product else None)
