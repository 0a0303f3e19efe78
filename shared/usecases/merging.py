"""Identity merges, off the request path.

The write that records an identify or alias also asks for the merges it declares
(``ContactChange.merge_from``). The contacts table's stream delivers that write
to the merge function, which merges each identity into the contact (``link``).
Every step is safe to repeat, so a redelivered record or a retried batch leaves
one effect, and a merge cut short resumes when the record is delivered again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from shared.clock import Clock
from shared.contacts.identity import ContactId
from shared.scoring.decay import Decay
from shared.usecases.recording import MergeStore, link


@dataclass(frozen=True, slots=True)
class MergeRequest:
    """A profile write that asked for merges: into which contact, from which identities."""

    target: ContactId
    sources: tuple[ContactId, ...]
    #: the request as the profile holds it; cleared only while no newer request replaced it
    marker: str


class MergeRequests(MergeStore, Protocol):
    def clear_merge_request(self, target: ContactId, marker: str) -> None: ...


class Telemetry(Protocol):
    def count(self, name: str, value: int) -> None: ...


@dataclass(frozen=True, slots=True)
class Merging:
    clock: Clock
    contacts: MergeRequests
    decay: Decay
    telemetry: Telemetry


def on_merge_requested(request: MergeRequest, deps: Merging) -> int:
    """Merge every identity the request names into its contact; how many merges this call completed.

    A completed merge clears the request as it writes the contact; when there was nothing to merge
    (done before, or the identity belongs to someone else) it is cleared here, so later writes of the
    contact are not delivered again.
    """
    now = deps.clock.now()
    merged = sum(link(source, request.target, deps.contacts, now, deps.decay) for source in request.sources)
    if not merged:
        deps.contacts.clear_merge_request(request.target, request.marker)
    deps.telemetry.count("ContactsMerged", merged)
    return merged
