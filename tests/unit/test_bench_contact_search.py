"""Issue 14's bench (``bench.contact_search``) measures what it says: contact search costs one Query of the
look-up index and one batch read per page, one search write per new contact or renamed contact, and nothing
for a profile change that touches no searched trait."""

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
    from bench import contact_search

    return contact_search.measure()


def test_search_costs_what_the_bench_reports(measured) -> None:
    changes = measured["changes"]
    assert changes["new contact"]["search_requests"] == 1
    assert changes["renamed"]["search_requests"] == 1
    assert changes["quiet change (a page view)"] == {
        "stage_requests": 0,
        "search_requests": 0,
        "search_items": 0,
    }
    assert changes["a trait that is not searched"]["search_requests"] == 0
    searches = measured["searches"]
    for label in ("a name prefix (20 a page)", "two words", "an email"):
        assert searches[label]["requests"] == {"BatchGetItem": 1, "Query (byLookup)": 1}, label
    assert searches["a contact id"]["requests"] == {"GetItem": 1}
    assert searches["a name prefix (20 a page)"]["found"] == measured["contacts"]
    assert (searches["two words"]["found"], searches["an email"]["found"]) == (1, 1)
    paging = searches[f"paging {measured['contacts']} results by 3"]
    assert paging == {"requests": {"BatchGetItem": 4, "Query (byLookup)": 4}, "pages": 4}
