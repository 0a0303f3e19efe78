"""Deployment settings: defaults here, overridden in ``cdk.json`` (context ``lifecycle``) or with ``-c``."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
    #: engagement thresholds of the default funnel (current global points)
    sales_threshold: float = Field(50, alias="salesThreshold", gt=0)
    exit_threshold: float = Field(10, alias="exitThreshold", ge=0)
    #: the due-time index is spread over this many partitions
    due_shards: int = Field(8, alias="dueShards", ge=1, le=256)
    #: verified SES sender for lead emails; without it, leads are announced on SNS only
    sender_email: str | None = Field(None, alias="senderEmail")
    #: the sender's postal address, printed at the foot of every marketing email
    postal_address: str = Field("", alias="postalAddress")
    #: consent sources whose grants need the contact's confirmation by email (double opt-in)
    double_opt_in_sources: tuple[str, ...] = Field((), alias="doubleOptInSources")
    #: local hours without marketing messages (start inclusive, end exclusive)
    quiet_hours_start: int = Field(21, alias="quietHoursStart", ge=0, le=23)
    quiet_hours_end: int = Field(8, alias="quietHoursEnd", ge=0, le=23)
    #: frequency caps per contact and channel, across all automations
    email_per_day: int = Field(2, alias="emailPerDay", ge=1)
    email_per_week: int = Field(6, alias="emailPerWeek", ge=1)
    sms_per_day: int = Field(1, alias="smsPerDay", ge=1)
    sms_per_week: int = Field(3, alias="smsPerWeek", ge=1)
    #: how long unsubscribe and confirmation links work
    link_days: int = Field(60, alias="linkDays", ge=1, le=3650)
    #: the public base URL of links in messages (a custom domain); the API's own URL otherwise
    public_url: str | None = Field(None, alias="publicUrl")
    #: Powertools layer version, resolved per region from AWS's public SSM parameters at deploy time
    powertools_version: str = Field("3.37.0", alias="powertoolsVersion")
    #: requests per second the API accepts before throttling (429)
    throttle_rate: int = Field(1000, alias="throttleRate", ge=1)
    throttle_burst: int = Field(2000, alias="throttleBurst", ge=1)
    #: each write key's rate limit unless it has its own (requests per second, and burst): 429 past it
    key_rate_per_second: float = Field(500, alias="keyRatePerSecond", gt=0)
    key_burst: int = Field(1000, alias="keyBurst", ge=1)
    #: each client address's, counted over all browser keys (server keys are not limited by address)
    ip_rate_per_second: float = Field(20, alias="ipRatePerSecond", gt=0)
    ip_burst: int = Field(100, alias="ipBurst", ge=1)
    # --- the nightly analytics pass (issue 12) ---
    #: the churn horizon H: p_no_purchase is the probability of no purchase within H days
    analytics_horizon_days: int = Field(90, alias="analyticsHorizonDays", ge=1, le=3650)
    #: customers are scored on their purchases of this many days before the day scored
    analytics_lookback_days: int = Field(1095, alias="analyticsLookbackDays", ge=1, le=36500)
    #: customers per part of the scores: one apply run each (the state holds each part's key, so not
    #: fewer than 1,000: 2,000 parts, the fit's limit, are then 2 million customers)
    analytics_part_size: int = Field(10000, alias="analyticsPartSize", ge=1000, le=1_000_000)
    #: parallel-scan segments of the purchase index: one extract run each (the state machine's, not a
    #: function's setting)
    analytics_scan_segments: int = Field(16, alias="analyticsScanSegments", ge=1, le=1000)
    #: quantile edges of the R, F and M scores 1 to 5: four, strictly increasing, between 0 and 1
    rfm_edges: tuple[float, ...] = Field((0.2, 0.4, 0.6, 0.8), alias="rfmEdges")
    #: issue 13: parallel-scan segments of a back-fill (one step run each, 16 at a time): a segment's
    #: contacts are evaluated one after another within a run's 15 minutes (docs/decisions.md)
    backfill_scan_segments: int = Field(32, alias="backfillScanSegments", ge=1, le=1000)
    #: churn risk from which a customer is at medium and at high risk (unset: the code's defaults)
    risk_medium: float | None = Field(None, alias="riskMedium", gt=0, lt=1)
    risk_high: float | None = Field(None, alias="riskHigh", gt=0, lt=1)
    # --- the console's sign-in (issue 14) ---
    #: the prefix of the Cognito hosted login's domain, ``https://<prefix>.auth.<region>.amazoncognito.com``:
    #: unique in the region; unset, ``lifecycle-<account id>`` (``infra.constructs.console``)
    console_domain_prefix: str | None = Field(
        None,
        alias="consoleDomainPrefix",
        pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$",
    )

    @field_validator("console_domain_prefix")
    @classmethod
    def _prefix_allowed(cls, value: str | None) -> str | None:
        """Cognito refuses prefixes that contain ``aws``, ``amazon`` or ``cognito``."""
        if value is not None and any(word in value for word in ("aws", "amazon", "cognito")):
            raise ValueError(f"consoleDomainPrefix may not contain aws, amazon or cognito: {value!r}")
        return value

    @field_validator("rfm_edges", mode="before")
    @classmethod
    def _edges_from_text(cls, value: Any) -> Any:
        """``"0.2,0.4,0.6,0.8"`` as well as a list (``cdk.json`` or ``-c``)."""
        return [part.strip() for part in value.split(",")] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _analytics_consistent(self) -> DeploymentConfig:
        edges = self.rfm_edges
        bounds = (0.0, *edges, 1.0)
        if len(edges) != 4 or not all(a < b for a, b in itertools.pairwise(bounds)):
            raise ValueError(f"rfmEdges: four increasing quantiles between 0 and 1, not {list(edges)}")
        if self.risk_medium is not None and self.risk_high is not None and self.risk_medium >= self.risk_high:
            raise ValueError("riskMedium must be below riskHigh")
        return self

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
            "SALES_THRESHOLD": str(self.sales_threshold),
            "EXIT_THRESHOLD": str(self.exit_threshold),
            "DUE_SHARDS": str(self.due_shards),
            "KEY_RATE_PER_SECOND": f"{self.key_rate_per_second:g}",
            "KEY_BURST": str(self.key_burst),
            "IP_RATE_PER_SECOND": f"{self.ip_rate_per_second:g}",
            "IP_BURST": str(self.ip_burst),
            "POSTAL_ADDRESS": self.postal_address,
            "DOUBLE_OPT_IN_SOURCES": ",".join(self.double_opt_in_sources),
            "QUIET_HOURS_START": str(self.quiet_hours_start),
            "QUIET_HOURS_END": str(self.quiet_hours_end),
            "EMAIL_PER_DAY": str(self.email_per_day),
            "EMAIL_PER_WEEK": str(self.email_per_week),
            "SMS_PER_DAY": str(self.sms_per_day),
            "SMS_PER_WEEK": str(self.sms_per_week),
            "LINK_DAYS": str(self.link_days),
            **({"SENDER_EMAIL": self.sender_email} if self.sender_email else {}),
        }

    def analytics_settings(self) -> dict[str, str]:
        """Settings the analytics functions receive besides the others' (the risk levels only if set)."""
        return {
            "ANALYTICS_HORIZON_DAYS": str(self.analytics_horizon_days),
            "ANALYTICS_LOOKBACK_DAYS": str(self.analytics_lookback_days),
            "ANALYTICS_PART_SIZE": str(self.analytics_part_size),
            "RFM_EDGES": ",".join(f"{edge:g}" for edge in self.rfm_edges),
            **({"RISK_MEDIUM": f"{self.risk_medium:g}"} if self.risk_medium is not None else {}),
            **({"RISK_HIGH": f"{self.risk_high:g}"} if self.risk_high is not None else {}),
        }


#: Environment variables that name the services a function may use.
SERVICE_ENV = {
    "events": "EVENT_BUS_NAME",
    "sns": "LEAD_TOPIC_ARN",
    "identity_secrets": "IDENTITY_SECRETS_PATH",
    "email": "CONFIGURATION_SET_NAME",
    "delivery_secret": "DELIVERY_SECRET_ARN",
    "links": "PUBLIC_BASE_URL",
}
#: issue 14: what the console function is told of its sign-in (the ``sign_in`` service), by environment
#: variable: the hosted login's base URL, the public app client's id, and the prefix of the admin routes
#: that accept the sign-in. Only the cloud has them: locally they are unset (no sign-in, loopback only).
SIGN_IN_ENV = {
    "sign_in": "CONSOLE_SIGN_IN_URL",
    "sign_in_client": "CONSOLE_CLIENT_ID",
    "sign_in_api_base": "CONSOLE_API_BASE",
}


def identity_secrets_path(stack_name: str) -> str:
    """Where a stack keeps its sources' identity secrets: SSM parameters ``<path><source>``."""
    return f"/{stack_name}/identity-secrets/"


def environment(
    spec: FunctionSpec,
    table_names: Mapping[str, str],
    config: DeploymentConfig,
    services: Mapping[str, str] | None = None,
    queue_urls: Mapping[str, str] | None = None,
    bucket_names: Mapping[str, str] | None = None,
    state_machines: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """A function's environment, the same in the cloud and in the local stack.

    ``services`` names the event bus (``events``) and the lead topic (``sns``) where they exist (issue 14:
    and the console's sign-in, ``SIGN_IN_ENV``, in the cloud);
    ``queue_urls`` the queues by id (every queue the function sends to must be there), ``bucket_names``
    the buckets by id (likewise). The analytics functions get the analytics settings too.
    ``state_machines`` names, by workflow, the state machines of the workflows the function starts (the
    CDK stack adds these once the state machines exist: ``infra.constructs.analytics``).
    """
    env = {
        "POWERTOOLS_SERVICE_NAME": f"{SERVICE}-{spec.name}",
        "POWERTOOLS_METRICS_NAMESPACE": "Lifecycle",
        **{access.table.env: table_names[access.table.id] for access in spec.tables},
        **{access.queue.env: (queue_urls or {})[access.queue.id] for access in spec.queues},
        **{access.bucket.env: (bucket_names or {})[access.bucket.id] for access in spec.buckets},
        **(config.analytics_settings() if spec.capability == "analytics" else {}),
        **{
            SERVICE_ENV[kind]: (services or {})[kind]
            for kind in spec.services
            if kind in SERVICE_ENV and kind in (services or {})
        },
        **{
            name: (services or {})[key]
            for key, name in SIGN_IN_ENV.items()
            if "sign_in" in spec.services and key in (services or {})
        },
        **config.settings(),
        **spec.environment,
        **started_workflows(spec, state_machines),
    }
    return env


def started_workflows(spec: FunctionSpec, state_machines: Mapping[str, str] | None) -> dict[str, str]:
    """issue 13: the ARN of each workflow's state machine that ``spec`` starts, by environment variable."""
    from infra.wiring import WORKFLOWS
    from shared.adapters.backfill_runs import state_machine_env

    if state_machines is None:
        return {}
    return {
        state_machine_env(flow.name): state_machines[flow.name]
        for flow in WORKFLOWS
        if spec.name in flow.started_by
    }
