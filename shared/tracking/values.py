"""What values a call may carry: how deeply nested, and which numbers.

Every value a call carries must be one DynamoDB could hold as a native attribute, so that any later
store, index or export keeps it exactly: at most 32 levels of objects and arrays (DynamoDB's own
nesting limit), and finite numbers of at most 38 significant digits with magnitudes from 1e-130 to
below 1e126. Python's JSON reader accepts ``NaN``, ``Infinity`` and overflowing literals such as
``1e400`` (as ``inf``); they are refused here, where the field can be named.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from shared.errors import InvalidRequest

#: Levels of objects and arrays inside a call: ``properties`` is level 1, ``properties.a`` level 2.
MAX_DEPTH = 32
MAX_DIGITS = 38
#: DynamoDB numbers: 38 significant digits, magnitude 1e-130 up to 9.99...e125.
LARGEST = Decimal("1e126")
SMALLEST = Decimal("1e-130")
_PATH_SHOWN = 200
_KEY_SHOWN = 40
#: Only containers and numbers need a look; text, booleans and null are always fine.
_CHECKED = (dict, list, float, int)
#: Numbers well inside DynamoDB's range pass without an exact (slower) decimal check.
_SAFE_FLOAT_LOW, _SAFE_FLOAT_HIGH = 1e-120, 1e120
_SAFE_INT = 10**MAX_DIGITS
TOO_DEEP = f"nested more than {MAX_DEPTH} levels of objects and arrays deep"
NOT_FINITE = "numbers must be finite (no NaN, Infinity or overflowing literals like 1e400)"
NOT_STORABLE = (
    f"numbers must have at most {MAX_DIGITS} significant digits and a magnitude from 1e-130 to below "
    "1e126, as DynamoDB stores them; send longer ids or values as strings"
)


def check_values(call: Mapping[str, Any], where: str) -> None:
    """Raise ``InvalidRequest`` naming the first field nested too deeply or holding a bad number."""
    fault = _fault(call, 0)
    if fault is not None:
        steps, reason = fault
        path = where + "".join(reversed(steps))
        if len(path) > _PATH_SHOWN:
            path = path[: _PATH_SHOWN // 2] + "…" + path[-_PATH_SHOWN // 2 :]
        raise InvalidRequest(f"{path}: {reason}", code="invalid_event")


def _fault(value: Any, depth: int) -> tuple[list[str], str] | None:
    """The first bad value's path (innermost step first) and why; the path is built only on failure."""
    if isinstance(value, dict | list):
        if depth > MAX_DEPTH:
            return [], TOO_DEEP
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(item, _CHECKED) and not isinstance(item, bool):
                fault = _fault(item, depth + 1)
                if fault is not None:
                    fault[0].append(_key(key) if isinstance(value, dict) else f"[{key}]")
                    return fault
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return [], NOT_FINITE
        if value == 0 or _SAFE_FLOAT_LOW < abs(value) < _SAFE_FLOAT_HIGH:
            return None  # floats carry at most 17 significant digits: only the magnitude can be wrong
        return None if _fits(Decimal(repr(value))) else ([], NOT_STORABLE)
    if -_SAFE_INT < value < _SAFE_INT:
        return None
    return None if _fits(Decimal(value)) else ([], NOT_STORABLE)


def _fits(number: Decimal) -> bool:
    if not number:
        return True
    digits = len("".join(map(str, number.as_tuple().digits)).strip("0"))  # normalize() would round
    return digits <= MAX_DIGITS and SMALLEST <= number.copy_abs() < LARGEST


def _key(key: Any) -> str:
    text = str(key)
    return "." + (text if len(text) <= _KEY_SHOWN else text[:_KEY_SHOWN] + "…")
