"""An automation's points through the real aggregation and admin handlers on moto: folded into the
scores, shown in the contact's ledger with the automation as the reason, and not counted as activity."""

from __future__ import annotations

import os
from datetime import timedelta

from shared.automations.engine import Plan
from shared.automations.model import PointsStep
from shared.contacts.identity import ContactId
from tests.conftest import NOW


def test_an_automations_points_show_in_the_ledger_and_the_scores_but_not_as_activity(
    aws, send, admin, aggregation
):
    from shared.adapters.contact_effects import DynamoContactEffects
    from shared.adapters.contact_items import Retention

    assert send("/v1/page", {"userId": "ann", "messageId": "p1"})[0] == 200
    before = admin("user_id:ann")[1]
    effects = DynamoContactEffects(
        aws,
        contacts_table=os.environ["CONTACTS_TABLE_NAME"],
        events_table=os.environ["EVENTS_TABLE_NAME"],
        retention=Retention(),
    )
    run = Plan(
        contact_id="user_id:ann",
        automation="win-back",
        version=4,
        occurrence="lapse@x",
        step=0,
        status="acted",
        points=(PointsStep(action="points", points=15),),
    )
    effects.award(ContactId.user("ann"), run, NOW + timedelta(days=1))
    effects.award(ContactId.user("ann"), run, NOW + timedelta(days=1, minutes=5))  # resumed: once
    aggregation.drain()
    card = admin("user_id:ann")[1]
    assert card["scores"]["global"]["lifetime"] == before["scores"]["global"]["lifetime"] + 15
    assert (card["event_count"], card["counts"], card["last_seen_at"]) == (
        before["event_count"],
        before["counts"],
        before["last_seen_at"],
    )
    status, page, _ = admin("user_id:ann", ledger=True)
    assert status == 200, page
    [entry] = [e for e in page["entries"] if e["message_id"] == "automation:win-back#lapse@x#00"]
    assert entry["event"] == "Automation points"
    assert entry["changes"] == [
        {"rule_id": "automation:win-back", "rule_version": 4, "points": 15, "dimension": "global"}
    ]
