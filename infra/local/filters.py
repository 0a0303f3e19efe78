"""Lambda event filtering (EventBridge pattern syntax), for the subset the wiring uses.

A pattern is a tree of objects whose leaves are lists: a record matches if, at every leaf, its value
is one of the listed values, or satisfies a listed ``{"prefix": ...}``, ``{"anything-but": [...]}``
or ``{"exists": bool}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MISSING = object()


def matches(pattern: Mapping[str, Any], record: Any) -> bool:
    for key, expected in pattern.items():
        value = record.get(key, _MISSING) if isinstance(record, Mapping) else _MISSING
        if isinstance(expected, Mapping):
            if value is _MISSING or not matches(expected, value):
                return False
        elif not any(_leaf(option, value) for option in expected):
            return False
    return True


def _leaf(option: Any, value: Any) -> bool:
    if isinstance(option, Mapping):
        if "exists" in option:
            return (value is not _MISSING) == bool(option["exists"])
        if value is _MISSING:
            return False
        if "prefix" in option:
            return isinstance(value, str) and value.startswith(option["prefix"])
        if "anything-but" in option:
            excluded = option["anything-but"]
            return value not in (excluded if isinstance(excluded, list) else [excluded])
        return False
    return value is not _MISSING and value == option
