"""Powertools logger, metrics and tracer, shared by every function.

Logs never carry PII: no traits, emails, phone numbers or ids; counts and codes only.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

NAMESPACE = "Lifecycle"

logger = Logger()
metrics = Metrics(namespace=NAMESPACE)
#: Patch only botocore: X-Ray's patch_all would import requests, httplib, sqlite3... on every cold start.
tracer = Tracer(patch_modules=("botocore",))


class PowertoolsTelemetry:
    """The domain's telemetry port, recorded as CloudWatch EMF metrics."""

    def count(self, name: str, value: int) -> None:
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)

    def failure(self, what: str) -> None:
        logger.exception(what)
