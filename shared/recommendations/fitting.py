"""The nightly fit of the item-to-item model (issue 15), with numpy and scipy's sparse matrices.

Imported by ``model.fit`` when it runs, so the functions that serve never load numpy; it knows nothing of
the model's types (plain strings and floats in, plain tuples out). The measure is described in
``shared.recommendations.model``: the contacts' weight matrix ``W`` (contacts × products) and its binary
pattern ``B``; the weighted co-occurrence ``Wᵀ W`` divided by the geometric mean of the two products'
contacts (the diagonal of ``Bᵀ B``), the support (``Bᵀ B``, contacts sharing a pair), shrinkage, the
minimum support, then the best ``neighbours`` per product. Contacts and products are numbered in sorted
order, so the result does not depend on the order of the interactions and ties fall to the smaller
product id.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import sparse

#: a product's list: (product id, score) best first
Ranked = tuple[tuple[str, float], ...]


def fit_arrays(
    weights: Mapping[tuple[str, str], float],
    *,
    min_support: int,
    neighbours: int,
    popular: int,
    shrinkage: float,
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
    return _neighbours(matrix, products, min_support, neighbours, shrinkage), most_popular


def _neighbours(
    matrix: sparse.csr_matrix, products: list[str], min_support: int, limit: int, shrinkage: float
) -> dict[str, Ranked]:
    pattern = matrix.copy()
    pattern.data = np.ones_like(pattern.data)
    co = (matrix.T.tocsr() @ matrix).tocsr()
    support = (pattern.T.tocsr() @ pattern).tocsr()
    co.sort_indices()
    support.sort_indices()
    # Wᵀ W and Bᵀ B have the same pattern (a weight is never 0): their entries line up once sorted.
    if not (np.array_equal(co.indptr, support.indptr) and np.array_equal(co.indices, support.indices)):
        raise AssertionError("the co-occurrence and support matrices differ in shape")
    contacts = support.diagonal()
    co = co.tocoo()
    row, col, count = co.row, co.col, support.data
    similarity = co.data / np.sqrt(contacts[row] * contacts[col])
    if shrinkage > 0:
        similarity = similarity * count / (count + shrinkage)
    keep = (row != col) & (count >= min_support) & (similarity > 0)
    row, col, similarity = row[keep], col[keep], similarity[keep]
    # best first within each product, ties by product id (columns are numbered in id order)
    order = np.lexsort((col, -similarity, row))
    row, col, similarity = row[order], col[order], similarity[order]
    starts = np.searchsorted(row, np.arange(len(products) + 1))
    result: dict[str, Ranked] = {}
    for product in np.unique(row):
        start, end = starts[product], min(starts[product + 1], starts[product] + limit)
        result[products[product]] = tuple(
            (products[j], float(s)) for j, s in zip(col[start:end], similarity[start:end], strict=True)
        )
    return result
