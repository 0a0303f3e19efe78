"""Issue 15: the nightly recommendations pass's steps (extract, fit, write) on the fakes: every contact's
recent products reach the model once, the model's lists become the stored items, a re-run writes the same
items, and a step refuses an input it cannot run on, saying why.

The model here is a stand-in (co-occurrence counts), so the pass is tested on its own: the real model
(``shared.recommendations.model.fit``) is tested on hand-built baskets where it lives, and the local stack
runs the pass with it (tests/integration/test_local_recommendations.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from shared.clock import FixedClock
from shared.contacts.identity import ContactId
from shared.errors import DependencyUnavailable, InvalidRequest, NotFound
from shared.recommendations.model import Interaction, ItemModel, ModelSettings, Neighbour
from shared.recommendations.stored import POPULAR_KEY, StoredList, neighbours_key
from shared.usecases.recommendation_nightly import (
    Extracting,
    Fitting,
    Writing,
    extract,
    fit,
    model_key,
    night_of,
    stored_score,
    write,
)
from tests.contract.helpers import entries
from tests.fakes import (
    CountingTelemetry,
    MemoryContactStore,
    MemoryModelStore,
    MemoryRecentProductScan,
    MemoryRecommendationStaging,
)

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
TIME = NOW.isoformat()
SEGMENTS = 3


def co_occurrence(interactions: Iterable[Interaction], settings: ModelSettings) -> ItemModel:
    """A stand-in model: a product's neighbours are the other products of its contacts, by how many
    contacts share them; popularity is the number of contacts."""
    by_contact: dict[str, set[str]] = {}
    for i in interactions:
        by_contact.setdefault(i.contact_id, set()).add(i.product_id)
    pairs: Counter[tuple[str, str]] = Counter(
        (p, q) for products in by_contact.values() for p in products for q in products if p != q
    )
    popular = Counter(p for products in by_contact.values() for p in products)
    neighbours: dict[str, list[Neighbour]] = {}
    for (p, q), count in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0])):
        neighbours.setdefault(p, []).append(Neighbour(q, count / 3))
    return ItemModel(
        neighbours={p: tuple(ns) for p, ns in neighbours.items()},
        popular=tuple(
            Neighbour(p, float(c)) for p, c in sorted(popular.items(), key=lambda kv: (-kv[1], kv[0]))
        ),
    )


class Pass:
    """The three steps over one set of fakes, run as the workflow runs them."""

    def __init__(self, part_size: int = 10_000) -> None:
        self.contacts = MemoryContactStore()
        self.staging = MemoryRecommendationStaging()
        self.store = MemoryModelStore()
        self.telemetry = CountingTelemetry()
        self.seen: list[list[Interaction]] = []
        clock = FixedClock(NOW)

        def model(interactions: Iterable[Interaction], settings: ModelSettings) -> ItemModel:
            seen = list(interactions)
            self.seen.append(seen)
            return co_occurrence(seen, settings)

        self.extracting = Extracting(
            MemoryRecentProductScan(self.contacts), self.staging, self.telemetry, clock
        )
        self.fitting = Fitting(self.staging, self.telemetry, clock, part_size=part_size, fit=model)
        self.writing = Writing(self.staging, self.store, self.telemetry, clock)

    def buys(self, user: str, *products: str, hours_ago: int = 5) -> None:
        at = (NOW - timedelta(hours=hours_ago)).isoformat()
        call = {"type": "track", "userId": user, "event": "Order Completed", "messageId": f"o-{user}-{hours_ago}",
                "timestamp": at, "properties": {"products": [{"product_id": p} for p in products]}}  # fmt: skip
        assert self.contacts.append(entries(ContactId.user(user), call)) == frozenset()
        assert self.contacts.deliver_events().failed_from is None

    def run(self, time: str = TIME) -> dict:
        extracted = [
            extract({"time": time, "segment": s, "segments": SEGMENTS}, self.extracting)
            for s in range(SEGMENTS)
        ]
        fitted = fit({"time": time, "segments": SEGMENTS}, self.fitting)
        written = [write({"time": time, "part": part}, self.writing) for part in fitted["parts"]]
        return {"extract": extracted, "fit": fitted, "write": written}

    def stored(self, key: dict[str, str]) -> StoredList | None:
        found = self.store.items.get((key["pk"], key["sk"]))
        return None if found is None else StoredList.model_validate(found)


def test_every_contacts_products_reach_the_model_once_and_its_lists_are_stored():
    run = Pass()
    run.buys("ann", "tent", "stove")
    run.buys("bob", "tent", "stove", "lamp")
    run.buys("eve", "lamp")
    outcome = run.run()
    (seen,) = run.seen
    assert sorted((i.contact_id, i.product_id, i.kind) for i in seen) == [
        ("user_id:ann", "stove", "purchase"),
        ("user_id:ann", "tent", "purchase"),
        ("user_id:bob", "lamp", "purchase"),
        ("user_id:bob", "stove", "purchase"),
        ("user_id:bob", "tent", "purchase"),
        ("user_id:eve", "lamp", "purchase"),
    ]
    assert sum(e["contacts"] for e in outcome["extract"]) == 3
    assert outcome["fit"]["contacts"] == 3 and outcome["fit"]["products"] == 3
    tent = run.stored(neighbours_key("tent"))
    assert [(n.product_id, n.score) for n in tent.neighbours()] == [("stove", pytest.approx(2 / 3)),
                                                                    ("lamp", pytest.approx(1 / 3))]  # fmt: skip
    assert tent.fitted_on == date(2026, 11, 23) == night_of(NOW)
    popular = run.stored(POPULAR_KEY)
    assert [(n.product_id, n.score) for n in popular.neighbours()] == [("lamp", 2), ("stove", 2), ("tent", 2)]
    assert outcome["write"] == [{"day": "2026-11-23", "part": 0, "items": 4, "deleted": 0, "requests": 1}]
    assert run.telemetry.counts["RecommendationItemsWritten"] == 4


def test_a_second_run_of_the_night_writes_the_same_items():
    run = Pass()
    run.buys("ann", "tent", "stove")
    run.buys("bob", "tent", "stove")
    run.run()
    first = dict(run.store.items)
    run.run()
    assert run.store.items == first


def test_a_product_without_neighbours_any_more_loses_its_item_the_next_night():
    run = Pass()
    run.buys("ann", "tent", "stove")
    run.buys("bob", "kite")
    run.run()
    assert run.stored(neighbours_key("tent")) is not None
    # the next night the profiles say otherwise (a contact erased, lists rolled over): the stand-in model
    # learns from what is staged, so the staged interactions of the second night are what it sees
    run.contacts.profiles.pop(ContactId.user("ann"))
    run.buys("bob", "kite", "string", hours_ago=1)
    tomorrow = (NOW + timedelta(days=1)).isoformat()
    run.extracting = replace(run.extracting, clock=FixedClock(NOW + timedelta(days=1)))
    run.fitting = replace(run.fitting, clock=FixedClock(NOW + timedelta(days=1)))
    run.writing = replace(run.writing, clock=FixedClock(NOW + timedelta(days=1)))
    outcome = run.run(tomorrow)
    assert outcome["fit"]["gone"] == 2 and outcome["write"][0]["deleted"] == 2
    assert run.stored(neighbours_key("tent")) is None and run.stored(neighbours_key("stove")) is None
    assert run.stored(neighbours_key("kite")).fitted_on == date(2026, 11, 24)
    again = run.run(tomorrow)
    assert again["fit"]["gone"] == 2, "a re-run of the night deletes the same (absent) items again"
    assert {pk for pk, _ in run.store.items} == {"RECOMMENDATIONS", "PRODUCT#kite", "PRODUCT#string"}


def test_the_model_is_staged_in_parts_the_popularity_list_in_the_first():
    run = Pass(part_size=2)
    run.buys("ann", "a", "b", "c")
    run.buys("bob", "c", "d", "e")
    outcome = run.run()
    assert outcome["fit"]["parts"] == [model_key(date(2026, 11, 23), n) for n in range(3)]
    assert [w["items"] for w in outcome["write"]] == [3, 2, 1], "part 0: the popularity item and 2 products"
    assert {pk for pk, _ in run.store.items} == {"RECOMMENDATIONS", *(f"PRODUCT#{p}" for p in "abcde")}


def test_a_night_without_products_stores_an_empty_popularity_list():
    outcome = Pass().run()
    assert outcome["fit"]["parts"] == [model_key(date(2026, 11, 23), 0)]
    assert outcome["write"][0]["items"] == 1


def test_scores_are_stored_to_six_significant_digits():
    assert stored_score(2 / 3) == Decimal("0.666667")
    assert stored_score(1e-9) == Decimal("1e-9")
    assert stored_score(12.0) == Decimal(12)


def test_the_fit_waits_for_every_segment_and_names_those_missing():
    run = Pass()
    extract({"time": TIME, "segment": 1, "segments": SEGMENTS}, run.extracting)
    with pytest.raises(DependencyUnavailable, match=r"segments \[0, 2\] of 3"):
        fit({"time": TIME, "segments": SEGMENTS}, run.fitting)


def test_bad_inputs_are_refused_saying_why():
    run = Pass()
    with pytest.raises(InvalidRequest, match="segment 3 is not one of 0 to 2"):
        extract({"time": TIME, "segment": 3, "segments": 3}, run.extracting)
    with pytest.raises(InvalidRequest, match="later than now"):
        fit({"time": (NOW + timedelta(hours=1)).isoformat(), "segments": 1}, run.fitting)
    with pytest.raises(InvalidRequest, match="not a key of a staged model"):
        write({"time": TIME, "part": "analytics/elsewhere.json.gz"}, run.writing)
    with pytest.raises(InvalidRequest, match="not of this run's night, 2026-11-23"):
        write({"time": TIME, "part": model_key(date(2026, 11, 22), 0)}, run.writing)
    with pytest.raises(NotFound, match="no model is staged"):
        write({"time": TIME, "part": model_key(date(2026, 11, 23), 0)}, run.writing)


def test_each_steps_sample_payload_is_a_valid_input_of_its_step():
    """``events/<function>/``: the step inputs the workflow gives each function, as samples to invoke it with."""
    import json

    from infra.wiring import NIGHTLY_RECOMMENDATIONS
    from shared.usecases.analytics import step_input
    from shared.usecases.recommendation_nightly import ExtractStep, FitStep, WriteStep
    from tests.conftest import EVENTS

    models = {"recommendations_extract": ExtractStep, "recommendations_fit": FitStep,
              "recommendations_write": WriteStep}  # fmt: skip
    assert [step.function for step in NIGHTLY_RECOMMENDATIONS.steps] == list(models)
    for name, model in models.items():
        (sample,) = sorted((EVENTS / name).glob("*.json"))
        step = step_input(model, json.loads(sample.read_text()), NOW)
        assert step.day == date(2026, 11, 23)
