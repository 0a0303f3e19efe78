"""Contact search (issue 14) through the real handlers on moto: identify calls recorded by the tracking API,
folded by the aggregation, their search terms kept by the stage function on the contacts table's stream,
and ``GET /admin/contacts?q=`` through the admin handler (its wiring's permissions enforced)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.conftest import http_event, invoke
from tests.integration.conftest import call_admin
from tests.integration.test_backfills import engine, run, start  # noqa: F401 - engine: a fixture

PEOPLE = [
    ("ann", {"email": "Ann.Lee@Example.com", "name": "Ann Lee"}),
    ("bob", {"email": "bob@example.com", "firstName": "Bob", "lastName": "Émile-Durand"}),
    ("zoe", {"email": "zoe@other.org", "first_name": "Zoé", "last_name": "Annan"}),
]


def find(q: str | None, **query: str) -> tuple[int, dict[str, Any]]:
    from functions.admin.handler import handler

    parameters = {**({"q": q} if q is not None else {}), **query}
    status, body, _ = invoke(
        handler,
        http_event("GET", "/admin/contacts", route="GET /admin/contacts", key=None, query=parameters or None),
    )
    return status, body


def ids(body: dict[str, Any]) -> list[str]:
    return [c["contact_id"] for c in body["contacts"]]


def identify(send, user: str, traits: dict[str, Any], message: str) -> None:
    call = {"type": "identify", "userId": user, "messageId": message, "traits": traits}
    assert send("/v1/identify", call)[0] == 200


def search_items(aws) -> list[dict[str, Any]]:
    """Every item of the search index (the ``byLookup`` index's ``SEARCH#`` keys), as a Scan sees it."""
    items = aws.scan(TableName=os.environ["CONTACTS_TABLE_NAME"])["Items"]
    return [i for i in items if i["sk"]["S"].startswith("SEARCH")]


@pytest.fixture
def people(send, stream):
    for user, traits in PEOPLE:
        identify(send, user, traits, f"i-{user}")
    stream.drain()


def test_a_contact_is_found_by_email_name_and_id(people) -> None:
    status, body = find("ann.lee@example.COM")
    assert status == 200
    assert body == {
        "contacts": [
            {
                "contact_id": "user_id:ann",
                "user_id": "ann",
                "email": "Ann.Lee@Example.com",
                "name": "Ann Lee",
                "stage": body["contacts"][0]["stage"],
            }
        ],
        "next_cursor": None,
    }
    assert body["contacts"][0]["stage"]  # placed in the funnel by the stage function
    assert ids(find("ann.l")[1]) == ["user_id:ann"]  # a prefix of an email
    assert ids(find("emile")[1]) == ["user_id:bob"]  # accents and case ignored, a part of a joined name
    assert ids(find("Émile-Dur")[1]) == ["user_id:bob"]
    assert ids(find("zoe annan")[1]) == ["user_id:zoe"]  # several words: all must match
    assert ids(find("zoe lee")[1]) == []
    assert ids(find("user_id:bob")[1]) == ["user_id:bob"]  # a contact id
    assert ids(find("bob")[1]) == ["user_id:bob"]  # an exact user id (and a first name): once
    assert ids(find("nobody")[1]) == []


def test_a_prefix_finds_every_contact_in_a_stable_order_over_pages(people) -> None:
    # "ann" starts Ann's first name and email, and Zoé's last name
    status, first = find("ann", limit="1")
    assert status == 200 and first["next_cursor"]
    seen = ids(first)
    cursor = first["next_cursor"]
    while cursor:
        status, page = find("ann", limit="1", cursor=cursor)
        assert status == 200
        seen += ids(page)
        cursor = page["next_cursor"]
    assert set(seen) == {"user_id:ann", "user_id:zoe"}
    assert ids(find("ann", limit="50")[1]) == ["user_id:ann", "user_id:zoe"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "a"}, "q"),
        ({"q": "ann", "limit": "0"}, "limit"),
        ({"q": "ann", "limit": "51"}, "limit"),
        ({"q": "ann", "cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_a_bad_search_is_refused_with_the_field_it_is_about(aws, query, field) -> None:
    status, body = find(query.pop("q", None), **query)
    assert status == 400
    assert body["code"] == "invalid_request"
    assert body["field"] == field
    assert body["message"]


def test_a_renamed_contact_is_found_by_its_new_name_only(send, stream, people, aws) -> None:
    identify(send, "ann", {"name": "Ann Smith"}, "i-ann-2")
    stream.drain()
    assert ids(find("smith")[1]) == ["user_id:ann"]
    assert ids(find("lee")[1]) == []
    terms = sorted(i["sk"]["S"] for i in search_items(aws) if i["pk"]["S"] == "C#user_id:ann")
    assert terms == ["SEARCH", "SEARCH#ann", "SEARCH#ann.lee@example.com", "SEARCH#smith"]


def test_a_change_of_no_searched_trait_writes_no_search_item(send, stream, people, aws) -> None:
    before = search_items(aws)
    track = {"type": "track", "userId": "ann", "event": "Product Viewed", "messageId": "t1"}
    assert send("/v1/track", track)[0] == 200
    identify(send, "ann", {"plan": "pro"}, "i-ann-3")
    stream.drain()
    assert search_items(aws) == before


def test_an_erased_contact_leaves_no_search_item(people, aws) -> None:
    status, _, _ = call_admin("DELETE", "/admin/contacts/{contactId}", {"contactId": "user_id:ann"})
    assert status == 200
    assert [i for i in search_items(aws) if i["pk"]["S"] == "C#user_id:ann"] == []
    assert ids(find("ann")[1]) == ["user_id:zoe"]


def test_a_visitor_merged_away_leaves_no_search_item(send, stream, merges, aws) -> None:
    visitor = {"type": "identify", "anonymousId": "v-1", "messageId": "a1", "traits": {"name": "Kim Park"}}
    assert send("/v1/identify", visitor)[0] == 200
    stream.drain()
    assert ids(find("kim")[1]) == ["anonymous_id:v-1"]
    signup = {"type": "identify", "userId": "kim", "anonymousId": "v-1", "messageId": "a2", "traits": {}}
    assert send("/v1/identify", signup)[0] == 200
    merges.drain()
    stream.drain()
    # the visitor's terms went; what stays is its SEARCH item (no terms: it is in no index)
    left = [i for i in search_items(aws) if i["pk"]["S"] == "C#anonymous_id:v-1"]
    assert [(i["sk"]["S"], i["terms"]["S"]) for i in left] == [("SEARCH", "")]
    assert ids(find("kim park")[1]) == ["user_id:kim"]  # the name moved with the merge
    assert ids(find("anonymous_id:v-1")[1]) == ["user_id:kim"]  # an id merged away: whom it belongs to now


def test_a_replayed_old_record_does_not_bring_an_old_name_back(send, aws, people) -> None:
    """The stream's records delivered again after newer ones (a retried batch, a redrive): the terms stay
    the newest."""
    from tests.integration.conftest import stream_pump

    captured: list[dict[str, Any]] = []

    def keep(event: dict[str, Any], context: Any) -> dict[str, Any]:
        from functions.stage_transition.handler import handler

        captured.extend(event["Records"])
        return handler(event, context)

    pump = stream_pump(aws, "stage_transition", handler=keep)
    pump.drain()
    identify(send, "ann", {"name": "Ann Smith"}, "i-ann-4")
    pump.drain()
    assert ids(find("smith")[1]) == ["user_id:ann"]
    from functions.stage_transition.handler import handler
    from tests.conftest import Context

    handler({"Records": captured}, Context)  # everything again, oldest first
    assert ids(find("smith")[1]) == ["user_id:ann"]
    assert ids(find("lee")[1]) == []


@pytest.mark.usefixtures("engine")
def test_contacts_stored_before_the_search_are_indexed_by_the_backfill(aws, send, stream) -> None:
    identify(send, "ann", {"name": "Ann Lee", "email": "ann@example.com"}, "i-ann")
    identify(send, "bob", {"plan": "pro"}, "i-bob")  # nothing to search by: nothing written
    # the stage function has not seen these changes: as if stored before this release
    assert ids(find("lee")[1]) == []
    assert start("contacts_backfill", "search-terms")[1]["started"] is True
    assert run("contacts_backfill", "search-terms")[1]["result"]["indexed"] == 1
    assert ids(find("lee")[1]) == ["user_id:ann"]
    assert ids(find("ann@ex")[1]) == ["user_id:ann"]
    # again: found indexed, nothing written; the stream's own changes afterwards keep the same terms
    assert start("contacts_backfill", "search-terms-2")[1]["started"] is True
    assert run("contacts_backfill", "search-terms-2")[1]["result"]["indexed"] == 0
    stream.drain()
    terms = sorted(i["sk"]["S"] for i in search_items(aws))
    assert terms == ["SEARCH", "SEARCH#ann", "SEARCH#ann@example.com", "SEARCH#lee"]
    assert ids(find("lee")[1]) == ["user_id:ann"]
