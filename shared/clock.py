"""Time, injected.

Domain code never reads the system clock: handlers pass ``now`` in, taken from
the clock the runtime provides. The local stack installs a ``ControlledClock``
so a 90-day win-back can be shown in seconds.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ControlledClock:
    """Wall-clock time shifted by an offset that can be moved forward or set.

    Time keeps flowing between calls, so ordering and TTLs behave as in the cloud.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._offset = timedelta(0) if start is None else start - datetime.now(UTC)

    def now(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self._offset

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += delta
        return self.now()

    def set(self, when: datetime) -> datetime:
        with self._lock:
            if when < datetime.now(UTC) + self._offset:
                raise ValueError("the clock only moves forward")
            self._offset = when - datetime.now(UTC)
        return self.now()

    def reach(self, when: datetime) -> datetime:
        """Move the clock to ``when`` unless it is already there or past it: one step, so time flowing
        between a caller's look at the clock and the move cannot make it a move backwards."""
        with self._lock:
            if when > datetime.now(UTC) + self._offset:
                self._offset = when - datetime.now(UTC)
        return self.now()


class FixedClock:
    """A clock that stands still unless told to move (tests and benchmarks)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> datetime:
        self.at += delta
        return self.at


_installed: Clock | None = None


def install(clock: Clock | None) -> None:
    """Replace the process clock (the local stack does this); ``None`` restores the system clock."""
    global _installed
    _installed = clock


def current() -> Clock:
    return _installed or _SYSTEM


_SYSTEM = SystemClock()
