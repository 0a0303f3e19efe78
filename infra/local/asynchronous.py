"""Asynchronous invocation, locally: what Lambda does with an event EventBridge hands it (schedules and
bus rules alike). The first attempt and Lambda's retries; a run that fails them all becomes the
on-failure destination's record, with its event and error."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


def invoke_asynchronously(
    name: str, invoke: Callable[[dict[str, Any]], Any], event: dict[str, Any], *, retry_attempts: int
) -> tuple[Any, dict[str, Any] | None]:
    """The run's result, or ``None`` and the on-failure record once ``1 + retry_attempts`` attempts failed."""
    error: Exception | None = None
    for attempt in range(1, retry_attempts + 2):
        try:
            return invoke(event), None
        except Exception as exc:
            print(f"[local] {name} failed (attempt {attempt}): {exc!r}")
            error = exc
    assert error is not None
    return None, async_failure_record(name, event, error, attempts=retry_attempts + 1)


def async_failure_record(
    name: str, event: dict[str, Any], error: Exception, *, attempts: int
) -> dict[str, Any]:
    """What Lambda sends an asynchronous invocation's on-failure destination: the event and the error."""
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"arn:aws:lambda:local:000000000000:function:lifecycle-{name}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": str(error), "errorType": type(error).__name__},
    }
