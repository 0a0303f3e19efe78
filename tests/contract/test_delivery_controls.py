"""The suppression list and the sending pause: fake and adapter alike."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.delivery.ports import SendingPause
from tests.fakes import MemoryDeliveryControl, MemorySuppressions

AT = datetime(2026, 12, 2, 9, tzinfo=UTC)


@pytest.fixture
def suppressions(implementation: str, contact_tables: Any) -> Any:
    if implementation == "fake":
        return MemorySuppressions()
    from shared.adapters.suppressions import DynamoSuppressions

    tables = contact_tables()
    return DynamoSuppressions(tables.db, table=tables.contacts)


@pytest.fixture
def control(implementation: str, config_table: Any) -> Any:
    if implementation == "fake":
        return MemoryDeliveryControl()
    from shared.adapters.delivery_control import DynamoDeliveryControl

    db, table = config_table()
    return DynamoDeliveryControl(db, table=table, cache_seconds=0)


def test_a_suppressed_address_is_found_by_its_normalised_form_with_its_first_reason(suppressions) -> None:
    assert suppressions.suppressed("email", "ann@example.com") is None
    suppressions.suppress("email", " Ann@Example.COM ", "hard_bounce", AT)
    suppressions.suppress("email", "ann@example.com", "complaint", AT)
    assert suppressions.suppressed("email", "ann@example.com") == "hard_bounce"
    assert suppressions.suppressed("sms", "ann@example.com") is None, "per channel"
    assert suppressions.suppressed("email", "bob@example.com") is None


def test_phone_numbers_match_whatever_their_spacing(suppressions) -> None:
    suppressions.suppress("sms", "+48 600-100-200", "opted_out", AT)
    assert suppressions.suppressed("sms", "+48600100200") == "opted_out"


def test_the_pause_is_set_read_and_cleared(control) -> None:
    assert control.pause() is None
    control.set_pause(SendingPause(reason="complaint rate alarm", at=AT))
    assert control.pause() == SendingPause(reason="complaint rate alarm", at=AT)
    control.set_pause(None)
    assert control.pause() is None


def test_an_address_is_suppressed_as_ses_reports_it_whatever_the_trait_holds(suppressions) -> None:
    """A bounce names the envelope address (IDNA domain, no display name); the trait may hold either."""
    suppressions.suppress("email", "joerg@xn--bcher-kva.de", "hard_bounce", AT)
    assert suppressions.suppressed("email", "Jörg <joerg@Bücher.de>") == "hard_bounce"
    suppressions.suppress("email", "Jane Doe <jane@x.com>", "complaint", AT)
    assert suppressions.suppressed("email", "jane@x.com") == "complaint"
