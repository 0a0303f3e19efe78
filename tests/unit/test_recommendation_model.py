"""The item-to-item model on a hand-built basket set where the expected neighbours are obvious: coffee
goes with filters (and mugs), tents with sleeping bags (and torches), and everyone takes a carrier bag."""

from __future__ import annotations

import random
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.recommendations.model import (
    Interaction,
    ItemModel,
    ModelSettings,
    Neighbour,
    RecentProduct,
    bought_together,
    fit,
    recommend,
)
from tests.conftest import ROOT

NOW = datetime(2026, 12, 1, tzinfo=UTC)
#: the plain cosine (no shrinkage), and newer products weighing more: the values below are worked by hand
COSINE = ModelSettings(shrinkage=0.0, recency=0.9)


def baskets() -> list[Interaction]:
    """4 coffee drinkers (coffee, filter; two add a mug), 4 campers (tent, sleeping bag; two add a torch),
    and every one of them plus 8 more takes the carrier bag: 16 bags, the best-seller."""
    rows: dict[str, list[str]] = {}
    for i in range(4):
        rows[f"a{i}"] = ["coffee", "filter", "bag"] + (["mug"] if i < 2 else [])
        rows[f"b{i}"] = ["tent", "sleeping-bag", "bag"] + (["torch"] if i < 2 else [])
    for i in range(8):
        rows[f"x{i}"] = ["bag"]
    return [
        Interaction(contact, product, "purchase", NOW - timedelta(days=k))
        for contact, products in rows.items()
        for k, product in enumerate(products)
    ]


def ids(items: tuple[Neighbour, ...] | tuple) -> list[str]:
    return [item.product_id for item in items]


def bought(*products: str) -> list[RecentProduct]:
    return [
        RecentProduct(product_id=p, kind="purchase", at=NOW - timedelta(hours=k))
        for k, p in enumerate(products)
    ]


@pytest.fixture(scope="module")
def model() -> ItemModel:
    return fit(baskets(), COSINE)


def test_neighbours_are_the_products_bought_together_best_first(model: ItemModel) -> None:
    assert ids(model.neighbours["coffee"]) == ["filter", "mug", "bag"]
    assert ids(model.neighbours["tent"]) == ["sleeping-bag", "torch", "bag"]
    assert ids(model.neighbours["mug"]) == ["coffee", "filter", "bag"]
    # cosine: 4 shared contacts of 4 each is 1; 2 of (2, 4) is 1/√2; 4 of (4, 16) is 1/2
    coffee = {n.product_id: n.score for n in model.neighbours["coffee"]}
    assert coffee == pytest.approx({"filter": 1.0, "mug": 2**-0.5, "bag": 0.5})


def test_the_best_seller_does_not_swamp_the_neighbours(model: ItemModel) -> None:
    """The bag is bought with coffee as often as the filter is (4 times), but by 16 contacts: it comes last."""
    assert ids(model.neighbours["coffee"])[0] == "filter"
    assert ids(model.neighbours["bag"])[:2] == ["coffee", "filter"]  # all its neighbours score 1/2: by id
    assert [n.score for n in model.neighbours["bag"]] == pytest.approx([0.5] * 4 + [2**0.5 / 4] * 2)


def test_popularity_counts_distinct_buyers(model: ItemModel) -> None:
    assert [(n.product_id, n.score) for n in model.popular] == [
        ("bag", 16.0),
        ("coffee", 4.0),
        ("filter", 4.0),
        ("sleeping-bag", 4.0),
        ("tent", 4.0),
        ("mug", 2.0),
        ("torch", 2.0),
    ]
    buying_twice = baskets() + [Interaction("a0", "mug", "purchase", NOW)]
    assert {n.product_id: n.score for n in fit(buying_twice).popular}["mug"] == 2.0


def test_a_pair_below_the_minimum_support_is_dropped() -> None:
    """One contact bought coffee and a tent: a coincidence at the default support of 2."""
    rows = baskets() + [
        Interaction("z", "coffee", "purchase", NOW),
        Interaction("z", "tent", "purchase", NOW),
    ]
    assert "tent" not in ids(fit(rows).neighbours["coffee"])
    assert "tent" in ids(fit(rows, ModelSettings(min_support=1)).neighbours["coffee"])
    assert "coffee" in ids(fit(rows, ModelSettings(min_support=1)).neighbours["tent"])
    assert fit(rows, ModelSettings(min_support=5)).neighbours == {}


def test_only_the_best_neighbours_are_kept_and_the_popular_list_is_capped() -> None:
    small = fit(baskets(), replace(COSINE, neighbours=1, popular=2))
    assert {p: ids(n) for p, n in small.neighbours.items()}["coffee"] == ["filter"]
    assert all(len(n) == 1 for n in small.neighbours.values())
    assert ids(small.popular) == ["bag", "coffee"]


def test_shrinkage_lowers_pairs_with_little_support(model: ItemModel) -> None:
    shrunk = {
        n.product_id: n.score for n in fit(baskets(), replace(COSINE, shrinkage=2)).neighbours["coffee"]
    }
    assert shrunk == pytest.approx({"filter": 1.0 * 4 / 6, "mug": 2**-0.5 * 2 / 4, "bag": 0.5 * 4 / 6})


def test_the_same_interactions_in_any_order_give_the_same_model(model: ItemModel) -> None:
    rows = baskets()
    random.Random(7).shuffle(rows)
    assert fit(rows, COSINE) == model
    assert fit(rows + rows, COSINE) == model  # replays change nothing


def test_no_interactions_give_an_empty_model() -> None:
    assert fit([]) == ItemModel()
    assert recommend([], {}, ()) == ()


def test_views_weigh_less_than_purchases() -> None:
    """Two products viewed by 4 contacts each are less popular than one bought by 2; a contact who viewed
    and bought a product weighs 1 for it."""
    rows = [Interaction(f"v{i}", "lamp", "view", NOW) for i in range(4)]
    rows += [Interaction(f"v{i}", "shade", "view", NOW) for i in range(4)]
    rows += [Interaction(f"p{i}", "bulb", "purchase", NOW) for i in range(2)]
    rows += [Interaction("p0", "bulb", "view", NOW)]
    popular = {n.product_id: n.score for n in fit(rows).popular}
    assert popular == {"bulb": 2.0, "lamp": 1.0, "shade": 1.0}
    assert ids(fit(rows).popular) == ["bulb", "lamp", "shade"]
    assert popular == {n.product_id: n.score for n in fit(rows, ModelSettings(view_weight=0.25)).popular}
    assert {n.product_id: n.score for n in fit(rows, ModelSettings(view_weight=0.5)).popular}["lamp"] == 2.0


def test_a_viewed_neighbour_is_less_similar_than_a_bought_one() -> None:
    """Coffee is bought with filters by 2 contacts and seen with mugs by 2 others who bought coffee too."""
    rows = [Interaction(f"a{i}", p, "purchase", NOW) for i in range(2) for p in ("coffee", "filter")]
    rows += [Interaction(f"b{i}", "coffee", "purchase", NOW) for i in range(2)]
    rows += [Interaction(f"b{i}", "mug", "view", NOW) for i in range(2)]
    coffee = fit(rows, COSINE).neighbours["coffee"]
    assert ids(coffee) == ["filter", "mug"]
    assert [n.score for n in coffee] == pytest.approx([2 / 8**0.5, 0.25 * 2 / 8**0.5])


def test_a_contact_gets_the_neighbours_of_what_it_bought_then_the_popular(model: ItemModel) -> None:
    result = recommend(bought("coffee"), model.neighbours, model.popular, n=6)
    assert ids(result) == ["filter", "mug", "bag", "sleeping-bag", "tent", "torch"]
    assert [r.reason for r in result] == ["similar"] * 3 + ["popular"] * 3
    assert result[0].because == ("coffee",)
    assert result[0].score == pytest.approx(1.0)
    assert result[3].because == ()
    assert result[3].score == 4.0


def test_never_a_product_the_contact_bought(model: ItemModel) -> None:
    result = recommend(bought("coffee", "filter", "bag"), model.neighbours, model.popular, n=10)
    assert ids(result)[0] == "mug"
    assert not {"coffee", "filter", "bag"} & set(ids(result))
    assert len(result) == 4  # mug, then the popular ones left: sleeping-bag, tent, torch


def test_scores_add_up_over_the_recent_products_and_name_the_largest_sources(model: ItemModel) -> None:
    result = recommend(bought("coffee", "filter"), model.neighbours, model.popular, n=2, settings=COSINE)
    mug = result[0]
    assert mug.product_id == "mug"
    assert mug.score == pytest.approx(2**-0.5 + 0.9 * 2**-0.5)  # the filter is the second newest
    assert mug.because == ("coffee", "filter")


def test_newer_products_weigh_more(model: ItemModel) -> None:
    camping_last = recommend(bought("tent", "coffee"), model.neighbours, model.popular, n=3, settings=COSINE)
    coffee_last = recommend(bought("coffee", "tent"), model.neighbours, model.popular, n=3, settings=COSINE)
    # the bag neighbours both (0.5 + 0.9 × 0.5); the newest product's best neighbour scores 1, the other's 0.9
    assert ids(camping_last) == ["sleeping-bag", "bag", "filter"]
    assert ids(coffee_last) == ["filter", "bag", "sleeping-bag"]
    even = recommend(
        bought("tent", "coffee"), model.neighbours, model.popular, n=3, settings=ModelSettings(recency=1)
    )
    assert [r.score for r in even] == [1.0, 1.0, 1.0]
    assert ids(even) == ["bag", "filter", "sleeping-bag"]  # a tie: by product id


def test_a_viewed_product_counts_less_and_may_itself_be_recommended(model: ItemModel) -> None:
    recent = [
        RecentProduct(product_id="tent", kind="view", at=NOW),
        RecentProduct(product_id="coffee", kind="purchase", at=NOW - timedelta(days=1)),
    ]
    result = recommend(recent, model.neighbours, model.popular, n=3, settings=COSINE)
    assert ids(result) == ["filter", "mug", "bag"]  # the tent's view: 0.25 × 1 < 0.9 × 1 for the filter
    campers = recommend(bought("sleeping-bag"), model.neighbours, model.popular, n=1)
    assert ids(campers) == ["tent"]
    viewed = [RecentProduct(product_id="tent", kind="view", at=NOW)] + bought("sleeping-bag")
    assert "tent" in ids(recommend(viewed, model.neighbours, model.popular, n=3))


def test_excluded_products_are_never_recommended(model: ItemModel) -> None:
    exclude = frozenset({"filter", "bag"})
    result = recommend(bought("coffee"), model.neighbours, model.popular, n=10, exclude=exclude)
    assert ids(result) == ["mug", "sleeping-bag", "tent", "torch"]
    together = bought_together("coffee", model.neighbours["coffee"], model.popular, n=10, exclude=exclude)
    assert ids(together) == ["mug", "sleeping-bag", "tent", "torch"]


def test_a_popularity_weight_ranks_the_neighbours_and_the_popular_together(model: ItemModel) -> None:
    """Normalised similarity (filter 1, mug 0.71, bag 0.5) plus 1 × normalised popularity (bag 16/16, filter,
    tent and sleeping bag 4/16, mug 2/16): the best-seller bag overtakes the filter; without the weight the
    neighbours come first whatever their popularity (the test above)."""
    blend = ModelSettings(popularity_weight=1.0)
    result = recommend(bought("coffee"), model.neighbours, model.popular, n=5, settings=blend)
    assert ids(result) == ["bag", "filter", "mug", "sleeping-bag", "tent"]
    assert [r.reason for r in result] == ["similar"] * 3 + ["popular"] * 2
    assert result[0].because == ("coffee",)
    assert result[0].score == pytest.approx(0.5 + 1.0)
    assert result[3].score == pytest.approx(0.25)
    excluded = recommend(
        bought("coffee"), model.neighbours, model.popular, n=5, exclude=frozenset({"bag"}), settings=blend
    )
    assert "bag" not in ids(excluded)
    new = recommend([], model.neighbours, model.popular, n=2, settings=blend)
    assert [(r.product_id, r.reason) for r in new] == [("bag", "popular"), ("coffee", "popular")]


def test_a_new_contact_gets_the_popular_products() -> None:
    model = fit(baskets())
    result = recommend([], model.neighbours, model.popular, n=3)
    assert [(r.product_id, r.reason, r.because) for r in result] == [
        ("bag", "popular", ()),
        ("coffee", "popular", ()),
        ("filter", "popular", ()),
    ]


def test_a_new_product_falls_back_to_the_popular_ones(model: ItemModel) -> None:
    """A product bought by nobody else yet has no neighbours: its buyer gets the popular products."""
    assert ids(recommend(bought("kettle"), model.neighbours, model.popular, n=2)) == ["bag", "coffee"]
    assert ids(bought_together("kettle", (), model.popular, n=2)) == ["bag", "coffee"]


def test_bought_together_never_names_the_product_itself(model: ItemModel) -> None:
    together = bought_together("coffee", model.neighbours["coffee"], model.popular, n=5)
    assert ids(together) == ["filter", "mug", "bag", "sleeping-bag", "tent"]
    assert together[0].because == ("coffee",)
    assert [r.reason for r in together] == ["similar"] * 3 + ["popular"] * 2
    itself = (Neighbour("coffee", 9.0), Neighbour("mug", 0.5), Neighbour("filter", 0.5))
    assert ids(bought_together("coffee", itself, (), n=5)) == ["filter", "mug"]  # ties by id


def test_the_stored_lists_serve_the_same_as_the_fitted_ones(model: ItemModel) -> None:
    """Serving reads lists, not tuples, and whatever order the store gives the popular products."""
    stored = {p: list(n) for p, n in model.neighbours.items()}
    popular = list(reversed(model.popular))
    assert recommend(bought("coffee"), stored, popular, n=6) == recommend(
        bought("coffee"), model.neighbours, model.popular, n=6
    )


def test_serving_never_loads_numpy() -> None:
    """recommend and bought_together run in the admin and delivery functions: plain Python only."""
    code = (
        "import sys; from datetime import datetime, UTC\n"
        "from shared.recommendations.model import Neighbour, RecentProduct, bought_together, recommend\n"
        "recent = [RecentProduct(product_id='a', kind='purchase', at=datetime(2026, 1, 1, tzinfo=UTC))]\n"
        "assert recommend(recent, {'a': [Neighbour('b', 1.0)]}, [Neighbour('c', 2.0)])\n"
        "assert bought_together('a', [Neighbour('b', 1.0)], [])\n"
        "print('numpy' in sys.modules, 'scipy' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


def test_the_neighbours_do_not_depend_on_the_block_size(
    model: ItemModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The co-occurrence is computed a block of products at a time: any block size gives the same model."""
    from shared.recommendations import fitting

    for block in (1, 2, 3):
        monkeypatch.setattr(fitting, "BLOCK", block)
        assert fit(baskets(), COSINE) == model


def test_the_defaults_keep_the_obvious_neighbours() -> None:
    """The default shrinkage lowers every pair shared by few contacts, and keeps the order here."""
    model = fit(baskets())
    assert ids(model.neighbours["coffee"]) == ["filter", "bag", "mug"]  # the mug is shared by 2 only
    assert ids(model.neighbours["tent"])[0] == "sleeping-bag"
    assert ids(recommend(bought("coffee"), model.neighbours, model.popular, n=1)) == ["filter"]


def test_the_asymmetric_cosine_lets_best_sellers_back_in() -> None:
    """At asymmetry 1 a neighbour's score is the share of the product's buyers who bought it too: every
    coffee buyer took a bag, so the bag ties with the filter."""
    coffee = fit(baskets(), replace(COSINE, asymmetry=1.0)).neighbours["coffee"]
    assert [(n.product_id, n.score) for n in coffee] == [("bag", 1.0), ("filter", 1.0), ("mug", 0.5)]
