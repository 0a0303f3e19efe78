"""Domain exceptions.

Each carries a stable machine-readable ``code`` and a human message. The HTTP
status for each class is decided in one place, ``shared.http``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class LifecycleError(Exception):
    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidRequest(LifecycleError):
    """The request can never succeed as sent (bad JSON, bad field, ...).

    ``field`` names what is wrong, when one thing is: the dotted path in the request body as the client
    sent it (``points``, ``condition.event``, ``steps.0.wait``), or a query parameter's name (``limit``);
    the console shows the message next to that field."""

    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message, code=code)
        self.field = field or None


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


def invalid_field(
    error: Mapping[str, Any],
    *,
    code: str,
    whole: str = "body",
    location: Sequence[str | int] | None = None,
    message: str | None = None,
) -> InvalidRequest:
    """The 400 for a request body's first validation error (one of pydantic's ``errors()``): its ``field``
    is the error's location as the client wrote it, dotted (``steps.0.wait``); the message is
    ``<field>: <what is wrong>`` (``<whole>: ...`` when the body as a whole is wrong).

    ``location`` replaces pydantic's when the caller knows better how the client wrote it (union tags
    dropped, aliases the client sent); ``message`` replaces the default message, not the field."""
    field = ".".join(str(part) for part in (error["loc"] if location is None else location))
    text = f"{field or whole}: {error['msg']}" if message is None else message
    return InvalidRequest(text, code=code, field=field or None)
