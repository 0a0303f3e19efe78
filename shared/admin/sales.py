"""The sales view (issue 14): ``GET /admin/salespeople/{salespersonId}/leads?limit=50``, the leads routed
to a salesperson, hottest first (the current decayed global score, as on the card).

The leads are the ``limit`` (1 to 100, default 50) most recently routed to the salesperson, read from the
contacts table's look-up index: one Query and one BatchGetItem (``shared.adapters.sales_leads``), then
ordered by score here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from shared.admin.dependencies import Admin
from shared.engagement.leads import Lead, hottest_first
from shared.errors import InvalidRequest, NotFound

if TYPE_CHECKING:
    from shared.http import HttpRequest

DEFAULT_LEADS = 50
MAX_LEADS = 100


class SalespersonLeads(BaseModel):
    salesperson_id: str
    leads: list[Lead]


def salesperson_leads(request: HttpRequest, deps: Admin) -> SalespersonLeads:
    person_id = request.path_parameters.get("salespersonId", "")
    if not any(p.id == person_id for p in deps.team.salespeople()):
        raise NotFound(f"no salesperson {person_id}", code="salesperson_not_found")
    limit = request.query.get("limit", str(DEFAULT_LEADS))
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_LEADS:
        raise InvalidRequest(
            f"limit must be a whole number from 1 to {MAX_LEADS}", code="invalid_limit", field="limit"
        )
    records = deps.leads.leads(person_id, int(limit))
    leads = hottest_first(records, deps.funnels.funnel(), deps.decay, deps.clock.now())
    return SalespersonLeads(salesperson_id=person_id, leads=leads)


ROUTES = {
    "GET /admin/salespeople/{salespersonId}/leads": salesperson_leads,
}
