"""Function settings from the environment: the only module that reads it.

Each function declares a pydantic model; ``env_model`` validates it before the
handler runs, so a misconfigured function fails loudly on its first call. The
environment is the running function's (``shared.scope``): ``os.environ`` in
Lambda, exactly the function's own mapping in the local stack and the tests.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared import scope
from shared.adapters.queues import DELIVERY
from shared.adapters.tables import CONFIG, CONTACTS, EVENTS, RATES

M = TypeVar("M", bound=BaseModel)


class _Settings(BaseModel):
    # Built when first used: each function builds only the schema it loads (import time is cold start).
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)


class ContactsTableSettings(_Settings):
    contacts_table_name: str = Field(alias=CONTACTS.env, min_length=3)


class HalfLifeSettings(_Settings):
    #: half-life of current engagement; changing it restarts decayed engagement (lifetime totals stay)
    score_half_life_days: float = Field(30, alias="SCORE_HALF_LIFE_DAYS", gt=0, le=3650)


class ScoringConfigSettings(HalfLifeSettings):
    config_table_name: str = Field(alias=CONFIG.env, min_length=3)
    #: how long a function keeps the compiled rule book before reloading it
    rules_cache_seconds: float = Field(30, alias="RULES_CACHE_SECONDS", ge=0, le=3600)


class EventLogSettings(_Settings):
    """The event log, and how long it keeps events."""

    events_table_name: str = Field(alias=EVENTS.env, min_length=3)
    event_retention_days: int = Field(395, alias="EVENT_RETENTION_DAYS", ge=1, le=36500)
    purchase_retention_days: int = Field(3650, alias="PURCHASE_RETENTION_DAYS", ge=1, le=36500)


class ContactStoreSettings(ContactsTableSettings, EventLogSettings):
    """The contact store: profiles and the event log."""


class MergeSettings(ContactStoreSettings, HalfLifeSettings):
    """The merge function: the contact store, and the decay that scored the events it retracts."""


class ScoringSettings(ContactStoreSettings, ScoringConfigSettings):
    """The aggregation function: folds new events into profiles, scoring them."""


class RateLimitSettings(_Settings):
    """The tracking endpoint's rate limits: ``rate`` requests per second with a ``burst`` (docs/tracking.md)."""

    rates_table_name: str = Field(alias=RATES.env, min_length=3)
    #: a write key's limit, unless the key has its own (``python -m infra.write_keys limit``)
    key_rate_per_second: float = Field(500, alias="KEY_RATE_PER_SECOND", gt=0)
    key_burst: int = Field(1000, alias="KEY_BURST", ge=1)
    #: a client address's, counted over all browser keys (server keys are not limited by address)
    ip_rate_per_second: float = Field(20, alias="IP_RATE_PER_SECOND", gt=0)
    ip_burst: int = Field(100, alias="IP_BURST", ge=1)


class TrackingSettings(EventLogSettings, ScoringConfigSettings, RateLimitSettings):
    """The tracking function: appends scored events to the log (profiles are not its to write)."""

    #: where the sources' identity secrets are (SSM parameters ``<path><source>``)
    identity_secrets_path: str = Field(alias="IDENTITY_SECRETS_PATH", pattern=r"^/[A-Za-z0-9_.\-/]*/$")

    # Built at import, off its first request's path.
    model_config = ConfigDict(defer_build=False)


class EngagementSettings(ContactsTableSettings, ScoringConfigSettings):
    """The stage function: profiles, stages and the funnel (not the event log)."""

    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)
    lead_topic_arn: str | None = Field(None, alias="LEAD_TOPIC_ARN")
    sender_email: str | None = Field(None, alias="SENDER_EMAIL")
    due_shards: int = Field(8, alias="DUE_SHARDS", ge=1, le=256)
    sales_threshold: float = Field(50, alias="SALES_THRESHOLD", gt=0)
    exit_threshold: float = Field(10, alias="EXIT_THRESHOLD", ge=0)


class ConsentSettings(_Settings):
    """Which consent sources need the contact's confirmation (double opt-in), comma-separated."""

    double_opt_in_sources: str = Field("", alias="DOUBLE_OPT_IN_SOURCES")

    @property
    def double_opt_in(self) -> frozenset[str]:
        return frozenset(s.strip() for s in self.double_opt_in_sources.split(",") if s.strip())


class LinkSettings(_Settings):
    """Signed links to the public API (unsubscribe, confirmation): where they point, what signs them."""

    #: the Secrets Manager secret (ARN) that signs links and webhooks; read once per instance
    delivery_secret_arn: str = Field(alias="DELIVERY_SECRET_ARN", min_length=1)
    #: the public API's base URL, without a trailing slash
    public_base_url: str = Field(alias="PUBLIC_BASE_URL", pattern=r"^https?://[^\s]+[^/]$")
    #: how long an unsubscribe or confirmation link works
    link_days: int = Field(60, alias="LINK_DAYS", ge=1, le=3650)


class AutomationSettings(EngagementSettings, EventLogSettings, ConsentSettings):
    """The automation functions (events, signals, timers): profiles, stages and the event log, and the
    delivery queue they hand messages to (consent confirmations included)."""

    delivery_queue_url: str = Field(alias=DELIVERY.env, min_length=1)


class RecommendationModelSettings(_Settings):
    """Issue 15: the recommendation model's settings (``shared.recommendations.model.ModelSettings``), read
    from the same variables by the nightly fit and by serving (the admin and delivery functions), so that
    serving weighs a contact's products as the model was learnt. Code defaults unless a variable is set."""

    #: a view counts this much of a purchase
    recommendations_view_weight: float = Field(0.25, alias="RECOMMENDATIONS_VIEW_WEIGHT", gt=0, le=1)
    #: two products are neighbours only if at least this many contacts interacted with both
    recommendations_min_support: int = Field(2, alias="RECOMMENDATIONS_MIN_SUPPORT", ge=1, le=1000)
    #: neighbours kept per product (each one's item holds them: about 40 bytes each)
    recommendations_neighbours: int = Field(50, alias="RECOMMENDATIONS_NEIGHBOURS", ge=1, le=500)
    #: products kept in the popularity list
    recommendations_popular: int = Field(200, alias="RECOMMENDATIONS_POPULAR", ge=1, le=2000)
    #: serving: the k-th newest of a contact's recent products weighs ``recency ** k`` (1: all alike)
    recommendations_recency: float = Field(1.0, alias="RECOMMENDATIONS_RECENCY", gt=0, le=1)


class DeliverySettings(
    ContactsTableSettings,
    ScoringConfigSettings,
    EventLogSettings,
    ConsentSettings,
    LinkSettings,
    RecommendationModelSettings,
):
    """The delivery function: the send ledger, the checks before each send, and the providers."""

    rates_table_name: str = Field(alias=RATES.env, min_length=3)
    delivery_queue_url: str = Field(alias=DELIVERY.env, min_length=1)
    #: the verified SES identity emails come from; without it, emails are skipped ("no sender")
    sender_email: str | None = Field(None, alias="SENDER_EMAIL")
    #: the SES configuration set that publishes sends, bounces, complaints, opens and clicks
    configuration_set_name: str | None = Field(None, alias="CONFIGURATION_SET_NAME")
    #: the sender's postal address, at the foot of every marketing email (CAN-SPAM, and the anchors')
    postal_address: str = Field("", alias="POSTAL_ADDRESS")
    #: no marketing message between these local hours (start inclusive, end exclusive; 21 and 8: 21:00 to 08:00)
    quiet_hours_start: int = Field(21, alias="QUIET_HOURS_START", ge=0, le=23)
    quiet_hours_end: int = Field(8, alias="QUIET_HOURS_END", ge=0, le=23)
    #: at most this many marketing messages per contact and channel, across all automations
    email_per_day: int = Field(2, alias="EMAIL_PER_DAY", ge=1)
    email_per_week: int = Field(6, alias="EMAIL_PER_WEEK", ge=1)
    sms_per_day: int = Field(1, alias="SMS_PER_DAY", ge=1)
    sms_per_week: int = Field(3, alias="SMS_PER_WEEK", ge=1)
    #: the due index's shards, as the timer function reads them (deferrals go on it)
    due_shards: int = Field(8, alias="DUE_SHARDS", ge=1, le=256)
    #: an SMS may take at most this many segments (160 GSM-7 or 70 UCS-2 characters alone, 153 or 67 each
    #: when split)
    sms_max_segments: int = Field(2, alias="SMS_MAX_SEGMENTS", ge=1, le=10)
    #: hosts webhooks may reach over plain HTTP, comma-separated: only the local stack sets it (127.0.0.1 and
    #: localhost, a receiver under development); deployed, every webhook goes over HTTPS
    webhook_plain_http_hosts: str = Field("", alias="WEBHOOK_PLAIN_HTTP_HOSTS")

    @property
    def plain_http_hosts(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.webhook_plain_http_hosts.split(",") if h.strip())


class FeedbackSettings(ContactStoreSettings, ScoringConfigSettings):
    """The feedback function: suppressions, opens and clicks scored into the event log, the pause."""


class SurveyQuestionSettings(_Settings):
    """Issue 15: the NPS answer page asks its survey template's question, read from the config table."""

    config_table_name: str = Field(alias=CONFIG.env, min_length=3)
    #: how long an instance keeps a survey's question, as delivery keeps a template
    rules_cache_seconds: float = Field(30, alias="RULES_CACHE_SECONDS", ge=0, le=3600)


class PreferencesSettings(ContactStoreSettings, ConsentSettings, LinkSettings, SurveyQuestionSettings):
    """The preferences function: unsubscribe and confirmation links, and (issue 15) NPS answer links."""


class AdminSettings(ScoringSettings, EngagementSettings, ConsentSettings, RecommendationModelSettings):
    """The admin API: contact cards with their event log, rules, and moving a lead to SAL."""

    model_config = ConfigDict(defer_build=True)
    #: the sender's postal address, shown in template previews
    postal_address: str = Field("", alias="POSTAL_ADDRESS")


#: Each function's settings: exactly what it uses, nothing its template does not give it.
AggregationSettings = ScoringSettings
StageSettings = EngagementSettings


def load(model: type[M]) -> M:
    """The running function's settings, validated once per function instance."""
    running = scope.current()
    found = running.built.get(model)
    if found is None:
        environ = os.environ if running.environ is None else running.environ
        found = running.built[model] = model.model_validate(dict(environ))
    return found  # type: ignore[return-value]


def env_model(model: type[BaseModel]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Validate the function's settings before the handler body runs (in its scope, where one is hosted)."""

    def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
        name = f"{handler.__module__}.{handler.__qualname__}"

        @wraps(handler)
        def wrapper(event: Any, context: Any) -> Any:
            hosted = scope.hosted(name)  # None in Lambda: the process is the function
            if hosted is not None and scope.current_or_process() is not hosted:
                with hosted.active():
                    load(model)
                    return handler(event, context)
            load(model)
            return handler(event, context)

        wrapper.settings_model = model  # type: ignore[attr-defined]  # what the function's env must satisfy
        return wrapper

    return decorate


def reset() -> None:
    """Forget loaded settings (and whatever was built from them) in every function scope."""
    scope.reset()


# --- issue 12: the nightly analytics job (analytics_extract, analytics_fit, analytics_apply) ---------------


class AnalyticsBucketSettings(_Settings):
    #: the staging bucket: the files the job's steps hand on (``analytics/<day>/...``)
    analytics_bucket_name: str = Field(alias="ANALYTICS_BUCKET_NAME", min_length=3)


class AnalyticsExtractSettings(AnalyticsBucketSettings):
    """The extract step: the event log's purchase index, scanned segment by segment, and the bucket."""

    events_table_name: str = Field(alias=EVENTS.env, min_length=3)


class AnalyticsFitSettings(AnalyticsBucketSettings):
    """The fit step: what scoring runs with (``shared.analytics.scoring.ScoringSettings``)."""

    #: ``p_no_purchase`` is the probability of no purchase within this many days
    analytics_horizon_days: int = Field(90, alias="ANALYTICS_HORIZON_DAYS", ge=1, le=3650)
    #: RFM scores customers with a purchase within this many days of the cut-off
    analytics_lookback_days: int = Field(1095, alias="ANALYTICS_LOOKBACK_DAYS", ge=1, le=36500)
    #: customers per staged part of the scores: one apply step each
    analytics_part_size: int = Field(10_000, alias="ANALYTICS_PART_SIZE", ge=1, le=1_000_000)
    #: the RFM quintile edges, as shares of the scored customers: four, increasing, between 0 and 1
    rfm_edges: str = Field("0.2,0.4,0.6,0.8", alias="RFM_EDGES")
    #: churn risk at or above these is medium, high (unset: the code's defaults)
    risk_medium: float | None = Field(None, alias="RISK_MEDIUM", gt=0, lt=1)
    risk_high: float | None = Field(None, alias="RISK_HIGH", gt=0, lt=1)

    @field_validator("risk_medium", "risk_high", mode="before")
    @classmethod
    def _unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("rfm_edges")
    @classmethod
    def _edges(cls, value: str) -> str:
        try:
            edges = [float(part) for part in value.split(",")]
        except ValueError:
            raise ValueError("RFM_EDGES must be four numbers, comma-separated") from None
        if len(edges) != 4 or not all(a < b for a, b in zip([0.0, *edges], [*edges, 1.0], strict=True)):
            raise ValueError("RFM_EDGES must be four increasing shares between 0 and 1, e.g. 0.2,0.4,0.6,0.8")
        return value

    @model_validator(mode="after")
    def _levels(self) -> AnalyticsFitSettings:
        if self.risk_medium is not None and self.risk_high is not None and self.risk_medium >= self.risk_high:
            raise ValueError("RISK_MEDIUM must be below RISK_HIGH")
        return self

    @property
    def edges(self) -> tuple[float, float, float, float]:
        a, b, c, d = (float(part) for part in self.rfm_edges.split(","))
        return (a, b, c, d)


class AnalyticsApplySettings(AnalyticsBucketSettings, ContactsTableSettings):
    """The apply step: profiles and their history on the contacts table, and the bus it announces on."""

    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)


# --- issue 13: campaigns ------------------------------------------------------------------------------------


class CampaignSettings(ContactsTableSettings, ScoringConfigSettings):
    """The campaigns function: campaign documents and states (config table), exposures and counters and the
    segments' members (contacts table), and the delivery queue it hands requests to."""

    delivery_queue_url: str = Field(alias=DELIVERY.env, min_length=1)
    #: members read (and planned) per page; each page is saved before the next
    campaign_page_size: int = Field(500, alias="CAMPAIGN_PAGE_SIZE", ge=1, le=1000)


# --- issue 13: lifecycle metrics (the metrics function; the events trigger's and the admin's part) ---------


class MetricsTableSettings(_Settings):
    #: the lifecycle counters (``shared.adapters.tables.METRICS``)
    metrics_table_name: str = Field(alias="METRICS_TABLE_NAME", min_length=3)


class MetricsSettings(MetricsTableSettings):
    """The metrics function: stage moves from the bus, counted on the metrics table."""


# --- issue 13: back-fills (backfill_contacts, backfill_purchases, backfill_metrics; the admin starts them) --------------------


class BackfillContactsSettings(StageSettings):
    """The contacts back-fill: the stage function's settings (its evaluation runs on every profile)."""


class BackfillPurchasesSettings(_Settings):
    """The purchases back-fill: the event log, scanned segment by segment and updated."""

    events_table_name: str = Field(alias=EVENTS.env, min_length=3)


class BackfillMetricsSettings(ContactsTableSettings, MetricsTableSettings):
    """The metrics back-fill: the contacts table's stage history, scanned segment by segment, counted on the
    metrics table as the metrics function counts."""


class BackfillStartSettings(_Settings):
    """The functions that start back-fills (the admin): each workflow's state machine, by its ARN."""

    contacts_backfill_state_machine_arn: str = Field(
        alias="CONTACTS_BACKFILL_STATE_MACHINE_ARN",
        pattern=r"^arn:[a-z-]+:states:[^:]*:[0-9]*:stateMachine:.+$",
    )
    purchases_backfill_state_machine_arn: str = Field(
        alias="PURCHASES_BACKFILL_STATE_MACHINE_ARN",
        pattern=r"^arn:[a-z-]+:states:[^:]*:[0-9]*:stateMachine:.+$",
    )
    metrics_backfill_state_machine_arn: str = Field(
        alias="METRICS_BACKFILL_STATE_MACHINE_ARN",
        pattern=r"^arn:[a-z-]+:states:[^:]*:[0-9]*:stateMachine:.+$",
    )

    @property
    def state_machines(self) -> dict[str, str]:
        return {
            "contacts_backfill": self.contacts_backfill_state_machine_arn,
            "purchases_backfill": self.purchases_backfill_state_machine_arn,
            "metrics_backfill": self.metrics_backfill_state_machine_arn,
        }


# --- issue 14: the console -----------------------------------------------------------------------------


class ConsoleSettings(_Settings):
    """The console function: the web page, and where its calls to the admin API go."""

    model_config = ConfigDict(defer_build=True)
    #: the prefix of the admin routes the page calls ("" locally: /admin/... from loopback; in the cloud
    #: the routes that accept the console's sign-in)
    console_api_base: str = Field("", alias="CONSOLE_API_BASE")
    #: issue 14: the Cognito hosted login's base URL and the console's app client, in the cloud only (both
    #: or neither: unset locally, where the page needs no sign-in)
    console_sign_in_url: str | None = Field(None, alias="CONSOLE_SIGN_IN_URL", min_length=1)
    console_client_id: str | None = Field(None, alias="CONSOLE_CLIENT_ID", min_length=1)

    @model_validator(mode="after")
    def _sign_in_whole(self) -> ConsoleSettings:
        if (self.console_sign_in_url is None) != (self.console_client_id is None):
            raise ValueError("CONSOLE_SIGN_IN_URL and CONSOLE_CLIENT_ID are set together, or neither")
        return self


# --- issue 15: the nightly recommendations pass --------------------------------------------------------------


class RecommendationsExtractSettings(AnalyticsBucketSettings, ContactsTableSettings):
    """The extract step: the contacts' profiles, scanned segment by segment, and the bucket."""


class RecommendationsFitSettings(AnalyticsBucketSettings, RecommendationModelSettings):
    """The fit step: the model's settings (``shared.recommendations.model.ModelSettings``) and the parts."""

    #: products per staged part of the model: one write step each
    recommendations_part_size: int = Field(10_000, alias="RECOMMENDATIONS_PART_SIZE", ge=1, le=1_000_000)


class RecommendationsWriteSettings(AnalyticsBucketSettings):
    """The write step: the staged parts, and the config table the model's items go to."""

    config_table_name: str = Field(alias=CONFIG.env, min_length=3)
