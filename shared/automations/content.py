"""Message content: ``{{ name }}`` and ``{{ dotted.path }}`` placeholders filled from the run's values. Pure.

Only placeholders: no expressions, no calls, no attribute access beyond mappings, so content a marketer
writes cannot run code or read anything outside its values. The syntax is a subset of Jinja's: the
delivery work renders stored templates with a sandboxed Jinja environment over the same values.
A placeholder with no value renders empty.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_:-]+)*)\s*\}\}")


def lookup(values: Mapping[str, Any], path: str) -> Any:
    found: Any = values
    for part in path.split("."):
        if not isinstance(found, Mapping):
            return None
        found = found.get(part)
    return found


def show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float | Decimal) and value == int(value):
        return str(int(value))
    if isinstance(value, str | int | float | Decimal):
        return str(value)
    return ""


def render(text: str, values: Mapping[str, Any]) -> str:
    return PLACEHOLDER.sub(lambda m: show(lookup(values, m.group(1))), text)


def render_json(value: Any, values: Mapping[str, Any]) -> Any:
    """A webhook body: every string in it rendered."""
    if isinstance(value, str):
        return render(value, values)
    if isinstance(value, list):
        return [render_json(v, values) for v in value]
    if isinstance(value, dict):
        return {k: render_json(v, values) for k, v in value.items()}
    return value
