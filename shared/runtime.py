"""Composition root: builds each function's dependencies on first use, never at import.

Handlers call these factories; the local stack and the tests replace the clock
(``shared.clock.install``) or call ``reset()`` after changing the environment.
"""

from __future__ import annotations

from functools import cache

from typing import TYPE_CHECKING

from shared import clock, settings
from shared.adapters import aws
from shared.adapters.contact_store import DynamoContactStore, Retention

if TYPE_CHECKING:  # each factory imports only what its own function needs
    from shared.contacts.admin import Admin
    from shared.tracking.ingest import Tracking


def _contacts(config: settings.ContactStoreSettings) -> DynamoContactStore:
    return DynamoContactStore(
        aws.client("dynamodb"),
        contacts_table=config.contacts_table_name,
        events_table=config.events_table_name,
        retention=Retention(days=config.event_retention_days, purchase_days=config.purchase_retention_days),
    )


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
        telemetry=PowertoolsTelemetry(),
    )


@cache
def admin() -> Admin:
    from shared.contacts.admin import Admin

    return Admin(contacts=_contacts(settings.load(settings.AdminSettings)))


def reset() -> None:
    """Forget built dependencies, settings and clients (after the environment changed)."""
    tracking.cache_clear()
    admin.cache_clear()
    settings.reset()
    aws.reset()
