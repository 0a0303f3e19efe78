"""Admin operations on scoring rules: ``GET``, ``PUT`` and ``DELETE`` under ``/admin/rules``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from shared.admin.dependencies import Admin
from shared.errors import NotFound
from shared.http import if_match_version, json_body
from shared.scoring.catalogue import effective, parse_rule
from shared.scoring.defaults import default_rules
from shared.scoring.rules import StoredRule

if TYPE_CHECKING:
    from shared.http import HttpRequest


class RuleList(BaseModel):
    rules: list[StoredRule]


class RuleDetail(BaseModel):
    rule: StoredRule
    #: every stored version, newest first (a deleted version is marked by a newer tombstone)
    history: list[StoredRule]


class Deleted(BaseModel):
    deleted: str
    version: int
    #: a shipped default with this id applies again
    default_applies: bool


def list_rules(request: HttpRequest, deps: Admin) -> RuleList:
    return RuleList(rules=effective(deps.rules.stored()))


def get_rule(request: HttpRequest, deps: Admin) -> RuleDetail:
    rule_id = request.path_parameters.get("ruleId", "")
    found = next((r for r in effective(deps.rules.stored()) if r.id == rule_id), None)
    if found is None:
        raise NotFound(f"no rule {rule_id}")
    return RuleDetail(rule=found, history=deps.rules.history(rule_id))


def put_rule(request: HttpRequest, deps: Admin) -> StoredRule:
    rule_id = request.path_parameters.get("ruleId", "")
    rule = parse_rule(rule_id, json_body(request))
    default = next((r for r in default_rules() if r.id == rule_id), None)
    return deps.rules.save(
        rule, deps.clock.now(), if_match_version(request), default.version if default else 0
    )


def delete_rule(request: HttpRequest, deps: Admin) -> Deleted:
    rule_id = request.path_parameters.get("ruleId", "")
    removed = deps.rules.remove(rule_id, deps.clock.now(), if_match_version(request))
    return Deleted(
        deleted=rule_id,
        version=removed.version,
        default_applies=any(r.id == rule_id for r in default_rules()),
    )


ROUTES = {
    "GET /admin/rules": list_rules,
    "GET /admin/rules/{ruleId}": get_rule,
    "PUT /admin/rules/{ruleId}": put_rule,
    "DELETE /admin/rules/{ruleId}": delete_rule,
}
