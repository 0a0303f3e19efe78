"""The nightly analytics job's use cases on the fakes: extract, fit and apply, each safe to retry and to
run twice; the changes a pass announces; the steps' inputs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from shared.analytics.changes import announcements
from shared.analytics.facts import Analytics, ChurnFacts, CustomerScore, RfmFacts
from shared.clock import FixedClock
from shared.contacts.identity import ContactId
from shared.errors import DependencyUnavailable, InvalidRequest, NotFound
from shared.usecases.analytics import (
    MAX_CLOCK_SKEW,
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
#: the steps' clock: the morning after the run
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
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
        self.clock = FixedClock(NOW)
        self.scan = MemoryPurchaseScan(self.contacts)
        self.extracting = Extracting(self.scan, self.staging, self.telemetry, clock=self.clock)
        self.fitting = Fitting(
            self.staging, self.telemetry, ScoringSettings(), part_size=part_size, clock=self.clock
        )
        self.applying = Applying(self.staging, self.store, self.announcer, self.telemetry, clock=self.clock)

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


# --- hardening: a time to come, memory at scale, the workflow's state, parts applied in parallel ------------


@pytest.mark.parametrize("step", [extract, fit, apply])
@pytest.mark.parametrize("ahead", [MAX_CLOCK_SKEW + timedelta(seconds=1), timedelta(days=27_000)])
def test_a_time_later_than_now_is_refused_by_every_step_before_anything_is_done(step, ahead):
    """A manual run at a future time would score a day not over yet, and the day guard would then keep
    every real night up to it from writing: refused, naming the time and now."""
    world = World()
    world.buy(ANN, RUN - timedelta(days=3))
    later = NOW + ahead
    event = {
        extract: {"segment": 0, "segments": 1},
        fit: {"segments": 1},
        apply: {"part": scores_key(analytics_day(later), 0)},
    }[step]
    deps = {extract: world.extracting, fit: world.fitting, apply: world.applying}[step]
    with pytest.raises(InvalidRequest) as refused:
        step({"time": later.isoformat(), **event}, deps)
    assert refused.value.code == "invalid_step_input"
    assert f"time {later.isoformat()} is later than now (2026-11-23T09:00:00+00:00)" in refused.value.message
    assert world.staging.files == {} and world.store.writes == 0 and world.announcer.calls == 0


def test_after_a_refused_future_run_the_real_night_scores_and_a_time_within_the_skew_is_a_run():
    world = World()
    world.buy(ANN, RUN - timedelta(days=3))
    with pytest.raises(InvalidRequest):
        world.run(time=datetime(2099, 12, 31, 2, tzinfo=UTC))
    (answer,) = world.run()
    assert (answer["day"], answer["updated"]) == ("2026-11-22", 1)
    world.clock.advance(timedelta(days=1))
    (early,) = world.run(time=world.clock.now() + MAX_CLOCK_SKEW)  # the schedule's clock a little ahead
    assert (early["day"], early["updated"]) == ("2026-11-23", 1)


def test_the_fit_builds_the_commands_histories_from_the_segments_columns():
    """What the fit makes of the staged segments (one at a time, no row objects) is what
    ``Purchases.from_rows`` makes of the purchases' rows: a row per basket entry, the amount on the first,
    a negative amount as 0, a contact's purchases in several segments joined."""
    from shared.analytics.history import Purchase, Purchases, day_number
    from shared.usecases.analytics import PurchaseHistories, ScannedPurchase, StagedPurchases

    def bought(who: str, days_ago: int, amount: float, *basket: tuple[str | None, str | None]):
        at = RUN - timedelta(days=days_ago, hours=3)
        return ScannedPurchase(contact_id=who, purchased_at=at, amount=amount, basket=basket)

    segments = [
        [
            bought("user_id:bob", 40, 10, ("p1", "c1"), ("p2", None), (None, "c3")),
            bought("user_id:ann", 40, -5),
            bought("user_id:ann", 9, 7.5, ("p1", "c1"), ("p1", "c1")),
            bought("user_id:ann", 9, 2.5, ("p3", "c1")),
        ],
        [],
        [bought("user_id:ann", 40, 4, ("p2", "c2")), bought("user_id:cid", 1, 0, (None, None))],
    ]
    histories = PurchaseHistories()
    for n, purchases in enumerate(segments):
        histories.add(StagedPurchases.of(DAY, n, len(segments), purchases))
    built = histories.purchases()
    rows = [
        Purchase(
            p.contact_id,
            day_number(p.purchased_at),
            max(0.0, p.amount) if k == 0 else 0.0,
            product,
            category,
        )
        for purchases in segments
        for p in purchases
        for k, (product, category) in enumerate(p.basket or ((None, None),))
    ]
    expected = Purchases.from_rows(rows)
    assert built.customers == expected.customers == ("user_id:ann", "user_id:bob", "user_id:cid")
    assert (built.products, built.categories) == (expected.products, expected.categories)
    for name in ("customer", "day", "amount", "basket_row", "basket_product", "basket_category"):
        assert getattr(built, name).tolist() == getattr(expected, name).tolist(), name
    assert built.amount.tolist() == [4.0, 10.0, 10.0, 0.0], "ann: 0 + 4 forty days ago, 10 nine days ago"
    assert len(PurchaseHistories().purchases()) == 0


def test_more_parts_than_the_workflows_state_holds_fail_the_fit_naming_the_setting(monkeypatch):
    import shared.usecases.analytics as nightly

    monkeypatch.setattr(nightly, "MAX_PARTS", 2)
    world = World(part_size=1)
    for name in "abc":
        world.buy(ContactId.user(name), RUN - timedelta(days=2))
    for segment in range(2):
        extract({"time": RUN.isoformat(), "segment": segment, "segments": 2}, world.extracting)
    with pytest.raises(InvalidRequest) as refused:
        fit({"time": RUN.isoformat(), "segments": 2}, world.fitting)
    assert "3 customers make 3 parts of 1" in refused.value.message
    assert "analyticsPartSize" in refused.value.message
    assert not [key for key in world.staging.files if "/scores/" in key]


class Meeting:
    """The analytics store, where each contact's first write, and each marking, waits until ``parties``
    of them are under way at once (a deadlock guard's timeout fails it otherwise); ``failing``: contacts
    whose first write fails for now."""

    def __init__(self, store: Any, parties: int = 1, failing: tuple[ContactId, ...] = ()):
        import threading

        self.store = store
        self.writes = threading.Barrier(parties, timeout=20)
        self.marks = threading.Barrier(parties, timeout=20)
        self.failing = set(failing)
        self.seen: list[ContactId] = []

    def record(self, contact: ContactId, *args: Any) -> Any:
        if contact not in self.seen:
            self.seen.append(contact)
            self.writes.wait()
            if contact in self.failing:
                raise DependencyUnavailable("the contact store is throttling this contact; retry")
        return self.store.record(contact, *args)

    def mark_published(self, contact: ContactId, published: Any) -> None:
        self.marks.wait()
        self.store.mark_published(contact, published)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


class Gathering:
    """The bus, where each call waits until ``parties`` calls are under way at once."""

    def __init__(self, announcer: MemoryAnnouncer, parties: int):
        import threading

        self.announcer = announcer
        self.calls = threading.Barrier(parties, timeout=20)

    def announce(self, outputs: Any) -> Any:
        self.calls.wait()
        return self.announcer.announce(outputs)


def test_a_parts_contacts_and_their_announcements_are_applied_several_at_once():
    from dataclasses import replace

    world = World()
    contacts = [ContactId.user(f"c{n}") for n in range(6)]
    profile(world, *contacts)
    part = world.stage_scores(*(row(c) for c in contacts))
    at_once = replace(
        world.applying,
        analytics=Meeting(world.store, parties=6),
        announcer=Gathering(world.announcer, parties=2),
    )
    answer = apply({"time": RUN.isoformat(), "part": part}, at_once)
    assert (answer["updated"], answer["announced"]) == (6, 12), "the six met, twice: they ran at once"
    assert world.announcer.calls == 2, "PutEvents still takes ten at a time, across the part's contacts"
    assert all(not keys for keys in world.store.unpublished_keys.values())


def test_a_contact_that_fails_fails_the_part_after_the_others_are_applied_and_published():
    from dataclasses import replace

    world = World()
    profile(world, ANN, BOB, CID)
    part = world.stage_scores(row(ANN), row(BOB), row(CID))
    flaky = replace(world.applying, analytics=Meeting(world.store, failing=(BOB,)), workers=2)
    with pytest.raises(DependencyUnavailable) as failed:
        apply({"time": RUN.isoformat(), "part": part}, flaky)
    assert "1 of the 3 contacts of analytics/2026-11-22/scores/part-00000.json.gz failed" in " ".join(
        failed.value.__notes__
    )
    assert world.contacts.profile(BOB).analytics is None
    assert {o.contact_id for o in world.announcer.sent} == {"user_id:ann", "user_id:cid"}
    assert world.telemetry.counts["AnalyticsProfilesUpdated"] == 2
    retried = apply({"time": RUN.isoformat(), "part": part}, world.applying)  # the step's retry
    assert (retried["updated"], retried["announced"]) == (1, 2)
    assert sorted(o.event_id for o in world.announcer.sent) == sorted(
        o.event_id for c in (ANN, BOB, CID) for o in world.store.history(c, 10)
    ), "each contact's announcements published, each once"


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
