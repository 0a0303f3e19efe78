"""Lenient ISO-8601 parsing and Segment's clock-skew correction."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_ISO = re.compile(
    r"""^\s*
    (?P<date>\d{4}-\d{2}-\d{2})
    (?:[T\s](?P<h>\d{2})(?::?(?P<m>\d{2})(?::?(?P<s>\d{2})(?:[.,](?P<frac>\d+))?)?)?)?
    \s*(?P<tz>Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?
    \s*$""",
    re.VERBOSE,
)

#: The range a stored time may fall in; outside it a time is almost surely a bug.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def parse_time(value: str) -> datetime:
    """Parse ISO-8601 leniently: ``Z``/offset/none (UTC), ``T`` or space, any fraction digits.

    Raises ``ValueError`` with a readable reason.
    """
    match = _ISO.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{_preview(value)} is not an ISO-8601 date-time")
    frac = (match["frac"] or "")[:6].ljust(6, "0")
    try:
        parsed = datetime.fromisoformat(
            f"{match['date']}T{match['h'] or '00'}:{match['m'] or '00'}:{match['s'] or '00'}.{frac}"
        )
    except ValueError as exc:
        raise ValueError(f"{_preview(value)} is not a valid date-time ({exc})") from None
    parsed = parsed.replace(tzinfo=UTC) - _offset(match["tz"])
    if not EARLIEST <= parsed < LATEST:
        raise ValueError(f"{_preview(value)} is outside the supported range 1970..2199")
    return parsed


def _offset(tz: str | None) -> timedelta:
    if tz is None or tz in ("Z", "z", "UTC"):
        return timedelta(0)
    sign = -1 if tz[0] == "-" else 1
    digits = tz[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"{tz!r} is not a valid UTC offset")
    return sign * timedelta(hours=hours, minutes=minutes)


def corrected_timestamp(
    *, received_at: datetime, timestamp: datetime | None, sent_at: datetime | None
) -> datetime:
    """When the event happened, in server time.

    Segment's rule: ``timestamp = receivedAt - (sentAt - originalTimestamp)``, so
    a device clock that runs fast or slow does not move events. Without ``sentAt``
    the client's timestamp is trusted (historical imports); without any timestamp
    the event happened when it arrived. An event never happens after it arrived.
    """
    if timestamp is None:
        return received_at
    if sent_at is not None:
        return min(received_at - (sent_at - timestamp), received_at)
    return min(timestamp, received_at)


def format_time(value: datetime) -> str:
    """Millisecond ISO-8601 in UTC with ``Z``: sortable as text and readable."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
