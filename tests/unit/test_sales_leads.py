"""A salesperson's leads as the sales view shows them (issue 14): names, acceptance, hottest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shared.contacts.model import ContactRecord
from shared.engagement.funnel import default_funnel
from shared.engagement.leads import accepted, display_name, hottest_first
from shared.scoring.decay import Decay
from shared.scoring.model import DimensionScore

DECAY = Decay()
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("traits", "name"),
    [
        ({"name": " Ann Lee ", "first_name": "X"}, "Ann Lee"),
        ({"first_name": "Ann", "last_name": "Lee"}, "Ann Lee"),
        ({"firstName": "Ann", "lastName": "Lee"}, "Ann Lee"),
        ({"first_name": "Ann"}, "Ann"),
        ({"lastName": "Lee", "name": ""}, "Lee"),
        ({"name": 7, "email": "a@example.com"}, None),
        ({}, None),
    ],
)
def test_the_name_is_the_name_trait_else_first_and_last(traits, name) -> None:
    assert display_name(traits) == name


def test_a_lead_is_accepted_at_the_funnels_accepted_stage_and_after() -> None:
    funnel = default_funnel()
    order = [s.id for s in funnel.stages]
    at = order.index(funnel.accepted)
    assert [accepted(funnel, s) for s in order] == [i >= at for i in range(len(order))]
    assert not accepted(funnel, "no-such-stage")


def scored(points: float, at: datetime) -> DimensionScore:
    memory = DECAY.current
    bucket = memory.bucket(at)
    return DimensionScore(
        total=Decimal(points), sums={memory.key: {bucket: memory.scaled(points, at, bucket)}}
    )


def lead(user: str, points: float, routed_minutes_ago: int, **traits) -> ContactRecord:
    return ContactRecord(
        contact_id=f"user_id:{user}",
        user_id=user,
        traits=traits,
        scores={"global": scored(points, NOW - timedelta(days=1))},
        stage="sql",
        quarter="sales",
        owner="sam",
        routed_at=NOW - timedelta(minutes=routed_minutes_ago),
    )


def test_hottest_first_by_current_score_then_the_most_recently_routed() -> None:
    records = [lead("a", 10, 5), lead("b", 60, 50, email="b@example.com"), lead("c", 10, 1), lead("d", 30, 9)]
    leads = hottest_first(records, default_funnel(), DECAY, NOW)
    assert [x.user_id for x in leads] == ["b", "d", "c", "a"]
    top = leads[0]
    assert top.score == round(60 * 2 ** (-1 / 30), 6) and top.email == "b@example.com" and top.name is None
    assert (top.stage, top.quarter, top.accepted) == ("sql", "sales", False)
    assert top.model_dump(mode="json")["routed_at"].startswith("2026-12-03T11:10")
