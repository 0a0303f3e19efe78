import math
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from shared.contacts.model import ContactRecord
from shared.engagement.funnel import Funnel, default_funnel
from shared.engagement.index import Quarter, Thresholds, crossing, index, quarter
from shared.engagement.transitions import Watching, evaluate
from shared.scoring.decay import Decay
from shared.scoring.model import DimensionScore

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DECAY = Decay(timedelta(days=30))
T = Thresholds(sales=50, exit=10)
FUNNEL = default_funnel(T)


def scored(points: float, at: datetime = NOW) -> DimensionScore:
    sums = {}
    for memory in DECAY.memories:
        bucket = memory.bucket(at)
        sums[memory.key] = {bucket: memory.scaled(points, at, bucket)}
    return DimensionScore(total=points, sums=sums)


def contact(points: float = 0, *, user: str | None = "ann", purchases: int = 0, **fields) -> ContactRecord:
    return ContactRecord(
        contact_id=f"user_id:{user}" if user else "anonymous_id:a1",
        user_id=user,
        scores={"global": scored(points)},
        counts={"purchase": purchases} if purchases else {},
        **fields,
    )


@pytest.mark.parametrize(
    ("engagement", "purchased", "expected", "gauge"),
    [
        (0, False, Quarter.NURTURING, 0.0),
        (25, False, Quarter.NURTURING, 0.5),
        (50, False, Quarter.SALES, 1.0),
        (75, False, Quarter.SALES, 1.5),
        (500, False, Quarter.SALES, 1.999),
        (50, True, Quarter.RETENTION, 2.0),
        (30, True, Quarter.RETENTION, 2.5),
        (10, True, Quarter.RETENTION, 2.999),
        (5, True, Quarter.EXIT, 3.5),
        (0, True, Quarter.EXIT, 3.999),
    ],
)
def test_quarters_and_gauge(engagement, purchased, expected, gauge) -> None:
    assert quarter(engagement, purchased, T) is expected
    assert index(engagement, purchased, T) == pytest.approx(gauge)


def test_crossing_time_is_when_the_decayed_value_meets_the_threshold() -> None:
    h = timedelta(days=30)
    at = crossing(80, 10, h, NOW)
    assert at == NOW + 3 * h
    assert crossing(5, 10, h, NOW) is None and crossing(80, 0, h, NOW) is None
    value_then = 37 * 2 ** (-((crossing(37, 10, h, NOW) - NOW) / h))
    assert math.isclose(value_then, 10, rel_tol=1e-9)


def test_a_new_anonymous_visitor_enters_the_funnel() -> None:
    result = evaluate(contact(3, user=None), FUNNEL, DECAY, NOW)
    assert [(m.kind, m.source, m.target) for m in result.moves] == [
        ("stage", None, "subscriber"),
        ("quarter", None, "nurturing"),
    ]
    assert not result.route and result.due_at is None


def test_identifying_then_earning_points_walks_up_to_sql_and_routes() -> None:
    lead = evaluate(contact(3), FUNNEL, DECAY, NOW)
    assert [m.target for m in lead.moves if m.kind == "stage"] == ["subscriber", "lead"]
    qualified = evaluate(
        contact(40, stage="lead", quarter="nurturing", stage_baseline=scored(15)), FUNNEL, DECAY, NOW
    )
    assert [(m.source, m.target) for m in qualified.moves] == [("lead", "mql")]
    assert not qualified.route
    engaged = contact(60, stage="mql", quarter="nurturing", stage_baseline=scored(40))
    result = evaluate(engaged, FUNNEL, DECAY, NOW)
    assert [(m.source, m.target) for m in result.moves] == [("mql", "sql"), ("nurturing", "sales")]
    assert result.stage == "sql" and result.route and result.sales_ready
    straight = evaluate(
        contact(60, stage="lead", quarter="nurturing", stage_baseline=scored(55)), FUNNEL, DECAY, NOW
    )
    assert [(m.source, m.target) for m in straight.moves] == [("lead", "sql"), ("nurturing", "sales")]
    again = evaluate(
        contact(61, stage="sql", quarter="sales", sales_ready=True, stage_baseline=scored(60)),
        FUNNEL,
        DECAY,
        NOW,
    )
    assert not again.moves and not again.route, "routing happens once per crossing"


def test_stages_move_back_when_engagement_falls() -> None:
    cold = contact(4, stage="mql", quarter="nurturing", stage_baseline=scored(0))
    result = evaluate(cold, FUNNEL, DECAY, NOW)
    assert [(m.source, m.target, m.reason) for m in result.moves] == [("mql", "lead", "went cold")]
    at_risk = evaluate(contact(5, purchases=1, stage="customer", quarter="retention"), FUNNEL, DECAY, NOW)
    assert [(m.kind, m.target) for m in at_risk.moves] == [("stage", "at_risk"), ("quarter", "exit")]
    back = evaluate(contact(40, purchases=1, stage="at_risk", quarter="exit"), FUNNEL, DECAY, NOW)
    assert [(m.kind, m.target) for m in back.moves] == [("stage", "customer"), ("quarter", "retention")]


def test_a_purchase_takes_any_pre_purchase_stage_to_customer() -> None:
    result = evaluate(contact(25, purchases=1, stage="mql", quarter="nurturing"), FUNNEL, DECAY, NOW)
    assert [m.target for m in result.moves] == ["customer", "retention"]
    assert not result.sales_ready


def test_due_time_is_the_next_decay_crossing_and_only_moves_earlier() -> None:
    customer = contact(40, purchases=1, stage="customer", quarter="retention")
    result = evaluate(customer, FUNNEL, DECAY, NOW)
    assert result.due_at == NOW + timedelta(days=60) + timedelta(minutes=1)  # 40 -> 10 is two half-lives
    assert result.write_due
    later_known = customer.model_copy(update={"due_at": NOW + timedelta(days=10)})
    assert not evaluate(later_known, FUNNEL, DECAY, NOW).write_due, "an earlier due time already covers it"
    passed = customer.model_copy(update={"due_at": NOW - timedelta(hours=1)})
    assert evaluate(passed, FUNNEL, DECAY, NOW, Watching(due_run=True)).write_due, "the due run sets the next"
    # on the stream, a due time that has passed is left for the timer function: what it stands for (a
    # lapse, an anniversary) runs there before the next one is set
    assert not evaluate(passed, FUNNEL, DECAY, NOW).write_due


def test_decay_alone_moves_a_customer_to_exit_at_the_due_time() -> None:
    customer = contact(40, purchases=1, stage="customer", quarter="retention")
    due = evaluate(customer, FUNNEL, DECAY, NOW).due_at
    before = evaluate(customer, FUNNEL, DECAY, due - timedelta(hours=1))
    after = evaluate(customer, FUNNEL, DECAY, due)
    assert not before.moves
    assert [(m.kind, m.target) for m in after.moves] == [("stage", "at_risk"), ("quarter", "exit")]


def test_nothing_changes_means_nothing_to_write() -> None:
    steady = contact(20, stage="lead", quarter="nurturing", stage_baseline=scored(15))
    result = evaluate(steady, FUNNEL, DECAY, NOW)
    assert not result.changes(steady)


def test_funnels_are_validated() -> None:
    with pytest.raises(ValidationError, match="unknown stage"):
        Funnel.model_validate(
            {
                "initial": "a",
                "accepted": "a",
                "stages": [
                    {"id": "a", "phase": "reach", "transitions": [{"to": "b", "when": {"identified": True}}]}
                ],
            }
        )
    with pytest.raises(ValidationError, match="exit must be below sales"):
        Thresholds(sales=10, exit=20)
    with pytest.raises(ValidationError, match="at least one condition"):
        Funnel.model_validate(
            {
                "initial": "a",
                "accepted": "a",
                "stages": [{"id": "a", "phase": "reach", "transitions": [{"to": "a", "when": {}}]}],
            }
        )


def test_an_accepted_lead_is_not_routed_again() -> None:
    cooled_and_back = contact(
        70,
        stage="opportunity",
        quarter="nurturing",
        sales_ready=False,
        owner="ann-s",
        stage_baseline=scored(0),
    )
    result = evaluate(cooled_and_back, FUNNEL, DECAY, NOW)
    assert result.sales_ready and not result.route


def test_what_went_out_is_recorded_before_a_channel_left_for_later_is_retried() -> None:
    from shared.clock import FixedClock
    from shared.contacts.identity import ContactId
    from shared.errors import DependencyUnavailable
    from shared.usecases.engagement import Delivery, Engagement, Pending, publish_pending
    from tests.fakes import CountingTelemetry

    marked: list[list[Delivery]] = []
    later = Delivery("b", sent=frozenset({"events", "sns"}), retry=frozenset({"ses"}))
    refused = Delivery("a", sent=frozenset({"events"}), refused={"ses": "MessageRejected"})
    nothing = Delivery("c", retry=frozenset({"events"}))

    class Stages:
        def pending(self, contact):
            return [Pending(d.key, None) for d in (refused, later, nothing)]  # type: ignore[arg-type]

        def mark_delivered(self, contact, deliveries):
            marked.append(list(deliveries))

    class Publisher:
        def publish(self, pending):
            return [refused, later, nothing]

    telemetry = CountingTelemetry()
    deps = Engagement(
        clock=FixedClock(NOW),
        funnels=None,
        decay=DECAY,
        stages=Stages(),
        router=None,
        publisher=Publisher(),
        telemetry=telemetry,
    )  # type: ignore[arg-type]
    with pytest.raises(DependencyUnavailable, match="events, ses"):
        publish_pending(ContactId.user("ann"), deps)
    assert marked == [[refused, later]], "progress recorded; an attempt that achieved nothing writes nothing"
    assert telemetry.counts["EventsPublished"] == 1 and telemetry.counts["DeliveriesRefused"] == 1
