"""Who is in a segment, read a page at a time: what campaigns send to and what the admin API lists."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field


class MemberPage(BaseModel):
    """One page of a segment's members, in a stable order; ``after`` continues it (``None``: the end)."""

    model_config = ConfigDict(frozen=True)

    contact_ids: list[str] = Field(default_factory=list)
    after: str | None = None


class SegmentMembers(Protocol):
    """A segment's current members, read in O(members) (an index of memberships, never a Scan)."""

    def page(self, segment_id: str, after: str | None, limit: int) -> MemberPage:
        """Up to ``limit`` members following ``after`` (the previous page's ``after``; ``None``: the start)."""
        ...

    def count(self, segment_id: str) -> int: ...
