"""Campaigns' ports: the fakes and the DynamoDB adapters (on moto) keep the same contract.

The campaign repository and states (config table), the delivery's cancelled check, and the exposures
with their result counters (contacts table, with DynamoDB's limits: 100 items per transaction).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from botocore.exceptions import ClientError

from shared.automations.model import Conversion
from shared.campaigns.model import Campaign, CampaignState
from shared.campaigns.results import ArmCounts, exposure
from shared.errors import Conflict, DependencyUnavailable
from tests.fakes import MemoryCampaignRepository, MemoryCampaignStates, MemoryCampaignStatus, MemoryExposures

AT = datetime(2026, 12, 1, 9, 0, 0, 123456, tzinfo=UTC)
MS = datetime(2026, 12, 1, 9, 0, 0, 123000, tzinfo=UTC)


def december(name: str = "December sale", **changes) -> Campaign:
    body = {
        "id": "dec",
        "name": name,
        "segment": "newsletter",
        "template": "december",
        "variants": [{"id": "A", "split": 50}, {"id": "B", "split": 50, "template": "december-b"}],
        "holdout_percent": 10,
        "conversion": {"behaviour": "added_to_cart", "days": 3},
        "send_at": "2026-12-24T09:00:00Z",
        **changes,
    }
    return Campaign.model_validate(body)


@pytest.fixture
def config(implementation, config_table):
    if implementation == "fake":
        states = MemoryCampaignStates()
        return SimpleNamespace(
            campaigns=MemoryCampaignRepository(),
            states=states,
            status=MemoryCampaignStatus(states),
            fake=True,
        )
    from shared.adapters.campaign_store import DynamoCampaignStates, DynamoCampaignStatus, DynamoCampaignStore

    db, table = config_table()
    return SimpleNamespace(
        campaigns=DynamoCampaignStore(db, table=table, cache_seconds=0),
        states=DynamoCampaignStates(db, table=table),
        status=DynamoCampaignStatus(db, table=table, cache_seconds=0),
        fake=False,
    )


@pytest.fixture
def results(implementation, contact_tables):
    if implementation == "fake":
        return SimpleNamespace(port=MemoryExposures(), db=None)
    from shared.adapters.campaign_results import DynamoExposures

    tables = contact_tables()
    return SimpleNamespace(port=DynamoExposures(tables.db, contacts_table=tables.contacts), db=tables.db)


# --- documents ---------------------------------------------------------------------------------------------


def test_versions_are_kept_and_each_can_be_read_back(config) -> None:
    first = config.campaigns.save(december(), AT, expected_version=0)
    second = config.campaigns.save(december("Renamed"), AT + timedelta(hours=1), expected_version=1)
    assert (first.version, second.version) == (1, 2)
    assert config.campaigns.campaign("dec") == second
    assert config.campaigns.version("dec", 1) == first
    assert config.campaigns.version("dec", 3) is None
    assert config.campaigns.history("dec") == [second, first]
    assert Campaign.model_validate(second.model_dump(exclude={"version", "updated_at"})) == december(
        "Renamed"
    )
    assert config.campaigns.book().behaviours == {"added_to_cart"}
    with pytest.raises(Conflict):
        config.campaigns.save(december("Stale"), AT, expected_version=1)
    config.campaigns.remove("dec", AT, expected_version=2)
    assert config.campaigns.campaign("dec") is None
    assert config.campaigns.version("dec", 2) == second  # what a send froze stays readable


# --- states ------------------------------------------------------------------------------------------------


def scheduled(campaign_id: str = "dec", **changes) -> CampaignState:
    fields = {"status": "scheduled", "version": 1, "send_at": AT + timedelta(days=1), **changes}
    return CampaignState(campaign_id=campaign_id, **fields)


def test_a_first_state_is_created_once_and_makes_the_campaign_live(config) -> None:
    assert config.states.state("dec") is None
    assert config.states.create(scheduled())
    assert not config.states.create(scheduled(version=2))
    found = config.states.state("dec")
    assert (found.status, found.version, found.revision) == ("scheduled", 1, 0)
    assert found.send_at == AT + timedelta(days=1)
    ((live,),) = [config.states.live()]
    assert (live.campaign_id, live.due_at) == ("dec", MS + timedelta(days=1))


def test_a_write_is_conditional_on_the_revision_read(config) -> None:
    config.states.create(scheduled())
    sending = scheduled().model_copy(
        update={"status": "sending", "started_at": AT, "planned_at": AT, "cursor": "user_id:m", "planned": 7}
    )
    assert config.states.write(sending, expected_revision=0)
    assert not config.states.write(sending.model_copy(update={"planned": 99}), expected_revision=0)
    found = config.states.state("dec")
    assert (found.status, found.cursor, found.planned, found.revision) == ("sending", "user_id:m", 7, 1)
    assert found.started_at == AT  # the state keeps its times whole
    assert [c.campaign_id for c in config.states.live()] == ["dec"]


def test_a_lease_is_claimed_once_kept_whole_and_given_back(config) -> None:
    """The planner's lease is a field of the state: claimed on the revision read (two runs: one wins),
    read back to the microsecond (a failed run compares it to give back only its own)."""
    config.states.create(scheduled())
    claimed = scheduled().model_copy(update={"status": "sending", "leased_until": AT})
    assert config.states.write(claimed, expected_revision=0)
    assert not config.states.write(claimed, expected_revision=0)  # the other run's claim
    found = config.states.state("dec")
    assert (found.leased_until, found.revision) == (AT, 1)
    assert config.states.write(found.model_copy(update={"leased_until": None}), expected_revision=1)
    assert config.states.state("dec").leased_until is None


def test_a_state_that_is_no_longer_live_leaves_the_live_set_in_the_same_write(config) -> None:
    config.states.create(scheduled("dec"))
    config.states.create(scheduled("jan"))
    assert not config.states.write(scheduled("dec", status="cancelled", cancelled_at=AT), expected_revision=5)
    assert [c.campaign_id for c in config.states.live()] == ["dec", "jan"]
    assert config.states.write(
        scheduled("dec").model_copy(update={"status": "cancelled"}), expected_revision=0
    )
    assert [c.campaign_id for c in config.states.live()] == ["jan"]
    assert config.states.state("dec").status == "cancelled"
    assert config.status.cancelled("dec") and not config.status.cancelled("jan")
    assert not config.status.cancelled("never-sent")


def test_the_cancelled_check_is_cached_for_its_time() -> None:
    from moto import mock_aws

    from shared.adapters import aws
    from shared.adapters.campaign_store import DynamoCampaignStates, DynamoCampaignStatus
    from shared.adapters.tables import CONFIG, create_table_request

    with mock_aws():
        aws.reset()
        db = aws.client("dynamodb")
        db.create_table(**create_table_request(CONFIG, "cache-config"))
        now = [0.0]
        states = DynamoCampaignStates(db, table="cache-config")
        status = DynamoCampaignStatus(db, table="cache-config", cache_seconds=30, monotonic=lambda: now[0])
        states.create(scheduled())
        assert not status.cancelled("dec")
        states.write(scheduled().model_copy(update={"status": "cancelled"}), expected_revision=0)
        now[0] = 29.0
        assert not status.cancelled("dec")  # within the cache's time
        now[0] = 31.0
        assert status.cancelled("dec")
        aws.reset()


# --- exposures and counters --------------------------------------------------------------------------------


def seen(contact: str, arm: str = "A", subject: str = "campaign:dec", at: datetime = AT):
    return exposure(contact, subject, arm, at, Conversion(days=7), "email")


def test_an_exposure_is_recorded_once_and_counted_as_assigned(results) -> None:
    port = results.port
    assert port.expose([seen("user_id:ann"), seen("user_id:bob", "holdout")]) == 2
    assert port.expose([seen("user_id:ann", "B"), seen("user_id:cy")]) == 1  # ann has hers already
    assert port.counts("campaign:dec") == {"A": ArmCounts(assigned=2), "holdout": ArmCounts(assigned=1)}
    (ann,) = port.exposures("user_id:ann")
    assert (ann.subject, ann.arm, ann.at, ann.until, ann.channel) == (
        "campaign:dec",
        "A",
        MS,
        MS + timedelta(days=7),
        "email",
    )
    assert ann.counted == frozenset()
    assert port.exposures("user_id:nobody") == []


def test_a_page_of_exposures_is_written_in_transactions_within_dynamodbs_limits(results) -> None:
    """Two pages of 120 contacts, the second overlapping the first by 30 (a page planned again)."""
    first = [seen(f"user_id:c{i:03d}", "AB"[i % 2]) for i in range(120)]
    second = [seen(f"user_id:c{i:03d}", "AB"[i % 2]) for i in range(90, 210)]
    assert results.port.expose(first) == 120
    assert results.port.expose(second) == 90
    counts = results.port.counts("campaign:dec")
    assert (counts["A"].assigned, counts["B"].assigned) == (105, 105)


def test_a_measure_counts_once_per_exposure_and_only_for_its_arm(results) -> None:
    port = results.port
    port.expose([seen("user_id:ann"), seen("user_id:bob")])
    assert port.count("user_id:ann", "campaign:dec", "A", "opened", AT)
    assert not port.count("user_id:ann", "campaign:dec", "A", "opened", AT + timedelta(hours=1))  # a 2nd open
    assert port.count("user_id:ann", "campaign:dec", "A", "clicked", AT)
    assert not port.count("user_id:bob", "campaign:dec", "B", "opened", AT)  # not bob's arm
    assert not port.count("user_id:cy", "campaign:dec", "A", "opened", AT)  # never exposed
    assert not port.count("user_id:ann", "campaign:jan", "A", "opened", AT)
    assert port.counts("campaign:dec") == {"A": ArmCounts(assigned=2, opened=1, clicked=1)}
    (ann,) = port.exposures("user_id:ann")
    assert ann.counted == {"opened", "clicked"}
    assert port.exposures("user_id:cy") == []  # a count never creates an exposure


def test_a_windowed_count_needs_the_time_inside_the_window(results) -> None:
    port = results.port
    port.expose([seen("user_id:ann")])
    assert not port.count(
        "user_id:ann", "campaign:dec", "A", "converted", AT - timedelta(seconds=1), windowed=True
    )
    assert not port.count(
        "user_id:ann", "campaign:dec", "A", "converted", AT + timedelta(days=8), windowed=True
    )
    assert port.count("user_id:ann", "campaign:dec", "A", "converted", AT + timedelta(days=7), windowed=True)
    assert not port.count(
        "user_id:ann", "campaign:dec", "A", "converted", AT + timedelta(days=1), windowed=True
    )
    assert port.counts("campaign:dec")["A"].converted == 1


def test_counts_from_many_contacts_add_up_over_the_shards(results) -> None:
    port = results.port
    contacts = [f"user_id:c{i}" for i in range(40)]
    port.expose([seen(c, "AB"[i % 2]) for i, c in enumerate(contacts)])
    for i, c in enumerate(contacts):
        port.count(c, "campaign:dec", "AB"[i % 2], "sent", AT)
    counts = port.counts("campaign:dec")
    assert counts == {"A": ArmCounts(assigned=20, sent=20), "B": ArmCounts(assigned=20, sent=20)}


def test_a_transaction_conflict_is_retried_and_a_lasting_one_is_unavailable(results) -> None:
    if results.db is None:
        pytest.skip("the fake has no transactions to conflict")
    calls = {"n": 0}

    def conflict(model, **_) -> None:
        if model.name == "TransactWriteItems":
            calls["n"] += 1
            if calls["n"] == 1 or calls["n"] >= 3:
                error = {
                    "Error": {"Code": "TransactionCanceledException", "Message": "injected"},
                    "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
                }
                raise ClientError(error, "TransactWriteItems")

    results.port.expose([seen("user_id:ann")])
    results.db.meta.events.register_first("before-parameter-build.dynamodb", conflict)
    assert results.port.count("user_id:ann", "campaign:dec", "A", "sent", AT)
    with pytest.raises(DependencyUnavailable):
        results.port.count("user_id:ann", "campaign:dec", "A", "delivered", AT)
    results.db.meta.events.unregister("before-parameter-build.dynamodb", conflict)
    assert results.port.counts("campaign:dec")["A"] == ArmCounts(assigned=1, sent=1)
