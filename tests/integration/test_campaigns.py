"""Campaigns end to end in the local stack: a campaign with a holdout to a small segment is planned by
the campaigns function on the local clock, sent by delivery, its opens and a purchase counted once, and
its uplift read; bad campaigns (a split not summing to 100, an empty segment) are 400s that change
nothing.

The segments are real: defined under ``/admin/segments``, their members kept by the stage function as
the contacts are identified, and read by the campaigns function from the membership index.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shared.campaigns.assignment import arm_of
from shared.campaigns.model import HOLDOUT, Variant
from tests.integration.test_local_delivery import SERVER, call, daytime, feedback, identify

USERS = [f"u{i:02d}" for i in range(30)]
VARIANTS = (Variant(id="A", split=50), Variant(id="B", split=50))
CAMPAIGN: dict[str, Any] = {
    "name": "December sale",
    "segment": "newsletter",
    "template": "december",
    "variants": [{"id": "A", "split": 50}, {"id": "B", "split": 50}],
    "holdout_percent": 30,
    "send_rate_per_minute": 1000,
    "conversion": {"behaviour": "purchase", "days": 7},
}


@pytest.fixture
def segments(local_stack) -> None:
    """``newsletter``: contacts tagged newsletter (every user here, as identified); ``empty``: nobody."""
    for segment_id, tag in (("newsletter", "newsletter"), ("empty", "nobody")):
        status, answer = call(
            local_stack,
            "PUT",
            f"/admin/segments/{segment_id}",
            {"name": segment_id.title(), "filter": {"all": [{"tag": tag}]}},
        )
        assert status == 200, answer


def arm(user: str) -> str:
    return arm_of("dec", f"user_id:{user}", 30, VARIANTS)


def test_a_campaign_with_a_holdout_sends_counts_and_reports_its_uplift(local_stack, segments) -> None:
    stack = local_stack
    daytime(stack)
    for user in USERS:
        identify(stack, user, email=f"{user}@example.com", email_opt_in=True, tags=["newsletter"])
    status, _ = call(
        stack, "PUT", "/admin/templates/december", {"subject": "Sale", "text": "Hello {{ campaign.variant }}"}
    )
    assert status == 200

    # bad campaigns: 400s that store nothing
    status, answer = call(
        stack,
        "PUT",
        "/admin/campaigns/dec",
        {**CAMPAIGN, "variants": [{"id": "A", "split": 60}, {"id": "B", "split": 50}]},
    )
    assert (status, answer["code"]) == (400, "invalid_campaign")
    assert answer["message"] == "variants: the splits add up to 110, not 100"
    status, answer = call(stack, "PUT", "/admin/campaigns/dec", {**CAMPAIGN, "segment": "empty"})
    assert (status, answer["code"]) == (400, "empty_segment")
    assert "'empty' has no members" in answer["message"]
    assert call(stack, "GET", "/admin/campaigns") == (200, {"campaigns": []})

    status, stored = call(stack, "PUT", "/admin/campaigns/dec", CAMPAIGN)
    assert (status, stored["version"]) == (200, 1), stored
    status, sent = call(stack, "POST", "/admin/campaigns/dec/send", headers={"if-match": "1"})
    assert (status, sent["status"]) == (200, "sending"), sent

    status, moved = call(stack, "POST", "/_local/clock", {"advance": "PT1M"})
    assert status == 200 and moved["scheduled_runs"] >= 1
    status, found = call(stack, "GET", "/admin/campaigns/dec")
    assert (found["status"], found["state"]["planned"]) == ("sent", 30), found

    treated = [u for u in USERS if arm(u) != HOLDOUT]
    held = [u for u in USERS if arm(u) == HOLDOUT]
    assert treated and held
    status, page = call(stack, "GET", "/_local/outbox")
    campaign_mail = {m["id"]: m for m in page["messages"] if "#campaign:dec#" in m["id"]}
    assert set(campaign_mail) == {f"user_id:{u}#campaign:dec#{arm(u)}#0" for u in treated}
    assert {m["status"] for m in campaign_mail.values()} == {"sent"}
    first = f"user_id:{treated[0]}#campaign:dec#{arm(treated[0])}#0"
    assert f"Hello {arm(treated[0])}" in campaign_mail[first]["text"]

    # one open twice (unique opens), a purchase by a treated contact and one by a held-out contact
    for _ in range(2):
        status, _ = feedback(stack, {"id": first, "kind": "open"})
        assert status == 200
    for user, order in ((treated[0], "o-1"), (held[0], "o-2"), (treated[0], "o-3")):
        status, _ = call(
            stack,
            "POST",
            "/v1/track",
            {"userId": user, "event": "Order Completed", "messageId": order, "properties": {"revenue": 20}},
            {"authorization": SERVER},
        )
        assert status == 200
    stack.drain_streams()

    status, results = call(stack, "GET", "/admin/campaigns/dec/results")
    assert status == 200, results
    report = results["results"]
    by_arm = {a["arm"]: a["counts"] for a in report["arms"]}
    assert report["holdout"]["counts"]["assigned"] == len(held)
    assert report["holdout"]["counts"]["converted"] == 1
    assert sum(c["assigned"] for c in by_arm.values()) == len(treated)
    assert sum(c["sent"] for c in by_arm.values()) == len(treated)
    assert by_arm[arm(treated[0])]["opened"] == 1
    assert report["treated"]["counts"]["converted"] == 1  # two purchases, one conversion
    assert report["summary"][-1].startswith("All treated converted")
    assert "points (95% CI" in report["summary"][-1]

    # cancelling a sent campaign is a conflict; changing it too
    status, answer = call(stack, "POST", "/admin/campaigns/dec/cancel")
    assert (status, answer["code"]) == (409, "conflict")
    status, answer = call(stack, "PUT", "/admin/campaigns/dec", {**CAMPAIGN, "name": "Renamed"})
    assert status == 409


def test_a_scheduled_campaign_starts_at_its_time_and_a_cancelled_one_sends_nothing(
    local_stack, segments
) -> None:
    stack = local_stack
    start = daytime(stack)
    for user in USERS[:5]:
        identify(stack, user, email=f"{user}@example.com", email_opt_in=True, tags=["newsletter"])
    call(stack, "PUT", "/admin/templates/december", {"subject": "Sale", "text": "Hello"})
    later = (start + timedelta(hours=1)).isoformat()
    for campaign_id in ("later", "never"):
        status, _ = call(stack, "PUT", f"/admin/campaigns/{campaign_id}", {**CAMPAIGN, "send_at": later})
        assert status == 200
        status, sent = call(stack, "POST", f"/admin/campaigns/{campaign_id}/send")
        assert sent["status"] == "scheduled"
    status, cancelled = call(stack, "POST", "/admin/campaigns/never/cancel")
    assert (status, cancelled["status"]) == (200, "cancelled")
    call(stack, "POST", "/_local/clock", {"advance": "PT30M"})
    assert call(stack, "GET", "/admin/campaigns/later")[1]["status"] == "scheduled"
    call(stack, "POST", "/_local/clock", {"advance": "PT31M"})
    assert call(stack, "GET", "/admin/campaigns/later")[1]["status"] == "sent"
    assert call(stack, "GET", "/admin/campaigns/never")[1]["status"] == "cancelled"
    status, page = call(stack, "GET", "/_local/outbox")
    assert not [m for m in page["messages"] if "#campaign:never#" in m["id"]]
    assert [m for m in page["messages"] if "#campaign:later#" in m["id"]]


def test_an_automation_with_a_holdout_has_a_results_report(local_stack) -> None:
    status, _ = call(
        local_stack,
        "PUT",
        "/admin/automations/win-back",
        {
            "name": "Win back",
            "trigger": {"type": "inactivity", "days": 30},
            "steps": [{"action": "email", "subject": "Hi", "text": "Hello"}],
            "holdout_percent": 20,
        },
    )
    assert status == 200
    status, report = call(local_stack, "GET", "/admin/automations/win-back/results")
    assert status == 200, report
    assert report["holdout_percent"] == 20
    assert report["results"]["summary"] == [
        "Nobody is held out yet: the uplift is measured once contacts are assigned."
    ]
    status, _ = call(local_stack, "GET", "/admin/automations/nope/results")
    assert status == 404
