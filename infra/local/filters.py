"""Lambda event filtering (EventBridge pattern syntax), for the subset the wiring uses.

A pattern is a tree of objects whose leaves are lists: a record matches if, at every leaf, its value
is one of the listed values, or satisfies a listed ``{"prefix": ...}``, ``{"anything-but": [...]}``
or ``{"exists": bool}``. As on AWS, an operator tests leaves only: where the record holds an object,
``{"exists": false}`` matches and nothing else does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MISSING = object()


def matches(pattern: Mapping[str, Any], record: Any) -> bool:
    for key, expected in pattern.items():
        value = record.get(key, _MISSING) if isinstance(record, Mapping) else _MISSING
        if isinstance(expected, Mapping):
            # a path the record lacks holds no leaves: only ``{"exists": false}`` matches under it
            if not matches(expected, value if isinstance(value, Mapping) else {}):
                return False
        elif not any(_leaf(option, value) for option in expected):
            return False
    return True


def _leaf(option: Any, value: Any) -> bool:
    if isinstance(value, Mapping):  # an object is no leaf: nothing matches it, it "does not exist"
        value = _MISSING
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
