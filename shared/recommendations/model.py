"""Item-to-item collaborative filtering (issue 15): who bought or viewed this also bought that.

Pure: no AWS, no clock (times are passed in). ``fit`` learns, once a night, each product's nearest
neighbours from every contact's purchases and views (a view weighs less than a purchase), with the
co-occurrence normalised (cosine) so that best-sellers do not swamp everything, and a minimum support;
and the popularity list, the fallback for new contacts and new products. ``recommend`` serves one contact
from its recent products and the neighbour lists of those products alone (what serving reads: O(1)
requests); ``bought_together`` serves one product.

The measure: each contact has one weight per product, 1 if it bought it, ``view_weight`` if it only
viewed it (the larger when both). The similarity of products *i* and *j* is their weighted co-occurrence
over the geometric mean of their contacts, ``sum_c w_ci w_cj / sqrt(n_i n_j)`` (``n_i``: the contacts
who bought or viewed *i*): the cosine of the two products' contacts when all are purchases, and a pair
seen together only through views counts less (a plain cosine of the weights would not: it is blind to a
product's weights being all scaled down). It is shrunk towards 0 when few contacts share the pair
(``× support / (support + shrinkage)``, the support being the number of contacts with both), and the pair
is dropped below ``min_support``. A product's popularity is the number of distinct contacts who bought
it, a contact who only viewed it counting ``view_weight``. ``fit`` runs in the nightly pass with numpy and
scipy (``shared.recommendations.fitting``, imported when it runs); ``recommend`` and ``bought_together``
are plain Python, for the functions that serve.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

Kind = Literal["purchase", "view"]
Reason = Literal["similar", "popular"]


class RecentProduct(BaseModel):
    """A product a contact bought or viewed, and when last (a contact's profile keeps its newest ones)."""

    # Built when first used, like ``ContactRecord``: the tracking hot path imports the profile model.
    model_config = ConfigDict(frozen=True, defer_build=True)

    product_id: str
    kind: Kind
    at: datetime


@dataclass(frozen=True, slots=True)
class Interaction:
    """One contact's purchase or view of one product: what the model learns from."""

    contact_id: str
    product_id: str
    kind: Kind
    at: datetime


@dataclass(frozen=True, slots=True)
class ModelSettings:
    #: a view counts this much of a purchase
    view_weight: float = 0.25
    #: two products are neighbours only if at least this many contacts interacted with both
    min_support: int = 2
    #: neighbours kept per product, best first
    neighbours: int = 50
    #: products kept in the popularity list, best first
    popular: int = 200
    #: a pair's similarity is multiplied by ``support / (support + shrinkage)`` (0: none): a pair shared by
    #: 20 contacts keeps half its cosine; chosen on the bench's validation split (bench/recommendations.py)
    shrinkage: float = 20.0
    #: the similarity of *j* as a neighbour of *i* divides their co-occurrence by ``n_i ** asymmetry ×
    #: n_j ** (1 - asymmetry)`` (``n``: contacts): 0.5 is the cosine, symmetric; towards 1 it becomes the
    #: share of *i*'s contacts who also took *j*, which lets best-sellers back in (the asymmetric cosine)
    asymmetry: float = 0.5
    #: serving: the k-th newest of a contact's recent products (0 the newest) weighs ``recency ** k``; 1:
    #: all alike, what the bench's validation split chose over 0.9 and 0.97 (grocery baskets)
    recency: float = 1.0
    #: serving: blend with popularity, ranking every candidate (the neighbours' and the popularity list's) by
    #: ``similarity sum / the contact's largest + popularity_weight × popularity / the list's largest``; 0: no
    #: blend (neighbours first, popularity only fills), what the bench's validation split chose over 0.1, 0.25
    #: and 1 (each lowered HitRate@10 and NDCG@10 on The Complete Journey)
    popularity_weight: float = 0.0


@dataclass(frozen=True, slots=True)
class Neighbour:
    product_id: str
    #: similarity (in a neighbour list) or popularity (in the popularity list): higher is better
    score: float


@dataclass(frozen=True, slots=True)
class ItemModel:
    #: product -> its neighbours, best first (products with none are absent)
    neighbours: Mapping[str, tuple[Neighbour, ...]] = field(default_factory=dict)
    #: the most popular products, best first
    popular: tuple[Neighbour, ...] = ()


@dataclass(frozen=True, slots=True)
class Recommendation:
    product_id: str
    score: float
    #: ``similar``: a neighbour of the contact's (or product's) products; ``popular``: the fallback
    reason: Reason
    #: the products it is a neighbour of (empty for ``popular``)
    because: tuple[str, ...] = ()


#: at most this many products named in a recommendation's ``because``, the largest contributions first
BECAUSE = 3


def fit(interactions: Iterable[Interaction], settings: ModelSettings = ModelSettings()) -> ItemModel:
    """The neighbours of every product and the popularity list, from every contact's interactions.

    The same interactions in any order, or replayed, give the same model (ties go to the smaller id)."""
    from shared.recommendations.fitting import fit_arrays  # numpy and scipy: the nightly pass only

    neighbours, popular = fit_arrays(
        contact_weights(interactions, settings.view_weight),
        min_support=settings.min_support,
        neighbours=settings.neighbours,
        popular=settings.popular,
        shrinkage=settings.shrinkage,
        asymmetry=settings.asymmetry,
    )
    return ItemModel(
        neighbours={p: tuple(Neighbour(q, s) for q, s in ranked) for p, ranked in neighbours.items()},
        popular=tuple(Neighbour(q, s) for q, s in popular),
    )


def contact_weights(interactions: Iterable[Interaction], view_weight: float) -> dict[tuple[str, str], float]:
    """(contact, product) -> its weight: 1 for a purchase, ``view_weight`` for a view, the larger if both."""
    weights: dict[tuple[str, str], float] = {}
    for interaction in interactions:
        weight = 1.0 if interaction.kind == "purchase" else view_weight
        key = (interaction.contact_id, interaction.product_id)
        if weight > weights.get(key, 0.0):
            weights[key] = weight
    return weights


def recommend(
    recent: Sequence[RecentProduct],
    neighbours: Mapping[str, Sequence[Neighbour]],
    popular: Sequence[Neighbour],
    *,
    n: int = 10,
    exclude: Container[str] = frozenset(),
    settings: ModelSettings = ModelSettings(),
) -> tuple[Recommendation, ...]:
    """The top ``n`` products for a contact with these recent products (newest first), from the neighbour
    lists of those products (``neighbours``: product -> its neighbours; products missing have none),
    filled up from ``popular``. Never a product the contact bought (a ``purchase`` among ``recent``), nor
    one in ``exclude`` (out of stock, an excluded category...).

    A candidate's score is the sum, over the recent products it neighbours, of its similarity weighted by
    that product's recency (``settings.recency ** k`` for the k-th newest) and kind (a view weighs
    ``settings.view_weight``). A product the contact only viewed may be recommended. Ties go to the
    smaller product id. With ``settings.popularity_weight`` the neighbours and the popular products are
    ranked together, by the normalised similarity plus the weighted normalised popularity (``score``: that
    blend; a candidate that is a neighbour stays ``similar``, with its ``because``)."""
    bought = {item.product_id for item in recent if item.kind == "purchase"}
    scores: dict[str, float] = {}
    sources: dict[str, dict[str, float]] = {}
    seen: set[str] = set()
    for item in recent:
        if item.product_id in seen:
            continue
        weight = settings.recency ** len(seen) * (1.0 if item.kind == "purchase" else settings.view_weight)
        seen.add(item.product_id)
        for neighbour in neighbours.get(item.product_id, ()):
            candidate = neighbour.product_id
            if neighbour.score <= 0 or candidate in bought or candidate in exclude:
                continue
            contribution = weight * neighbour.score
            scores[candidate] = scores.get(candidate, 0.0) + contribution
            by_source = sources.setdefault(candidate, {})
            by_source[item.product_id] = by_source.get(item.product_id, 0.0) + contribution
    if settings.popularity_weight:
        scores = _blended(scores, popular, settings.popularity_weight, lambda p: p in bought or p in exclude)
    best = sorted(scores, key=lambda p: (-scores[p], p))[:n]
    chosen = [
        Recommendation(
            product_id=p,
            score=scores[p],
            reason="similar",
            because=tuple(sorted(sources[p], key=lambda s: (-sources[p][s], s))[:BECAUSE]),
        )
        if p in sources
        else Recommendation(p, scores[p], "popular")
        for p in best
    ]
    return _filled(chosen, popular, n, lambda p: p in bought or p in exclude)


def _blended(
    similarity: Mapping[str, float],
    popular: Sequence[Neighbour],
    weight: float,
    barred: Callable[[str], bool],
) -> dict[str, float]:
    """Every candidate's similarity sum over the contact's largest, plus ``weight`` × its popularity over the
    list's largest: both in 0..1 whatever the contact, so the weight means the same for everyone."""
    peak = max(similarity.values(), default=0.0)
    scores = {p: s / peak for p, s in similarity.items()} if peak > 0 else {}
    top = max((item.score for item in popular), default=0.0)
    if top > 0:
        for item in popular:
            if item.score > 0 and not barred(item.product_id):
                scores[item.product_id] = scores.get(item.product_id, 0.0) + weight * item.score / top
    return scores


def bought_together(
    product_id: str,
    neighbours: Sequence[Neighbour],
    popular: Sequence[Neighbour],
    *,
    n: int = 10,
    exclude: Container[str] = frozenset(),
) -> tuple[Recommendation, ...]:
    """The top ``n`` products bought with this one (its neighbours), filled up from ``popular``; never the
    product itself nor one in ``exclude``."""

    def barred(p: str) -> bool:
        return p == product_id or p in exclude

    scores: dict[str, float] = {}
    for neighbour in neighbours:
        if neighbour.score > 0 and not barred(neighbour.product_id):
            scores[neighbour.product_id] = max(scores.get(neighbour.product_id, 0.0), neighbour.score)
    best = sorted(scores, key=lambda p: (-scores[p], p))[:n]
    chosen = [Recommendation(p, scores[p], "similar", (product_id,)) for p in best]
    return _filled(chosen, popular, n, barred)


def _filled(
    chosen: list[Recommendation], popular: Sequence[Neighbour], n: int, barred: Callable[[str], bool]
) -> tuple[Recommendation, ...]:
    """``chosen`` filled up to ``n`` from the popularity list (best first, ties by product id)."""
    taken = {r.product_id for r in chosen}
    for item in sorted(popular, key=lambda p: (-p.score, p.product_id)):
        if len(chosen) >= n:
            break
        if item.product_id in taken or barred(item.product_id):
            continue
        taken.add(item.product_id)
        chosen.append(Recommendation(item.product_id, item.score, "popular"))
    return tuple(chosen)
