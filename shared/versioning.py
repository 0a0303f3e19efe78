"""The versions of what administrators edit (scoring rules, automations).

Each change stores the next version; a delete leaves a tombstone one version higher, so a version number
names one content for ever (the ledger names (rule, version), an occurrence (automation, version)).
``If-Match: <version>`` makes a change conditional on the version the caller read.
"""

from __future__ import annotations

from shared.errors import Conflict


def expect_version(kind: str, document_id: str, in_force: int, expected_version: int | None) -> None:
    """A change made against another version than the one in force is a Conflict."""
    if expected_version is not None and expected_version != in_force:
        raise Conflict(f"{kind} {document_id} is at version {in_force}, not {expected_version}")


def next_version(in_force: int, latest: int) -> int:
    """The version a change stores: after the one in force (a shipped default's, 0 for none) and after
    the newest ever stored (a tombstone's), so versions never repeat."""
    return max(in_force, latest) + 1
