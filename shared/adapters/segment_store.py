"""Segments in the config table: the current version of each under ``SEGMENTS`` (one Query loads them
all into a book the stage function keeps for ``cache_seconds``), every version under ``SEGMENT#<id>``
(``shared.adapters.versioned_documents``)."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from shared.adapters.versioned_documents import VersionedDocuments
from shared.segments.book import SegmentBook
from shared.segments.model import Segment, StoredSegment, stored_segment


class DynamoSegmentStore(VersionedDocuments[StoredSegment, SegmentBook]):
    """``DynamoSegmentStore(client, table=..., cache_seconds=30, monotonic=time.monotonic)``."""

    kind, model = "segment", StoredSegment
    current_partition, history_prefix = "SEGMENTS", "SEGMENT#"

    def compile(self, documents: list[StoredSegment]) -> SegmentBook:
        return SegmentBook(documents)

    def save(self, segment: Segment, at: datetime, expected_version: int | None) -> StoredSegment:
        """Store the next version; ``expected_version`` 0 means none may be stored yet."""
        return self.save_version(segment.id, at, expected_version, partial(stored_segment, segment, at=at))
