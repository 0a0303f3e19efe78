"""Domain exceptions.

Each carries a stable machine-readable ``code`` and a human message. The HTTP
status for each class is decided in one place, ``shared.http``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class LifecycleError(Exception):
    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidRequest(LifecycleError):
    """The request can never succeed as sent (bad JSON, bad field, ...). ``field``: the input it is about
    (a query parameter, a body field), for a form to show the message next to it."""

    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message, code=code)
        self.field = field


class PayloadTooLarge(LifecycleError):
    code = "payload_too_large"


class UnsupportedMediaType(LifecycleError):
    code = "unsupported_media_type"


class Unauthorized(LifecycleError):
    code = "unauthorized"


class Forbidden(LifecycleError):
    code = "forbidden"


class NotFound(LifecycleError):
    code = "not_found"


class Conflict(LifecycleError):
    code = "conflict"


class DependencyUnavailable(LifecycleError):
    """A dependency failed or throttled; the caller should retry later."""

    code = "unavailable"

    def __init__(self, message: str, *, retry_after_seconds: int = 2, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after_seconds = retry_after_seconds


class RateLimited(LifecycleError):
    """Too many requests from one write key or address; the caller should retry after the window."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_seconds: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after_seconds = retry_after_seconds


def body_part(value: Any, part: str | int) -> tuple[Any, bool]:
    """What a request body holds at one part of a validation error's location: the value and True, or None
    and False when the body has nothing there (for naming the field an ``InvalidRequest`` is about)."""
    if isinstance(value, Mapping) and part in value:
        return value[part], True
    if isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
        return value[part], True
    return None, False
