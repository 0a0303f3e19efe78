"""A salesperson's leads (issue 14, ``shared.admin.dependencies.SalesLeads``): what routing writes (the stage
store) lists the lead under its salesperson, the most recently routed first; a new routing moves it; a
merge takes the contact merged away off the list. The fake and the look-up index adapter alike."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.contacts.identity import ContactId
from shared.engagement.routing import Salesperson
from tests.contract.helpers import DECAY, NOW
from tests.contract.test_stage_store import evaluation, seen
from tests.fakes import MemoryContactStore, MemorySalesLeads, MemoryStageStore

ANN, BOB, CY, A1 = (
    ContactId.user("ann"),
    ContactId.user("bob"),
    ContactId.user("cy"),
    ContactId.anonymous("a1"),
)
SAM = Salesperson(id="sam", name="Sam", email="sam@example.com")
SUE = Salesperson(id="sue", name="Sue", email="sue@example.com")


@pytest.fixture
def ports(implementation, contact_tables):
    """(contact store, stage store, sales leads) over the same contacts."""
    if implementation == "fake":
        contacts = MemoryContactStore()
        return contacts, MemoryStageStore(contacts), MemorySalesLeads(contacts)
    from shared.adapters.sales_leads import DynamoSalesLeads
    from shared.adapters.stage_store import DynamoStageStore

    tables = contact_tables()
    return (
        tables.stores(),
        DynamoStageStore(tables.db, contacts_table=tables.contacts, decay=DECAY),
        DynamoSalesLeads(tables.db, contacts_table=tables.contacts, sleep=lambda _: None),
    )


def route(stages, contact: ContactId, owner: Salesperson | None, at) -> None:
    record = stages.profile(contact)
    assert stages.apply(contact, record, evaluation(record.stage or "lead", write_due=False), [], owner, at)


def ids(leads, salesperson: str, limit: int = 50) -> list[str]:
    return [r.contact_id for r in leads.leads(salesperson, limit)]


def test_routed_leads_are_listed_under_their_salesperson_newest_first(ports):
    contacts, stages, leads = ports
    for number, contact in enumerate((ANN, BOB, CY)):
        seen(contacts, contact)
        route(stages, contact, SAM if contact != BOB else SUE, NOW + timedelta(minutes=number))
    assert ids(leads, "sam") == [str(CY), str(ANN)]
    assert ids(leads, "sue") == [str(BOB)]
    assert ids(leads, "sam", limit=1) == [str(CY)]
    assert ids(leads, "nobody") == []
    [cy] = leads.leads("sam", 1)
    assert (cy.owner, cy.routed_at, cy.event_count) == ("sam", NOW + timedelta(minutes=2), 1), (
        "whole profiles"
    )


def test_a_write_that_routes_nobody_keeps_the_lead_and_a_new_routing_moves_it(ports):
    contacts, stages, leads = ports
    seen(contacts, ANN)
    route(stages, ANN, SAM, NOW)
    route(stages, ANN, None, NOW + timedelta(minutes=1))  # a stage write that routes nobody
    assert ids(leads, "sam") == [str(ANN)]
    route(stages, ANN, SUE, NOW + timedelta(minutes=2))
    assert ids(leads, "sam") == [] and ids(leads, "sue") == [str(ANN)]
    assert leads.leads("sue", 5)[0].routed_at == NOW + timedelta(minutes=2)


def test_a_contact_merged_away_is_nobodys_lead(ports):
    contacts, stages, leads = ports
    seen(contacts, A1)
    route(stages, A1, SAM, NOW)
    assert ids(leads, "sam") == [str(A1)]
    contacts.claim(A1, ANN, NOW)
    assert ids(leads, "sam") == []
