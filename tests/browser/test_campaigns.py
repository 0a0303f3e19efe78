"""A campaign from the console, in Chromium against the local stack: a segment created in the console,
contacts entering it through the tracking API, a campaign created in the console (its variants' splits
refused next to the variants first), sent from the console, planned by the campaigns function when the
local clock moves a minute on, a purchase by a treated and by a held-out contact, and the results read in
the console: per arm against the holdout, with the uplift, as charts with their table."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest
from playwright.sync_api import expect

from shared.campaigns.assignment import arm_of
from shared.campaigns.model import HOLDOUT, Variant
from tests.browser.conftest import PHONE
from tests.browser.documents_seed import (
    admin,
    call,
    patient_page_assertions,  # noqa: F401 - autouse: waits as long
    settle,
    track,
)

pytestmark = pytest.mark.browser

HOLDOUT_PERCENT = 30
USERS = 12


def arms(campaign_id: str, users: list[str]) -> dict[str, str]:
    return {
        u: arm_of(campaign_id, f"user_id:{u}", HOLDOUT_PERCENT, (Variant(id="A", split=100),)) for u in users
    }


def test_a_campaign_created_and_sent_in_the_console_reports_its_results_against_the_holdout(
    page: Any, console_url: str
) -> None:
    key = uuid4().hex[:8]
    segment_id, tag, template_id = f"docs-{key}", f"docs-{key}", f"docs-{key}"
    users = [f"docs-{key}-{n:02d}" for n in range(USERS)]
    # a campaign id whose assignment holds some of these contacts out and treats the others
    campaign_id = next(
        c for c in (f"docs-{key}-{n}" for n in range(100)) if len(set(arms(c, users).values())) == 2
    )
    arm = arms(campaign_id, users)
    treated = [u for u in users if arm[u] != HOLDOUT]
    held = [u for u in users if arm[u] == HOLDOUT]

    # the segment, created in the console
    page.goto("/#/segments/_new")
    page.get_by_label("Segment id").fill(segment_id)
    page.get_by_label("Name", exact=True).fill("Docs campaign audience")
    page.get_by_label("Filter").fill(f'{{"tag": "{tag}"}}')
    page.get_by_role("button", name="Create segment").click()
    expect(page.locator(".notice")).to_contain_text(f"Segment {segment_id} saved: version 1")

    # its members: contacts identified with the tag (the stage function keeps the segment current)
    for user in users:
        track(
            console_url,
            "identify",
            {"userId": user, "traits": {"email": f"{user}@example.com", "email_opt_in": True, "tags": [tag]}},
        )
    assert admin(console_url, "GET", f"/admin/segments/{segment_id}/count")["count"] == USERS
    admin(console_url, "PUT", f"/admin/templates/{template_id}", {"subject": "Sale", "text": "Hello"})

    # the campaign, created in the console: splits that do not add up are refused at the variants
    page.goto("/#/campaigns/_new")
    page.get_by_label("Campaign id").fill(campaign_id)
    page.get_by_label("Name", exact=True).fill("Docs sale")
    page.get_by_label("Segment", exact=True).select_option(segment_id)
    page.get_by_label("Template", exact=True).select_option(template_id)
    page.get_by_label("Holdout (%)").fill(str(HOLDOUT_PERCENT))
    page.get_by_role("button", name="Add a variant").click()
    page.locator("[name='variants.1.split']").fill("50")
    page.get_by_role("button", name="Create campaign").click()
    variants_error = page.locator("#variants-error")
    expect(variants_error).to_have_text("variants: the splits add up to 150, not 100")
    assert "variants-error" in (
        page.locator("[name='variants.0.id']").get_attribute("aria-describedby") or ""
    )
    assert call(console_url, "GET", f"/admin/campaigns/{campaign_id}")[0] == 404, "nothing was stored"
    page.locator(".variant").nth(1).get_by_role("button", name="Remove this variant").click()
    page.get_by_role("button", name="Create campaign").click()
    expect(page.locator(".notice")).to_contain_text(f"Campaign {campaign_id} saved: version 1")
    expect(page.locator(".doc-meta .badge")).to_have_text("draft")
    stored = admin(console_url, "GET", f"/admin/campaigns/{campaign_id}")["campaign"]
    assert (stored["segment"], stored["template"], stored["holdout_percent"]) == (segment_id, template_id, 30)
    assert stored["variants"] == [{"id": "A", "split": 100, "template": None}]

    # sent from the console (after its confirmation), then planned when the local clock moves on
    page.get_by_role("button", name="Send campaign…").click()
    page.get_by_role("button", name="Send now").click()
    expect(page.locator(".doc-meta .badge")).to_have_text("sending")
    status, moved = call(console_url, "POST", "/_local/clock", {"advance": "PT1M"})
    assert status == 200 and moved["scheduled_runs"] >= 1, moved
    for user, order in ((treated[0], f"{key}-1"), (held[0], f"{key}-2")):
        track(
            console_url,
            "track",
            {"userId": user, "event": "Order Completed", "messageId": order, "properties": {"revenue": 20}},
        )
    settle(console_url)

    # the results, read in the console
    page.reload()
    expect(page.locator(".doc-meta .badge")).to_have_text("sent")
    page.get_by_text("Delivered and converted, per arm: the figures").click()  # the chart's table
    results = page.get_by_role("region", name="Results per arm")
    expect(results).to_be_attached()
    rows = {
        cells[0]: cells[1:]
        for cells in (
            [c.strip() for c in row.split("\t")] for row in results.locator("tbody tr").all_inner_texts()
        )
    }
    # Arm | Assigned | Sent | Delivered | Opened | Clicked | Converted | rate | uplift | interval | significant
    assert rows["Variant A"][0] == str(len(treated)) and rows["Variant A"][5] == "1"
    assert rows["Held out"][0] == str(len(held)) and rows["Held out"][5] == "1"
    assert rows["Held out"][1] == "0", "the holdout is sent nothing"
    api_report = admin(console_url, "GET", f"/admin/campaigns/{campaign_id}/results")["results"]
    uplift = api_report["arms"][0]["uplift"]
    assert float(rows["Variant A"][7]) == uplift["points"]
    assert [float(end) for end in rows["Variant A"][8].split(" to ")] == [uplift["low"], uplift["high"]]
    assert rows["Variant A"][9] == ("yes" if uplift["significant"] else "no")
    expect(page.locator(".result-sentences")).to_contain_text(api_report["summary"][0])
    # the charts are drawn (Chart.js on a canvas) and say what they show
    charts = page.locator("#view figure.chart canvas")
    expect(charts).to_have_count(2)
    assert page.evaluate(
        "[...document.querySelectorAll('#view figure.chart canvas')].every(c => c._chart && c._chart.data.datasets.length)"
    )
    assert "converted of" in (charts.first.get_attribute("aria-label") or "")

    # and at 360 px the results scroll in their own box, never the page
    # (the page read again at that size: Chart.js fits a canvas to a resized page only after a frame)
    page.set_viewport_size(PHONE)
    page.reload()
    expect(page.locator("#view figure.chart canvas")).to_have_count(2)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
