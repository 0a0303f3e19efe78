from datetime import UTC, datetime, timedelta

import pytest

from shared.tracking.timestamps import corrected_timestamp, format_time, parse_time

T = datetime(2026, 11, 22, 10, 41, 33, 888000, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-22T10:41:33.888Z",
        "2026-11-22T10:41:33.888+00:00",
        "2026-11-22T10:41:33.888000+00:00",
        "2026-11-22T10:41:33.888000000Z",  # nanoseconds
        "2026-11-22 10:41:33.888",  # space, no zone: UTC
        "2026-11-22T12:41:33.888+02:00",
        "2026-11-22T12:41:33.888+0200",
        "2026-11-22T05:41:33.888-05",
        "2026-11-22T10:41:33,888Z",
        "  2026-11-22T10:41:33.888z ",
    ],
)
def test_lenient_formats_mean_the_same_instant(text: str) -> None:
    assert parse_time(text) == T


def test_date_only_and_minutes_only() -> None:
    assert parse_time("2026-11-22") == datetime(2026, 11, 22, tzinfo=UTC)
    assert parse_time("2026-11-22T10:41Z") == datetime(2026, 11, 22, 10, 41, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "2026-13-01T00:00:00Z",
        "2026-02-30",
        "2026-11-22T25:00:00Z",
        "1700000000",
        "2026-11-22T10:00:00+25:00",
        "0001-01-01",
    ],
)
def test_rejects_what_is_not_a_time(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


def test_rejects_non_strings() -> None:
    with pytest.raises(ValueError):
        parse_time(1700000000)  # type: ignore[arg-type]


def test_skew_correction_follows_segment() -> None:
    received = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    device_fast_by_an_hour_sent = received + timedelta(hours=1)
    happened_on_device = device_fast_by_an_hour_sent - timedelta(minutes=5)
    # timestamp = receivedAt - (sentAt - originalTimestamp)
    assert corrected_timestamp(
        received_at=received, timestamp=happened_on_device, sent_at=device_fast_by_an_hour_sent
    ) == (received - timedelta(minutes=5))


def test_without_sent_at_the_client_timestamp_is_kept_for_imports() -> None:
    received = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    old = datetime(2024, 1, 1, tzinfo=UTC)
    assert corrected_timestamp(received_at=received, timestamp=old, sent_at=None) == old


def test_never_after_arrival_and_defaults_to_arrival() -> None:
    received = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert corrected_timestamp(received_at=received, timestamp=None, sent_at=None) == received
    future = received + timedelta(days=3)
    assert corrected_timestamp(received_at=received, timestamp=future, sent_at=None) == received
    assert corrected_timestamp(received_at=received, timestamp=future, sent_at=received) == received


def test_format_is_sortable_millisecond_utc() -> None:
    assert format_time(T) == "2026-11-22T10:41:33.888Z"
    assert (
        format_time(T.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Warsaw")))
        == "2026-11-22T10:41:33.888Z"
    )
