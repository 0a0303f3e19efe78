"""The console's reports in Chromium, over a population seeded through the tracking and admin APIs
(``reports_population``): each chart is drawn from the admin API's figures and its table says the same
numbers; the period and range controls change the address (a report can be bookmarked) and the data; the
cohort heatmap shows the cohort's retention; a sent campaign with a holdout shows its uplift and interval;
all of it works from the keyboard and on a 360 px screen."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from infra import console_assets
from tests.browser.conftest import PHONE
from tests.browser.reports_population import AUTOMATION_ID, CAMPAIGN_ID, Population, call, report, seed
from tests.loopback.conftest import running_stack

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def console_url() -> Iterator[str]:
    """A local stack of the reports' own: the reports count everyone the stack holds and the seed moves
    its clock a month on, so the counts asserted here are this population's alone, whatever other
    browser tests stored before (the demo's purchases fall in the same months)."""
    console_assets.ensure()
    with running_stack() as (url, _banner):
        yield url


@pytest.fixture(scope="module")
def population(console_url: str) -> Iterator[Population]:
    yield seed(console_url)


# --- reading the page ---------------------------------------------------------------------------------


def chart_data(page: Any, title: str) -> dict[str, Any]:
    """The labels and datasets of the chart captioned ``title``, once Chart.js has drawn it."""
    canvas = page.locator("figure.chart", has=page.locator("figcaption", has_text=title)).locator("canvas")
    canvas.wait_for()
    page.wait_for_function(
        "c => window.Chart.getChart(c) && c.width > 0 && c.height > 0", arg=canvas.element_handle()
    )
    return canvas.evaluate(
        "c => { const chart = Chart.getChart(c); return { labels: chart.data.labels,"
        " datasets: chart.data.datasets.map(d => ({ label: d.label, data: d.data })) } }"
    )


def table_rows(page: Any, caption: str) -> list[list[str]]:
    """The body rows (cell texts) of the table captioned ``caption``."""
    page.locator("caption", has_text=caption).first.wait_for(state="attached")
    return page.evaluate(
        """caption => {
          const table = [...document.querySelectorAll('table')].find(t => t.caption.textContent === caption)
          return [...table.tBodies[0].rows].map(r => [...r.cells].map(c => c.textContent.trim()))
        }""",
        caption,
    )


def open_figures(page: Any, title: str) -> None:
    """Open the chart's text alternative (its <details>), as a reader would."""
    page.get_by_text(f"{title}: the figures", exact=True).click()


def signed(value: float) -> str:
    """As the page writes percentage points: two decimals, a sign unless zero."""
    return "0.00" if round(value, 2) == 0 else f"{value:+.2f}"


def shown(fraction: float | None) -> str:
    """As the page writes a share: a percent with at most one decimal, halves rounded up (as Intl does)."""
    if fraction is None:
        return "–"
    tenths = (Decimal(str(fraction)) * 100).quantize(Decimal("0.1"), ROUND_HALF_UP)
    return f"{tenths.normalize():f}%"


# --- the metric reports -------------------------------------------------------------------------------


def test_the_funnel_chart_and_its_table_show_the_apis_counts(page: Any, population: Population) -> None:
    day = population.first_day.isoformat()
    page.goto(f"/#/reports/funnel?period=day&from={day}&to={day}")
    title = "Funnel: contacts entering each stage, and moving on"
    drawn = chart_data(page, title)

    (period,) = report(population.base, "funnel", period="day", **{"from": day, "to": day})["periods"]
    stages = [s for s in period["stages"] if s["entered"] or s["left"]]
    assert drawn["labels"] == [s["stage"] for s in stages]
    assert drawn["datasets"][0]["data"] == [s["entered"] for s in stages]
    assert drawn["datasets"][1]["data"] == [s["converted"] for s in stages]
    by_stage = {s["stage"]: s for s in stages}
    assert by_stage["customer"]["entered"] == 4, "the four buyers became customers that day"

    open_figures(page, title)
    rows = table_rows(page, "Funnel by stage, over the whole range")
    assert rows == [
        [
            s["stage"],
            str(s["entered"]),
            str(s["converted"]),
            shown(s["conversion_rate"]),
            str(s["left"]),
            str(s["removed"]),
        ]
        for s in stages
    ]
    assert page.get_by_role("table", name="Funnel by stage, over the whole range").is_visible()


def test_the_stages_over_time_chart_shows_each_periods_population(page: Any, population: Population) -> None:
    query = {"period": "week", "from": population.first_day.isoformat(), "to": population.today.isoformat()}
    page.goto(f"/#/reports/stages?period=week&from={query['from']}&to={query['to']}")
    title = "Contacts in each stage at the end of each period"
    drawn = chart_data(page, title)

    answer = report(population.base, "stages", **query)
    periods = answer["periods"]
    stages = [
        s
        for s in answer["stages"]
        if any(p["population"].get(s) or p["entered"].get(s) or p["left"].get(s) for p in periods)
    ]
    assert drawn["labels"] == [p["period"] for p in periods]
    assert [d["label"] for d in drawn["datasets"]] == stages
    assert [d["data"] for d in drawn["datasets"]] == [
        [p["population"].get(s, 0) for p in periods] for s in stages
    ]
    assert {"lead", "customer"} <= set(stages)
    open_figures(page, title)
    assert table_rows(page, title) == [
        [p["period"], *(f"{p['population'].get(s, 0):,}" for s in stages)] for p in periods
    ]


def test_customers_by_month_show_new_retained_and_churned(page: Any, population: Population) -> None:
    first, second = population.first_month, population.second_month
    page.goto(f"/#/reports/customers?period=month&from={population.first_day}&to={population.today}")
    drawn = chart_data(page, "Customers per period")
    assert drawn["labels"] == [first, second]
    assert {d["label"]: d["data"] for d in drawn["datasets"]} == {
        "New": [4, 0],
        "Retained": [0, 1],
        "Returning": [0, 0],
        "Churned": [0, 3],
    }
    assert table_rows(page, "Customers per period") == [
        [first, "4", "0", "0", "4", "0", "–"],
        [second, "0", "1", "0", "1", "3", "25%"],
    ]


def test_the_cohort_heatmap_shows_the_cohorts_retention(page: Any, population: Population) -> None:
    page.goto(f"/#/reports/cohorts?from={population.first_day}&to={population.today}")
    heatmap = page.get_by_role("region", name="Cohort retention heatmap")
    heatmap.wait_for()
    assert page.locator("select[name=period]").count() == 0, "cohorts are by month only"
    cohorts = {
        c["cohort"]: c
        for c in report(population.base, "cohorts", **{"from": str(population.first_day)})["cohorts"]
    }
    assert (cohorts[population.first_month]["size"], cohorts[population.first_month]["active"]) == (4, [4, 1])

    row = heatmap.locator(f"tr[data-cohort='{population.first_month}']")
    assert row.locator("th").inner_text() == population.first_month
    cells = row.locator("td.heat")
    assert [cells.nth(k).get_attribute("data-retention") for k in range(cells.count())] == ["1", "0.25"]
    assert [cells.nth(k).locator(".heat-share").inner_text() for k in range(2)] == ["100%", "25%"]
    assert (
        cells.nth(1).get_attribute("title")
        == f"{population.first_month}, month 1: 1 of 4 customers bought (25%)"
    )
    full, quarter = (cells.nth(k).evaluate("c => getComputedStyle(c).backgroundColor") for k in range(2))
    assert full != quarter, "the cells are coloured by their share"
    later = heatmap.locator(f"tr[data-cohort='{population.second_month}']")
    assert later.locator("td.heat-none").inner_text() == "not yet", "a later cohort has fewer months"


def test_revenue_by_stage_and_segment_matches_the_api(page: Any, population: Population) -> None:
    day = population.first_day.isoformat()
    page.goto(f"/#/reports/revenue?period=day&from={day}&to={day}")
    title = "Revenue per period, by the stage customers were in when they bought"
    drawn = chart_data(page, title)
    (period,) = report(population.base, "revenue", period="day", **{"from": day, "to": day})["periods"]
    assert (period["revenue"], period["orders"]) == (75.5, 4)
    assert drawn["labels"] == [day]
    assert {d["label"]: d["data"] for d in drawn["datasets"]} == {
        stage: [amount["revenue"]] for stage, amount in period["by_stage"].items()
    }
    assert table_rows(page, "Revenue per period and stage") == [
        [day, "4", "75.50", *(f"{a['revenue']:,.2f}" for a in period["by_stage"].values())]
    ]
    segments = chart_data(page, "Revenue by RFM segment")
    assert segments["labels"] == list(period["by_rfm_segment"])


# --- the controls -------------------------------------------------------------------------------------


def test_the_period_controls_change_the_address_and_the_data_and_the_address_keeps_them(
    page: Any, population: Population
) -> None:
    page.goto("/#/reports/customers")
    form = page.get_by_role("form", name="Customers: period and range")
    table_rows(page, "Customers per period")
    assert form.get_by_label("Period", exact=True).input_value() == "day", "the API's default, shown"
    assert form.get_by_label("To", exact=True).input_value() == population.today.isoformat(), (
        "up to the stack's today"
    )

    form.get_by_label("Period", exact=True).select_option("month")
    form.get_by_label("From", exact=True).fill(population.first_day.isoformat())
    form.get_by_label("To", exact=True).fill(population.today.isoformat())
    form.get_by_role("button", name="Show").click()
    wanted = f"#/reports/customers?period=month&from={population.first_day}&to={population.today}"
    page.wait_for_url(f"**/{wanted}")
    page.wait_for_function("() => document.querySelector('.report-range')?.textContent.endsWith('by month')")
    months = [row[0] for row in table_rows(page, "Customers per period")]
    assert months == [population.first_month, population.second_month]
    # the other reports' links keep the range
    link = page.get_by_role("navigation", name="Reports").get_by_role("link", name="Revenue")
    assert link.get_attribute("href") == wanted.replace("customers", "revenue")
    form.get_by_label("Period", exact=True).select_option("week")
    form.get_by_role("button", name="Show").click()
    page.wait_for_function("() => document.querySelector('.report-range')?.textContent.endsWith('by week')")
    assert link.get_attribute("href") == wanted.replace("customers", "revenue").replace("month", "week")
    page.go_back()  # the month report again

    page.reload()  # a bookmark: the same report
    page.wait_for_function("() => document.querySelector('.report-range')?.textContent.endsWith('by month')")
    assert [row[0] for row in table_rows(page, "Customers per period")] == months
    assert page.get_by_label("Period", exact=True).input_value() == "month"
    assert page.get_by_label("From", exact=True).input_value() == population.first_day.isoformat()

    page.go_back()  # the report before the change
    page.wait_for_function("() => document.querySelector('.report-range')?.textContent.endsWith('by day')")
    assert page.get_by_label("Period", exact=True).input_value() == "day"


def test_a_bad_range_is_shown_next_to_its_field(page: Any, population: Population) -> None:
    page.goto("/#/reports/funnel")
    form = page.get_by_role("form", name="Funnel: period and range")
    page.locator(".report-range").wait_for()  # the report for the default range is in
    form.get_by_label("From", exact=True).fill(population.today.isoformat())
    form.get_by_label("To", exact=True).fill(population.first_day.isoformat())
    form.get_by_role("button", name="Show").click()
    error = form.locator(".field[data-field=from] .field-error")
    error.wait_for()
    assert error.inner_text() == f"from: {population.today} is after to ({population.first_day})"
    assert form.get_by_label("From", exact=True).get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.activeElement.name") == "from", "focus moves to the field"


def test_the_reports_are_used_from_the_keyboard(page: Any, population: Population) -> None:
    page.goto("/#/reports")
    page.get_by_role("heading", name="Reports", exact=True).wait_for()
    page.keyboard.press("Tab")  # from the page's content: the reports' own navigation comes first
    assert page.evaluate("document.activeElement.textContent") == "Funnel"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") not in ("none", "")
    for _ in range(2):
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Customers"
    page.keyboard.press("Enter")
    page.wait_for_url("**/#/reports/customers")
    table_rows(page, "Customers per period")

    page.get_by_label("Period", exact=True).focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert page.get_by_label("Period", exact=True).input_value() == "month"
    page.keyboard.press("Tab")
    page.keyboard.type(population.first_day.strftime("%m%d%Y"))  # the date field's own order (en-US)
    for _ in range(8):  # past the date fields' own parts (month, day, year), to the button
        if page.evaluate("document.activeElement.textContent") == "Show":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Show"
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/#/reports/customers?period=month&from={population.first_day}*")
    page.wait_for_function("() => document.querySelector('.report-range')?.textContent.endsWith('by month')")
    assert page.evaluate("document.activeElement.textContent") == "Show", "focus stays on the controls"

    summary = page.get_by_text("Customers per period: the figures", exact=True)
    summary.focus()
    page.keyboard.press("Enter")
    assert page.get_by_role("table", name="Customers per period").is_visible()


# --- campaign results ---------------------------------------------------------------------------------


def test_a_sent_campaign_with_a_holdout_shows_its_uplift_and_interval(
    page: Any, population: Population
) -> None:
    answer = call(population.base, "GET", f"/admin/campaigns/{CAMPAIGN_ID}/results")
    results = answer["results"]
    uplift = results["treated"]["uplift"]
    assert answer["status"] == "sent" and uplift is not None
    assert results["treated"]["counts"]["converted"] == 3 and results["holdout"]["counts"]["converted"] == 1
    interval = f"{signed(uplift['low'])} to {signed(uplift['high'])}"
    verdict = "significant" if uplift["significant"] else "not significant"

    page.goto("/#/reports/campaigns")
    campaigns = table_rows(page, "Campaigns and their uplift over the contacts held out")
    mine = next(row for row in campaigns if row[0] == "Reports sale")
    assert mine == [
        "Reports sale",
        "sent",
        "reports-news",
        "30%",
        f"{signed(uplift['points'])} points (95% CI {interval}), {verdict}",
    ]
    automations = table_rows(page, "Automations with a holdout and their uplift")
    assert ["Reports win-back", "no", "20%", "not measured yet"] in automations

    page.get_by_role("link", name="Reports sale").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/#/reports/campaigns/{CAMPAIGN_ID}")
    page.get_by_role("heading", name="Results: Reports sale").wait_for()
    assert page.locator(".uplift-summary li").all_inner_texts() == results["summary"]
    arms = {a["arm"]: a for a in results["arms"]}
    rows = table_rows(page, "Reports sale: counts, conversion and uplift by arm")
    assert rows[0][:9] == [
        "Variant A",
        str(arms["A"]["counts"]["assigned"]),
        str(arms["A"]["counts"]["sent"]),
        *(
            str(arms["A"]["counts"][k])
            for k in ("delivered", "opened", "clicked", "unsubscribed", "converted")
        ),
        shown(arms["A"]["conversion_rate"] / 100),
    ]
    assert rows[0][9:] == [signed(uplift["points"]), interval, "yes" if uplift["significant"] else "no"]
    assert rows[1][:2] == ["Held out", str(results["holdout"]["counts"]["assigned"])]

    drawn = chart_data(page, "Uplift over the contacts held out, with its 95% interval")
    assert drawn["labels"] == ["Variant A"]
    assert drawn["datasets"][0]["data"] == [[uplift["low"], uplift["high"]]]
    assert drawn["datasets"][1]["data"] == [uplift["points"]]
    conversion = chart_data(page, "Conversion by arm")
    assert conversion["datasets"][0]["data"] == [
        arms["A"]["conversion_rate"],
        results["holdout"]["conversion_rate"],
    ]


def test_an_automations_results_page_says_why_there_is_no_uplift_yet(
    page: Any, population: Population
) -> None:
    page.goto(f"/#/reports/automations/{AUTOMATION_ID}")
    page.get_by_role("heading", name="Results: Reports win-back").wait_for()
    assert page.locator(".uplift-summary li").all_inner_texts() == [
        "Nobody is held out yet: the uplift is measured once contacts are assigned."
    ]
    chart_data(page, "Conversion by arm")


# --- a phone --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "reports",
        "reports/funnel",
        "reports/stages",
        "reports/customers",
        "reports/cohorts",
        "reports/revenue",
        "reports/campaigns",
        f"reports/campaigns/{CAMPAIGN_ID}",
    ],
)
def test_every_report_fits_a_phone(page: Any, population: Population, address: str) -> None:
    page.set_viewport_size(PHONE)
    page.goto(f"/#/{address}")
    page.wait_for_function("() => document.querySelector('h1') && !document.querySelector('.loading')")
    for details in page.locator("details").all():
        details.evaluate("d => { d.open = true }")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "no sideways scrolling"
    for canvas in page.locator("canvas").all():
        assert canvas.evaluate("c => c.getBoundingClientRect().right") <= PHONE["width"]
