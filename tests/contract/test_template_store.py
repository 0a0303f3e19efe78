"""The template repository: the fake and the DynamoDB adapter (on moto) keep the same contract."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.delivery.templates import BUILT_IN_VERSION, CONSENT_CONFIRMATION, EmailTemplate
from shared.errors import Conflict, NotFound
from tests.fakes import MemoryTemplateRepository

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def templates(implementation, config_table):
    if implementation == "fake":
        return MemoryTemplateRepository()
    from shared.adapters.template_store import DynamoTemplateStore

    db, table = config_table()
    return DynamoTemplateStore(db, table=table, cache_seconds=0)


def welcome(
    template_id: str = "welcome", subject: str = "Hello {{ contact.traits.first_name }}"
) -> EmailTemplate:
    return EmailTemplate(
        id=template_id,
        subject=subject,
        text="Your code: {{ coupon.code }}",
        html="<p>Your code: <b>{{ coupon.code }}</b></p>",
    )


def test_versions_count_up_and_every_version_is_kept(templates):
    first = templates.save(welcome(), AT, expected_version=None)
    second = templates.save(welcome(subject="Hi"), AT + timedelta(hours=1), expected_version=1)
    assert (first.version, second.version) == (1, 2)
    assert (second.origin, second.updated_at) == ("stored", AT + timedelta(hours=1))
    assert templates.stored() == [second]
    assert templates.template("welcome") == second
    assert templates.history("welcome") == [second, first]
    assert templates.history("never-stored") == [] and templates.template("never-stored") is None


def test_what_is_stored_reads_back_as_it_was_written(templates):
    saved = templates.save(welcome(), AT, None)
    (read,) = templates.stored()
    assert read == saved
    assert (
        EmailTemplate.model_validate(read.model_dump(exclude={"version", "origin", "updated_at"}))
        == welcome()
    )


def test_the_current_versions_are_listed_by_id(templates):
    for template_id in ("zebra", "alpha", "middle"):
        templates.save(welcome(template_id), AT, None)
    assert [t.id for t in templates.stored()] == ["alpha", "middle", "zebra"]


def test_a_stale_expected_version_is_a_conflict_and_changes_nothing(templates):
    templates.save(welcome(), AT, expected_version=0)  # 0: none may be stored yet
    with pytest.raises(Conflict):
        templates.save(welcome(subject="Hi"), AT, expected_version=0)
    with pytest.raises(Conflict):
        templates.save(welcome(subject="Hi"), AT, expected_version=2)
    with pytest.raises(Conflict):
        templates.remove("welcome", AT, expected_version=2)
    assert [t.version for t in templates.history("welcome")] == [1]
    assert templates.template("welcome").subject == "Hello {{ contact.traits.first_name }}"


def test_replacing_a_built_in_template_continues_its_version(templates):
    with pytest.raises(Conflict):  # the built-in one is in force: expecting none stored is stale
        templates.save(welcome(CONSENT_CONFIRMATION), AT, expected_version=0, base_version=BUILT_IN_VERSION)
    stored = templates.save(
        welcome(CONSENT_CONFIRMATION), AT, expected_version=BUILT_IN_VERSION, base_version=BUILT_IN_VERSION
    )
    assert stored.version == BUILT_IN_VERSION + 1


def test_a_removal_leaves_a_tombstone_and_versions_never_repeat(templates):
    templates.save(welcome(), AT, None)
    removed = templates.remove("welcome", AT + timedelta(days=1), expected_version=1)
    assert removed.version == 1 and templates.stored() == [] and templates.template("welcome") is None
    assert [t.version for t in templates.history("welcome")] == [2, 1]
    with pytest.raises(NotFound):
        templates.remove("welcome", AT, None)
    with pytest.raises(NotFound):
        templates.remove("never-stored", AT, None)
    again = templates.save(welcome(subject="Back"), AT + timedelta(days=2), expected_version=None)
    assert again.version == 3  # 1 was the template, 2 its tombstone
    assert [t.version for t in templates.history("welcome")] == [3, 2, 1]


def test_the_adapter_keeps_a_template_for_its_cache_seconds_and_its_own_change_clears_it(config_table):
    from shared.adapters.template_store import DynamoTemplateStore

    db, table = config_table()
    now = [0.0]
    store = DynamoTemplateStore(db, table=table, cache_seconds=30, monotonic=lambda: now[0])
    other = DynamoTemplateStore(db, table=table, cache_seconds=0)  # the admin function's instance
    assert store.template("welcome") is None
    other.save(welcome(), AT, None)
    assert store.template("welcome") is None, "within cache_seconds the template is not read again"
    now[0] = 30.0
    assert store.template("welcome").version == 1
    other.save(welcome(subject="Hi"), AT, 1)
    assert store.template("welcome").version == 1
    store.save(welcome(subject="Hey"), AT, 2)  # its own change is read at once
    assert store.template("welcome").subject == "Hey"
    store.remove("welcome", AT, 3)
    assert store.template("welcome") is None
