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
        logger.exception(what)
