"""The nightly fit of the item-to-item model (issue 15), with numpy and scipy's sparse matrices.

Imported by ``model.fit`` when it runs, so the functions that serve never load numpy; it knows nothing of
the model's types (plain strings and floats in, plain tuples out). The measure is described in
``shared.recommendations.model``: the contacts' weight matrix ``W`` (contacts × products) and its binary
pattern ``B``; the weighted co-occurrence ``Wᵀ W`` divided by a (weighted) geometric mean of the two
products' contacts (the diagonal of ``Bᵀ B``), the support (``Bᵀ B``, contacts sharing a pair), shrinkage, the
minimum support, then the best ``neighbours`` per product. The products are taken a block at a time, so
the co-occurrence is never held whole. Contacts and products are numbered in sorted
order, so the result does not depend on the order of the interactions and ties fall to the smaller
product id.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import sparse

#: a product's list: (product id, score) best first
Ranked = tuple[tuple[str, float], ...]
#: products whose neighbours are computed at once: bounds the memory of the co-occurrence block
BLOCK = 512


def fit_arrays(
    weights: Mapping[tuple[str, str], float],
    *,
    min_support: int,
    neighbours: int,
    popular: int,
    shrinkage: float,
    asymmetry: float = 0.5,
) -> tuple[dict[str, Ranked], Ranked]:
    """(contact, product) -> weight in; each product's best neighbours and the most popular products out."""
    if not weights:
        return {}, ()
    contacts = sorted({contact for contact, _ in weights})
    products = sorted({product for _, product in weights})
    contact_index = {c: i for i, c in enumerate(contacts)}
    product_index = {p: i for i, p in enumerate(products)}
    rows = np.fromiter((contact_index[c] for c, _ in weights), dtype=np.int64, count=len(weights))
    cols = np.fromiter((product_index[p] for _, p in weights), dtype=np.int64, count=len(weights))
    values = np.fromiter(weights.values(), dtype=np.float64, count=len(weights))
    matrix = sparse.csr_matrix((values, (rows, cols)), shape=(len(contacts), len(products)))
    popularity = np.asarray(matrix.sum(axis=0)).ravel()
    order = np.lexsort((np.arange(len(products)), -popularity))[:popular]
    most_popular = tuple((products[i], float(popularity[i])) for i in order if popularity[i] > 0)
    return _neighbours(matrix, products, min_support, neighbours, shrinkage, asymmetry), most_popular


def _neighbours(
    matrix: sparse.csr_matrix,
    products: list[str],
    min_support: int,
    limit: int,
    shrinkage: float,
    asymmetry: float,
) -> dict[str, Ranked]:
    """Each product's best neighbours, computed for a block of products at a time (``W[:, block]ᵀ W``),
    so memory stays bounded by the block, whatever the catalogue's size."""
    pattern = matrix.copy()
    pattern.data = np.ones_like(pattern.data)
    contacts = np.asarray(pattern.sum(axis=0)).ravel()
    # a product with fewer contacts than the minimum support has no pair that reaches it: left out (exact)
    eligible = np.flatnonzero(contacts >= max(min_support, 1))
    weights, shared = matrix[:, eligible].tocsr(), pattern[:, eligible].tocsr()
    weights_by_product, shared_by_product = weights.T.tocsr(), shared.T.tocsr()
    purchases_only = bool(np.all(matrix.data == 1.0))  # then the support is the co-occurrence
    contacts = contacts[eligible].astype(np.float64)
    result: dict[str, Ranked] = {}
    for start in range(0, len(eligible), BLOCK):
        stop = min(start + BLOCK, len(eligible))
        co = weights_by_product[start:stop] @ weights  # rows: this block's products; columns: the others
        co.sort_indices()
        if purchases_only:
            count = co.data
        else:
            support = shared_by_product[start:stop] @ shared
            support.sort_indices()
            # Wᵀ W and Bᵀ B have the same pattern (a weight is never 0): their entries line up once sorted
            if not (np.array_equal(co.indptr, support.indptr) and np.array_equal(co.indices, support.indices)):
                raise AssertionError("the co-occurrence and support matrices differ in shape")
            count = support.data
        this = np.repeat(np.arange(start, stop), np.diff(co.indptr))
        other = co.indices
        similarity = co.data / (contacts[this] ** asymmetry * contacts[other] ** (1 - asymmetry))
        if shrinkage > 0:
            similarity = similarity * count / (count + shrinkage)
        keep = (this != other) & (count >= min_support) & (similarity > 0)
        this, other, similarity = this[keep], other[keep], similarity[keep]
        keep = _within_best(this, similarity, limit)
        this, other, similarity = this[keep], other[keep], similarity[keep]
        # best first within each product, ties by product id (products are numbered in id order)
        order = np.lexsort((other, -similarity, this))
        this, other, similarity = this[order], other[order], similarity[order]
        if not len(this):
            continue
        firsts = np.flatnonzero(np.r_[True, this[1:] != this[:-1]])
        ends = np.r_[firsts[1:], len(this)]
        for first, end in zip(firsts, ends, strict=True):
            end = min(end, first + limit)
            result[products[eligible[this[first]]]] = tuple(
                (products[eligible[j]], float(s))
                for j, s in zip(other[first:end], similarity[first:end], strict=True)
            )
    return result


def _within_best(this: np.ndarray, similarity: np.ndarray, limit: int) -> np.ndarray:
    """A mask keeping, for each product (``this``, in runs), its entries at least as similar as its
    ``limit``-th best (ties at the boundary kept, for the sort by id to settle): the sort is then small."""
    keep = np.ones(len(this), dtype=bool)
    bounds = np.flatnonzero(np.r_[True, this[1:] != this[:-1], True]) if len(this) else np.array([0])
    for first, end in zip(bounds[:-1], bounds[1:], strict=True):
        if end - first > limit:
            run = similarity[first:end]
            threshold = np.partition(run, len(run) - limit)[len(run) - limit]
            keep[first:end] = run >= threshold
    return keep
