"""The segments an administrator stores, as the admin API and the stage function see them."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shared.segments.book import SegmentBook
from shared.segments.model import Segment, StoredSegment


class SegmentSource(Protocol):
    def book(self) -> SegmentBook:
        """The segments in force (a cached read: at most ``cache_seconds`` old)."""
        ...


class FixedSegments:
    """One book, as read once: a back-fill's run evaluates every contact of its scan segment against the
    segments as they were when it started, never a cached copy older than the save that started it."""

    def __init__(self, book: SegmentBook) -> None:
        self._book = book

    def book(self) -> SegmentBook:
        return self._book


class SegmentRepository(SegmentSource, Protocol):
    def stored(self) -> list[StoredSegment]:
        """The current version of every segment, by id."""
        ...

    def history(self, segment_id: str) -> list[StoredSegment]:
        """Every version of one segment, newest first (a deletion's tombstone included)."""
        ...

    def save(self, segment: Segment, at: datetime, expected_version: int | None) -> StoredSegment:
        """Store the next version (never one used before); ``expected_version`` other than the current
        one (0: none stored) is a Conflict."""
        ...

    def remove(self, segment_id: str, at: datetime, expected_version: int | None) -> StoredSegment:
        """Delete the current version (NotFound if none), leaving a tombstone; returns what was deleted."""
        ...
