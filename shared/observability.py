"""Powertools logger, metrics and tracer, shared by every function.

Logs never carry PII: no traits, emails, phone numbers or ids; counts and codes only.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

NAMESPACE = "Lifecycle"

logger = Logger()
metrics = Metrics(namespace=NAMESPACE)
#: Nothing is patched at import: X-Ray's patch_all would import requests, httplib, sqlite3..., and even
#: patching botocore imports it. ``trace_aws_calls`` patches botocore when a function builds its clients.
tracer = Tracer(auto_patch=False)


def trace_aws_calls() -> None:
    """Record AWS calls as X-Ray subsegments (botocore only); called once dependencies are built."""
    tracer.patch(("botocore",))


class PowertoolsTelemetry:
    """The domain's telemetry port, recorded as CloudWatch EMF metrics."""

    def count(self, name: str, value: int) -> None:
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)

    def failure(self, what: str) -> None:
        """The exception being handled, logged by its type, AWS error code and the code path it came
        through: never its message, which can quote what it failed on (an address SES refused, a trait)."""
        import sys
        import traceback

        exc = sys.exc_info()[1]
        if exc is None:
            logger.error(what)
            return
        error = getattr(exc, "response", None)
        code = error.get("Error", {}).get("Code") if isinstance(error, dict) else None
        logger.error(
            what,
            extra={
                "error_type": type(exc).__name__,
                **({"error_code": code} if code else {}),
                # frames only (file, line, function, source line): no exception message, no local values
                "stack": "".join(traceback.format_tb(exc.__traceback__)),
            },
        )
