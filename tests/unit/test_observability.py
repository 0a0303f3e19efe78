"""Failures are logged without what they failed on: type, AWS error code and code path, never the message."""

from __future__ import annotations

import io
import json
import logging

from botocore.exceptions import ClientError

from shared.observability import PowertoolsTelemetry, logger


def test_a_failure_is_logged_by_type_code_and_stack_without_its_message() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    try:
        try:
            raise ClientError(
                {
                    "Error": {
                        "Code": "MessageRejected",
                        "Message": "Email address is not verified: ann@example.com",
                    }
                },
                "SendEmail",
            )
        except ClientError:
            PowertoolsTelemetry().failure("a delivery attempt failed unexpectedly; retried")
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["message"] == "a delivery attempt failed unexpectedly; retried"
    assert line["error_type"] == "ClientError" and line["error_code"] == "MessageRejected"
    assert "test_observability.py" in line["stack"], "where it came from"
    assert "ann@example.com" not in stream.getvalue(), "no PII from the exception's message"
