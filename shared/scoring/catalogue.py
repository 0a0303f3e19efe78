"""The rule catalogue: shipped defaults overlaid by stored rules, and how administrators change it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from shared.errors import InvalidRequest, invalid_field
from shared.scoring.defaults import default_rules
from shared.scoring.rules import Rule, RuleBook, StoredRule


class RuleRepository(Protocol):
    def stored(self) -> list[StoredRule]: ...

    def save(
        self, rule: Rule, at: datetime, expected_version: int | None, base_version: int
    ) -> StoredRule: ...

    def remove(self, rule_id: str, at: datetime, expected_version: int | None) -> StoredRule: ...

    def history(self, rule_id: str) -> list[StoredRule]: ...


class RuleSource(Protocol):
    def book(self) -> RuleBook: ...


def effective(stored: Iterable[StoredRule], defaults: Sequence[StoredRule] | None = None) -> list[StoredRule]:
    """Defaults, each replaced by a stored rule with the same id, plus every other stored rule."""
    rules = {rule.id: rule for rule in (default_rules() if defaults is None else defaults)}
    rules.update({rule.id: rule for rule in stored})
    return sorted(rules.values(), key=lambda r: r.id)


def parse_rule(rule_id: str, body: Mapping[str, Any]) -> Rule:
    """Validate an administrator's rule; a bad one is a 400 naming the field."""
    if not isinstance(body, Mapping):
        raise InvalidRequest("the rule must be a JSON object", code="invalid_rule")
    if "id" in body and body["id"] != rule_id:
        raise InvalidRequest(
            f"id: {body['id']!r} does not match the path ({rule_id!r})", code="invalid_rule", field="id"
        )
    fields = {k: v for k, v in body.items() if k not in ("version", "origin", "updated_at")}
    try:
        return Rule.model_validate({**fields, "id": rule_id})
    except ValidationError as exc:
        raise invalid_field(exc.errors(include_url=False)[0], code="invalid_rule", whole="rule") from None


def stored_rule(rule: Rule, version: int, at: datetime) -> StoredRule:
    """An administrator's rule as stored at ``version``."""
    return StoredRule(**rule.model_dump(), version=version, origin="stored", updated_at=at)
