"""Campaigns on the fakes: sending (throttled, resumable, cancellable, once per contact however the
schedule fires), the admin's checks, and results counted once (sends, feedback, conversions)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.automations.model import Automation
from shared.campaigns.assignment import arm_of
from shared.campaigns.model import HOLDOUT, Campaign
from shared.clock import FixedClock
from shared.contacts.identity import ContactId
from shared.errors import Conflict, DependencyUnavailable, InvalidRequest
from shared.usecases.campaigns import (
    Campaigning,
    Converting,
    advance,
    advance_campaigns,
    automation_results,
    campaign_results,
    cancel_campaign,
    count_conversions,
    count_feedback,
    count_send,
    delete_campaign,
    save_campaign,
    send_campaign,
)
from tests.contract.helpers import calls
from tests.fakes import (
    CountingTelemetry,
    FakeSegmentMembers,
    MemoryAutomationRepository,
    MemoryCampaignRepository,
    MemoryCampaignStates,
    MemoryCampaignStatus,
    MemoryDeliveryQueue,
    MemoryExposures,
)

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
MEMBERS = {f"user_id:m{i:03d}" for i in range(100)}


def campaign(**changes) -> Campaign:
    body = {
        "id": "dec",
        "name": "December sale",
        "segment": "newsletter",
        "template": "december",
        "variants": [{"id": "A", "split": 50}, {"id": "B", "split": 50}],
        "holdout_percent": 20,
        "send_rate_per_minute": 30,
        **changes,
    }
    return Campaign.model_validate(body)


@dataclass
class Templates:
    known: frozenset[str] = frozenset({"december", "december-b"})

    def template(self, template_id: str) -> object | None:
        return template_id if template_id in self.known else None


@dataclass
class World:
    clock: FixedClock
    campaigns: MemoryCampaignRepository
    states: MemoryCampaignStates
    members: FakeSegmentMembers
    exposures: MemoryExposures
    queue: MemoryDeliveryQueue
    telemetry: CountingTelemetry
    templates: Templates

    @property
    def deps(self) -> Campaigning:
        return Campaigning(
            clock=self.clock,
            campaigns=self.campaigns,
            states=self.states,
            members=self.members,
            exposures=self.exposures,
            queue=self.queue,
            telemetry=self.telemetry,
            page_size=25,
        )

    def admin(self) -> dict:
        return {
            "campaigns": self.campaigns,
            "states": self.states,
            "members": self.members,
            "templates": self.templates,
            "now": self.clock.now(),
        }

    def save(self, **changes):
        return save_campaign(campaign(**changes), None, **self.admin())

    def send(self, campaign_id: str = "dec", expected: int | None = None):
        return send_campaign(campaign_id, expected, **self.admin())

    def run(self, minutes: float = 1.0):
        self.clock.at += timedelta(minutes=minutes)
        return advance_campaigns(self.deps)

    def queued_ids(self) -> list[str]:
        return [r.id for r in self.queue.sent]


@pytest.fixture
def world() -> World:
    return World(
        FixedClock(NOW),
        MemoryCampaignRepository(),
        MemoryCampaignStates(),
        FakeSegmentMembers({"newsletter": MEMBERS, "empty": set()}),
        MemoryExposures(),
        MemoryDeliveryQueue(),
        CountingTelemetry(),
        Templates(),
    )


def treated(campaign_id: str = "dec", holdout: float = 20) -> set[str]:
    variants = campaign().variants
    return {c for c in MEMBERS if arm_of(campaign_id, c, holdout, variants) != HOLDOUT}


# --- sending ----------------------------------------------------------------------------------------------


def test_a_campaign_is_sent_to_every_treated_member_once_and_the_holdout_is_only_exposed(world) -> None:
    world.save(send_rate_per_minute=1000)
    world.send()
    done = world.run()
    assert (done.planned, done.finished) == (100, 1)
    ids = world.queued_ids()
    assert len(ids) == len(set(ids)) == len(treated())
    assert {r.contact_id for r in world.queue.sent} == treated()
    held = MEMBERS - treated()
    assert 5 < len(held) < 40  # 20% of 100, give or take
    counts = world.exposures.counts("campaign:dec")
    assert counts[HOLDOUT].assigned == len(held)
    assert counts["A"].assigned + counts["B"].assigned == len(treated())
    state = world.states.state("dec")
    assert (state.status, state.planned, state.queued, state.finished_at) == (
        "sent",
        100,
        len(ids),
        world.clock.at,
    )
    assert world.states.live() == []
    for request in world.queue.sent:
        assert request.id == f"{request.contact_id}#campaign:dec#{request.occurrence}#0"
        assert request.template == "december" and request.automation == "campaign:dec"
    assert world.run().campaigns == 0  # nothing live any more


def test_a_run_queues_at_most_the_rate_times_the_minutes(world) -> None:
    world.save(send_rate_per_minute=10)
    world.send()
    for minute in range(1, 4):
        world.run()
        assert len(world.queue.sent) <= 10 * minute
    assert len(world.queue.sent) == 30
    world.run(minutes=2.5)  # a late run catches up on the minutes since the last
    assert len(world.queue.sent) == 55
    world.run(minutes=0)  # a second run at the same moment may queue nothing more
    assert len(world.queue.sent) == 55
    while world.states.state("dec").status == "sending":
        world.run()
    assert len(world.queue.sent) == len(treated())
    assert len(set(world.queued_ids())) == len(treated())


@pytest.mark.parametrize("rate", [7, 37, 150])
@pytest.mark.parametrize("seconds", [[50], [70], [60], [23, 97, 41, 180, 5, 64]])
def test_over_n_minutes_a_campaign_queues_the_rate_times_n_never_more(world, rate, seconds) -> None:
    """Runs late, early or at odd intervals: after each, the requests queued are the rate times the
    minutes since the start, within one request (never more); no allowance is thrown away."""
    world.members.members["big"] = {f"user_id:r{i:06d}" for i in range(30 * rate)}
    world.save(segment="big", holdout_percent=0, send_rate_per_minute=rate)
    world.send()
    elapsed = timedelta(0)
    for step in range(20):  # at most 25 minutes
        gap = timedelta(seconds=seconds[step % len(seconds)])
        world.run(minutes=gap / timedelta(minutes=1))
        elapsed += gap
        due = rate * elapsed / timedelta(minutes=1)
        assert due - 1 <= len(world.queue.sent) <= due
    assert len(set(world.queued_ids())) == len(world.queue.sent)


def test_a_run_stopped_for_time_leaves_its_allowance_to_the_next(world) -> None:
    world.members.members["big"] = {f"user_id:r{i:03d}" for i in range(200)}
    world.save(segment="big", holdout_percent=0, send_rate_per_minute=60)
    world.send()
    world.clock.at += timedelta(minutes=1)
    reads = {"n": 0}
    page = world.members.page

    def counting(segment_id, after, limit):
        reads["n"] += 1
        return page(segment_id, after, limit)

    world.members.page = counting
    advance_campaigns(world.deps, time_left=lambda: 100.0 if reads["n"] < 1 else 0.0)
    assert len(world.queue.sent) == 25  # one page of its 60, then out of time
    world.run()
    assert len(world.queue.sent) == 120  # the 35 it left, and this minute's 60


def test_a_crash_mid_page_resumes_from_the_saved_cursor_and_each_contact_is_queued_once(world) -> None:
    world.save(send_rate_per_minute=1000)
    world.send()
    pages = {"n": 0}
    page = world.members.page

    def crashing_on_the_third_page(segment_id, after, limit):
        pages["n"] += 1
        if pages["n"] == 3:
            world.queue.unavailable = True  # the page is exposed, then its requests cannot be queued
        return page(segment_id, after, limit)

    world.members.page = crashing_on_the_third_page
    done = world.run()
    assert done.finished == 0 and world.telemetry.counts.get("CampaignRunsFailed") == 1
    state = world.states.state("dec")
    assert (state.status, state.planned) == ("sending", 50)  # two pages of 25 saved
    world.queue.unavailable = False
    world.run()
    assert world.states.state("dec").status == "sent"
    ids = world.queued_ids()
    assert len(ids) == len(set(ids)) == len(treated())
    assert sum(c.assigned for c in world.exposures.counts("campaign:dec").values()) == 100


def test_a_crash_after_queueing_plans_the_page_again_harmlessly(world) -> None:
    """The requests went, the cursor was not saved: the page is planned again; its exposures exist (not
    counted again) and its requests are the same ids (the send ledger sends each once)."""
    world.save(send_rate_per_minute=1000)
    world.send()
    writes = {"n": 0}
    write = world.states.write

    def failing_second_save(state, expected):
        writes["n"] += 1
        if writes["n"] == 2:
            raise DependencyUnavailable("the campaign states are unavailable right now; retry")
        return write(state, expected)

    world.states.write = failing_second_save
    world.run()
    world.run()
    ids = world.queued_ids()
    assert set(ids) == {f"{c}#campaign:dec#{arm_of('dec', c, 20, campaign().variants)}#0" for c in treated()}
    assert len(ids) > len(set(ids))  # one page queued twice: the same ids
    assert sum(c.assigned for c in world.exposures.counts("campaign:dec").values()) == 100


def test_a_run_that_starts_while_another_plans_skips_the_campaign(world) -> None:
    """The schedule fires every minute and a run may last 300 s: the second run finds the campaign leased
    and leaves it, so no page is read, exposed or queued twice."""
    world.save(send_rate_per_minute=1000)
    world.send()
    world.clock.at += timedelta(minutes=1)
    page = world.members.page
    inner: dict[str, object] = {}
    limits: list[int] = []

    def overlapping(segment_id, after, limit):
        limits.append(limit)
        if not inner:
            inner["done"] = None
            inner["done"] = advance("dec", world.deps, time_left=lambda: 280.0)  # the other run
        return page(segment_id, after, limit)

    world.members.page = overlapping
    outer = advance("dec", world.deps, time_left=lambda: 280.0)
    assert inner["done"].planned == 0 and world.telemetry.counts.get("CampaignRunsSkippedLeased") == 1
    assert (outer.planned, outer.finished) == (100, 1)
    assert len(limits) == 4  # the pages of one run only
    ids = world.queued_ids()
    assert len(ids) == len(set(ids)) == len(treated())
    state = world.states.state("dec")
    assert (state.status, state.leased_until) == ("sent", None)


def test_a_run_gives_its_lease_back_and_a_dead_runs_lease_runs_out(world) -> None:
    world.save(send_rate_per_minute=10)
    world.send()
    world.clock.at += timedelta(minutes=1)
    advance("dec", world.deps, time_left=lambda: 290.0)
    assert world.states.state("dec").leased_until is None  # stopped for its allowance: given back
    assert len(world.queue.sent) == 10
    world.clock.at += timedelta(minutes=1)
    write = world.states.write
    saves = {"n": 0}

    def killed_after_its_claim(state, expected):
        saves["n"] += 1
        if saves["n"] > 1:
            raise SystemExit("the function timed out")  # Lambda stops the run: no code of its own runs
        return write(state, expected)

    world.states.write = killed_after_its_claim
    with pytest.raises(SystemExit):
        advance("dec", world.deps, time_left=lambda: 290.0)
    world.states.write = write
    held = world.states.state("dec")
    assert held.leased_until == world.clock.at + timedelta(seconds=300)  # its deadline and a margin
    world.clock.at += timedelta(minutes=1)
    assert advance("dec", world.deps, time_left=lambda: 290.0).planned == 0  # still held
    world.clock.at = held.leased_until - timedelta(seconds=1)
    assert advance("dec", world.deps, time_left=lambda: 290.0).planned == 0  # held to the end
    world.clock.at = held.leased_until
    assert advance("dec", world.deps, time_left=lambda: 290.0).planned > 0  # run out: taken over
    state = world.states.state("dec")
    first = sorted(MEMBERS)[: state.planned]  # from the saved cursor: the dead run's page again (same ids)
    assert set(world.queued_ids()) == {
        f"{c}#campaign:dec#{arm_of('dec', c, 20, campaign().variants)}#0" for c in first if c in treated()
    }
    assert state.leased_until is None


def test_a_failed_run_gives_its_lease_back(world) -> None:
    world.save(send_rate_per_minute=10)
    world.send()
    world.clock.at += timedelta(minutes=1)
    world.queue.unavailable = True
    with pytest.raises(DependencyUnavailable):
        advance("dec", world.deps, time_left=lambda: 290.0)
    assert world.states.state("dec").leased_until is None
    world.queue.unavailable = False
    world.clock.at += timedelta(seconds=1)
    assert advance("dec", world.deps, time_left=lambda: 290.0).queued == 10  # not held up by the lease


def test_two_runs_at_once_leave_one_effect(world) -> None:
    """Should a lease run out under a run still working (it lived past its deadline, clocks apart), the
    other run plans the same page; the first to save wins, the other stops."""
    world.save(send_rate_per_minute=25)
    world.send()
    world.clock.at += timedelta(minutes=1)
    page = world.members.page
    inner: dict[str, object] = {}
    later = FixedClock(world.clock.at + timedelta(minutes=10))

    def overlapping(segment_id, after, limit):
        if not inner:
            inner["done"] = None
            other = replace(world.deps, clock=later)
            inner["done"] = advance("dec", other, time_left=lambda: 280.0)  # the other run, start to end
        return page(segment_id, after, limit)

    world.members.page = overlapping
    outer = advance("dec", world.deps, time_left=lambda: 280.0)
    assert outer.planned == 25  # its first page, planned again, then its save failed: it stopped
    assert world.telemetry.counts.get("CampaignRunsSuperseded") == 1
    state = world.states.state("dec")
    assert state.planned == inner["done"].planned > 25  # the other run's pages, saved once each
    first = sorted(MEMBERS)[: state.planned]
    ids = world.queued_ids()
    assert set(ids) == {
        f"{c}#campaign:dec#{arm_of('dec', c, 20, campaign().variants)}#0" for c in first if c in treated()
    }
    assert sum(c.assigned for c in world.exposures.counts("campaign:dec").values()) == state.planned


def test_cancelling_mid_send_stops_the_planner_and_delivery_skips_what_was_queued(world) -> None:
    from shared.delivery.policy import CAMPAIGN_CANCELLED, QuietHours, SendingPolicy, check
    from shared.delivery.ports import Recipient
    from tests.fakes import (
        MemoryContactStore,
        MemoryDeliveryControl,
        MemoryEngagementTimes,
        MemorySuppressions,
        MemoryTexter,
    )

    world.save(send_rate_per_minute=10)
    world.send()
    world.run()
    queued = list(world.queue.sent)
    assert len(queued) == 10
    view = cancel_campaign("dec", campaigns=world.campaigns, states=world.states, now=world.clock.now())
    assert view.status == "cancelled" and view.state.cancelled_at == world.clock.now()
    assert world.states.live() == []
    world.run(minutes=10)
    assert world.queue.sent == queued
    status = MemoryCampaignStatus(world.states)
    recipient = Recipient(contact_id=queued[0].contact_id, email="m@example.com")
    decision = check(
        queued[0],
        recipient,
        world.clock.now(),
        SendingPolicy(quiet=QuietHours(21, 8), double_opt_in=(), caps={}),
        control=MemoryDeliveryControl(),
        suppressions=MemorySuppressions(),
        texter=MemoryTexter(),
        times=MemoryEngagementTimes(MemoryContactStore()),
        campaigns=status,
    )
    assert (decision.action, decision.reason) == ("skip", CAMPAIGN_CANCELLED)
    again = cancel_campaign("dec", campaigns=world.campaigns, states=world.states, now=world.clock.now())
    assert again.status == "cancelled"  # cancelling twice answers the same
    with pytest.raises(Conflict, match="campaign dec is cancelled; it cannot become"):
        world.send()


def test_a_cancel_racing_the_planner_reads_again_and_wins(world) -> None:
    world.save(send_rate_per_minute=10)
    world.send()
    world.states.lose_next_write = True
    view = cancel_campaign("dec", campaigns=world.campaigns, states=world.states, now=world.clock.now())
    assert view.status == "cancelled"


def test_a_scheduled_campaign_waits_for_its_time(world) -> None:
    world.save(send_at=(NOW + timedelta(hours=2)).isoformat(), send_rate_per_minute=1000)
    view = world.send()
    assert (view.status, view.state.send_at) == ("scheduled", NOW + timedelta(hours=2))
    assert world.run(minutes=60).planned == 0
    assert world.states.state("dec").status == "scheduled"
    done = world.run(minutes=61)
    assert (done.planned, done.finished) == (100, 1)
    state = world.states.state("dec")
    assert state.started_at == NOW + timedelta(hours=2)


def test_a_send_is_idempotent_and_a_sent_campaign_cannot_be_changed(world) -> None:
    world.save()
    first = world.send()
    second = world.send()
    assert first.state == second.state and first.status == "sending"
    with pytest.raises(Conflict, match="campaign dec is sending; only a draft can be changed"):
        world.save(name="Renamed")
    with pytest.raises(Conflict, match="only a draft can be deleted"):
        delete_campaign("dec", None, campaigns=world.campaigns, states=world.states, now=NOW)
    with pytest.raises(Conflict, match="is at version 1, not 2"):
        world.states.states.clear()
        world.send(expected=2)


# --- the admin's checks -------------------------------------------------------------------------------------


def test_a_campaign_to_an_empty_segment_is_refused_and_changes_nothing(world) -> None:
    with pytest.raises(InvalidRequest) as refused:
        world.save(segment="empty")
    assert refused.value.code == "empty_segment"
    assert (
        refused.value.message
        == "segment: 'empty' has no members: a campaign to an empty segment sends nothing"
    )
    assert world.campaigns.stored() == []
    world.save()
    world.members.members["newsletter"] = set()  # emptied since it was saved
    with pytest.raises(InvalidRequest, match="has no members"):
        world.send()
    assert world.states.state("dec") is None and world.states.live() == []


class PagesOnlyMembers(FakeSegmentMembers):
    """Members that count what the admin path reads: a full count fails the test."""

    def __init__(self, members: dict[str, set[str]]) -> None:
        super().__init__(members)
        self.read = 0

    def page(self, segment_id, after, limit):
        found = super().page(segment_id, after, limit)
        self.read += len(found.contact_ids)
        return found

    def count(self, segment_id: str) -> int:
        raise AssertionError("the admin path counted every member of the segment")


def test_the_empty_segment_check_reads_one_member_not_all(world) -> None:
    """Saving and sending ask whether the segment has a member (one page of one), never a full count:
    a segment of millions would take the admin function past its timeout."""
    world.members = PagesOnlyMembers({"big": {f"user_id:b{i:05d}" for i in range(5000)}, "empty": set()})
    world.save(segment="big")
    world.send()
    assert (world.members.requests, world.members.read) == (2, 2)  # one page of one member each
    with pytest.raises(InvalidRequest, match="has no members"):
        world.save(id="other", segment="empty")


def test_the_empty_segment_check_follows_empty_pages_that_move_on(world) -> None:
    """The adapter may answer an empty page with a cursor further on (an empty index partition)."""
    from shared.segments.members import MemberPage

    pages = iter(
        [MemberPage(contact_ids=[], after="1#"), MemberPage(contact_ids=[], after="2#"), MemberPage()]
    )
    world.members.page = lambda segment_id, after, limit: next(pages)
    with pytest.raises(InvalidRequest, match="has no members"):
        world.save()
    world.members.page = lambda segment_id, after, limit: (
        MemberPage(contact_ids=[], after="1#") if after is None else MemberPage(contact_ids=["user_id:x"])
    )
    assert world.save().version == 1


def test_a_campaign_with_an_unknown_template_is_refused(world) -> None:
    with pytest.raises(InvalidRequest, match=r"^template: no template 'nope'"):
        world.save(variants=[{"id": "A", "split": 50}, {"id": "B", "split": 50, "template": "nope"}])
    assert world.campaigns.stored() == []


def test_cancelling_a_draft_or_an_unknown_campaign(world) -> None:
    from shared.errors import NotFound

    with pytest.raises(NotFound):
        cancel_campaign("nope", campaigns=world.campaigns, states=world.states, now=NOW)
    world.save()
    with pytest.raises(Conflict, match="is a draft"):
        cancel_campaign("dec", campaigns=world.campaigns, states=world.states, now=NOW)


# --- results ------------------------------------------------------------------------------------------------


def sent_world(world: World) -> list:
    world.save(send_rate_per_minute=1000, conversion={"behaviour": "purchase", "days": 7})
    world.send()
    world.run()
    return list(world.queue.sent)


def purchase(contact: str, at: datetime, message: str = "o1"):
    (event,) = calls(
        {
            "type": "track",
            "userId": contact.split(":", 1)[1],
            "event": "Order Completed",
            "messageId": message,
            "timestamp": at.isoformat(),
            "properties": {"revenue": 10},
        },
        at=at,
    )
    return event


def converting(world: World, automations: MemoryAutomationRepository | None = None) -> Converting:
    return Converting(
        campaigns=world.campaigns,
        automations=automations or MemoryAutomationRepository(),
        exposures=world.exposures,
        telemetry=world.telemetry,
    )


def test_sends_and_feedback_count_once_per_exposure(world) -> None:
    request = sent_world(world)[0]
    arm = request.occurrence
    assert count_send(world.exposures, request, "sent", NOW)
    assert not count_send(world.exposures, request, "sent", NOW)  # a redelivered message
    assert count_feedback(world.exposures, request.contact_id, request.id, "opened", NOW)
    assert not count_feedback(world.exposures, request.contact_id, request.id, "opened", NOW)  # 2nd open
    assert count_feedback(world.exposures, request.contact_id, request.id, "clicked", NOW)
    assert not count_feedback(world.exposures, request.contact_id, "user_id:x#win-back#o#0", "opened", NOW)
    counts = world.exposures.counts("campaign:dec")[arm]
    assert (counts.sent, counts.opened, counts.clicked) == (1, 1, 1)


def test_a_conversion_counts_once_within_the_window_holdout_included(world) -> None:
    sent_world(world)
    at = world.clock.now()
    buyer = min(treated())
    held = min(MEMBERS - treated())
    deps = converting(world)
    assert count_conversions(ContactId.parse(buyer), purchase(buyer, at + timedelta(days=1)), deps) == 1
    assert count_conversions(ContactId.parse(buyer), purchase(buyer, at + timedelta(days=2), "o2"), deps) == 0
    assert count_conversions(ContactId.parse(held), purchase(held, at + timedelta(days=8)), deps) == 0  # late
    assert count_conversions(ContactId.parse(held), purchase(held, at + timedelta(days=6), "o3"), deps) == 1
    assert count_conversions(ContactId.parse(held), purchase(held, at - timedelta(days=1), "o4"), deps) == 0
    counts = world.exposures.counts("campaign:dec")
    assert sum(c.converted for arm, c in counts.items() if arm != HOLDOUT) == 1
    assert counts[HOLDOUT].converted == 1
    found = campaign_results("dec", campaigns=world.campaigns, states=world.states, exposures=world.exposures)
    assert found.status == "sent"
    assert found.results.holdout.counts.converted == 1
    assert [a.arm for a in found.results.arms] == ["A", "B"]
    assert found.results.summary[-1].startswith("All treated converted")


def test_events_that_cannot_count_read_no_exposures(world) -> None:
    sent_world(world)
    member = min(treated())
    before = world.exposures.requests
    (visit,) = calls({"type": "page", "userId": member.split(":", 1)[1], "messageId": "p1"})
    assert count_conversions(ContactId.parse(member), visit, converting(world)) == 0
    assert world.exposures.requests == before


def test_an_unsubscribe_after_the_campaign_counts_for_its_arm(world) -> None:
    sent_world(world)
    member = min(treated())
    (unsubscribed,) = calls(
        {
            "type": "track",
            "userId": member.split(":", 1)[1],
            "event": "Unsubscribed",
            "messageId": "u1",
            "timestamp": (world.clock.now() + timedelta(hours=1)).isoformat(),
        },
        at=world.clock.now() + timedelta(hours=1),
    )
    assert count_conversions(ContactId.parse(member), unsubscribed, converting(world)) == 1
    assert count_conversions(ContactId.parse(member), unsubscribed, converting(world)) == 0
    assert sum(c.unsubscribed for c in world.exposures.counts("campaign:dec").values()) == 1


def test_an_automation_with_a_holdout_reports_acted_against_held_out(world) -> None:
    from shared.usecases.campaigns import automation_exposure

    automations = MemoryAutomationRepository()
    stored = automations.save(
        Automation.model_validate(
            {
                "id": "win-back",
                "name": "Win back",
                "trigger": {"type": "inactivity", "days": 30},
                "steps": [{"action": "email", "subject": "Hi", "text": "Hello"}],
                "holdout_percent": 50,
            }
        ),
        NOW,
        None,
    )
    world.exposures.expose(
        [
            automation_exposure("user_id:a", stored, "acted", NOW),
            automation_exposure("user_id:h", stored, "held_out", NOW),
        ]
    )
    deps = converting(world, automations)
    assert count_conversions(ContactId.user("a"), purchase("user_id:a", NOW + timedelta(days=1)), deps) == 1
    found = automation_results(stored, world.exposures)
    assert (found.results.treated.counts.assigned, found.results.treated.counts.converted) == (1, 1)
    assert found.results.holdout.counts.assigned == 1
    assert found.results.summary[0].startswith("Acted on converted 100.0% against 0.0% held out")


def test_planning_is_measurable_per_recipient(world) -> None:
    """What the bench reads: requests and items per recipient, from the fakes' counters."""
    members = {f"user_id:r{i:05d}" for i in range(2000)}
    world.members.members["big"] = members
    world.save(segment="big", send_rate_per_minute=100_000)
    world.send()
    world.members.requests = world.states.requests = 0
    world.exposures.requests = world.exposures.items = 0
    world.run()
    assert world.states.state("dec").status == "sent"
    pages = -(-2000 // 25)
    assert world.members.requests == pages
    assert world.exposures.requests == 2000 // 25  # one transaction per 25 exposures
    assert world.exposures.items <= 2000 + 3 * pages  # an exposure each, and an ADD per arm and chunk
    # the live set, the state, the lease's claim, a save per page (the last gives the lease back), and
    # the test's own read
    assert world.states.requests <= pages + 4


def test_short_and_empty_pages_that_move_on_are_followed_to_the_end(world) -> None:
    """The members adapter reads its index partitions in turn: a page may be short, or empty with a cursor
    further on; the planner follows them within one run."""
    from shared.segments.members import MemberPage

    ordered = sorted(MEMBERS)

    def sharded(segment_id, after, limit):
        world.members.requests += 1
        start = 0 if after is None else int(after.split(":")[0])
        if start in (2, 3):  # two empty partitions
            return MemberPage(contact_ids=[], after=f"{start + 1}:")
        first = (start if start < 2 else start - 2) * 10
        chunk = ordered[first : first + min(limit, 10)]
        return MemberPage(contact_ids=chunk, after=f"{start + 1}:" if start < 11 else None)

    world.members.page = sharded
    world.save(send_rate_per_minute=1000)
    world.send()
    done = world.run()
    assert (done.planned, done.finished) == (100, 1)
    assert {r.contact_id for r in world.queue.sent} == treated()
