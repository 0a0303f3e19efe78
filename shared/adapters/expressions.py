"""DynamoDB update expressions: short placeholders, and packing clauses into expressions under 4 KB.

DynamoDB rejects an expression over 4 KB (moto does not), so a write whose clauses grow with the data
(traits, tags, score dimensions) is cut into parts, each applied on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: DynamoDB allows 4 KB per expression.
EXPRESSION_LIMIT = 4096
#: Parts are cut below the limit, leaving room for the bookkeeping each part adds.
EXPRESSION_BUDGET = 3500
#: One update clause: (kind, attribute, value); kind is ``"set"``, ``"if_absent"`` or ``"add"``.
Clause = tuple[str, str, dict[str, Any]]


@dataclass
class Expression:
    """An update expression with short placeholders (DynamoDB allows 4 KB per expression)."""

    sets: list[str] = field(default_factory=list)
    adds: list[str] = field(default_factory=list)
    removes: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    _aliases: dict[str, str] = field(default_factory=dict)

    def name(self, attribute: str) -> str:
        alias = self._aliases.get(attribute)
        if alias is None:
            alias = self._aliases[attribute] = f"#{len(self._aliases):x}"
            self.names[alias] = attribute
        return alias

    def value(self, attribute_value: Any) -> str:
        placeholder = f":{len(self.values):x}"
        self.values[placeholder] = attribute_value
        return placeholder

    def set(self, attribute: str, attribute_value: Any) -> None:
        self.sets.append(f"{self.name(attribute)}={self.value(attribute_value)}")

    def set_if_absent(self, attribute: str, attribute_value: Any) -> None:
        alias = self.name(attribute)
        self.sets.append(f"{alias}=if_not_exists({alias},{self.value(attribute_value)})")

    def copy(self, attribute: str, source: str) -> None:
        """``attribute`` set to the item's ``source`` attribute (which must exist)."""
        self.sets.append(f"{self.name(attribute)}={self.name(source)}")

    def prepend(self, attribute: str, attribute_value: Any) -> None:
        """The list ``attribute_value`` put before the item's list ``attribute`` (created if absent)."""
        alias = self.name(attribute)
        new, empty = self.value(attribute_value), self.value({"L": []})
        self.sets.append(f"{alias}=list_append({new},if_not_exists({alias},{empty}))")

    def add(self, attribute: str, attribute_value: Any) -> None:
        self.adds.append(f"{self.name(attribute)} {self.value(attribute_value)}")

    def remove(self, attribute: str) -> None:
        self.removes.append(self.name(attribute))

    def update_expression(self) -> str:
        parts = []
        if self.sets:
            parts.append("SET " + ",".join(self.sets))
        if self.adds:
            parts.append("ADD " + ",".join(self.adds))
        if self.removes:
            parts.append("REMOVE " + ",".join(self.removes))
        return " ".join(parts)

    def update(
        self, table: str, key: Mapping[str, Any], condition: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "TableName": table,
            "Key": dict(key),
            "UpdateExpression": self.update_expression(),
            "ExpressionAttributeNames": self.names,
            **extra,
        }
        if condition:
            request["ConditionExpression"] = condition
        if self.values:
            request["ExpressionAttributeValues"] = self.values
        return request


def packed(clauses: Sequence[Clause]) -> list[Expression]:
    """Pack update clauses into expressions that each stay under the expression budget."""
    parts: list[Expression] = []
    current: Expression | None = None
    for kind, attribute, value in clauses:
        if current is None or len(current.update_expression()) > EXPRESSION_BUDGET:
            current = Expression()
            parts.append(current)
        {"if_absent": current.set_if_absent, "add": current.add, "set": current.set}[kind](attribute, value)
    return parts
