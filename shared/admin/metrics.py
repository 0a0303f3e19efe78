"""Lifecycle metrics (``/admin/metrics/...``): reports read from the counters, never from the contacts.

Every route takes ``period=day|week|month`` (cohorts: month only), ``from`` and ``to`` (``YYYY-MM-DD``,
inclusive, whole periods); anything else is a 400 naming the parameter. Issue 15: ``/admin/metrics/nps``
takes ``by=stage|segment`` too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.admin.dependencies import Admin
from shared.errors import InvalidRequest
from shared.metrics.nps import BREAKDOWNS, Breakdown, NpsReport
from shared.metrics.ranges import metric_range
from shared.metrics.reports import CohortsReport, CustomersReport, FunnelReport, RevenueReport, StagesReport
from shared.usecases import metrics as reports
from shared.usecases import nps_metrics
from shared.usecases.metrics import MetricReading

if TYPE_CHECKING:
    from shared.http import HttpRequest


def _reading(deps: Admin) -> MetricReading:
    return MetricReading(store=deps.metrics, funnels=deps.funnels, clock=deps.clock)


def stages(request: HttpRequest, deps: Admin) -> StagesReport:
    """How many contacts are in each stage at the end of each period, and how many entered and left it."""
    reading = _reading(deps)
    return reports.stage_distribution(metric_range(request.query, reports.today(reading)), reading)


def funnel(request: HttpRequest, deps: Admin) -> FunnelReport:
    """Per stage and period: entered, left, where to; conversion onward; median whole days in the stage."""
    reading = _reading(deps)
    return reports.funnel(metric_range(request.query, reports.today(reading)), reading)


def customers(request: HttpRequest, deps: Admin) -> CustomersReport:
    """New, retained, returning and churned customers per period."""
    reading = _reading(deps)
    return reports.customers(metric_range(request.query, reports.today(reading)), reading)


def cohorts(request: HttpRequest, deps: Admin) -> CohortsReport:
    """Monthly cohorts of first purchases and the share of each that bought in each later month."""
    reading = _reading(deps)
    return reports.cohorts(metric_range(request.query, reports.today(reading), only=("month",)), reading)


def revenue(request: HttpRequest, deps: Admin) -> RevenueReport:
    """Revenue per period, by the stage customers were in when they bought and by their RFM segment."""
    reading = _reading(deps)
    return reports.revenue(metric_range(request.query, reports.today(reading)), reading)


def nps(request: HttpRequest, deps: Admin) -> NpsReport:
    """Issue 15: the net promoter score per period and over the range, with its confidence interval and the
    response rate; over the range by stage, segment and survey; ``by=stage|segment`` breaks each period
    down too."""
    reading = _reading(deps)
    query = dict(request.query)
    by = query.pop("by", None)
    if by is not None and by not in BREAKDOWNS:
        raise InvalidRequest(
            f"by: must be {' or '.join(BREAKDOWNS)}, not {by!r}", code="invalid_parameter", field="by"
        )
    breakdown: Breakdown | None = next((b for b in BREAKDOWNS if b == by), None)
    return nps_metrics.nps(metric_range(query, reports.today(reading)), reading, breakdown)


ROUTES = {
    "GET /admin/metrics/stages": stages,
    "GET /admin/metrics/funnel": funnel,
    "GET /admin/metrics/customers": customers,
    "GET /admin/metrics/cohorts": cohorts,
    "GET /admin/metrics/revenue": revenue,
    "GET /admin/metrics/nps": nps,
}
