"""The nightly analytics pass end to end in the local stack, with the real step handlers: purchases tracked
through the API, the workflow at 02:00 on the local clock, the contact card, and a ChurnRiskChanged that
starts a win-back whose coupon is priced by the contact's RFM segment, sent by delivery.

The water-filter customer of the issue: a filter every 30 days for a year, then silence. The morning after
the last purchase the risk is low; 90 days later it is high, and the automation sends one coupon email.
The appliance buyer (one espresso machine, a month before) stays low, and nothing is sent to them. A
customer whose filters stopped four months before the first night is high from the start: that is what
she already was (an ``initial`` announcement), not a change, so the win-back sends her nothing.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from typing import Any

SERVER = "Basic " + base64.b64encode(b"local-server-key:").decode()
#: coupon percent by RFM segment; anything else gets the default
COUPONS = {"champions": 30, "loyal": 25, "cant_lose_them": 20, "at_risk": 15}
DEFAULT_COUPON = 5
WIN_BACK = {
    "id": "win-back-test",
    "name": "Win back: churn risk high",
    "trigger": {"type": "churn_risk", "to": "high"},
    "reentry": "once_per",
    "period": {"days": 90},
    "steps": [
        {
            "action": "coupon",
            "prefix": "BACK",
            "unit": "percent",
            "value_from": {"field": "analytics.segment", "values": COUPONS, "default": DEFAULT_COUPON},
        },
        {
            "action": "email",
            "subject": "We miss you",
            "text": "Hello,\n\nhere is {{ coupon.value }}% off: {{ coupon.code }}\n",
        },
    ],
}


def call(stack: Any, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None):
    request = urllib.request.Request(
        f"{stack.url}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"content-type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def set_clock(stack: Any, when: datetime) -> None:
    status, answer = call(stack, "POST", "/_local/clock", {"set": when.isoformat()})
    assert status == 200, answer


def purchase(user: str, when: datetime, amount: float, product: str, category: str) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": "Order Completed",
        "timestamp": when.isoformat(),
        "messageId": f"{user}-{when.date().isoformat()}-{product}",
        "properties": {"revenue": amount, "products": [{"product_id": product, "category": category}]},
    }


def track(stack: Any, calls: list[dict[str, Any]]) -> None:
    for start in range(0, len(calls), 100):
        status, answer = call(
            stack, "POST", "/v1/batch", {"batch": calls[start : start + 100]}, {"authorization": SERVER}
        )
        assert (status, answer) == (200, {"success": True})
    stack.drain_streams()


def card(stack: Any, user: str) -> dict[str, Any]:
    status, found = call(stack, "GET", f"/admin/contacts/user_id:{user}")
    assert status == 200, found
    return found


def sent_to(stack: Any, user: str) -> list[dict[str, Any]]:
    status, page = call(stack, "GET", "/_local/outbox")
    assert status == 200
    return [m for m in page["messages"] if m["id"].startswith(f"user_id:{user}#{WIN_BACK['id']}#")]


def wait_for(found: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = found()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def population(start: datetime) -> list[dict[str, Any]]:
    """The two customers of the issue among a small shop's: regular buyers of consumables at several
    rhythms, irregular buyers, and one-off buyers of kitchen appliances."""
    calls = []
    last = start - timedelta(days=1)
    calls += [purchase("ann", last - timedelta(days=30 * k), 24.0, "filter-3", "water") for k in range(13)]
    lapsed = start - timedelta(days=120)
    calls += [purchase("cat", lapsed - timedelta(days=30 * k), 24.0, "filter-3", "water") for k in range(13)]
    calls.append(purchase("ben", start - timedelta(days=30), 899.0, "espresso-pro", "kitchen appliances"))
    for i in range(12):
        gap = 14 + 7 * i
        calls += [
            purchase(f"reg{i}", start - timedelta(days=2 + i + gap * k), 10.0 + i, f"pods-{i % 3}", "coffee")
            for k in range(6)
        ]
    for i in range(6):
        offsets = (3, 40, 41, 150, 300)[: 2 + i % 4]
        calls += [
            purchase(f"irr{i}", start - timedelta(days=o + 5 * i), 30.0, "beans", "coffee") for o in offsets
        ]
    for i in range(10):
        calls.append(
            purchase(f"one{i}", start - timedelta(days=20 + 60 * i), 700.0, "oven-x", "kitchen appliances")
        )
    return calls


def test_the_nightly_pass_raises_the_risk_and_a_win_back_sends_a_coupon_priced_by_segment(
    local_stack,
) -> None:
    stack = local_stack
    now = stack.clock.now()
    start = (now + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    set_clock(stack, start)
    status, answer = call(stack, "PUT", f"/admin/automations/{WIN_BACK['id']}", WIN_BACK)
    assert status in (200, 201), answer
    for user in ("ann", "ben", "cat"):
        status, answer = call(
            stack,
            "POST",
            "/v1/identify",
            {"userId": user, "traits": {"email": f"{user}@example.com", "email_opt_in": True}},
            {"authorization": SERVER},
        )
        assert status == 200, answer
    track(stack, population(start))

    # the first night: scored, the risk low the morning after the last filter; nothing to send
    set_clock(stack, start + timedelta(days=1))
    stack.drain_streams()
    ann = card(stack, "ann")["analytics"]
    assert ann is not None, "the nightly pass ran at 02:00 and scored Ann"
    assert ann["day"] == start.date().isoformat()
    assert ann["risk_level"] == "low", ann
    assert 25 <= ann["typical_gap_days"] <= 36
    ben = card(stack, "ben")["analytics"]
    assert ben["risk_level"] == "low", ben
    assert ben["typical_gap_days"] > 180  # borrowed from kitchen appliances, rarely bought again
    assert sent_to(stack, "ann") == []
    cat = card(stack, "cat")
    assert cat["analytics"]["risk_level"] == "high", cat["analytics"]
    first_risk = [h for h in cat["analytics_history"] if h["type"] == "ChurnRiskChanged"]
    assert [(h["from"], h["to"], h["initial"]) for h in first_risk] == [(None, "high", True)]

    # 90 days of silence: high; the ChurnRiskChanged starts the win-back, priced by Ann's segment
    set_clock(stack, start + timedelta(days=91))
    stack.drain_streams()
    ann_card = card(stack, "ann")
    ann = ann_card["analytics"]
    assert ann["risk_level"] == "high", ann
    risk_changes = [
        (h["from"], h["to"], h["day"], h["initial"])
        for h in ann_card["analytics_history"]
        if h["type"] == "ChurnRiskChanged"
    ]
    night = (start + timedelta(days=90)).date().isoformat()
    assert risk_changes == [("low", "high", night, False), (None, "low", start.date().isoformat(), True)]
    messages = wait_for(lambda: [m for m in sent_to(stack, "ann") if m["status"] == "sent"])
    assert len(messages) == 1, sent_to(stack, "ann")
    expected = COUPONS.get(ann["segment"], DEFAULT_COUPON)
    assert f"{expected}% off" in messages[0]["text"], (ann["segment"], messages[0]["text"])
    assert card(stack, "ben")["analytics"]["risk_level"] == "low"  # four months after one espresso machine
    assert sent_to(stack, "ben") == []
    assert sent_to(stack, "cat") == [], "high since her first scoring: no change, no win-back"

    # the same night again (a double-fired schedule): nothing changes, nothing more is sent
    status, answer = call(stack, "POST", "/_local/analytics/run", {})
    assert status == 200, answer
    stack.drain_streams()
    time.sleep(1)
    assert len([m for m in sent_to(stack, "ann") if m["status"] == "sent"]) == 1
