"""The nightly analytics job's use cases on the fakes: extract, fit and apply, each safe to retry and to
run twice; the changes a pass announces; the steps' inputs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from shared.analytics.changes import announcements
from shared.analytics.facts import Analytics, ChurnFacts, CustomerScore, RfmFacts
from shared.contacts.identity import ContactId
from shared.errors import DependencyUnavailable, InvalidRequest, NotFound
from shared.usecases.analytics import (
    Applying,
    Extracting,
    Fitting,
    StagedScores,
    analytics_day,
    apply,
    extract,
    fit,
    scores_key,
)
from tests.contract.helpers import entries
from tests.fakes import (
    CountingTelemetry,
    MemoryAnalyticsStore,
    MemoryAnnouncer,
    MemoryContactStore,
    MemoryPurchaseScan,
    MemoryStaging,
)

RUN = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
DAY = date(2026, 11, 22)
ANN, BOB, CID = ContactId.user("ann"), ContactId.user("bob"), ContactId.user("cid")


class World:
    """The fakes the three steps run on, over one contact store."""

    def __init__(self, part_size: int = 10_000) -> None:
        from shared.analytics.scoring import ScoringSettings

        self.contacts = MemoryContactStore()
        self.staging = MemoryStaging()
        self.store = MemoryAnalyticsStore(self.contacts)
        self.announcer = MemoryAnnouncer()
        self.telemetry = CountingTelemetry()
        self.extracting = Extracting(MemoryPurchaseScan(self.contacts), self.staging, self.telemetry)
        self.fitting = Fitting(self.staging, self.telemetry, ScoringSettings(), part_size=part_size)
        self.applying = Applying(self.staging, self.store, self.announcer, self.telemetry)

    def buy(self, contact: ContactId, at: datetime, amount: float = 20, **properties: Any) -> None:
        call = {
            "type": "track",
            "userId": contact.value,
            "event": "Order Completed",
            "properties": {"revenue": amount, **properties},
            "timestamp": at.isoformat(),
            "messageId": f"{contact.value}-{at.isoformat()}",
        }
        self.contacts.append(entries(contact, call, at=at))
        self.contacts.deliver_events()

    def run(self, time: datetime = RUN, segments: int = 2) -> list[dict[str, Any]]:
        """The workflow: extract every segment, fit, apply every part; the apply steps' answers."""
        for segment in range(segments):
            extract({"time": time.isoformat(), "segment": segment, "segments": segments}, self.extracting)
        fitted = fit({"time": time.isoformat(), "segments": segments}, self.fitting)
        return [apply({"time": time.isoformat(), "part": part}, self.applying) for part in fitted["parts"]]

    def stage_scores(self, *scores: CustomerScore, day: date = DAY, part: int = 0) -> str:
        return self.staging.save_scores(
            StagedScores(day=day, part=part, horizon_days=90, scores=list(scores))
        )


def row(contact: ContactId, segment: str | None = "loyal", level: str = "low", **extra: Any) -> CustomerScore:
    cell = {"r": 4, "f": 4, "m": 3, "segment": segment} if segment else {}
    fields = {"p_no_purchase": 0.3, "churn_risk": 0.1, "risk_level": level, **cell, **extra}
    return CustomerScore(customer_id=str(contact), **fields)


def test_the_run_scores_the_last_complete_utc_day_before_its_time():
    assert analytics_day(RUN) == DAY
    assert analytics_day(datetime(2026, 11, 23, 0, 30, tzinfo=UTC)) == DAY
    paris = timezone(timedelta(hours=1))  # 00:30 on the 23rd in Paris is 23:30 on the 22nd in UTC
    assert analytics_day(datetime(2026, 11, 23, 0, 30, tzinfo=paris)) == date(2026, 11, 21)
    assert analytics_day(datetime(2026, 11, 23, 2, 0)) == DAY, "a time without zone is UTC"


@pytest.mark.parametrize(
    ("step", "event", "named"),
    [
        (
            extract,
            {"time": "2026-11-23T02:00:00Z", "segment": 2, "segments": 2},
            "segment 2 is not one of 0 to 1",
        ),
        (extract, {"segment": 0, "segments": 2}, "time"),
        (extract, {"time": "yesterday", "segment": 0, "segments": 2}, "time"),
        (fit, {"time": "2026-11-23T02:00:00Z", "segments": 0}, "segments"),
        (
            apply,
            {"time": "2026-11-23T02:00:00Z", "part": "analytics/2026-11-21/scores/part-00000.json.gz"},
            "not of this run's day, 2026-11-22",
        ),
        (apply, {"time": "2026-11-23T02:00:00Z", "part": "../etc/passwd"}, "is not a key of staged scores"),
    ],
)
def test_a_bad_step_input_is_refused_naming_the_problem_and_nothing_is_done(step, event, named):
    world = World()
    deps = {extract: world.extracting, fit: world.fitting, apply: world.applying}[step]
    with pytest.raises(InvalidRequest) as refused:
        step(event, deps)
    assert named in refused.value.message
    assert world.staging.files == {} and world.store.writes == 0


def test_extract_stages_each_segment_up_to_the_day_and_fit_scores_the_same_as_the_command():
    from shared.analytics.history import Purchase, Purchases, day_number
    from shared.analytics.scoring import ScoringSettings, score

    world = World()
    for n in range(5):
        world.buy(
            ANN,
            RUN - timedelta(days=1 + 30 * n),
            amount=12.5,
            products=[{"sku": "filter", "category": "water"}],
        )
    world.buy(BOB, RUN - timedelta(days=30), amount=900, product_id="oven-9", category="kitchen")
    world.buy(CID, RUN - timedelta(hours=1), amount=5)  # today: after the day scored
    answers = [
        extract({"time": RUN.isoformat(), "segment": i, "segments": 2}, world.extracting) for i in (0, 1)
    ]
    assert sum(a["purchases"] for a in answers) == 6 and sum(a["read"] for a in answers) == 7
    assert {a["day"] for a in answers} == {"2026-11-22"}
    fitted = fit({"time": RUN.isoformat(), "segments": 2}, world.fitting)
    assert fitted["day"] == "2026-11-22" and fitted["customers"] == 2 and len(fitted["parts"]) == 1
    staged = world.staging.scores(fitted["parts"][0])
    assert [s.customer_id for s in staged.scores] == ["user_id:ann", "user_id:bob"]
    rows = [
        Purchase("user_id:ann", day_number(RUN - timedelta(days=1 + 30 * n)), 12.5, "filter", "water")
        for n in range(5)
    ]
    rows.append(Purchase("user_id:bob", day_number(RUN - timedelta(days=30)), 900, "oven-9", "kitchen"))
    assert staged.scores == score(Purchases.from_rows(rows), day_number(DAY), ScoringSettings())


def test_fit_fails_while_a_segment_is_not_staged_and_stages_nothing():
    world = World()
    world.buy(ANN, RUN - timedelta(days=3))
    extract({"time": RUN.isoformat(), "segment": 1, "segments": 3}, world.extracting)
    with pytest.raises(DependencyUnavailable) as waiting:
        fit({"time": RUN.isoformat(), "segments": 3}, world.fitting)
    assert "segment(s) 0, 2 of 3 for 2026-11-22" in waiting.value.message
    assert not [key for key in world.staging.files if "/scores/" in key]


def test_scores_are_staged_in_parts_of_the_part_size():
    world = World(part_size=2)
    for n, name in enumerate("abcde"):
        world.buy(ContactId.user(name), RUN - timedelta(days=2 + n))
    world.run()
    fitted = fit({"time": RUN.isoformat(), "segments": 2}, world.fitting)
    assert fitted["parts"] == [scores_key(DAY, k) for k in range(3)] and fitted["customers"] == 5
    assert [len(world.staging.scores(k).scores) for k in fitted["parts"]] == [2, 2, 1]


def test_the_first_pass_writes_every_profile_announces_each_contact_and_a_second_pass_does_nothing():
    world = World()
    world.buy(ANN, RUN - timedelta(days=3))
    world.buy(BOB, RUN - timedelta(days=40))
    (answer,) = world.run()
    assert answer == {"day": "2026-11-22", "customers": 2, "updated": 2, "announced": 4}
    for contact in (ANN, BOB):
        record = world.contacts.profile(contact)
        assert record.analytics is not None and record.analytics.day == DAY
        kinds = sorted(type(o).__name__ for o in world.store.history(contact, 10))
        assert kinds == ["ChurnRiskChanged", "SegmentChanged"]
    risk = [o for o in world.announcer.sent if type(o).__name__ == "ChurnRiskChanged"]
    assert {(o.contact_id, o.from_level) for o in risk} == {("user_id:ann", None), ("user_id:bob", None)}
    assert all(o.initial for o in world.announcer.sent), "each contact's first scoring is initial"
    assert world.store.unpublished_keys[ANN] == frozenset()
    sent, writes = len(world.announcer.sent), world.store.writes
    (again,) = world.run()  # a re-run, or the second execution of a double-fired schedule
    assert again == {"day": "2026-11-22", "customers": 2, "updated": 0, "announced": 0}
    assert len(world.announcer.sent) == sent and world.store.writes == writes + 2


def profile(world: World, *contacts: ContactId) -> None:
    from tests.fakes import MemoryProfile

    for contact in contacts:
        world.contacts.profiles.setdefault(contact, MemoryProfile())


def applied(world: World, *scores: CustomerScore, day: date = DAY) -> dict[str, Any]:
    time = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=2)
    return apply({"time": time.isoformat(), "part": world.stage_scores(*scores, day=day)}, world.applying)


def test_an_unchanged_contact_costs_one_write_and_no_read():
    world = World()
    profile(world, ANN)
    applied(world, row(ANN), day=DAY - timedelta(days=1))
    writes, reads = world.store.writes, world.store.reads
    assert applied(world, row(ANN, churn_risk=0.2)) == {
        "day": "2026-11-22",
        "customers": 1,
        "updated": 1,
        "announced": 0,
    }
    assert (world.store.writes - writes, world.store.reads - reads) == (1, 0)
    assert world.contacts.profile(ANN).analytics.churn.churn_risk == 0.2


def test_segment_and_risk_moves_are_announced_with_both_ends():
    world = World()
    profile(world, ANN, BOB)
    applied(world, row(ANN, "champions"), row(BOB, "loyal", "medium"), day=DAY - timedelta(days=1))
    world.announcer.sent.clear()
    assert applied(world, row(ANN, "at_risk"), row(BOB, None, "high"))["announced"] == 4
    moves = {
        (o.contact_id, o.change, o.segment, o.from_segment, o.to_segment)
        for o in world.announcer.sent
        if hasattr(o, "change")
    }
    assert moves == {
        ("user_id:ann", "left", "rfm:champions", "rfm:champions", "rfm:at_risk"),
        ("user_id:ann", "entered", "rfm:at_risk", "rfm:champions", "rfm:at_risk"),
        ("user_id:bob", "left", "rfm:loyal", "rfm:loyal", None),
    }
    (risk,) = [o for o in world.announcer.sent if not hasattr(o, "change")]
    assert (risk.contact_id, risk.from_level, risk.to_level, risk.day) == (
        "user_id:bob",
        "medium",
        "high",
        DAY,
    )
    assert not any(o.initial for o in world.announcer.sent), "changes of contacts scored before"
    assert world.contacts.profile(BOB).analytics.rfm is None


def test_unknown_and_merged_away_contacts_are_never_written():
    world = World()
    profile(world, ANN, BOB)
    world.contacts.claim(BOB, ANN, RUN)  # bob merged into ann
    answer = applied(world, row(ANN), row(BOB), row(CID))
    assert (answer["customers"], answer["updated"]) == (3, 1)
    assert CID not in world.contacts.profiles, "an erased (or never known) contact is not recreated"
    assert world.contacts.profile(BOB).analytics is None and world.store.history(BOB, 5) == []


def test_an_older_day_after_a_newer_one_changes_nothing():
    world = World()
    profile(world, ANN)
    applied(world, row(ANN, "champions"))
    stale = applied(world, row(ANN, "lost", "high"), day=DAY - timedelta(days=1))
    assert (stale["updated"], stale["announced"]) == (0, 0)
    assert world.contacts.profile(ANN).analytics.rfm.segment == "champions"


def test_a_bus_down_fails_the_step_after_writing_and_its_retry_publishes_each_announcement_once():
    world = World()
    profile(world, ANN, BOB)
    world.announcer.unavailable = 1
    part = world.stage_scores(row(ANN), row(BOB))
    with pytest.raises(DependencyUnavailable):
        apply({"time": RUN.isoformat(), "part": part}, world.applying)
    assert world.announcer.sent == [] and world.contacts.profile(ANN).analytics.day == DAY
    assert {c: len(keys) for c, keys in world.store.unpublished_keys.items()} == {ANN: 2, BOB: 2}
    retried = apply({"time": RUN.isoformat(), "part": part}, world.applying)
    assert (retried["updated"], retried["announced"]) == (0, 4)
    assert sorted(o.event_id for o in world.announcer.sent) == sorted(
        {o.event_id for c in (ANN, BOB) for o in world.store.history(c, 10)}
    )
    assert apply({"time": RUN.isoformat(), "part": part}, world.applying)["announced"] == 0


def test_leftovers_of_an_earlier_day_go_out_with_the_next_pass():
    world = World()
    profile(world, ANN)
    world.announcer.unavailable = 1
    with pytest.raises(DependencyUnavailable):
        applied(world, row(ANN), day=DAY - timedelta(days=1))
    assert applied(world, row(ANN))["announced"] == 2, "yesterday's two, though nothing changed today"
    assert world.store.unpublished_keys[ANN] == frozenset()


def test_an_announcement_refused_for_good_is_recorded_and_not_retried():
    world = World()
    profile(world, ANN)
    world.announcer.refuse = "ValidationException"
    answer = applied(world, row(ANN))
    assert (answer["updated"], answer["announced"]) == (1, 0)
    assert world.store.unpublished_keys[ANN] == frozenset()
    assert {e.refused for e in world.store.entries[ANN].values()} == {"ValidationException"}


def test_a_part_that_is_not_staged_is_not_found():
    world = World()
    with pytest.raises(NotFound):
        apply({"time": RUN.isoformat(), "part": scores_key(DAY, 3)}, world.applying)


# --- what a pass announces ------------------------------------------------------------------------------------


def analytics(segment: str | None, level: str | None, day: date = DAY, m: int = 3) -> Analytics:
    return Analytics(
        day=day,
        rfm=RfmFacts(r=3, f=2, m=m, segment=segment, premium=m == 5) if segment else None,
        churn=ChurnFacts(p_no_purchase=0.4, churn_risk=0.2, level=level) if level else None,
    )


def test_announcements_none_to_x_x_to_y_x_to_none_and_the_first_risk_level():
    at = RUN
    first = announcements("user_id:ann", None, analytics("new", "low"), at)
    assert [(a.kind, a.output.event_id) for a in first] == [
        ("segment-entered", "user_id:ann#2026-11-22#entered#rfm:new"),
        ("risk", "user_id:ann#2026-11-22#risk#low"),
    ]
    assert first[1].output.from_level is None and first[0].output.from_segment is None
    assert [a.output.initial for a in first] == [True, True], "never scored: what it already was"
    moved = announcements("user_id:ann", analytics("champions", "low"), analytics("at_risk", "low", m=5), at)
    assert [(a.output.change, a.output.segment) for a in moved] == [
        ("left", "rfm:champions"),
        ("entered", "rfm:at_risk"),
    ]
    assert all(a.output.premium and a.output.m == 5 for a in moved), "the new cell's values on both"
    gone = announcements("user_id:ann", analytics("lost", "high"), analytics(None, "high"), at)
    assert [(a.output.change, a.output.to_segment, a.output.r) for a in gone] == [("left", None, None)]
    back = announcements("user_id:ann", analytics(None, "high"), analytics("new", "high"), at)
    assert [(a.kind, a.output.from_segment, a.output.initial) for a in back] == [
        ("segment-entered", None, False)
    ], "from no segment, but scored before (it left every segment): a change"
    risk_only = analytics("loyal", "medium").model_copy(update={"churn": None})
    (rated,) = announcements("user_id:ann", risk_only, analytics("loyal", "high"), at)
    assert (rated.output.from_level, rated.output.initial) == (None, False), "no level, but scored before"
    assert not any(a.output.initial for a in (*moved, *gone))
    assert announcements("user_id:ann", analytics("loyal", "medium"), analytics("loyal", "medium"), at) == []
    again = announcements(
        "user_id:ann",
        analytics("loyal", "medium", day=DAY - timedelta(days=1)),
        analytics("loyal", "high"),
        at,
    )
    assert [(a.kind, a.output.from_level, a.output.to_level) for a in again] == [("risk", "medium", "high")]
    dumped = again[0].output.model_dump(mode="json", by_alias=True)
    assert dumped["from"] == "medium" and dumped["to"] == "high" and "detail_type" not in dumped
    assert dumped["initial"] is False, "on the bus either way: a consumer need not guess"


def test_the_extract_and_apply_steps_never_load_numpy():
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = (
        "import sys; import functions.analytics_extract.handler, functions.analytics_apply.handler;"
        "import shared.adapters.analytics_store, shared.adapters.analytics_staging, shared.adapters.purchase_index;"
        "import shared.adapters.analytics_announcer; import shared.adapters.contact_items;"
        "assert 'numpy' not in sys.modules and 'scipy' not in sys.modules, 'numpy loaded'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# --- the profile's codec and the card ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "stored",
    [
        analytics("champions", "low", m=5),
        analytics(None, "high"),
        Analytics(
            day=DAY,
            churn=ChurnFacts(
                p_no_purchase=1e-7,
                churn_risk=0.999999,
                level="high",
                expected_next_purchase=date(2027, 1, 2),
                typical_gap_days=30.5,
                horizon_days=60,
            ),
        ),
    ],
)
def test_the_profile_keeps_the_analytics_as_written_and_the_card_shows_them(stored):
    from shared.adapters.contact_items import analytics_value, record_from_item
    from shared.contacts.views import AnalyticsView

    item = {"pk": {"S": "C#user_id:ann"}, "sk": {"S": "PROFILE"}, "analytics": analytics_value(stored)}
    assert record_from_item(item).analytics == stored
    view = AnalyticsView.of(stored).model_dump(mode="json")
    assert view["day"] == "2026-11-22" and view["risk_level"] == stored.churn.level
    if stored.rfm is None:
        assert (view["segment"], view["segment_name"], view["r"], view["premium"]) == (
            None,
            None,
            None,
            False,
        )
    else:
        assert (view["segment"], view["segment_name"], view["m"], view["premium"]) == (
            "champions",
            "Champions",
            5,
            True,
        )
    assert record_from_item({"pk": {"S": "C#user_id:ann"}, "sk": {"S": "PROFILE"}}).analytics is None
