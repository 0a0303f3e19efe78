"""Deployment settings: defaults here, overridden in ``cdk.json`` (context ``lifecycle``) or with ``-c``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from infra.wiring import FunctionSpec

SERVICE = "lifecycle"


class DeploymentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    #: origins whose pages may call the API from a browser; "*" allows any
    cors_origins: tuple[str, ...] = Field(("*",), alias="corsOrigins")
    event_retention_days: int = Field(395, alias="eventRetentionDays", ge=1)
    purchase_retention_days: int = Field(3650, alias="purchaseRetentionDays", ge=1)
    log_retention_days: int = Field(30, alias="logRetentionDays", ge=1)
    #: half-life of current engagement scores, in days
    score_half_life_days: float = Field(30, alias="scoreHalfLifeDays", gt=0)
    #: how long functions cache scoring rules (a changed rule applies within this time)
    rules_cache_seconds: int = Field(30, alias="rulesCacheSeconds", ge=0)
    #: Powertools layer version, resolved per region from AWS's public SSM parameters at deploy time
    powertools_version: str = Field("3.37.0", alias="powertoolsVersion")
    #: requests per second the API accepts before throttling (429)
    throttle_rate: int = Field(1000, alias="throttleRate", ge=1)
    throttle_burst: int = Field(2000, alias="throttleBurst", ge=1)

    @classmethod
    def from_context(cls, context: Mapping[str, Any] | None) -> DeploymentConfig:
        return cls.model_validate(dict(context or {}))

    def settings(self) -> dict[str, str]:
        """Settings every function receives as environment variables."""
        return {
            "EVENT_RETENTION_DAYS": str(self.event_retention_days),
            "PURCHASE_RETENTION_DAYS": str(self.purchase_retention_days),
            "SCORE_HALF_LIFE_DAYS": str(self.score_half_life_days),
            "RULES_CACHE_SECONDS": str(self.rules_cache_seconds),
        }


def environment(spec: FunctionSpec, table_names: Mapping[str, str], config: DeploymentConfig) -> dict[str, str]:
    """A function's environment, the same in the cloud and in the local stack."""
    env = {
        "POWERTOOLS_SERVICE_NAME": f"{SERVICE}-{spec.name}",
        "POWERTOOLS_METRICS_NAMESPACE": "Lifecycle",
        **{access.table.env: table_names[access.table.id] for access in spec.tables},
        **config.settings(),
        **spec.environment,
    }
    return env
