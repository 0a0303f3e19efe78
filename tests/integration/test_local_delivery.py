"""Delivery in the local stack: the delivery function consumes the delivery queue, ``GET /_local/outbox``
shows what it did (and what SES sent, with its .eml file), ``POST /_local/feedback`` reports what a
recipient did as SES would, and the unsubscribe link in a local email works against the stack."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

SERVER = "Basic " + base64.b64encode(b"local-server-key:").decode()


def call(
    stack: Any,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, Any]:
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{stack.url}{path}",
        data=data,
        method=method,
        headers={"content-type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text.decode()


def feedback(stack: Any, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
    return call(stack, "POST", "/_local/feedback", body, raw=raw)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (b"[1, 2]", "body"),
        (b"{}", "id"),
        (json.dumps({"id": "", "kind": "open"}).encode(), "id"),
        (json.dumps({"id": 7, "kind": "open"}).encode(), "id"),
        (json.dumps({"id": "a#b#c#0"}).encode(), "kind"),
        (json.dumps({"id": "a#b#c#0", "kind": "delivered"}).encode(), "kind"),
        (json.dumps({"id": "a#b#c#0", "kind": "click"}).encode(), "link"),
        (json.dumps({"id": "a#b#c#0", "kind": "click", "link": "javascript:alert(1)"}).encode(), "link"),
        (json.dumps({"id": "a#b#c#0", "kind": "open", "link": "https://shop.example/"}).encode(), "link"),
        (json.dumps({"id": "a#b#c#0", "kind": "open", "recipient": "x@example.com"}).encode(), "recipient"),
    ],
)
def test_feedback_refuses_a_malformed_report_naming_the_field(local_stack, body: bytes, field: str) -> None:
    status, answer = feedback(local_stack, raw=body)
    assert status == 400, answer
    assert answer["code"] == "invalid_feedback" and answer["field"] == field
    assert answer["message"].startswith(f"{field}: ")


def test_feedback_about_a_request_delivery_never_handled_is_404(local_stack) -> None:
    status, answer = feedback(local_stack, {"id": "user_id:nobody#welcome#o1#0", "kind": "open"})
    assert (status, answer["code"]) == (404, "unknown_send")


def test_feedback_is_a_local_tool_only(local_stack) -> None:
    status, _ = call(
        local_stack,
        "POST",
        "/_local/feedback",
        {"id": "x#a#o#0", "kind": "open"},
        headers={"origin": "https://evil.example"},
    )
    assert status == 403


# --- end to end: these need the delivery, ledger, channels, feedback and preferences parts ----------------


def daytime(stack: Any) -> datetime:
    """Move the local clock to the next 10:00 UTC: inside the allowed hours (no quiet-hours deferral)."""
    now = stack.clock.now()
    ten = now.replace(hour=10, minute=0, second=0, microsecond=0)
    target = ten if ten > now else ten + timedelta(days=1)
    status, _ = call(stack, "POST", "/_local/clock", {"set": target.isoformat()})
    assert status == 200
    return target


def identify(stack: Any, user: str, **traits: Any) -> None:
    status, answer = call(
        stack, "POST", "/v1/identify", {"userId": user, "traits": traits}, {"authorization": SERVER}
    )
    assert (status, answer) == (200, {"success": True})
    stack.drain_streams()


def request_delivery(stack: Any, id: str, **fields: Any) -> None:
    from shared.adapters import aws
    from shared.delivery.requests import DeliveryRequest

    contact, automation, occurrence, step = id.split("#")
    body = DeliveryRequest(
        id=id,
        contact_id=contact,
        automation=automation,
        version=1,
        occurrence=occurrence,
        step=int(step),
        channel=fields.pop("channel", "email"),
        at=stack.clock.now(),
        **fields,
    ).model_dump_json()
    aws.client("sqs").send_message(QueueUrl=stack.queue_urls["delivery"], MessageBody=body)


def outbox(stack: Any, id: str) -> dict[str, Any]:
    status, page = call(stack, "GET", "/_local/outbox")
    assert status == 200
    (entry,) = [m for m in page["messages"] if m["id"] == id]
    return entry


def test_a_sent_email_in_the_outbox_on_disk_its_feedback_and_its_unsubscribe_link(local_stack) -> None:
    from infra.local.stack import POSTAL_ADDRESS

    daytime(local_stack)
    identify(local_stack, "ann", email="ann@example.com", email_opt_in=True, first_name="Ann")
    first = "user_id:ann#welcome#o1#0"
    request_delivery(local_stack, first, subject="Welcome", text="Hello Ann", html="<p>Hello Ann</p>")
    sent = outbox(local_stack, first)
    assert (sent["status"], sent["channel"], sent["subject"]) == ("sent", "email", "Welcome"), sent
    assert sent["to"] == "ann@example.com"
    assert "Hello Ann" in sent["text"] and POSTAL_ADDRESS in sent["text"]
    assert "Hello Ann" in sent["html"]
    assert sent["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = sent["headers"]["List-Unsubscribe"].strip("<>")
    assert unsubscribe.startswith(f"{local_stack.url}/unsubscribe?")
    # the .eml file, once, for a mail client
    eml = Path(sent["eml"])
    assert eml.parent == local_stack.settings.mail_dir and eml.suffix == ".eml"
    message = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    assert (message["subject"], message["to"], message["list-unsubscribe"]) == (
        "Welcome",
        "ann@example.com",
        sent["headers"]["List-Unsubscribe"],
    )
    assert outbox(local_stack, first)["eml"] == sent["eml"]
    assert list(local_stack.settings.mail_dir.iterdir()) == [eml]

    # a click, as SES publishes it on the default bus, becomes Ann's behaviour
    status, answer = feedback(local_stack, {"id": first, "kind": "click", "link": "https://shop.example/a"})
    assert status == 200, answer
    published = answer["published"]
    assert (published["source"], published["detail-type"]) == ("aws.ses", "Email Clicked")
    assert published["detail"]["click"]["link"] == "https://shop.example/a"
    assert published["detail"]["mail"]["destination"] == ["ann@example.com"]
    status, events = call(local_stack, "GET", "/admin/contacts/user_id:ann/events?limit=50")
    assert status == 200 and "Email Link Clicked" in json.dumps(events)

    # the one-click link: a GET only shows a page; the POST unsubscribes; the next email is skipped
    path = unsubscribe.removeprefix(local_stack.url)
    status, page = call(local_stack, "GET", path, headers={"content-type": "text/html"})
    assert status == 200 and isinstance(page, str)
    second = "user_id:ann#welcome#o1#1"
    status, _ = call(
        local_stack,
        "POST",
        path,
        raw=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert status == 200
    request_delivery(local_stack, second, subject="Still there?", text="Hello again")
    skipped = outbox(local_stack, second)
    assert (skipped["status"], skipped["reason"]) == ("skipped", "no_consent")
    assert "eml" not in skipped and "headers" not in skipped
    forged = path.replace("t=", "t=x", 1)
    assert forged != path
    status, _ = call(
        local_stack,
        "POST",
        forged,
        raw=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert 400 <= status < 500


def test_a_hard_bounce_suppresses_the_address(local_stack) -> None:
    daytime(local_stack)
    identify(local_stack, "bo", email="bo@example.com", email_opt_in=True)
    first, second = "user_id:bo#news#o1#0", "user_id:bo#news#o2#0"
    request_delivery(local_stack, first, subject="News", text="One")
    assert outbox(local_stack, first)["status"] == "sent"
    status, answer = feedback(local_stack, {"id": first, "kind": "bounce"})
    assert status == 200, answer
    assert answer["published"]["detail"]["bounce"]["bounceType"] == "Permanent"
    request_delivery(local_stack, second, subject="News", text="Two")
    entry = outbox(local_stack, second)
    assert entry["status"] == "skipped" and entry["reason"].startswith("suppressed")


def test_feedback_about_a_request_that_sent_nothing_is_409(local_stack) -> None:
    daytime(local_stack)
    identify(local_stack, "nomail", first_name="No Mail")
    id = "user_id:nomail#welcome#o1#0"
    request_delivery(local_stack, id, subject="Welcome", text="Hello")
    assert (outbox(local_stack, id)["status"], outbox(local_stack, id)["reason"]) == ("skipped", "no_address")
    status, answer = feedback(local_stack, {"id": id, "kind": "open"})
    assert (status, answer["code"]) == (409, "not_sent")


def test_a_sent_sms_shows_what_sns_sent(local_stack) -> None:
    daytime(local_stack)
    identify(local_stack, "sam", phone="+15555550100", sms_consent=True)
    id = "user_id:sam#reminder#o1#0"
    request_delivery(local_stack, id, channel="sms", text="Your cart is waiting")
    entry = outbox(local_stack, id)
    assert (entry["status"], entry["to"]) == ("sent", "+15555550100"), entry
    assert entry["text"].startswith("Your cart is waiting")


def test_the_delivery_functions_dead_letters_are_its_queues(local_stack) -> None:
    assert local_stack.dead_letter_queues["delivery"] == local_stack.queue_dead_letters["delivery"]
