"""The write-key directory, the rule repository and the engagement configuration: fake and adapter alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.engagement.funnel import default_funnel
from shared.engagement.index import Thresholds
from shared.engagement.routing import Salesperson
from shared.errors import Conflict, NotFound
from shared.scoring.rules import Rule
from shared.tracking.proofs import SourceSecret
from shared.tracking.trust import Source, Trust
from tests.fakes import MemoryEngagementConfig, MemoryIdentitySecrets, MemoryRuleRepository, MemoryWriteKeys

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


# --- write keys -------------------------------------------------------------------------------------


@pytest.fixture
def write_keys(implementation, config_table):
    if implementation == "fake":
        return MemoryWriteKeys()
    from shared.adapters.write_keys import DynamoWriteKeys

    db, table = config_table()
    return DynamoWriteKeys(db, table=table, cache_seconds=0)


def test_a_registered_key_names_its_source_and_an_unknown_one_nothing(write_keys):
    write_keys.register("wk-1", "website", Trust.BROWSER, AT)
    assert write_keys.lookup("wk-1") == Source("website", Trust.BROWSER)
    assert write_keys.lookup("wk-2") is None


def test_registering_again_is_idempotent_but_a_key_never_changes_hands(write_keys):
    write_keys.register("wk-1", "backend", Trust.SERVER, AT)
    write_keys.register("wk-1", "backend", Trust.SERVER, AT + timedelta(days=1))
    with pytest.raises(Conflict):
        write_keys.register("wk-1", "backend", Trust.BROWSER, AT)
    with pytest.raises(Conflict):
        write_keys.register("wk-1", "other", Trust.SERVER, AT)
    assert write_keys.lookup("wk-1") == Source("backend", Trust.SERVER)


def test_a_disabled_key_is_refused_and_disabling_an_unknown_key_is_not_found(write_keys):
    write_keys.register("wk-1", "website", Trust.BROWSER, AT)
    write_keys.disable("wk-1")
    assert write_keys.lookup("wk-1") is None
    with pytest.raises(NotFound):
        write_keys.disable("wk-never")


def test_a_browser_key_can_require_identity_proofs_and_a_server_key_never_does(write_keys):
    write_keys.register("wk-web", "website", Trust.BROWSER, AT, requires_proof=True)
    write_keys.register("wk-srv", "backend", Trust.SERVER, AT, requires_proof=True)
    assert write_keys.lookup("wk-web") == Source("website", Trust.BROWSER, requires_proof=True)
    assert write_keys.lookup("wk-srv") == Source("backend", Trust.SERVER)  # trusted: nothing to prove
    write_keys.require_proof("wk-web", False)
    assert write_keys.lookup("wk-web") == Source("website", Trust.BROWSER)
    write_keys.register("wk-2", "website", Trust.BROWSER, AT)
    write_keys.require_proof("wk-2", True)
    assert write_keys.lookup("wk-2").requires_proof
    with pytest.raises(NotFound):
        write_keys.require_proof("wk-never", True)


# --- identity secrets -------------------------------------------------------------------------------


@pytest.fixture
def identity_secrets(implementation):
    if implementation == "fake":
        yield MemoryIdentitySecrets()
        return
    from moto import mock_aws

    from shared.adapters import aws
    from shared.adapters.identity_secrets import SsmIdentitySecrets

    with mock_aws():
        aws.reset()
        yield SsmIdentitySecrets(
            lambda: aws.client("ssm"), path="/contract/identity-secrets/", cache_seconds=0
        )


def test_a_source_has_no_secret_until_one_is_created_and_create_never_replaces_it(identity_secrets):
    assert identity_secrets.secret_for("website") is None
    secret = identity_secrets.create("website")
    assert secret and len(secret) >= 32
    assert identity_secrets.secret_for("website") == SourceSecret(secret)
    assert identity_secrets.create("website") is None
    assert identity_secrets.secret_for("website") == SourceSecret(secret)
    assert identity_secrets.secret_for("other") is None


def test_rotation_keeps_the_old_secret_accepted_until_the_overlap_ends(identity_secrets):
    first = identity_secrets.create("website")
    second = identity_secrets.rotate("website", AT, timedelta(hours=24))
    assert second != first
    found = identity_secrets.secret_for("website")
    assert found == SourceSecret(second, first, AT + timedelta(hours=24))
    assert found.accepted(AT) == (second.encode(), first.encode())
    assert found.accepted(AT + timedelta(hours=24)) == (second.encode(),)
    third = identity_secrets.rotate("website", AT + timedelta(hours=1), timedelta(hours=2))
    assert identity_secrets.secret_for("website") == SourceSecret(third, second, AT + timedelta(hours=3))
    fresh = identity_secrets.rotate("new-source", AT, timedelta(hours=24))  # nothing to overlap with
    assert identity_secrets.secret_for("new-source") == SourceSecret(fresh)


@pytest.mark.parametrize("source", ["Main website", "shop/eu", "x" * 100, "sha256-abc", "ünïcode"])
def test_any_source_name_has_a_secret_of_its_own(identity_secrets, source):
    """Source names came free-form before secrets: any name works, and names never share a secret."""
    secret = identity_secrets.create(source)
    assert identity_secrets.secret_for(source) == SourceSecret(secret)
    assert identity_secrets.secret_for(source + " ") is None and identity_secrets.secret_for("website") is None


def test_an_overlap_cannot_be_negative(identity_secrets):
    identity_secrets.create("website")
    with pytest.raises(ValueError):
        identity_secrets.rotate("website", AT, timedelta(hours=-1))


def test_an_adopted_secret_replaces_the_current_one(identity_secrets):
    identity_secrets.create("website")
    identity_secrets.adopt("website", "a-known-secret-for-the-local-stack")
    assert identity_secrets.secret_for("website") == SourceSecret("a-known-secret-for-the-local-stack")


def test_a_key_carries_its_own_rate_limit_until_it_returns_to_the_default(write_keys):
    from shared.tracking.rates import RateLimit

    write_keys.register("wk-1", "partner", Trust.SERVER, AT, limit=RateLimit(rate=2.5, burst=10))
    write_keys.register("wk-2", "website", Trust.BROWSER, AT)
    assert write_keys.lookup("wk-1") == Source("partner", Trust.SERVER, RateLimit(rate=2.5, burst=10))
    assert write_keys.lookup("wk-2").limit is None
    write_keys.set_limit("wk-2", RateLimit(rate=100, burst=100))
    assert write_keys.lookup("wk-2") == Source("website", Trust.BROWSER, RateLimit(rate=100, burst=100))
    write_keys.set_limit("wk-1", None)
    assert write_keys.lookup("wk-1") == Source("partner", Trust.SERVER)
    with pytest.raises(NotFound):
        write_keys.set_limit("wk-never", RateLimit(rate=1, burst=1))
    assert write_keys.lookup("wk-never") is None


# --- scoring rules ----------------------------------------------------------------------------------


@pytest.fixture
def rules(implementation, config_table):
    if implementation == "fake":
        return MemoryRuleRepository()
    from shared.adapters.rule_store import DynamoRuleStore

    db, table = config_table()
    return DynamoRuleStore(db, table=table, cache_seconds=0)


def kites(points: int = 5) -> Rule:
    return Rule(id="kites", behaviour="product_viewed", points=points, tag="kites")


def test_versions_count_up_from_the_rule_they_replace(rules):
    first = rules.save(kites(), AT, expected_version=None, base_version=0)
    second = rules.save(kites(7), AT, expected_version=1, base_version=0)
    assert (first.version, second.version) == (1, 2)
    assert [r.points for r in rules.stored()] == [7]
    assert [r.version for r in rules.history("kites")] == [2, 1]
    # overriding a shipped default starts after the default's version
    assert rules.save(kites().model_copy(update={"id": "dflt"}), AT, None, base_version=3).version == 4


def test_a_stale_expected_version_is_a_conflict_and_changes_nothing(rules):
    rules.save(kites(), AT, expected_version=None, base_version=0)
    with pytest.raises(Conflict):
        rules.save(kites(9), AT, expected_version=0, base_version=0)
    assert [r.points for r in rules.stored()] == [5]


def test_versions_never_repeat_after_a_removal(rules):
    rules.save(kites(), AT, None, 0)
    removed = rules.remove("kites", AT, expected_version=1)
    assert removed.version == 1 and rules.stored() == []
    again = rules.save(kites(3), AT, expected_version=None, base_version=0)
    assert again.version == 3  # 1 was the rule, 2 its tombstone
    with pytest.raises(NotFound):
        rules.remove("nothing-here", AT, None)
    with pytest.raises(Conflict):
        rules.remove("kites", AT, expected_version=1)


def test_the_book_holds_the_defaults_overlaid_by_stored_rules(rules):
    before = len(rules.book())
    rules.save(kites(), AT, None, 0)
    assert len(rules.book()) == before + 1


# --- funnel and sales team --------------------------------------------------------------------------


@pytest.fixture
def team(implementation, config_table):
    if implementation == "fake":
        return MemoryEngagementConfig(default=default_funnel(Thresholds()))
    from shared.adapters.engagement_config import DynamoEngagementConfig

    db, table = config_table()
    return DynamoEngagementConfig(db, table=table, thresholds=Thresholds(), cache_seconds=0)


def person(pid: str, weight: int = 1, available: bool = True) -> Salesperson:
    return Salesperson(
        id=pid, name=pid.title(), email=f"{pid}@example.com", weight=weight, available=available
    )


def test_the_default_funnel_is_version_zero_and_each_save_takes_the_next(team):
    funnel, version = team.stored_funnel()
    assert version == 0 and funnel == default_funnel(Thresholds()) == team.funnel()
    changed = funnel.model_copy(update={"initial": funnel.stages[1].id})
    team.save_funnel(changed, 1, AT)
    assert team.stored_funnel() == (changed, 1) and team.funnel() == changed
    with pytest.raises(Conflict):
        team.save_funnel(funnel, 1, AT)  # someone else already took version 1
    team.save_funnel(funnel, 2, AT)
    assert team.stored_funnel() == (funnel, 2)


def test_salespeople_are_listed_by_id_replaced_in_place_and_removed(team):
    team.save_salesperson(person("bo"), AT)
    team.save_salesperson(person("al"), AT)
    team.save_salesperson(person("bo", weight=3), AT)
    assert [(p.id, p.weight) for p in team.salespeople()] == [("al", 1), ("bo", 3)]
    team.remove_salesperson("al")
    assert [p.id for p in team.salespeople()] == ["bo"]
    with pytest.raises(NotFound):
        team.remove_salesperson("al")


def test_routing_is_weighted_round_robin_over_the_available(team):
    assert team.assign() is None
    team.save_salesperson(person("al", weight=3), AT)
    team.save_salesperson(person("bo"), AT)
    team.save_salesperson(person("cy", available=False), AT)
    assert [team.assign().id for _ in range(8)] == ["al", "al", "bo", "al"] * 2


def test_routing_keeps_an_available_owner_without_using_a_turn(team):
    team.save_salesperson(person("al"), AT)
    team.save_salesperson(person("bo"), AT)
    assert team.assign(keep="bo").id == "bo"
    assert [team.assign().id for _ in range(2)] == ["al", "bo"]
    team.save_salesperson(person("bo", available=False), AT)
    assert team.assign(keep="bo").id == "al"
