"""The back-fills' steps on the shared fakes: every contact of a segment re-evaluated (and nothing written
where nothing changes), the purchases the index lacks indexed once, a run started once per name, and the
scan adapters' paging."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.clock import FixedClock
from shared.contacts.identity import ContactId
from shared.errors import InvalidRequest, NotFound
from shared.scoring.decay import Decay
from shared.usecases.backfills import (
    CONTACTS_BACKFILL,
    PURCHASES_BACKFILL,
    ContactsBackfilling,
    PurchasesBackfilling,
    SegmentIncomplete,
    backfill_contacts,
    backfill_purchases,
    check_run,
    summary,
)
from shared.usecases.engagement import Engagement
from tests.fakes import (
    CountingTelemetry,
    MemoryBackfills,
    MemoryContactStore,
    MemoryEngagementConfig,
    MemoryProfile,
    MemoryProfileScan,
    MemoryPublisher,
    MemoryStageStore,
    MemoryUnindexedPurchases,
)

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
TIME = "2026-11-23T12:00:00.000Z"


@dataclass
class CountingStages(MemoryStageStore):
    """The stage store, its reads and writes counted: what a contact costs beyond the scan."""

    reads: int = 0
    writes: int = 0
    failing: set[ContactId] = field(default_factory=set)

    def profile(self, contact):
        self.reads += 1
        return super().profile(contact)

    def apply(self, contact, *args: Any, **kwargs: Any) -> bool:
        if contact in self.failing:
            raise RuntimeError("the table refused the write")
        self.writes += 1
        return super().apply(contact, *args, **kwargs)


def population(customers: int, visitors: int) -> MemoryContactStore:
    """Contacts whose stored stage is stale (none yet): customers with a purchase, visitors without."""
    contacts = MemoryContactStore()
    for n in range(customers):
        contacts.profiles[ContactId.user(f"c{n}")] = MemoryProfile(
            counts={"purchase": 1}, first_seen=NOW, last_seen=NOW, last_purchase=NOW
        )
    for n in range(visitors):
        contacts.profiles[ContactId.anonymous(f"v{n}")] = MemoryProfile(first_seen=NOW, last_seen=NOW)
    return contacts


def contacts_deps(
    contacts: MemoryContactStore,
) -> tuple[ContactsBackfilling, CountingStages, MemoryPublisher]:
    stages = CountingStages(contacts)
    publisher = MemoryPublisher()
    config = MemoryEngagementConfig()
    engagement = Engagement(
        clock=FixedClock(NOW),
        funnels=config,
        decay=Decay(),
        stages=stages,
        router=config,
        publisher=publisher,
        telemetry=CountingTelemetry(),
    )
    deps = ContactsBackfilling(
        profiles=MemoryProfileScan(contacts), engagement=engagement, telemetry=CountingTelemetry()
    )
    return deps, stages, publisher


def run_all(step: Any, deps: Any, segments: int) -> list[dict[str, Any]]:
    return [step({"time": TIME, "segment": s, "segments": segments}, deps) for s in range(segments)]


# --- contacts -------------------------------------------------------------------------------------------------


def test_every_contact_is_evaluated_once_over_the_segments_and_its_stale_stage_rewritten() -> None:
    contacts = population(customers=6, visitors=4)
    deps, stages, publisher = contacts_deps(contacts)
    answers = run_all(backfill_contacts, deps, segments=3)
    assert [a["segment"] for a in answers] == [0, 1, 2] and {a["segments"] for a in answers} == {3}
    assert sum(a["contacts"] for a in answers) == 10 and sum(a["read"] for a in answers) == 10
    assert sum(a["changed"] for a in answers) == 10, "every stored stage was stale"
    stages_now = {str(c): contacts.profile(c).stage for c in contacts.profiles}
    assert {s for c, s in stages_now.items() if c.startswith("user_id:c")} == {"at_risk"}
    assert None not in stages_now.values()
    # each change costs what a stream change costs: a read, a write with its outbox, the announcements
    assert stages.reads == 10 and stages.writes == 10
    assert {type(o).__name__ for _, o in publisher.sent} >= {"ContactStageChanged"}


def test_a_second_run_finds_nothing_to_change_and_costs_no_request_beyond_the_scan() -> None:
    contacts = population(customers=5, visitors=5)
    deps, stages, publisher = contacts_deps(contacts)
    run_all(backfill_contacts, deps, segments=4)
    sent, reads, writes, pages = len(publisher.sent), stages.reads, stages.writes, deps.profiles.requests
    answers = run_all(backfill_contacts, deps, segments=4)
    assert sum(a["changed"] for a in answers) == 0 and sum(a["contacts"] for a in answers) == 10
    assert (stages.reads, stages.writes, len(publisher.sent)) == (reads, writes, sent)
    # the scan's pages alone: 2 profiles a page here (1 MB, some thousands, in DynamoDB)
    assert deps.profiles.requests - pages == sum(max(1, -(-a["contacts"] // 2)) for a in answers)


def test_a_contact_that_fails_leaves_the_others_done_and_fails_the_segment_for_a_retry() -> None:
    contacts = population(customers=3, visitors=0)
    deps, stages, _ = contacts_deps(contacts)
    stages.failing = {ContactId.user("c1")}
    with pytest.raises(SegmentIncomplete, match="1 of 3 contacts of segment 0 of 1 failed"):
        backfill_contacts({"time": TIME, "segment": 0, "segments": 1}, deps)
    assert contacts.profile(ContactId.user("c0")).stage == "at_risk"
    assert contacts.profile(ContactId.user("c1")).stage is None
    assert deps.telemetry.counts["back-fill of a contact"] == 1
    stages.failing = set()  # the retry: only the one left is written
    writes = stages.writes
    answer = backfill_contacts({"time": TIME, "segment": 0, "segments": 1}, deps)
    assert answer["changed"] == 1 and stages.writes == writes + 1


def test_a_merged_away_profile_is_left_alone() -> None:
    contacts = population(customers=1, visitors=0)
    contacts.profiles[ContactId.anonymous("gone")] = MemoryProfile(
        first_seen=NOW, last_seen=NOW, merged_into="user_id:c0"
    )
    deps, stages, _ = contacts_deps(contacts)
    (answer,) = run_all(backfill_contacts, deps, segments=1)
    assert answer["contacts"] == 2 and answer["changed"] == 1 and stages.writes == 1


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({"segment": 0, "segments": 1}, "time"),
        ({"time": TIME, "segment": 2, "segments": 2}, "segment 2 is not one of 0 to 1"),
        ({"time": TIME, "segment": -1, "segments": 2}, "segment"),
        ({"time": TIME, "segment": 0, "segments": 0}, "segments"),
        ({"time": "yesterday", "segment": 0, "segments": 1}, "time"),
    ],
)
def test_a_step_input_that_is_wrong_is_refused_naming_it_before_anything_is_read(event, problem) -> None:
    contacts = population(customers=1, visitors=0)
    deps, _, _ = contacts_deps(contacts)
    with pytest.raises(InvalidRequest, match=problem):
        backfill_contacts(event, deps)
    assert deps.profiles.requests == 0


# --- purchases ------------------------------------------------------------------------------------------------


def legacy_log() -> MemoryUnindexedPurchases:
    log = MemoryUnindexedPurchases()
    ann, bob = ContactId.user("ann"), ContactId.user("bob")
    at = NOW - timedelta(days=400)
    log.add(
        ann,
        "E#1",
        "purchase",
        at,
        {"properties": {"revenue": 20, "products": [{"sku": "kite", "category": "toys"}]}},
    )
    log.add(ann, "E#2", "purchase", at + timedelta(days=30), {"properties": {"revenue": 5}})
    log.add(ann, "E#3", "product_viewed", at, {"properties": {"sku": "kite"}})
    log.add(bob, "E#4", "refund", at, {"properties": {"revenue": 20}})
    log.add(bob, "E#5", "purchase", at + timedelta(hours=1), {"properties": {"product_id": 7}})
    return log


def test_purchases_lacking_the_index_get_their_time_and_basket_once() -> None:
    log = legacy_log()
    deps = PurchasesBackfilling(purchases=log, telemetry=CountingTelemetry())
    answers = run_all(backfill_purchases, deps, segments=2)
    assert sum(a["purchases"] for a in answers) == 3 and sum(a["indexed"] for a in answers) == 3
    assert sum(a["read"] for a in answers) == 5, "every event of the log is read, purchases or not"
    ann = "C#user_id:ann"
    first = log.events[(ann, "E#1")]
    assert first.purchased_at == "2025-10-19T12:00:00.000Z" and first.basket == (("kite", "toys"),)
    assert log.events[(ann, "E#2")].purchased_at and log.events[(ann, "E#2")].basket is None, (
        "no basket named"
    )
    assert log.events[("C#user_id:bob", "E#5")].basket == (("7", None),)
    assert (
        log.events[(ann, "E#3")].purchased_at is None
        and log.events[("C#user_id:bob", "E#4")].purchased_at is None
    )
    again = run_all(backfill_purchases, deps, segments=2)
    assert sum(a["purchases"] for a in again) == 0 and sum(a["indexed"] for a in again) == 0
    assert deps.telemetry.counts["BackfillPurchasesIndexed"] == 3


def test_a_purchase_indexed_or_gone_meanwhile_is_not_written() -> None:
    log = legacy_log()

    class Racing(MemoryUnindexedPurchases):
        def index(self, purchase, bought):  # another run indexed E#1 and a merge moved E#2 meanwhile
            if purchase.key == "E#1":
                self.events[(purchase.partition, purchase.key)].purchased_at = "2000-01-01T00:00:00.000Z"
            if purchase.key == "E#2":
                self.events.pop((purchase.partition, purchase.key))
            return super().index(purchase, bought)

    racing = Racing(events=log.events)
    (answer,) = run_all(backfill_purchases, PurchasesBackfilling(racing, CountingTelemetry()), segments=1)
    assert answer["purchases"] == 3 and answer["indexed"] == 1
    assert racing.events[("C#user_id:ann", "E#1")].purchased_at == "2000-01-01T00:00:00.000Z", (
        "never overwritten"
    )
    assert ("C#user_id:ann", "E#2") not in racing.events, "never brought back"


# --- runs -------------------------------------------------------------------------------------------------------


def test_a_run_name_is_checked_before_anything_starts() -> None:
    check_run(CONTACTS_BACKFILL, "segment-vip_1-v3")
    check_run(PURCHASES_BACKFILL, "x" * 80)
    with pytest.raises(NotFound, match="contacts_backfill, purchases_backfill"):
        check_run("nightly_analytics", "x")
    for name in ("", "x" * 81, "segment vip", "segment/vip", "é"):
        with pytest.raises(InvalidRequest, match="name"):
            check_run(CONTACTS_BACKFILL, name)


def test_a_run_starts_once_per_name() -> None:
    runs = MemoryBackfills()
    started: list[tuple[str, str]] = []
    runs.on_start = lambda workflow, name: started.append((workflow, name))
    assert runs.start(CONTACTS_BACKFILL, "segment-vip-v1") is True
    assert runs.start(CONTACTS_BACKFILL, "segment-vip-v1") is False
    assert runs.start(CONTACTS_BACKFILL, "segment-vip-v2") is True
    assert runs.start(PURCHASES_BACKFILL, "segment-vip-v1") is True, "names are per workflow"
    assert started == [
        (CONTACTS_BACKFILL, "segment-vip-v1"),
        (CONTACTS_BACKFILL, "segment-vip-v2"),
        (PURCHASES_BACKFILL, "segment-vip-v1"),
    ]


def test_a_runs_result_sums_its_segments_answers() -> None:
    state = {
        "time": TIME,
        "backfill_contacts": [
            {"segment": 0, "segments": 2, "contacts": 3, "read": 7, "changed": 1},
            {"segment": 1, "segments": 2, "contacts": 4, "read": 9, "changed": 0},
        ],
    }
    assert summary(state) == {"segments": 2, "contacts": 7, "read": 16, "changed": 1}
    assert summary({"time": TIME}) is None and summary(None) is None and summary("x") is None


def test_a_run_evaluates_the_segments_as_stored_when_it_starts_not_a_stale_cached_copy() -> None:
    """The stage function's segment book is cached (30 s): a warm back-fill instance may hold the copy
    from before the save that started its run. The run reads the segments once, uncached, and evaluates
    every contact against those."""
    from shared.segments.book import SegmentBook
    from shared.segments.model import parse_segment
    from tests.fakes import MemorySegmentRepository

    contacts = population(customers=2, visitors=1)
    deps, _, publisher = contacts_deps(contacts)
    stored = MemorySegmentRepository()
    stored.save(
        parse_segment("buyers", {"name": "Buyers", "filter": {"count": "purchase", "gte": 1}}), NOW, None
    )

    class Stale:
        def book(self) -> SegmentBook:
            return SegmentBook([])  # before the save: no segment at all

    deps = ContactsBackfilling(
        profiles=deps.profiles,
        engagement=replace(deps.engagement, segments=Stale()),
        telemetry=deps.telemetry,
        segments=stored,
    )
    for segment in range(2):
        backfill_contacts({"time": TIME, "segment": segment, "segments": 2, "run": "seg-buyers-v1"}, deps)
    entered = [o for _, o in publisher.sent if getattr(o, "segment", None) == "buyers"]
    assert sorted(o.contact_id for o in entered) == ["user_id:c0", "user_id:c1"]
    assert all(o.change == "entered" and o.initial for o in entered)
    assert stored.books == 2, "read once per step run (two scan segments), not once per contact"


def test_a_runs_name_says_which_segments_save_started_it() -> None:
    from shared.usecases.backfills import run_segment, segment_run_name

    assert segment_run_name("vip-2", 3) == "seg-vip-2-v3"
    assert (
        run_segment("seg-vip-2-v3") == "vip-2" and run_segment(segment_run_name("a" * 64, 10**6)) == "a" * 64
    )
    assert run_segment("manual-20261123T1205") is None and run_segment(None) is None
    assert run_segment("seg-vip") is None and run_segment("seg-Vip-v1") is None


@pytest.mark.parametrize(
    ("run", "initial"), [("seg-buyers-v2", {"buyers"}), ("manual-x", set()), (None, set())]
)
def test_only_the_moves_of_the_segment_that_started_the_run_are_initial(
    run: str | None, initial: set
) -> None:
    from shared.segments.model import parse_segment
    from tests.fakes import MemorySegmentRepository

    contacts = population(customers=1, visitors=1)
    deps, _, publisher = contacts_deps(contacts)
    stored = MemorySegmentRepository()
    for segment_id, filter_ in (
        ("buyers", {"count": "purchase", "gte": 1}),
        ("visitors", {"count": "purchase", "lt": 1}),
    ):
        stored.save(parse_segment(segment_id, {"name": segment_id, "filter": filter_}), NOW, None)
    deps = replace(deps, engagement=replace(deps.engagement, segments=stored), segments=stored)
    backfill_contacts({"time": TIME, "segment": 0, "segments": 1, **({"run": run} if run else {})}, deps)
    moves = {
        (o.segment, o.initial) for _, o in publisher.sent if type(o).__name__ == "SegmentMembershipChanged"
    }
    assert {segment for segment, _ in moves} == {"buyers", "visitors"}
    assert {segment for segment, initial_ in moves if initial_} == initial


def test_a_deleted_segment_is_emptied_by_a_backfill_reading_the_segments_as_stored() -> None:
    from shared.segments.model import parse_segment
    from tests.fakes import MemorySegmentRepository

    contacts = population(customers=2, visitors=0)
    deps, _, _ = contacts_deps(contacts)
    stored = MemorySegmentRepository()
    stored.save(parse_segment("buyers", {"name": "B", "filter": {"count": "purchase", "gte": 1}}), NOW, None)
    fresh = replace(deps, engagement=replace(deps.engagement, segments=stored), segments=stored)
    backfill_contacts({"time": TIME, "segment": 0, "segments": 1, "run": "seg-buyers-v1"}, fresh)
    assert {c: contacts.profile(c).segments for c in contacts.profiles} == {
        c: {"buyers"} for c in contacts.profiles
    }
    stored.remove("buyers", NOW, None)
    cached = replace(fresh, segments=None)  # the engagement's own book, as it is: not authoritative
    assert backfill_contacts({"time": TIME, "segment": 0, "segments": 1}, cached)["changed"] == 0
    answer = backfill_contacts({"time": TIME, "segment": 0, "segments": 1, "run": "seg-buyers-v3"}, fresh)
    assert answer["changed"] == 2 and all(contacts.profile(c).segments == set() for c in contacts.profiles)


# --- issue 14: contact search terms ----------------------------------------------------------------------------


def test_contacts_without_search_terms_get_theirs_once_and_indexed_ones_cost_no_request() -> None:
    from dataclasses import replace

    from tests.fakes import MemoryContactSearch

    contacts = population(customers=3, visitors=2)
    for n in range(3):
        contacts.profiles[ContactId.user(f"c{n}")].traits.update(
            {"email": f"c{n}@example.com", "name": "Kim"}
        )
    search = MemoryContactSearch(contacts)
    deps, _, _ = contacts_deps(contacts)
    deps = replace(deps, profiles=MemoryProfileScan(contacts, search=search), search=search)
    first = run_all(backfill_contacts, deps, segments=2)
    assert sum(a["indexed"] for a in first) == 3, "the visitors have nothing to be found by"
    assert search.held[ContactId.user("c1")][0] == {"c1@example.com", "kim"}
    assert search.requests == 3
    again = run_all(backfill_contacts, deps, segments=2)
    assert sum(a["indexed"] for a in again) == 0
    assert search.requests == 3, "a contact whose terms are stored costs no request"
