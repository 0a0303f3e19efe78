"""Issue 15's bench (``bench.recommendation_serving``) measures what it says: a contact's recommendations
cost its profile's read, one Query of its purchases and two batch reads whatever its history (and
never offer what it bought), a product's two batch reads, a catalog
page one Query; and what is served leaves out the products out of stock."""

from __future__ import annotations

import pytest


@pytest.fixture
def measured(monkeypatch: pytest.MonkeyPatch):
    for name, value in {
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
    }.items():
        monkeypatch.setenv(name, value)
    from bench import recommendation_serving

    return recommendation_serving.measure()


def test_serving_costs_what_the_bench_reports(measured) -> None:
    rows = measured["rows"]
    contacts = [label for label in rows if label.startswith("a contact")]
    assert len(contacts) == 8
    for label in contacts:
        assert rows[label]["requests"] == {"BatchGetItem": 2, "GetItem": 1, "Query": 1}, label
        assert rows[label]["bought"] == 0, label
        assert rows[label]["served"] == int(label.rsplit("n=", 1)[1]), label
        assert rows[label]["out_of_stock"] == 0, label
        # from its recent products (the nightly model's neighbours), or the popular ones for a new contact
        assert rows[label]["similar"] == (0 if "with 0 recent" in label else rows[label]["served"]), label
    assert rows["a product's bought together, n=10"]["requests"] == {"BatchGetItem": 2}
    assert rows["a product's bought together, n=10"]["similar"] == 10
    assert rows["a product's bought together, n=10"]["out_of_stock"] == 0
    assert rows["a catalog page of 100"]["requests"] == {"Query": 1}
    assert rows["a catalog page of 100"]["served"] == 100
