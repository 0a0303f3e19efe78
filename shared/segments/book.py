"""The segments in force, compiled for evaluation: a contact's memberships and when time could change them."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from shared.contacts.model import ContactRecord
from shared.scoring.decay import Decay
from shared.segments.filters import Facts
from shared.segments.model import StoredSegment


@dataclass(frozen=True, slots=True)
class Membership:
    """The segments a contact is in after an evaluation, and the next moment time alone could move it."""

    segments: frozenset[str]
    #: the segments entered and left, each in id order
    entered: tuple[str, ...] = ()
    left: tuple[str, ...] = ()
    changes_at: datetime | None = None

    @property
    def changed(self) -> bool:
        return bool(self.entered or self.left)


class SegmentBook:
    """The current version of every stored segment, by id."""

    def __init__(self, segments: Iterable[StoredSegment] = ()) -> None:
        self._segments = {s.id: s for s in sorted(segments, key=lambda s: s.id)}

    def __iter__(self) -> Iterator[StoredSegment]:
        return iter(self._segments.values())

    def __len__(self) -> int:
        return len(self._segments)

    def get(self, segment_id: str) -> StoredSegment | None:
        return self._segments.get(segment_id)

    def last_times(self) -> frozenset[str]:
        """The behaviours whose last time some segment reads: the profile keeps those."""
        return frozenset().union(*(s.filter.last_times() for s in self))

    def evaluate(
        self,
        record: ContactRecord,
        now: datetime,
        decay: Decay,
        double_opt_in: Collection[str] = frozenset(),
        *,
        authoritative: bool = False,
    ) -> Membership:
        """The contact's memberships now. ``record.segments`` is where it was: a paused segment keeps
        its members as they are.

        A membership of a segment id this book does not hold is kept as it is, unless the book is
        ``authoritative``: the segments as stored now (a back-fill's uncached read), not a cached copy
        that may predate the segment's save. Only then does a segment no longer stored lose its members
        (its deletion starts such a back-fill); a stale stream-side copy never drops members a fresh
        back-fill placed."""
        facts = Facts(record, now, decay, double_opt_in)
        was = record.segments
        members: set[str] = set()
        changes: list[datetime] = []
        for segment in self:
            if segment.paused:
                if segment.id in was:
                    members.add(segment.id)
                continue
            verdict = segment.filter.verdict(facts)
            if verdict.holds:
                members.add(segment.id)
            if verdict.changes_at is not None and verdict.changes_at > now:
                changes.append(verdict.changes_at)
        if not authoritative:  # unknown to this (possibly stale) book: left as they are
            members.update(s for s in was if s not in self._segments)
        now_in = frozenset(members)
        return Membership(
            segments=now_in,
            entered=tuple(sorted(now_in - was)),
            left=tuple(sorted(was - now_in)),
            changes_at=min(changes) if changes else None,
        )
