"""Contract tests: every port's fake and its DynamoDB adapter pass the same tests.

The adapter side runs on moto with the tables built from ``shared.adapters.tables`` (the specs the CDK
stack synthesizes); the fake side runs in memory. A behaviour the fake gets wrong, or the adapter
drifts from, fails here rather than in a unit test that trusted the fake.

Ports covered (fakes in ``tests/fakes.py``): write keys, rule repository, engagement configuration
(``test_configuration_ports``); contact store (``test_contact_store``); merge store and merge requests
(``test_merge_store``); contact log (``test_contact_log``); stage store (``test_stage_store``);
publisher (``test_publisher``, on moto's EventBridge, SNS, SQS and SES).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from shared.adapters.tables import CONFIG, CONTACTS, EVENTS, create_table_request


@pytest.fixture(params=["fake", "dynamodb"])
def implementation(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def config_table() -> Iterator[Callable[[], tuple[Any, str]]]:
    """A moto config table, created on first use (the fake side never starts moto)."""
    from moto import mock_aws

    from shared.adapters import aws

    with mock_aws():
        aws.reset()
        created: list[tuple[Any, str]] = []

        def _table() -> tuple[Any, str]:
            if not created:
                db = aws.client("dynamodb")
                db.create_table(**create_table_request(CONFIG, "contract-config"))
                created.append((db, "contract-config"))
            return created[0]

        yield _table
        aws.reset()


@dataclass(frozen=True, slots=True)
class ContactTables:
    """The moto contacts and events tables, as the CDK stack builds them, and a client with DynamoDB's
    limits."""

    db: Any
    contacts: str
    events: str

    def stores(self) -> Any:
        """The hot-path store and the merge store over these tables, as one object: the fake
        (``MemoryContactStore``) offers both ports together."""
        from shared.adapters.contact_merges import DynamoMergeStore
        from shared.adapters.contact_store import DynamoContactStore

        tables = {"contacts_table": self.contacts, "events_table": self.events, "sleep": lambda _: None}
        return DynamoContacts(DynamoContactStore(self.db, **tables), DynamoMergeStore(self.db, **tables))


class DynamoContacts:
    """``ContactStore`` calls go to the hot-path adapter, the merge steps to the merge adapter."""

    def __init__(self, contacts: Any, merges: Any) -> None:
        self.contacts, self.merges = contacts, merges

    def __getattr__(self, name: str) -> Any:
        return getattr(self.contacts if hasattr(self.contacts, name) else self.merges, name)


@pytest.fixture
def contact_tables() -> Iterator[Callable[[], ContactTables]]:
    """The contacts and events tables in moto, created on first use (the fake side never asks).

    The client carries ``dynamodb_limits`` (4 KB expressions, 100 items per transaction), which moto does
    not enforce, and moto is patched as the local stack patches it (serialised, numbers written plainly).
    """
    from moto import mock_aws

    from infra.local.moto_dynamodb import serialise
    from shared.adapters import aws
    from tests.conftest import dynamodb_limits

    serialise()
    with mock_aws():
        aws.reset()
        created: list[ContactTables] = []

        def _tables() -> ContactTables:
            if not created:
                db = aws.client("dynamodb")
                db.meta.events.register("before-parameter-build.dynamodb", dynamodb_limits)
                db.create_table(**create_table_request(CONTACTS, "contract-contacts"))
                db.create_table(**create_table_request(EVENTS, "contract-events"))
                created.append(ContactTables(db, "contract-contacts", "contract-events"))
            return created[0]

        yield _tables
        aws.reset()
