"""Contract tests: every port's fake and its DynamoDB adapter pass the same tests.

The adapter side runs on moto with the tables built from ``shared.adapters.tables`` (the specs the CDK
stack synthesizes); the fake side runs in memory. A behaviour the fake gets wrong, or the adapter
drifts from, fails here rather than in a unit test that trusted the fake.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared.adapters.tables import CONFIG, create_table_request


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
