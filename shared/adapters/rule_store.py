"""Scoring rules in the config table: the current version of each, and every version ever stored.

Current rules share one partition (``RULES``), so the tracking function loads them all with one
Query and caches the compiled rule book briefly. History lives under ``RULE#<id>``
(``shared.adapters.versioned_documents``).
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

from shared.adapters.versioned_documents import VersionedDocuments
from shared.scoring.catalogue import effective, stored_rule
from shared.scoring.rules import Rule, RuleBook, StoredRule


class DynamoRuleStore(VersionedDocuments[StoredRule, RuleBook]):
    """``DynamoRuleStore(client, table=..., cache_seconds=30, monotonic=time.monotonic)``: the compiled
    book is the shipped defaults overlaid by the stored rules."""

    kind, model, current_partition, history_prefix = "rule", StoredRule, "RULES", "RULE#"

    def compile(self, documents: list[StoredRule]) -> RuleBook:
        return RuleBook(effective(documents))

    def save(self, rule: Rule, at: datetime, expected_version: int | None, base_version: int) -> StoredRule:
        """Store the next version. ``base_version`` is the version it replaces (a default's, or 0)."""
        return self.save_version(
            rule.id, at, expected_version, partial(stored_rule, rule, at=at), base_version
        )
