"""Tags by hand (issue 14) through the real admin handler on moto: the tag is an identify call in the
contact's log, folded by the aggregation like a tracked tag, so the card and a segment see it; a retried
call is one event; bad tags and unknown contacts are refused."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import SERVER_KEY
from tests.integration.conftest import call_admin

ANN = "user_id:ann"
ADD = "/admin/contacts/{contactId}/tags"
REMOVE = "/admin/contacts/{contactId}/tags/{tag}"
VIPS = {"name": "VIPs", "filter": {"all": [{"tag": "vip"}]}}


def tag_calls(admin, contact: str) -> list[dict[str, Any]]:
    """The identify calls in the contact's log that carry tags (in no particular order: the test's clock
    stands still, so they share one time)."""
    status, page, _ = admin(contact, events=True, query={"limit": "100"})
    assert status == 200, page
    return [e for e in page["events"] if e["type"] == "identify" and "tags" in (e["traits"] or {})]


def members(segment: str) -> list[str]:
    status, page, _ = call_admin("GET", "/admin/segments/{segmentId}/members", {"segmentId": segment})
    assert status == 200, page
    return page["members"]


def test_a_tag_added_and_removed_by_hand_reaches_the_card_the_log_and_segments(
    send, admin, aggregation, stream
) -> None:
    assert call_admin("PUT", "/admin/segments/{segmentId}", {"segmentId": "vips"}, VIPS)[0] == 200
    assert send("/v1/identify", {"userId": "ann", "traits": {"tags": ["kites"]}}, key=SERVER_KEY)[0] == 200

    status, answer, _ = call_admin("POST", ADD, {"contactId": "ann"}, {"tag": " vip "})
    assert status == 200, answer
    assert answer == {"contact_id": ANN, "tags": ["kites", "vip"]}
    again = call_admin("POST", ADD, {"contactId": "ann"}, {"tag": "vip"})  # a retry, before the fold
    assert again[:2] == (200, answer)
    aggregation.drain()
    assert call_admin("POST", ADD, {"contactId": "ann"}, {"tag": "vip"})[:2] == (200, answer), "after it"
    aggregation.drain()

    card = admin(ANN)[1]
    assert card["tags"] == ["kites", "vip"]
    calls = tag_calls(admin, ANN)
    assert sorted(c["traits"]["tags"] for c in calls) == [["kites"], ["vip"]], "one event for three calls"
    by_hand = next(c for c in calls if c["traits"]["tags"] == ["vip"])
    assert by_hand["trust"] == "server"
    assert by_hand["context"] == {"source": "admin"} and by_hand["message_id"].startswith("admin-tag:")
    stream.drain()
    assert members("vips") == [ANN]

    status, answer, _ = call_admin("DELETE", REMOVE, {"contactId": "ann", "tag": "vip"})
    assert (status, answer) == (200, {"contact_id": ANN, "tags": ["kites"]})
    aggregation.drain()
    assert admin(ANN)[1]["tags"] == ["kites"]
    stream.drain()
    assert members("vips") == []
    assert call_admin("DELETE", REMOVE, {"contactId": "ann", "tag": "vip"})[:2] == (200, answer), "gone"
    aggregation.drain()

    status, answer, _ = call_admin("POST", ADD, {"contactId": "ann"}, {"tag": "vip"})  # back again: new
    assert (status, answer["tags"]) == (200, ["kites", "vip"])
    aggregation.drain()
    assert admin(ANN)[1]["tags"] == ["kites", "vip"]
    assert sorted(c["traits"]["tags"] for c in tag_calls(admin, ANN)) == [
        ["-vip"],
        ["kites"],
        ["vip"],
        ["vip"],
    ]


def test_an_idempotency_key_names_one_change(send, admin, aggregation) -> None:
    assert send("/v1/identify", {"userId": "ann", "traits": {"plan": "pro"}}, key=SERVER_KEY)[0] == 200
    for key in ("k-1", "k-1", "k-2"):
        headers = {"idempotency-key": key}
        assert call_admin("POST", ADD, {"contactId": ANN}, {"tag": "vip"}, headers)[0] == 200
    aggregation.drain()
    assert [c["traits"]["tags"] for c in tag_calls(admin, ANN)] == [["vip"], ["vip"]], "two keys, two calls"
    assert admin(ANN)[1]["tags"] == ["vip"]


@pytest.mark.parametrize("body", [{"tag": ""}, {"tag": "-vip"}, {"tag": "x" * 101}, {"tag": 7}, {}, ["vip"]])
def test_a_bad_tag_is_a_400_naming_the_field(send, admin, body) -> None:
    assert send("/v1/identify", {"userId": "ann", "traits": {"plan": "pro"}}, key=SERVER_KEY)[0] == 200
    status, error, _ = call_admin("POST", ADD, {"contactId": ANN}, body)
    assert (status, error["code"], error["field"]) == (400, "invalid_tag", "tag")
    assert tag_calls(admin, ANN) == []


def test_an_unknown_contact_is_a_404(aws) -> None:
    assert call_admin("POST", ADD, {"contactId": "user_id:nobody"}, {"tag": "vip"})[0] == 404
    assert call_admin("DELETE", REMOVE, {"contactId": "user_id:nobody", "tag": "vip"})[0] == 404
