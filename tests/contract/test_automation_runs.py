"""The run store (the automation's port): runs recorded once, timers armed once and consumed once,
re-entry marks, and the due index; the same assertions on the fake and on moto."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.automations.engine import Coupon, Plan, Timer
from shared.automations.model import PointsStep
from shared.contacts.identity import ContactId
from shared.delivery.requests import DeliveryRequest
from shared.usecases.automation import RESUME_AFTER, Consumed, DueItem, Entry
from tests.contract.helpers import NOW, change
from tests.fakes import MemoryContactStore, MemoryRunStore

ANN, BOB = ContactId.user("ann"), ContactId.user("bob")
LATER = NOW + timedelta(days=3)


@pytest.fixture
def ports(implementation, contact_tables):
    """(contact store, run store) over the same contacts."""
    if implementation == "fake":
        contacts = MemoryContactStore()
        return contacts, MemoryRunStore(contacts)
    from shared.adapters.automation_runs import DynamoRunStore

    tables = contact_tables()
    return tables.stores(), DynamoRunStore(tables.db, contacts_table=tables.contacts)


def seen(contacts, contact: ContactId) -> None:
    assert contacts.commit([change(contact, {"type": "page", "userId": contact.value, "messageId": "p1"})])[
        0
    ].committed


def timer(key: str = "welcome#o1#continue", due=LATER, n: int = 1, kind: str = "continue") -> Timer:
    return Timer("welcome", key, due, kind, n=n, occurrence="o1", step=2, values={"item": {"sku": "a"}})


def run(occurrence: str = "o1", step: int = 0, timers: tuple[Timer, ...] = ()) -> Plan:
    request = DeliveryRequest(
        id=f"user_id:ann#welcome#{occurrence}#0",
        contact_id="user_id:ann",
        automation="welcome",
        version=1,
        occurrence=occurrence,
        step=0,
        channel="email",
        at=NOW,
        subject="Hi",
        text="Welcome",
    )
    return Plan(
        contact_id="user_id:ann",
        automation="welcome",
        version=1,
        occurrence=occurrence,
        step=step,
        status="acted",
        requests=(request,),
        tags_added=("new",),
        points=(PointsStep(action="points", points=5),),
        timers=timers,
        notes=("email", "tag +new"),
    )


def test_a_run_is_recorded_once_and_stays_pending_until_done(ports):
    contacts, runs = ports
    seen(contacts, ANN)
    plan = run(timers=(timer(),))
    assert runs.start(ANN, plan, now=NOW) == "started"
    assert runs.start(ANN, plan, now=NOW) == "duplicate"
    assert runs.pending(ANN, plan.key) == plan
    assert runs.timer(ANN, "welcome#o1#continue") == timer()
    [view] = runs.runs(ANN)
    assert (view.status, view.run_status, view.at, view.notes) == (
        "pending",
        "acted",
        NOW,
        ("email", "tag +new"),
    )
    assert [(r.channel, r.subject, r.status) for r in view.requests] == [("email", "Hi", "queued")]
    runs.done(ANN, plan.key)
    runs.done(ANN, plan.key)  # idempotent
    assert runs.pending(ANN, plan.key) is None
    assert runs.runs(ANN)[0].status == "done"
    assert runs.start(ANN, plan, now=NOW + timedelta(days=1)) == "duplicate"


def test_a_pending_run_falls_due_after_the_resume_delay_and_leaves_the_index_when_done(ports):
    contacts, runs = ports
    seen(contacts, ANN)
    plan = run()
    runs.start(ANN, plan, now=NOW)
    assert DueItem(ANN, "run", plan.key) not in runs.due(NOW + RESUME_AFTER - timedelta(seconds=1))
    assert DueItem(ANN, "run", plan.key) in runs.due(NOW + RESUME_AFTER)
    runs.done(ANN, plan.key)
    assert DueItem(ANN, "run", plan.key) not in runs.due(NOW + timedelta(days=1))


def test_timers_are_armed_once_and_fall_due_at_their_time(ports):
    contacts, runs = ports
    seen(contacts, ANN)
    series = timer("welcome#o1", kind="series")
    assert runs.arm(ANN, [series, timer("welcome#o2", due=LATER + timedelta(days=1))]) == 2
    assert runs.arm(ANN, [series]) == 0
    assert runs.due(LATER - timedelta(milliseconds=1)) == []
    assert runs.due(LATER) == [DueItem(ANN, "timer", "welcome#o1")]
    assert sorted(d.key for d in runs.due(LATER + timedelta(days=1))) == ["welcome#o1", "welcome#o2"]
    assert [(t.automation, t.kind, t.due, t.n, t.values) for t in runs.timers(ANN)] == [
        ("welcome", "series", LATER, 1, {"item": {"sku": "a"}}),
        ("welcome", "continue", LATER + timedelta(days=1), 1, {"item": {"sku": "a"}}),
    ]
    assert runs.timer(BOB, "welcome#o1") is None


def test_a_timer_is_consumed_once_replaced_by_its_next_occurrence_or_deleted(ports):
    contacts, runs = ports
    seen(contacts, ANN)
    runs.arm(ANN, [timer("s", kind="series")])
    then = timer("s", due=LATER + timedelta(days=365), n=2, kind="series")
    assert runs.consume(ANN, Consumed("s", 1, then))
    assert not runs.consume(ANN, Consumed("s", 1, then))  # fired twice: consumed once
    assert runs.timer(ANN, "s") == then
    assert runs.consume(ANN, Consumed("s", 2))
    assert runs.timer(ANN, "s") is None
    assert not runs.consume(ANN, Consumed("s", 2))


def test_a_run_consumes_its_timer_in_the_same_write_and_a_second_firing_is_a_duplicate(ports):
    contacts, runs = ports
    seen(contacts, ANN)
    runs.arm(ANN, [timer("s", kind="series")])
    then = timer("s", due=LATER + timedelta(days=30), n=2, kind="series")
    assert runs.start(ANN, run("o1@1"), now=NOW, consumed=Consumed("s", 1, then)) == "started"
    assert runs.timer(ANN, "s") == then
    # the same timer fired again, planned as another occurrence: someone else consumed it
    assert runs.start(ANN, run("o1@1b"), now=NOW, consumed=Consumed("s", 1, then)) == "duplicate"
    assert runs.pending(ANN, run("o1@1b").key) is None


def test_a_continuation_that_waits_again_replaces_the_timer_it_consumes(ports):
    contacts, runs = ports
    seen(contacts, ANN)
    runs.arm(ANN, [timer()])
    again = timer(due=LATER + timedelta(days=7))
    plan = run(step=2, timers=(again,))
    assert runs.start(ANN, plan, now=LATER, consumed=Consumed(again.key, 1)) == "started"
    assert runs.timer(ANN, again.key) == again
    assert runs.start(
        ANN, run("o9", step=2, timers=(again,)), now=LATER, consumed=Consumed(again.key, 5)
    ) == ("duplicate")
    assert runs.pending(ANN, run("o9", step=2).key) is None


def test_an_entry_mark_limits_the_automation_until_it_passes(ports):
    contacts, runs = ports
    seen(contacts, ANN)
    week = Entry("welcome", NOW + timedelta(days=7))
    assert runs.start(ANN, run("o1"), now=NOW, entry=week) == "started"
    assert contacts.profile(ANN).entered == {"welcome": "2026-11-30T12:00:00.000Z"}
    assert runs.start(ANN, run("o2"), now=NOW + timedelta(days=1), entry=week) == "limited"
    assert runs.pending(ANN, run("o2").key) is None  # nothing written
    assert runs.start(ANN, run("o3"), now=NOW + timedelta(days=7), entry=Entry("welcome", None)) == "started"
    assert contacts.profile(ANN).entered == {"welcome": "never"}
    assert runs.start(ANN, run("o4"), now=NOW + timedelta(days=900), entry=week) == "limited"


def test_no_profile_no_entry(ports):
    _, runs = ports
    assert runs.start(BOB, run(), now=NOW, entry=Entry("welcome", None)) == "limited"
    assert runs.runs(BOB) == []


def test_runs_list_newest_first(ports):
    contacts, runs = ports
    seen(contacts, ANN)
    for day in range(3):
        runs.start(ANN, run(f"o{day}"), now=NOW + timedelta(days=day))
    assert [v.occurrence for v in runs.runs(ANN)] == ["o2", "o1", "o0"]
    assert [v.occurrence for v in runs.runs(ANN, limit=2)] == ["o2", "o1"]


def test_a_plan_with_everything_round_trips(ports):
    contacts, runs = ports
    seen(contacts, ANN)
    plan = Plan(
        contact_id="user_id:ann",
        automation="a",
        version=3,
        occurrence="x",
        step=0,
        status="held_out",
        tags_removed=("old",),
        stage="customer",
        coupon=Coupon("LC-ABC", 10.0, "percent"),
        points=(PointsStep(action="points", points=-3, dimension="tag:shoes"),),
        timers=(Timer("b", "b#follow:a:x", LATER, "follow_up", occurrence="follow:a:x", origin=NOW),),
    )
    runs.start(ANN, plan, now=NOW)
    assert runs.pending(ANN, plan.key) == plan
