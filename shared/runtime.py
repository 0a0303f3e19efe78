"""Composition root: builds each function's dependencies on first use, never at import.

Handlers call these factories; the local stack and the tests replace the clock
(``shared.clock.install``) or call ``reset()`` after changing the environment.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING

from shared import clock, settings
from shared.adapters import aws
from shared.adapters.contact_store import DynamoContactStore, Retention
from shared.adapters.rule_store import DynamoRuleStore
from shared.scoring.decay import Decay

if TYPE_CHECKING:  # each factory imports only what its own function needs
    from shared.admin import Admin
    from shared.tracking.ingest import Tracking


def _contacts(config: settings.ContactStoreSettings) -> DynamoContactStore:
    return DynamoContactStore(
        aws.client("dynamodb"),
        contacts_table=config.contacts_table_name,
        events_table=config.events_table_name,
        retention=Retention(days=config.event_retention_days, purchase_days=config.purchase_retention_days),
    )


def _rules(config: settings.ScoringSettings) -> DynamoRuleStore:
    return DynamoRuleStore(aws.client("dynamodb"), table=config.config_table_name, cache_seconds=config.rules_cache_seconds)


def _decay(config: settings.ScoringSettings) -> Decay:
    return Decay(half_life=timedelta(days=config.score_half_life_days))


@cache
def tracking() -> Tracking:
    from shared.adapters.write_keys import DynamoWriteKeys
    from shared.observability import PowertoolsTelemetry
    from shared.tracking.ingest import Tracking

    config = settings.load(settings.TrackingSettings)
    return Tracking(
        clock=clock.current(),
        write_keys=DynamoWriteKeys(aws.client("dynamodb"), table=config.config_table_name),
        contacts=_contacts(config),
        rules=_rules(config),
        decay=_decay(config),
        telemetry=PowertoolsTelemetry(),
    )


@cache
def admin() -> Admin:
    from shared.adapters.contact_log import DynamoContactLog
    from shared.admin import Admin

    config = settings.load(settings.AdminSettings)
    return Admin(
        contacts=_contacts(config),
        log=DynamoContactLog(aws.client("dynamodb"), events_table=config.events_table_name),
        rules=_rules(config),
        clock=clock.current(),
        decay=_decay(config),
    )


def reset() -> None:
    """Forget built dependencies, settings and clients (after the environment changed)."""
    tracking.cache_clear()
    admin.cache_clear()
    settings.reset()
    aws.reset()
