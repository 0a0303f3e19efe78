"""Issue 15: the console's NPS report in Chromium. The report the admin API answers for a known set of answers
(computed by the API's own code from counter rows, the JSON served as the API serves it) is drawn as a chart
of the NPS per period with its interval, a table of the same figures, the headline (NPS, its interval, the
response rate), and the tables by stage, segment and survey; the stack's own answer for a range without
surveys says so; a bad range shows next to its field; it works from the keyboard and on a 360 px screen."""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from shared.metrics.counters import CounterRow
from shared.metrics.nps import nps_report
from shared.metrics.periods import periods
from tests.browser.conftest import PHONE
from tests.browser.test_reports import chart_data, open_figures, table_rows

pytestmark = pytest.mark.browser

CHART = "Net promoter score per period, with its 95% interval"
FUNNEL = ["subscriber", "lead", "mql", "sql", "opportunity", "customer", "loyal", "at_risk"]


def answered(**values: int) -> dict[str, Decimal]:
    return {name.replace("__", ":"): Decimal(n) for name, n in values.items()}


def known_report() -> dict[str, Any]:
    """Three weeks of November 2026: week 45, 3 promoters, 1 passive, 1 detractor of 10 sent; week 46
    none; week 47, 1 promoter and 2 detractors of 5 sent (one of nps-welcome)."""
    rows = [
        CounterRow(
            key="D#2026-11-02",
            values={
                **answered(promoter=3, passive=1, detractor=1, sent=10),
                **answered(stage__lead__promoter=1, stage__lead__passive=1, stage__customer__promoter=2),
                **answered(stage__customer__detractor=1, segment__vip__promoter=2, segment__vip__detractor=1),
                **answered(
                    survey__nps_q4__promoter=3, survey__nps_q4__passive=1, survey__nps_q4__detractor=1
                ),
                **answered(survey__nps_q4__sent=10),
            },
        ),
        CounterRow(
            key="D#2026-11-17",
            values={
                **answered(promoter=1, detractor=2, sent=5),
                **answered(
                    stage__loyal__promoter=1, stage__at_risk__detractor=1, stage__customer__detractor=1
                ),
                **answered(survey__nps_q4__promoter=1, survey__nps_q4__detractor=1, survey__nps_q4__sent=3),
                **answered(survey__nps_welcome__detractor=1, survey__nps_welcome__sent=2),
            },
        ),
    ]
    start, end = date(2026, 11, 2), date(2026, 11, 22)
    report = nps_report("week", start, end, periods(start, end, "week"), rows, FUNNEL)
    # as the API serves it (``nps_q4``: the names above cannot hold a dash)
    return json.loads(
        report.model_dump_json().replace("nps_q4", "nps-q4").replace("nps_welcome", "nps-welcome")
    )


@pytest.fixture
def served(page: Any) -> dict[str, Any]:
    """The admin API's NPS route answers the known report."""
    report = known_report()
    page.route(re.compile(r"/admin/metrics/nps(\?|$)"), lambda route: route.fulfill(json=report))
    return report


def test_the_chart_and_its_tables_show_the_apis_figures(page: Any, served: dict[str, Any]) -> None:
    page.goto("/#/reports/nps?period=week&from=2026-11-02&to=2026-11-22")
    page.get_by_role("heading", name="Net promoter score", exact=True).wait_for()
    drawn = chart_data(page, CHART)
    assert drawn["labels"] == ["2026-W45", "2026-W46", "2026-W47"]
    by_label = {d["label"]: d["data"] for d in drawn["datasets"]}
    # week 45: (3 - 1) / 5 = 40; week 46: no answers, no point; week 47: (1 - 2) / 3 = -33.3
    assert by_label["NPS"] == [40.0, None, -33.3]
    week45 = served["periods"][0]
    # the interval, a floating bar from its low end to its high end
    assert by_label["95% interval"] == [
        [p["nps_low"], p["nps_high"]] if p["responses"] else None for p in served["periods"]
    ]
    assert week45["nps_low"] < 40 < week45["nps_high"]

    # the headline: the range's 4 promoters, 1 passive, 3 detractors: (4 - 3) / 8 = +12.5; 8 of 15 sent
    facts = page.locator("dl.facts").inner_text()
    total = served["total"]
    assert "+12.5" in facts and "8: 4 promoters, 1 passive, 3 detractors" in facts, facts
    assert f"{total['nps_low']:+.1f} to {total['nps_high']:+.1f}" in facts, facts
    assert "53.3%" in facts and "15" in facts, facts

    open_figures(page, CHART)
    rows = table_rows(page, "NPS and response rate per period")
    assert [r[:6] for r in rows] == [
        ["2026-W45", "5", "3", "1", "1", "+40.0"],
        ["2026-W46", "0", "0", "0", "0", "–"],
        ["2026-W47", "3", "1", "0", "2", "-33.3"],
    ]
    assert [(r[7], r[8]) for r in rows] == [("10", "50%"), ("0", "–"), ("5", "60%")]

    assert [r[:6] for r in table_rows(page, "NPS by stage, over the whole range")] == [
        ["lead", "2", "1", "1", "0", "+50.0"],
        ["customer", "4", "2", "0", "2", "0.0"],
        ["loyal", "1", "1", "0", "0", "+100.0"],
        ["at_risk", "1", "0", "0", "1", "-100.0"],
    ]
    assert [r[:6] for r in table_rows(page, "NPS by segment, over the whole range")] == [
        ["vip", "3", "2", "0", "1", "+33.3"]
    ]
    surveys = table_rows(page, "NPS and response rate by survey, over the whole range")
    # nps-q4: 4 promoters, 1 passive, 2 detractors of 13 sent: +28.6, 7 / 13 = 0.5385: 53.9%
    assert [(r[0], r[5], r[7], r[8]) for r in surveys] == [
        ("nps-q4", "+28.6", "13", "53.9%"),
        ("nps-welcome", "-100.0", "2", "50%"),
    ]


def test_a_range_without_surveys_says_so_and_a_bad_range_is_shown_next_to_its_field(page: Any) -> None:
    page.goto("/#/reports/nps?period=month&from=2020-01-01&to=2020-03-31")  # before any survey
    page.get_by_text("No survey answers or sends in this range.").wait_for()
    form = page.get_by_role("form", name="Net promoter score: period and range")
    form.get_by_label("From", exact=True).fill("2026-11-30")
    form.get_by_label("To", exact=True).fill("2026-11-01")
    form.get_by_role("button", name="Show").click()
    error = form.locator(".field[data-field=from] .field-error")
    error.wait_for()
    assert error.inner_text() == "from: 2026-11-30 is after to (2026-11-01)"
    assert page.evaluate("document.activeElement.name") == "from", "focus moves to the field"


def test_the_report_is_reached_and_read_from_the_keyboard(page: Any, served: dict[str, Any]) -> None:
    page.goto("/#/reports/revenue")
    link = page.locator(".report-nav").get_by_role("link", name="Net promoter score")
    link.focus()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") not in ("none", "")
    page.keyboard.press("Enter")
    page.wait_for_url("**/#/reports/nps*")
    summary = page.get_by_text(f"{CHART}: the figures", exact=True)
    summary.focus()
    page.keyboard.press("Enter")
    assert page.get_by_role("table", name="NPS and response rate per period").is_visible()
    # the tables scroll inside their own region, which takes the focus
    region = page.get_by_role("region", name="NPS by stage, over the whole range")
    region.focus()
    assert (
        page.evaluate("document.activeElement.getAttribute('aria-label')")
        == "NPS by stage, over the whole range"
    )


def test_the_report_fits_a_phone(page: Any, served: dict[str, Any]) -> None:
    page.set_viewport_size(PHONE)
    page.goto("/#/reports/nps?period=week&from=2026-11-02&to=2026-11-22")
    chart_data(page, CHART)
    for details in page.locator("details").all():
        details.evaluate("d => { d.open = true }")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "no sideways scrolling"
    for canvas in page.locator("canvas").all():
        assert canvas.evaluate("c => c.getBoundingClientRect().right") <= PHONE["width"]
