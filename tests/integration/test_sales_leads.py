"""A salesperson's leads (issue 14) through the real handlers on moto: contacts tracked until sales-ready
are routed by the stage function, then listed under their salesperson, hottest first, with what the
sales view shows; accepting one marks it accepted."""

from __future__ import annotations

from typing import Any

from tests.conftest import SERVER_KEY
from tests.integration.conftest import call_admin

TEAM = {
    "ann-s": {"name": "Ann Seller", "email": "ann.s@example.com", "weight": 2},
    "bob-s": {"name": "Bob Seller", "email": "bob.s@example.com", "weight": 1},
}
LEADS = "/admin/salespeople/{salespersonId}/leads"


def leads(salesperson: str, limit: int | None = None) -> tuple[int, dict[str, Any]]:
    from functions.admin.handler import handler
    from tests.conftest import http_event, invoke

    event = http_event(
        "GET",
        LEADS.format(salespersonId=salesperson),
        route=f"GET {LEADS}",
        key=None,
        path_parameters={"salespersonId": salesperson},
        query={"limit": str(limit)} if limit is not None else None,
    )
    status, body, _ = invoke(handler, event)
    return status, body


def sales_ready(send, stream, user: str, traits: dict[str, Any], webinars: int) -> None:
    """Identified, then enough webinars (10 points each) to be sales-ready: routed by the stage function."""
    assert send("/v1/identify", {"userId": user, "traits": traits}, key=SERVER_KEY)[0] == 200
    batch = [
        {"type": "track", "userId": user, "event": "Webinar Attended", "messageId": f"{user}-w{i}"}
        for i in range(webinars)
    ]
    assert send("/v1/batch", {"batch": batch})[0] == 200
    stream.drain()


def test_a_salespersons_leads_hottest_first_and_accepted_once_accepted(send, stream, admin) -> None:
    for person_id, person in TEAM.items():
        assert (
            call_admin("PUT", "/admin/salespeople/{salespersonId}", {"salespersonId": person_id}, person)[0]
            == 200
        )
    # routed in turn: ann-s, bob-s, ann-s (weights 2 and 1)
    sales_ready(send, stream, "u0", {"name": "Zoe Zed", "email": "zoe@example.com"}, 6)
    sales_ready(send, stream, "u1", {"first_name": "Yan", "last_name": "Young"}, 6)
    sales_ready(send, stream, "u2", {"firstName": "Xia", "email": "xia@example.com"}, 9)
    owners = {u: admin(f"user_id:{u}")[1]["owner"] for u in ("u0", "u1", "u2")}
    assert owners == {"u0": "ann-s", "u1": "bob-s", "u2": "ann-s"}

    status, page = leads("ann-s")
    assert status == 200, page
    assert page["salesperson_id"] == "ann-s"
    assert [lead["contact_id"] for lead in page["leads"]] == ["user_id:u2", "user_id:u0"], "hottest first"
    hottest = page["leads"][0]
    card = admin("user_id:u2")[1]
    assert hottest["score"] == card["scores"]["global"]["current"]
    assert hottest["quarter"] == card["engagement"]["quarter"]
    assert (hottest["user_id"], hottest["name"], hottest["email"]) == ("u2", "Xia", "xia@example.com")
    assert (hottest["stage"], hottest["accepted"]) == (card["stage"], False)
    assert hottest["routed_at"] is not None
    assert page["leads"][1]["name"] == "Zoe Zed"
    assert leads("bob-s")[1]["leads"][0]["name"] == "Yan Young"
    assert [lead["contact_id"] for lead in leads("ann-s", limit=1)[1]["leads"]] == ["user_id:u2"], "newest"

    status, _, _ = call_admin(
        "POST", "/admin/contacts/{contactId}/accept", {"contactId": "user_id:u0"}, {"salesperson": "ann-s"}
    )
    assert status == 200
    stream.drain()
    accepted = {lead["contact_id"]: lead["accepted"] for lead in leads("ann-s")[1]["leads"]}
    assert accepted == {"user_id:u2": False, "user_id:u0": True}


def test_an_unknown_salesperson_is_a_404_and_a_bad_limit_a_400(aws) -> None:
    status, error = leads("nobody")
    assert (status, error["code"]) == (404, "salesperson_not_found")
    assert (
        call_admin("PUT", "/admin/salespeople/{salespersonId}", {"salespersonId": "sam"}, TEAM["ann-s"])[0]
        == 200
    )
    assert leads("sam") == (200, {"salesperson_id": "sam", "leads": []})
    status, error = leads("sam", limit=0)
    assert (status, error["code"], error["field"]) == (400, "invalid_limit", "limit")
