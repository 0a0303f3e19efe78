"""The automation repository: the fake and the DynamoDB adapter (on moto) keep the same contract."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.automations.catalogue import with_paused
from shared.automations.model import Automation
from shared.errors import Conflict, NotFound
from tests.fakes import MemoryAutomationRepository

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def automations(implementation, config_table):
    if implementation == "fake":
        return MemoryAutomationRepository()
    from shared.adapters.automation_store import DynamoAutomationStore

    db, table = config_table()
    return DynamoAutomationStore(db, table=table, cache_seconds=0)


def welcome(automation_id: str = "welcome", text: str = "Hello {{ traits.first_name }}") -> Automation:
    """Aliased fields (``from``, ``for``) included, so the store must keep them as the model reads them."""
    return Automation.model_validate(
        {
            "id": automation_id,
            "name": "Welcome",
            "trigger": {"type": "stage", "from": "lead", "to": "mql"},
            "steps": [{"action": "wait", "for": {"days": 1}}, {"action": "sms", "text": text}],
            "reentry": "once_per",
            "period": {"months": 6},
        }
    )


def test_versions_count_up_and_every_version_is_kept(automations):
    first = automations.save(welcome(), AT, expected_version=None)
    second = automations.save(welcome(text="Hi"), AT + timedelta(hours=1), expected_version=1)
    assert (first.version, second.version) == (1, 2)
    assert second.updated_at == AT + timedelta(hours=1)
    assert automations.stored() == [second]
    assert automations.history("welcome") == [second, first]
    assert automations.history("never-stored") == []


def test_what_is_stored_reads_back_as_it_was_written(automations):
    saved = automations.save(welcome(), AT, None)
    (read,) = automations.stored()
    assert read == saved
    assert Automation.model_validate(read.model_dump(exclude={"version", "updated_at"})) == welcome()
    assert read.model_dump(mode="json")["trigger"]["from"] == "lead"


def test_the_current_versions_are_listed_by_id(automations):
    for automation_id in ("zebra", "alpha", "middle"):
        automations.save(welcome(automation_id), AT, None)
    assert [a.id for a in automations.stored()] == ["alpha", "middle", "zebra"]
    assert [a.id for a in automations.book()] == ["alpha", "middle", "zebra"]
    assert automations.book().get("middle").version == 1


def test_a_stale_expected_version_is_a_conflict_and_changes_nothing(automations):
    automations.save(welcome(), AT, expected_version=0)  # 0: none may be stored yet
    with pytest.raises(Conflict):
        automations.save(welcome(text="Hi"), AT, expected_version=0)
    with pytest.raises(Conflict):
        automations.save(welcome(text="Hi"), AT, expected_version=2)
    with pytest.raises(Conflict):
        automations.remove("welcome", AT, expected_version=2)
    assert [a.version for a in automations.history("welcome")] == [1]
    assert automations.stored()[0].steps[-1].text == "Hello {{ traits.first_name }}"


def test_a_removal_leaves_a_tombstone_and_versions_never_repeat(automations):
    automations.save(welcome(), AT, None)
    removed = automations.remove("welcome", AT + timedelta(days=1), expected_version=1)
    assert removed.version == 1 and automations.stored() == [] and len(automations.book()) == 0
    assert [a.version for a in automations.history("welcome")] == [2, 1]
    with pytest.raises(NotFound):
        automations.remove("welcome", AT, None)
    with pytest.raises(NotFound):
        automations.remove("never-stored", AT, None)
    again = automations.save(welcome(text="Back"), AT + timedelta(days=2), expected_version=None)
    assert again.version == 3  # 1 was the automation, 2 its tombstone
    assert [a.version for a in automations.history("welcome")] == [3, 2, 1]


def test_a_paused_version_is_a_new_version(automations):
    first = automations.save(welcome(), AT, None)
    paused = automations.save(with_paused(first, True), AT, expected_version=1)
    assert paused.paused and paused.version == 2
    assert paused.model_dump(exclude={"paused", "version", "updated_at"}) == first.model_dump(
        exclude={"paused", "version", "updated_at"}
    )
    assert automations.book().get("welcome").paused


def test_the_adapter_keeps_the_book_for_its_cache_seconds_and_a_change_clears_it(config_table):
    from shared.adapters.automation_store import DynamoAutomationStore

    db, table = config_table()
    now = [0.0]
    store = DynamoAutomationStore(db, table=table, cache_seconds=30, monotonic=lambda: now[0])
    other = DynamoAutomationStore(db, table=table, cache_seconds=0)  # another function's instance
    assert len(store.book()) == 0
    other.save(welcome(), AT, None)
    assert len(store.book()) == 0, "within cache_seconds the book is not loaded again"
    now[0] = 30.0
    assert len(store.book()) == 1
    store.save(welcome("second"), AT, None)  # its own change clears its book at once
    assert [a.id for a in store.book()] == ["second", "welcome"]
