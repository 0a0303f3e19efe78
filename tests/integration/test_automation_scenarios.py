"""The automation scenarios, end to end in the local stack: tracking calls over HTTP, the automations as
the examples ship them, the clock moved by ``POST /_local/clock`` (firing the hourly timer function for
every elapsed hour), and what the automations produced read from ``GET /_local/outbox``: what the delivery
function did with each message (sent, skipped or held out, and why).

Contacts who should receive what they are sent have an email address and gave consent (``email_opt_in``
from the server key). Every test starts at 10:00 UTC, inside the allowed hours: a message due in the quiet
hours would be deferred to the morning."""

from __future__ import annotations

import base64
import json
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.automations.engine import held_out

EXAMPLES = Path(__file__).parents[2] / "examples" / "automations"
SERVER = "Basic " + base64.b64encode(b"local-server-key:").decode()


@pytest.fixture(autouse=True)
def daytime(local_stack: Any) -> None:
    """The local clock (the wall clock until moved) at the next 10:00 UTC."""
    now = local_stack.clock.now()
    ten = now.replace(hour=10, minute=0, second=0, microsecond=0)
    target = ten if ten > now else ten + timedelta(days=1)
    call(local_stack, "POST", "/_local/clock", {"set": target.isoformat()})


def call(stack: Any, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(
        f"{stack.url}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"content-type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def track(stack: Any, path: str, body: dict[str, Any]) -> None:
    assert call(stack, "POST", path, body, {"authorization": SERVER}) == {"success": True}
    stack.drain_streams()


def advance(stack: Any, duration: str) -> None:
    call(stack, "POST", "/_local/clock", {"advance": duration})
    stack.drain_streams()


def outbox(stack: Any, automation: str, contact: str | None = None) -> list[dict[str, Any]]:
    return [
        m
        for m in call(stack, "GET", "/_local/outbox")["messages"]
        if m["automation"] == automation and (contact is None or m["contact_id"] == contact)
    ]


def reachable(stack: Any, user: str, **traits: Any) -> None:
    """The user has an email address and consented to marketing email (from the server key)."""
    traits = {"email": f"{user}@example.com", "email_opt_in": True, **traits}
    track(stack, "/v1/identify", {"userId": user, "traits": traits})


def put_example(stack: Any, name: str, **changes: Any) -> dict[str, Any]:
    body = {**json.loads((EXAMPLES / f"{name}.json").read_text()), **changes}
    return call(stack, "PUT", f"/admin/automations/{body['id']}", body)


def acted_on(automation: str, percent: float, prefix: str = "user") -> str:
    """A user id outside the automation's holdout group."""
    return next(
        f"{prefix}{n}" for n in range(100) if not held_out(f"user_id:{prefix}{n}", automation, percent)
    )


def visit(stack: Any, user: str, url: str = "https://shop.example/") -> None:
    """A page view; its own messageId (a call without one is known by its content: the same page again
    would be taken for a retry)."""
    track(stack, "/v1/page", {"userId": user, "messageId": str(uuid.uuid4()), "properties": {"url": url}})


def test_win_back_fires_once_per_lapse_counted_from_the_last_visit(local_stack) -> None:
    put_example(local_stack, "win-back")
    ann = acted_on("win-back", 10)
    reachable(local_stack, ann, first_name="Ann")
    visit(local_stack, ann)
    advance(local_stack, "P60D")
    visit(local_stack, ann)  # before day 90: the timer moves forward
    advance(local_stack, "P89D")
    assert outbox(local_stack, "win-back") == [], "89 days after the last visit: nothing yet"
    advance(local_stack, "P2D")
    (message,) = outbox(local_stack, "win-back")
    assert message["contact_id"] == f"user_id:{ann}" and message["status"] == "sent", message
    assert message["subject"] == "We miss you" and "Hello Ann" in message["text"]
    assert "15% off" in message["text"] and "BACK-" in message["text"]
    advance(local_stack, "P200D")
    assert len(outbox(local_stack, "win-back")) == 1, "one lapse, one message"
    visit(local_stack, ann)  # back...
    advance(local_stack, "P91D")  # ...and lapsed again: won back again
    first, second = outbox(local_stack, "win-back")
    assert first["id"] != second["id"] and second["text"].split("code ")[1] != first["text"].split("code ")[1]


def test_the_win_back_holdout_is_recorded_and_never_acted_on(local_stack) -> None:
    put_example(local_stack, "win-back")
    held = next(f"u{n}" for n in range(200) if held_out(f"user_id:u{n}", "win-back", 10))
    visit(local_stack, held)
    advance(local_stack, "P91D")
    (message,) = outbox(local_stack, "win-back")
    assert message["status"] == "held_out" and message["reason"]


def test_the_kids_program_offers_each_childs_next_age_every_year_up_to_twelve(local_stack) -> None:
    put_example(local_stack, "kids-program")
    reachable(local_stack, "parent")
    track(
        local_stack,
        "/v1/track",
        {
            "userId": "parent",
            "event": "Order Completed",
            "properties": {
                "order_id": "o-1",
                "products": [
                    {"product_id": "lego-city", "child_age": 6},
                    {"product_id": "picture-book", "child_age": 10},
                    {"product_id": "gift-wrap"},
                ],
            },
        },
    )
    advance(local_stack, "P364D")
    assert outbox(local_stack, "kids-program") == []
    advance(local_stack, "P2D")
    subjects = sorted(m["subject"] for m in outbox(local_stack, "kids-program"))
    assert subjects == ["Ideas for your 11-year-old", "Ideas for your 7-year-old"]
    advance(local_stack, "P1830D")  # five more years
    by_age = sorted(int(m["subject"].split()[-1].split("-")[0]) for m in outbox(local_stack, "kids-program"))
    assert by_age == [7, 8, 9, 10, 11, 11, 12, 12], "one offer per child and year, none past 12"


def test_a_program_started_twice_by_a_replayed_call_offers_once(local_stack) -> None:
    put_example(local_stack, "kids-program")
    order = {
        "userId": "parent",
        "event": "Order Completed",
        "messageId": "order-o-2",
        "timestamp": "2026-01-10T10:00:00Z",
        "properties": {"child_age": 6},
    }
    reachable(local_stack, "parent")
    track(local_stack, "/v1/track", order)
    track(local_stack, "/v1/track", order)  # an SDK retry
    advance(local_stack, "P400D")
    assert [m["subject"] for m in outbox(local_stack, "kids-program")] == ["Ideas for your 7-year-old"]


@pytest.mark.parametrize("sales", [50])
def test_crossing_the_sales_threshold_routes_the_lead_and_sends_the_message(local_stack, sales) -> None:
    call(
        local_stack,
        "PUT",
        "/admin/salespeople/s1",
        {"name": "Sam Seller", "email": "sam@example.com"},
    )
    call(
        local_stack,
        "PUT",
        "/admin/automations/sales-handover",
        {
            "name": "Sales handover",
            "trigger": {"type": "score", "dimension": "global", "threshold": sales, "direction": "up"},
            "steps": [
                {"action": "email", "subject": "A specialist will call you", "text": "Hi {{ traits.name }}"}
            ],
        },
    )
    reachable(local_stack, "lead", name="Lee")
    for n in range(12):
        track(local_stack, "/v1/track", {"userId": "lead", "event": "Webinar Attended", "messageId": f"w{n}"})
    card = call(local_stack, "GET", "/admin/contacts/user_id:lead")
    assert card["owner"] == "s1"
    (message,) = outbox(local_stack, "sales-handover")
    assert message["status"] == "sent" and message["contact_id"] == "user_id:lead"
    assert message["text"].startswith("Hi Lee"), "as sent: the unsubscribe footer follows"


def test_falling_into_the_exit_quarter_brings_a_retention_offer(local_stack) -> None:
    call(
        local_stack,
        "PUT",
        "/admin/automations/retention",
        {
            "name": "Retention offer",
            "trigger": {"type": "quarter", "to": "exit", "direction": "falling"},
            "steps": [
                {"action": "coupon", "prefix": "STAY", "value": 10},
                {"action": "email", "subject": "10% to stay with us", "text": "Code {{ coupon.code }}"},
            ],
        },
    )
    reachable(local_stack, "buyer")
    track(
        local_stack,
        "/v1/track",
        {"userId": "buyer", "event": "Order Completed", "properties": {"revenue": 5}},
    )
    track(local_stack, "/v1/track", {"userId": "buyer", "event": "Webinar Attended"})
    advance(local_stack, "P120D")  # engagement decays from retention into exit
    (message,) = outbox(local_stack, "retention")
    assert message["subject"] == "10% to stay with us" and "STAY-" in message["text"]


def kids_order(stack: Any, message_id: str = "order-k", age: int = 6) -> None:
    reachable(stack, "parent")
    track(
        stack,
        "/v1/track",
        {
            "userId": "parent",
            "event": "Order Completed",
            "messageId": message_id,
            "properties": {"child_age": age},
        },
    )


def subjects(stack: Any, automation: str = "kids-program") -> list[str]:
    return [m["subject"] for m in outbox(stack, automation)]


def test_a_replayed_stream_batch_and_a_double_fired_schedule_act_once(local_stack) -> None:
    from infra.local.gateway import load_handler
    from shared.adapters import aws
    from tests.conftest import Context

    put_example(local_stack, "kids-program")
    kids_order(local_stack)
    # the events stream delivers the same record again (Lambda retries a batch): nothing is armed twice
    items = aws.client("dynamodb").query(
        TableName=local_stack.table_names["events"],
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "C#user_id:parent"}},
    )["Items"]
    (item,) = [i for i in items if "order-k" in json.dumps(i)]  # the order (the identify is the other)
    sample = json.loads(
        (Path(__file__).parents[2] / "events/automation_events/event_recorded.json").read_text()
    )
    sample["Records"][0]["dynamodb"].update(Keys={"pk": item["pk"], "sk": item["sk"]}, NewImage=item)
    events_handler = load_handler("functions.automation_events.handler.handler")
    for _ in range(2):
        assert events_handler(sample, Context()) == {"batchItemFailures": []}
    page = call(local_stack, "GET", "/admin/contacts/user_id:parent/automations")
    assert [(t["automation"], t["n"]) for t in page["timers"]] == [("kids-program", 1)]
    advance(local_stack, "P366D")
    # the schedule fires twice at the same moment: the timer was consumed by the first run
    timers = load_handler("functions.timers.handler.handler")
    scheduled = json.loads((Path(__file__).parents[2] / "events/timers/scheduled.json").read_text())
    timers(scheduled, Context())
    timers(scheduled, Context())
    local_stack.drain_streams()
    assert subjects(local_stack) == ["Ideas for your 7-year-old"]
    page = call(local_stack, "GET", "/admin/contacts/user_id:parent/automations")
    (run,) = page["runs"]
    assert run["automation"] == "kids-program" and run["status"] == "done" and run["run_status"] == "acted"
    assert run["requests"][0]["subject"] == "Ideas for your 7-year-old"
    assert [(t["n"], t["values"]["age"]) for t in page["timers"]] == [(2, 8)], "next year's offer, for 8"


def test_an_automation_edited_mid_flight_goes_on_with_the_new_content_and_never_refires(local_stack) -> None:
    put_example(local_stack, "kids-program")
    kids_order(local_stack)
    advance(local_stack, "P366D")
    assert subjects(local_stack) == ["Ideas for your 7-year-old"]
    edited = json.loads((EXAMPLES / "kids-program.json").read_text())
    edited["steps"][0]["subject"] = "Birthday ideas for a {{ age }}-year-old"
    stored = call(local_stack, "PUT", "/admin/automations/kids-program", edited, {"if-match": "1"})
    assert stored["version"] == 2
    advance(local_stack, "P10D")
    assert subjects(local_stack) == ["Ideas for your 7-year-old"], "the edit fires nothing again"
    advance(local_stack, "P365D")
    assert subjects(local_stack) == ["Ideas for your 7-year-old", "Birthday ideas for a 8-year-old"]


def test_a_paused_automation_skips_what_falls_due_and_resumes_with_the_next(local_stack) -> None:
    put_example(local_stack, "kids-program")
    kids_order(local_stack)
    call(local_stack, "POST", "/admin/automations/kids-program/pause")
    advance(local_stack, "P366D")
    assert subjects(local_stack) == [], "paused: the year-7 offer is skipped"
    call(local_stack, "POST", "/admin/automations/kids-program/resume")
    advance(local_stack, "P366D")
    assert subjects(local_stack) == ["Ideas for your 8-year-old"]


def test_a_paused_automation_starts_nothing_from_new_events(local_stack) -> None:
    put_example(local_stack, "kids-program")
    call(local_stack, "POST", "/admin/automations/kids-program/pause")
    kids_order(local_stack)
    assert call(local_stack, "GET", "/admin/contacts/user_id:parent/automations")["timers"] == []


def test_inactivity_can_count_from_any_behaviour_and_profiles_keep_only_what_is_watched(local_stack) -> None:
    from shared.adapters import aws

    call(
        local_stack,
        "PUT",
        "/admin/automations/cart-reminder",
        {
            "name": "Come back to your cart",
            "trigger": {"type": "inactivity", "days": 14, "since": "added_to_cart"},
            "steps": [
                {"action": "email", "subject": "Still thinking it over?", "text": "Your cart is waiting"}
            ],
        },
    )
    reachable(local_stack, "cart")
    track(local_stack, "/v1/track", {"userId": "cart", "event": "Product Added", "messageId": "c1"})
    for day in range(3):  # visits go on; no cart since
        advance(local_stack, "P7D")
        visit(local_stack, "cart")
    (message,) = outbox(local_stack, "cart-reminder")
    assert (message["subject"], message["status"]) == ("Still thinking it over?", "sent")
    profile = aws.client("dynamodb").get_item(
        TableName=local_stack.table_names["contacts"],
        Key={"pk": {"S": "C#user_id:cart"}, "sk": {"S": "PROFILE"}},
    )["Item"]
    assert sorted(name for name in profile if name.startswith("last:")) == ["last:added_to_cart"], (
        "no automation counts from visits here: their last time is not written"
    )


def test_a_message_to_a_contact_without_an_address_or_consent_is_skipped_with_the_reason(local_stack) -> None:
    call(
        local_stack,
        "PUT",
        "/admin/automations/cart-reminder",
        {
            "name": "Come back to your cart",
            "trigger": {"type": "inactivity", "days": 14, "since": "added_to_cart"},
            "steps": [{"action": "email", "subject": "Still thinking it over?", "text": "Your cart"}],
        },
    )
    track(local_stack, "/v1/identify", {"userId": "silent", "traits": {"email": "silent@example.com"}})
    for user in ("anonymous", "silent"):  # no address at all; an address without consent
        track(local_stack, "/v1/track", {"userId": user, "event": "Product Added", "messageId": f"c-{user}"})
    advance(local_stack, "P15D")
    found = {m["contact_id"]: (m["status"], m["reason"]) for m in outbox(local_stack, "cart-reminder")}
    assert found == {
        "user_id:anonymous": ("skipped", "no_address"),
        "user_id:silent": ("skipped", "no_consent"),
    }
