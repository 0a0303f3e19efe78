"""A value a warm function keeps for a while before loading it again (rules, funnel, sales team)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Expiring(Generic[T]):
    def __init__(self, seconds: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._seconds, self._monotonic = seconds, monotonic
        self._value: tuple[float, T] | None = None

    def get(self, load: Callable[[], T]) -> T:
        if self._value is None or self._value[0] <= self._monotonic():
            self._value = (self._monotonic() + self._seconds, load())
        return self._value[1]

    def clear(self) -> None:
        self._value = None
