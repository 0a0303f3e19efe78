"""Composition root: builds each function's dependencies on first use, never at import.

Handlers call these factories; what they build is kept per function scope (``shared.scope``), so in
the local stack and the tests one function's dependencies never serve another. The local stack and
the tests replace the clock (``shared.clock.install``) or call ``reset()`` to start instances cold.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from shared import clock, scope, settings
from shared.adapters import aws
from shared.adapters.contact_items import Retention
from shared.adapters.event_log import DynamoEventLog
from shared.adapters.rule_store import DynamoRuleStore
from shared.scoring.decay import Decay

if TYPE_CHECKING:  # each factory imports only what its own function needs
    from shared.adapters.analytics_staging import S3Staging
    from shared.adapters.automation_runs import DynamoRunStore
    from shared.adapters.automation_store import DynamoAutomationStore
    from shared.adapters.campaign_results import DynamoExposures
    from shared.adapters.campaign_store import DynamoCampaignStatus, DynamoCampaignStore
    from shared.adapters.catalog_store import DynamoCatalog
    from shared.adapters.contact_effects import DynamoContactEffects
    from shared.adapters.contact_merges import DynamoMergeStore
    from shared.adapters.contact_search import DynamoContactSearch
    from shared.adapters.contact_store import DynamoContactStore
    from shared.adapters.engagement_config import DynamoEngagementConfig
    from shared.adapters.metric_store import DynamoMetricStore
    from shared.adapters.purchase_history import DynamoPurchaseHistory
    from shared.adapters.recommendation_nightly import S3RecommendationStaging
    from shared.adapters.segment_store import DynamoSegmentStore
    from shared.adapters.send_ledger import DynamoSendLedger
    from shared.adapters.template_store import DynamoTemplateStore
    from shared.admin.dependencies import Admin
    from shared.console import ConsoleConfig
    from shared.contacts.identity import ContactId
    from shared.recommendations.model import ModelSettings
    from shared.segments.members import SegmentMembers
    from shared.usecases.aggregation import Aggregation
    from shared.usecases.analytics import Applying, Extracting, Fitting
    from shared.usecases.automation import Automating
    from shared.usecases.backfills import ContactsBackfilling, MetricsBackfilling, PurchasesBackfilling
    from shared.usecases.campaigns import Campaigning, Converting
    from shared.usecases.delivery import Delivering
    from shared.usecases.engagement import Engagement
    from shared.usecases.feedback import Feedback
    from shared.usecases.merging import Merging
    from shared.usecases.metrics import PurchaseMetering, StageMetering
    from shared.usecases.nps import NpsRecording
    from shared.usecases.nps_metrics import SurveyMetering
    from shared.usecases.preferences import Preferences
    from shared.usecases.recommendation_nightly import Extracting as RecommendationsExtracting
    from shared.usecases.recommendation_nightly import Fitting as RecommendationsFitting
    from shared.usecases.recommendation_nightly import Writing as RecommendationsWriting
    from shared.usecases.search import SearchTerms
    from shared.usecases.tracking import Tracking


def _aws() -> None:
    from shared.observability import trace_aws_calls

    trace_aws_calls()


def _event_log(config: settings.EventLogSettings) -> DynamoEventLog:
    return DynamoEventLog(
        aws.client("dynamodb"),
        events_table=config.events_table_name,
        retention=Retention(days=config.event_retention_days, purchase_days=config.purchase_retention_days),
    )


def _contact_store(config: settings.ContactStoreSettings) -> DynamoContactStore:
    from shared.adapters.contact_store import DynamoContactStore

    return DynamoContactStore(
        aws.client("dynamodb"),
        contacts_table=config.contacts_table_name,
        events_table=config.events_table_name,
    )


def _merge_store(config: settings.ContactStoreSettings) -> DynamoMergeStore:
    from shared.adapters.contact_merges import DynamoMergeStore

    return DynamoMergeStore(
        aws.client("dynamodb"),
        contacts_table=config.contacts_table_name,
        events_table=config.events_table_name,
    )


def _rules(config: settings.ScoringSettings) -> DynamoRuleStore:
    return DynamoRuleStore(
        aws.client("dynamodb"), table=config.config_table_name, cache_seconds=config.rules_cache_seconds
    )


def _automations(config: settings.ScoringConfigSettings) -> DynamoAutomationStore:
    from shared.adapters.automation_store import DynamoAutomationStore

    return DynamoAutomationStore(
        aws.client("dynamodb"), table=config.config_table_name, cache_seconds=config.rules_cache_seconds
    )


def _contact_effects(config: settings.AutomationSettings) -> DynamoContactEffects:
    from shared.adapters.contact_effects import DynamoContactEffects

    return DynamoContactEffects(
        aws.client("dynamodb"),
        contacts_table=config.contacts_table_name,
        events_table=config.events_table_name,
        retention=Retention(days=config.event_retention_days, purchase_days=config.purchase_retention_days),
    )


def _runs(config: settings.EngagementSettings) -> DynamoRunStore:
    from shared.adapters.automation_runs import DynamoRunStore

    return DynamoRunStore(
        aws.client("dynamodb"), contacts_table=config.contacts_table_name, due_shards=config.due_shards
    )


def _decay(config: settings.HalfLifeSettings) -> Decay:
    return Decay(half_life=timedelta(days=config.score_half_life_days))


@scope.per_function
def tracking() -> Tracking:
    from shared.adapters.identity_secrets import SsmIdentitySecrets
    from shared.adapters.rate_counters import DynamoRateCounters
    from shared.adapters.write_keys import DynamoWriteKeys
    from shared.observability import PowertoolsTelemetry
    from shared.tracking.rates import RateLimit
    from shared.usecases.rate_limiting import RateLimits, RequestLimiter
    from shared.usecases.tracking import Tracking

    config = settings.load(settings.TrackingSettings)
    _aws()
    limits = RateLimits(
        key=RateLimit(rate=config.key_rate_per_second, burst=config.key_burst),
        ip=RateLimit(rate=config.ip_rate_per_second, burst=config.ip_burst),
    )
    telemetry = PowertoolsTelemetry()
    return Tracking(
        clock=clock.current(),
        write_keys=DynamoWriteKeys(aws.client("dynamodb"), table=config.config_table_name),
        # its client is made on first use: most requests never read a secret
        identity_secrets=SsmIdentitySecrets(lambda: aws.client("ssm"), path=config.identity_secrets_path),
        log=_event_log(config),
        rules=_rules(config),
        decay=_decay(config),
        telemetry=telemetry,
        limiter=RequestLimiter(
            DynamoRateCounters(aws.client("dynamodb"), table=config.rates_table_name), limits, telemetry
        ),
    )


@scope.per_function
def aggregation() -> Aggregation:
    from shared.observability import PowertoolsTelemetry
    from shared.usecases.aggregation import Aggregation

    config = settings.load(settings.AggregationSettings)
    _aws()
    return Aggregation(
        contacts=_contact_store(config),
        log=_event_log(config),
        rules=_rules(config),
        decay=_decay(config),
        telemetry=PowertoolsTelemetry(),
        automations=_automations(config),
        # issue 13: the last times segments read are kept too
        segments=_segments(config),
    )


@scope.per_function
def merging() -> Merging:
    from shared.observability import PowertoolsTelemetry
    from shared.usecases.merging import Merging

    config = settings.load(settings.MergeSettings)
    _aws()
    return Merging(
        clock=clock.current(),
        contacts=_merge_store(config),
        decay=_decay(config),
        telemetry=PowertoolsTelemetry(),
    )


@scope.per_function
def _engagement_config() -> DynamoEngagementConfig:
    """One store for the funnel, the team and the rotation: an admin change clears the cache they read."""
    from shared.adapters.engagement_config import DynamoEngagementConfig
    from shared.engagement.index import Thresholds

    config = settings.load(settings.EngagementSettings)
    return DynamoEngagementConfig(
        aws.client("dynamodb"),
        table=config.config_table_name,
        thresholds=Thresholds(sales=config.sales_threshold, exit=config.exit_threshold),
        cache_seconds=config.rules_cache_seconds,
    )


@scope.per_function
def engagement() -> Engagement:
    from shared.adapters.publisher import AwsPublisher
    from shared.adapters.stage_store import DynamoStageStore
    from shared.observability import PowertoolsTelemetry
    from shared.usecases.automation import Watches
    from shared.usecases.engagement import Engagement

    config = settings.load(settings.EngagementSettings)
    _aws()
    decay = _decay(config)
    team = _engagement_config()
    return Engagement(
        clock=clock.current(),
        funnels=team,
        decay=decay,
        stages=DynamoStageStore(
            aws.client("dynamodb"),
            contacts_table=config.contacts_table_name,
            decay=decay,
            due_shards=config.due_shards,
        ),
        router=team,
        publisher=AwsPublisher(
            aws.client("events"),
            bus=config.event_bus_name,
            sns=aws.client("sns") if config.lead_topic_arn else None,
            topic_arn=config.lead_topic_arn,
            ses=aws.client("ses") if config.sender_email else None,
            sender=config.sender_email,
        ),
        telemetry=PowertoolsTelemetry(),
        automations=Watches(_automations(config)),
        # issue 13: segment memberships are part of every evaluation
        segments=_segments(config),
        double_opt_in=settings.load(settings.ConsentSettings).double_opt_in,
    )


@scope.per_function
def automating() -> Automating:
    """The automation functions: started by tracked events, lifecycle signals and timers."""
    from shared.adapters.delivery_queue import SqsDeliveryQueue
    from shared.observability import PowertoolsTelemetry
    from shared.usecases.automation import Automating
    from shared.usecases.engagement import StageMoves

    config = settings.load(settings.AutomationSettings)
    _aws()
    return Automating(
        clock=clock.current(),
        automations=_automations(config),
        contacts=_contact_store(config),
        runs=_runs(config),
        queue=SqsDeliveryQueue(aws.client("sqs"), queue_url=config.delivery_queue_url),
        effects=_contact_effects(config),
        stages=StageMoves(engagement()),
        decay=_decay(config),
        telemetry=PowertoolsTelemetry(),
        double_opt_in=config.double_opt_in,
        # issue 13: automations with a holdout expose their contacts (the uplift report)
        exposures=_exposures(config),
    )


@scope.per_function
def nps_recording() -> NpsRecording:
    """Issue 15: the events trigger's part: NPS answers (``NPS Submitted``) recorded once, announced."""
    from shared.adapters.nps_answers import DynamoAnswerStore, EventBridgeNpsAnnouncer
    from shared.observability import PowertoolsTelemetry
    from shared.usecases.nps import NpsRecording

    config = settings.load(settings.AutomationSettings)
    _aws()
    return NpsRecording(
        clock=clock.current(),
        contacts=_contact_store(config),
        answers=DynamoAnswerStore(aws.client("dynamodb"), contacts_table=config.contacts_table_name),
        log=_event_log(config),
        announcer=EventBridgeNpsAnnouncer(aws.client("events"), bus=config.event_bus_name),
        telemetry=PowertoolsTelemetry(),
    )


def stage_reevaluation() -> Callable[[ContactId], int]:
    """The timer function's look at a contact whose due time has come: its stage, through engagement."""
    from shared.usecases.engagement import reevaluate

    return partial(reevaluate, deps=engagement())


@scope.per_function
def admin() -> Admin:
    from shared.adapters.contact_log import DynamoContactLog
    from shared.admin.dependencies import Admin

    config = settings.load(settings.AdminSettings)
    _aws()
    return Admin(
        contacts=_contact_store(config),
        log=DynamoContactLog(aws.client("dynamodb"), events_table=config.events_table_name),
        rules=_rules(config),
        automations=_automations(config),
        runs=_runs(config),
        funnels=_engagement_config(),
        team=_engagement_config(),
        clock=clock.current(),
        decay=_decay(config),
        engagement=engagement(),
        templates=_templates(config),
        postal_address=config.postal_address,
        # issue 11, the deliveries card
        ledger=_send_ledger(config),
        double_opt_in=config.double_opt_in,
        # issue 11, consent: an administrator's consent is an event in the contact's log
        consent_log=_event_log(config),
        # issue 11: feedback (the sending pause, suppressions, erasure)
        **_admin_delivery(config),
        # issue 12: the nightly analytics job (the contact card's analytics history)
        **_admin_analytics(config),
        # issue 13: segments
        **_admin_segments(config),
        # issue 13: campaigns
        **_admin_campaigns(config),
        # issue 13: lifecycle metrics (``/admin/metrics``)
        **_admin_metrics(),
        # issue 13: back-fills (started when a segment is saved, or by hand)
        **_admin_backfills(),
        # issue 14: the console's sales view (a salesperson's leads, from the look-up index)
        **_admin_leads(config),
        # issue 14: contact search
        search=_contact_search(config),
        # issue 15: the product catalog and recommendations (one store serves both)
        **_admin_recommendations(config),
    )


def _admin_recommendations(config: settings.AdminSettings) -> dict[str, Any]:
    catalog = _catalog(config.config_table_name)
    return {
        "catalog": catalog,
        "recommendations": catalog,
        "purchases": _purchase_history(config.events_table_name),
        "recommendation_settings": _model_settings(config),
    }


def _catalog(table: str) -> DynamoCatalog:
    from shared.adapters.catalog_store import DynamoCatalog

    return DynamoCatalog(aws.client("dynamodb"), table=table)


def _model_settings(config: settings.RecommendationModelSettings) -> ModelSettings:
    """Issue 15: the recommendation model's settings, the same for the nightly fit and for serving."""
    from shared.recommendations.model import ModelSettings

    return ModelSettings(
        view_weight=config.recommendations_view_weight,
        min_support=config.recommendations_min_support,
        neighbours=config.recommendations_neighbours,
        popular=config.recommendations_popular,
        recency=config.recommendations_recency,
    )


def _purchase_history(events_table: str) -> DynamoPurchaseHistory:
    from shared.adapters.purchase_history import DynamoPurchaseHistory

    return DynamoPurchaseHistory(aws.client("dynamodb"), events_table=events_table)


def _admin_leads(config: settings.AdminSettings) -> dict[str, Any]:
    from shared.adapters.sales_leads import DynamoSalesLeads

    return {"leads": DynamoSalesLeads(aws.client("dynamodb"), contacts_table=config.contacts_table_name)}


# --- issue 11: delivery (the delivery function) ------------------------------------------------------


@scope.per_function
def delivering() -> Delivering:
    """The delivery function: the send ledger, the checks before each send, and the providers."""
    from shared.adapters.delivery_control import DynamoDeliveryControl
    from shared.adapters.delivery_queue import SqsDeliveryQueue
    from shared.adapters.delivery_secret import SecretsManagerSecret
    from shared.adapters.engagement_times import DynamoEngagementTimes
    from shared.adapters.frequency_caps import DynamoFrequencyCaps
    from shared.adapters.recipients import DynamoRecipients
    from shared.adapters.ses_mailer import SesMailer
    from shared.adapters.sns_texter import SnsTexter
    from shared.adapters.suppressions import DynamoSuppressions
    from shared.adapters.template_store import DynamoTemplateStore
    from shared.adapters.webhook_poster import HttpWebhookPoster
    from shared.delivery.policy import Caps, QuietHours, SendingPolicy
    from shared.delivery.templates import TemplateRendering, template_context
    from shared.observability import PowertoolsTelemetry
    from shared.usecases.delivery import Delivering
    from shared.usecases.recommendations import Recommender

    config = settings.load(settings.DeliverySettings)
    _aws()
    dynamodb = aws.client("dynamodb")
    recipients = DynamoRecipients(dynamodb, contacts_table=config.contacts_table_name)
    return Delivering(
        clock=clock.current(),
        ledger=_send_ledger(config),
        recipients=recipients,
        suppressions=DynamoSuppressions(dynamodb, table=config.contacts_table_name),
        caps=DynamoFrequencyCaps(dynamodb, table=config.rates_table_name),
        control=DynamoDeliveryControl(dynamodb, table=config.config_table_name),
        # sending is not idempotent: the provider calls make one attempt (no SDK retries, which would send
        # again after a read timeout); the use case decides what a failure means
        mailer=SesMailer(aws.provider_client("sesv2"), configuration_set=config.configuration_set_name),
        texter=SnsTexter(aws.client("sns"), publisher=aws.provider_client("sns")),
        # plain HTTP only to the hosts the local stack names (WEBHOOK_PLAIN_HTTP_HOSTS, from issue11-local)
        webhooks=HttpWebhookPoster(plain_http_hosts=config.plain_http_hosts),
        # its client is made on first use: most sends read it once per instance
        secrets=SecretsManagerSecret(
            lambda: aws.client("secretsmanager"), secret_arn=config.delivery_secret_arn
        ),
        renderer=TemplateRendering(
            DynamoTemplateStore(
                dynamodb, table=config.config_table_name, cache_seconds=config.rules_cache_seconds
            )
        ),
        template_context=template_context,
        times=DynamoEngagementTimes(dynamodb, events_table=config.events_table_name),
        redeliveries=SqsDeliveryQueue(aws.client("sqs"), queue_url=config.delivery_queue_url),
        telemetry=PowertoolsTelemetry(),
        policy=SendingPolicy(
            quiet=QuietHours(config.quiet_hours_start, config.quiet_hours_end),
            double_opt_in=config.double_opt_in,
            caps={
                "email": Caps(per_day=config.email_per_day, per_week=config.email_per_week),
                "sms": Caps(per_day=config.sms_per_day, per_week=config.sms_per_week),
            },
        ),
        sender=config.sender_email,
        postal_address=config.postal_address,
        public_base_url=config.public_base_url,
        link_days=config.link_days,
        sms_max_segments=config.sms_max_segments,
        # issue 13: a cancelled campaign's requests are skipped; campaign sends are counted
        campaigns=_campaign_status(config),
        results=_exposures(config),
        # issue 15: a template's recommendations (read only for the templates that name them)
        recommender=Recommender(
            profiles=recipients,
            reads=_catalog(config.config_table_name),
            purchases=_purchase_history(config.events_table_name),
            settings=_model_settings(config),
        ),
        # issue 15: surveys sent, counted for the NPS response rate
        surveys=_survey_metering(),
    )


def _survey_metering() -> SurveyMetering:
    """Issue 15: the counters of surveys sent (the renderer says which templates are surveys)."""
    from shared.observability import PowertoolsTelemetry
    from shared.usecases.nps_metrics import SurveyMetering

    return SurveyMetering(store=_metric_store(), telemetry=PowertoolsTelemetry())


def _send_ledger(config: settings.AdminSettings | settings.DeliverySettings) -> DynamoSendLedger:
    from shared.adapters.send_ledger import DynamoSendLedger

    return DynamoSendLedger(
        aws.client("dynamodb"), contacts_table=config.contacts_table_name, due_shards=config.due_shards
    )


def reset() -> None:
    """Forget built dependencies, settings, clients and stand-ins in every function scope."""
    settings.reset()
    aws.reset()


# -- issue 11: email templates ------------------------------------------------------------------------


def _templates(config: settings.ScoringConfigSettings) -> DynamoTemplateStore:
    """The stored templates (jinja2 is imported only by the functions that render or edit them)."""
    from shared.adapters.template_store import DynamoTemplateStore

    return DynamoTemplateStore(
        aws.client("dynamodb"), table=config.config_table_name, cache_seconds=config.rules_cache_seconds
    )


# --- issue 11: feedback (SES events, the reputation pause) ------------------------------------------------


@scope.per_function
def feedback() -> Feedback:
    """The feedback function: suppressions, opens and clicks scored into the event log, the pause."""
    from shared.adapters.delivery_control import DynamoDeliveryControl
    from shared.adapters.suppressions import DynamoSuppressions
    from shared.observability import PowertoolsTelemetry
    from shared.usecases.feedback import Feedback

    config = settings.load(settings.FeedbackSettings)
    _aws()
    client = aws.client("dynamodb")
    return Feedback(
        clock=clock.current(),
        suppressions=DynamoSuppressions(client, table=config.contacts_table_name),
        control=DynamoDeliveryControl(client, table=config.config_table_name),
        contacts=_contact_store(config),
        log=_event_log(config),
        rules=_rules(config),
        decay=_decay(config),
        telemetry=PowertoolsTelemetry(),
        # issue 13: a campaign email's delivery, first open and first click count for its arm
        results=_exposures(config),
    )


def _admin_delivery(config: settings.AdminSettings) -> dict[str, Any]:
    """The admin's delivery switches and erasure (``Admin.control``, ``suppressions``, ``erasure``)."""
    from shared.adapters.contact_erasure import DynamoContactErasure
    from shared.adapters.delivery_control import DynamoDeliveryControl
    from shared.adapters.suppressions import DynamoSuppressions
    from shared.observability import PowertoolsTelemetry
    from shared.usecases.erasure import Erasure

    client = aws.client("dynamodb")
    return {
        # no cache: an administrator reads back what they just changed
        "control": DynamoDeliveryControl(client, table=config.config_table_name, cache_seconds=0),
        "suppressions": DynamoSuppressions(client, table=config.contacts_table_name),
        "erasure": Erasure(
            contacts=_contact_store(config),
            erasure=DynamoContactErasure(
                client, contacts_table=config.contacts_table_name, events_table=config.events_table_name
            ),
            telemetry=PowertoolsTelemetry(),
            # issue 13: an erased contact leaves its stage first (the lifecycle metrics), as the stage function
            # removes it
            engagement=engagement(),
        ),
    }


# --- issue 11, consent: the preferences function ---------------------------------------------------------


@scope.per_function
def preferences() -> Preferences:
    """The unsubscribe, confirmation and NPS answer links: the signing secret, the profile, the event log,
    and (issue 15) the survey templates' questions."""
    from shared.adapters.consent_profiles import DynamoConsentProfiles
    from shared.adapters.delivery_secret import SecretsManagerSecret
    from shared.adapters.survey_questions import DynamoSurveyQuestions
    from shared.observability import PowertoolsTelemetry
    from shared.usecases.preferences import Preferences

    config = settings.load(settings.PreferencesSettings)
    _aws()
    return Preferences(
        clock=clock.current(),
        # its client is made on first use, and the secret read once per instance
        secret=SecretsManagerSecret(
            lambda: aws.client("secretsmanager"), secret_arn=config.delivery_secret_arn
        ),
        profiles=DynamoConsentProfiles(aws.client("dynamodb"), contacts_table=config.contacts_table_name),
        log=_event_log(config),
        telemetry=PowertoolsTelemetry(),
        # issue 15: an NPS answer link's contact, followed to the profile that holds it now
        contacts=_contact_store(config),
        # issue 15: the question the answer form asks, its survey template's (one GetItem, kept a while)
        surveys=DynamoSurveyQuestions(
            aws.client("dynamodb"), table=config.config_table_name, cache_seconds=config.rules_cache_seconds
        ),
    )


# --- issue 12: the nightly analytics job (analytics_extract, analytics_fit, analytics_apply) ---------------


def _staging(config: settings.AnalyticsBucketSettings) -> S3Staging:
    from shared.adapters.analytics_staging import S3Staging

    return S3Staging(aws.client("s3"), bucket=config.analytics_bucket_name)


@scope.per_function
def analytics_extract() -> Extracting:
    """Step 1: a segment of the purchase index, staged."""
    from shared.adapters.purchase_index import DynamoPurchaseScan
    from shared.observability import PowertoolsTelemetry
    from shared.usecases.analytics import Extracting

    config = settings.load(settings.AnalyticsExtractSettings)
    _aws()
    return Extracting(
        purchases=DynamoPurchaseScan(aws.client("dynamodb"), events_table=config.events_table_name),
        staging=_staging(config),
        telemetry=PowertoolsTelemetry(),
        clock=clock.current(),
    )


@scope.per_function
def analytics_fit() -> Fitting:
    """Step 2: the models (numpy and scipy: this function's layer only) score the staged purchases."""
    from shared.analytics.rfm import RfmSettings
    from shared.analytics.scoring import RiskLevels, ScoringSettings
    from shared.observability import PowertoolsTelemetry
    from shared.usecases.analytics import Fitting

    config = settings.load(settings.AnalyticsFitSettings)
    _aws()
    levels = {"medium": config.risk_medium, "high": config.risk_high}
    return Fitting(
        staging=_staging(config),
        telemetry=PowertoolsTelemetry(),
        scoring=ScoringSettings(
            horizon_days=config.analytics_horizon_days,
            rfm=RfmSettings(lookback_days=config.analytics_lookback_days, edges=config.edges),
            risk=RiskLevels(**{level: value for level, value in levels.items() if value is not None}),
        ),
        part_size=config.analytics_part_size,
        clock=clock.current(),
    )


@scope.per_function
def analytics_apply() -> Applying:
    """Step 3: a part of the scores onto the profiles, the changes announced on the bus."""
    from shared.adapters.analytics_announcer import EventBridgeAnnouncer
    from shared.adapters.analytics_store import DynamoAnalyticsStore
    from shared.observability import PowertoolsTelemetry
    from shared.usecases.analytics import Applying

    config = settings.load(settings.AnalyticsApplySettings)
    _aws()
    return Applying(
        staging=_staging(config),
        analytics=DynamoAnalyticsStore(aws.client("dynamodb"), contacts_table=config.contacts_table_name),
        announcer=EventBridgeAnnouncer(aws.client("events"), bus=config.event_bus_name),
        telemetry=PowertoolsTelemetry(),
        clock=clock.current(),
    )


def _admin_analytics(config: settings.AdminSettings) -> dict[str, Any]:
    """The contact card's analytics history (``Admin.analytics``)."""
    from shared.adapters.analytics_store import DynamoAnalyticsStore

    return {
        "analytics": DynamoAnalyticsStore(aws.client("dynamodb"), contacts_table=config.contacts_table_name)
    }


# --- issue 13: segments -------------------------------------------------------------------------------------


def _segments(config: settings.ScoringConfigSettings) -> DynamoSegmentStore:
    """The stored segments; their book (what evaluations use) is read again at most every cache period."""
    from shared.adapters.segment_store import DynamoSegmentStore

    return DynamoSegmentStore(
        aws.client("dynamodb"), table=config.config_table_name, cache_seconds=config.rules_cache_seconds
    )


# --- issue 13: campaigns (the campaigns function; counting in delivery, feedback and automation_events) ------


def _segment_members(config: settings.ContactsTableSettings) -> SegmentMembers:
    """A segment's members, a page at a time, from the membership index (the admin's member listings and
    counts, the campaign planner's audience)."""
    from shared.adapters.segment_members import DynamoSegmentMembers

    return DynamoSegmentMembers(aws.client("dynamodb"), table=config.contacts_table_name)


def _campaign_store(config: settings.ScoringConfigSettings) -> DynamoCampaignStore:
    from shared.adapters.campaign_store import DynamoCampaignStore

    return DynamoCampaignStore(
        aws.client("dynamodb"), table=config.config_table_name, cache_seconds=config.rules_cache_seconds
    )


def _admin_segments(config: settings.AdminSettings) -> dict[str, Any]:
    """``/admin/segments``: the stored segments and their members (``Admin.segments``, ``segment_members``)."""
    return {
        "segments": _segments(config),
        "segment_members": _segment_members(config),
    }


def _campaign_status(config: settings.ScoringConfigSettings) -> DynamoCampaignStatus:
    from shared.adapters.campaign_store import DynamoCampaignStatus

    return DynamoCampaignStatus(
        aws.client("dynamodb"), table=config.config_table_name, cache_seconds=config.rules_cache_seconds
    )


def _exposures(config: settings.ContactsTableSettings) -> DynamoExposures:
    from shared.adapters.campaign_results import DynamoExposures

    return DynamoExposures(aws.client("dynamodb"), contacts_table=config.contacts_table_name)


@scope.per_function
def campaigning() -> Campaigning:
    """The campaigns function: plans live campaigns' sends through the delivery queue."""
    from shared.adapters.campaign_store import DynamoCampaignStates
    from shared.adapters.delivery_queue import SqsDeliveryQueue
    from shared.observability import PowertoolsTelemetry
    from shared.usecases.campaigns import Campaigning

    config = settings.load(settings.CampaignSettings)
    _aws()
    return Campaigning(
        clock=clock.current(),
        campaigns=_campaign_store(config),
        states=DynamoCampaignStates(aws.client("dynamodb"), table=config.config_table_name),
        members=_segment_members(config),
        exposures=_exposures(config),
        queue=SqsDeliveryQueue(aws.client("sqs"), queue_url=config.delivery_queue_url),
        telemetry=PowertoolsTelemetry(),
        page_size=config.campaign_page_size,
    )


@scope.per_function
def converting() -> Converting:
    """The automation_events function's count of conversions and unsubscribes of exposed contacts."""
    from shared.observability import PowertoolsTelemetry
    from shared.usecases.campaigns import Converting

    config = settings.load(settings.AutomationSettings)
    _aws()
    return Converting(
        campaigns=_campaign_store(config),
        automations=_automations(config),
        exposures=_exposures(config),
        telemetry=PowertoolsTelemetry(),
    )


# --- issue 13: lifecycle metrics (the metrics function, the events trigger's purchases, the admin's reports) --


def _metric_store() -> DynamoMetricStore:
    from shared.adapters.metric_store import DynamoMetricStore

    config = settings.load(settings.MetricsTableSettings)
    return DynamoMetricStore(aws.client("dynamodb"), table=config.metrics_table_name)


@scope.per_function
def stage_metering() -> StageMetering:
    """The metrics function: each stage move announced on the bus, counted once."""
    from shared.observability import PowertoolsTelemetry
    from shared.usecases.metrics import StageMetering

    settings.load(settings.MetricsSettings)
    _aws()
    return StageMetering(store=_metric_store(), telemetry=PowertoolsTelemetry())


@scope.per_function
def purchase_metering() -> PurchaseMetering:
    """The events trigger's part: each recorded purchase counted once, by the stage the contact was in when
    it bought (its stage history) and its RFM segment (its profile)."""
    from shared.adapters.stage_timeline import DynamoStageTimeline
    from shared.observability import PowertoolsTelemetry
    from shared.usecases.metrics import PurchaseMetering

    config = settings.load(settings.AutomationSettings)
    _aws()
    return PurchaseMetering(
        store=_metric_store(),
        contacts=_contact_store(config),
        timeline=DynamoStageTimeline(aws.client("dynamodb"), contacts_table=config.contacts_table_name),
        funnels=_engagement_config(),
        telemetry=PowertoolsTelemetry(),
    )


def _admin_campaigns(config: settings.AdminSettings) -> dict[str, Any]:
    """``Admin.campaigns``, ``campaign_states``, ``campaign_results``."""
    from shared.adapters.campaign_store import DynamoCampaignStates, DynamoCampaignStore

    client = aws.client("dynamodb")
    return {
        # no cache: an administrator reads back what they just changed
        "campaigns": DynamoCampaignStore(client, table=config.config_table_name, cache_seconds=0),
        "campaign_states": DynamoCampaignStates(client, table=config.config_table_name),
        "campaign_results": _exposures(config),
    }


def _admin_metrics() -> dict[str, Any]:
    """The lifecycle counters the admin's reports read (``Admin.metrics``)."""
    return {"metrics": _metric_store()}


# --- issue 13: back-fills (backfill_contacts, backfill_purchases, backfill_metrics; the admin starts them) --------------------


@scope.per_function
def backfill_contacts() -> ContactsBackfilling:
    """A segment of the contacts table's profiles, each evaluated by the stage function's use case."""
    from shared.adapters.contact_scan import DynamoProfileScan
    from shared.adapters.segment_store import DynamoSegmentStore
    from shared.observability import PowertoolsTelemetry
    from shared.usecases.backfills import ContactsBackfilling

    config = settings.load(settings.BackfillContactsSettings)
    _aws()
    return ContactsBackfilling(
        profiles=DynamoProfileScan(aws.client("dynamodb"), contacts_table=config.contacts_table_name),
        engagement=engagement(),
        telemetry=PowertoolsTelemetry(),
        # read once per run, uncached: a warm instance's copy may predate the save that started the run
        segments=DynamoSegmentStore(aws.client("dynamodb"), table=config.config_table_name, cache_seconds=0),
        # issue 14: contacts stored before the search existed get their search terms
        search=_contact_search(config),
    )


@scope.per_function
def backfill_purchases() -> PurchasesBackfilling:
    """A segment of the event log's purchases the purchase index lacks, each indexed once."""
    from shared.adapters.purchase_backfill import DynamoUnindexedPurchases
    from shared.observability import PowertoolsTelemetry
    from shared.usecases.backfills import PurchasesBackfilling

    config = settings.load(settings.BackfillPurchasesSettings)
    _aws()
    return PurchasesBackfilling(
        purchases=DynamoUnindexedPurchases(aws.client("dynamodb"), events_table=config.events_table_name),
        telemetry=PowertoolsTelemetry(),
    )


@scope.per_function
def backfill_metrics() -> MetricsBackfilling:
    """A segment of the contacts table's stage history, each move and removal counted once, ever, by the
    metrics function's own counting (its markers: what was counted live is found counted)."""
    from shared.adapters.stage_history_scan import DynamoStageHistoryScan
    from shared.observability import PowertoolsTelemetry
    from shared.usecases.backfills import MetricsBackfilling
    from shared.usecases.metrics import StageMetering

    config = settings.load(settings.BackfillMetricsSettings)
    _aws()
    telemetry = PowertoolsTelemetry()
    return MetricsBackfilling(
        history=DynamoStageHistoryScan(aws.client("dynamodb"), contacts_table=config.contacts_table_name),
        metering=StageMetering(store=_metric_store(), telemetry=telemetry),
        telemetry=telemetry,
    )


def _admin_backfills() -> dict[str, Any]:
    """Starting back-fills and reading their runs (``Admin.backfills``): Step Functions."""
    from shared.adapters.backfill_runs import StepFunctionsBackfills

    config = settings.load(settings.BackfillStartSettings)
    return {
        "backfills": StepFunctionsBackfills(
            aws.client("stepfunctions"), state_machines=config.state_machines, clock=clock.current()
        )
    }


# --- issue 14: the console -----------------------------------------------------------------------------


def console() -> ConsoleConfig:
    """The console page's configuration: where its admin API calls go, and how it signs in."""
    from shared.console import ConsoleConfig, SignIn

    config = settings.load(settings.ConsoleSettings)
    sign_in = (
        SignIn(url=config.console_sign_in_url, client_id=config.console_client_id)
        if config.console_sign_in_url is not None and config.console_client_id is not None
        else None
    )
    return ConsoleConfig(api_base=config.console_api_base, sign_in=sign_in)


# --- issue 14: contact search ------------------------------------------------------------------------------


def _contact_search(config: settings.ContactsTableSettings) -> DynamoContactSearch:
    from shared.adapters.contact_search import DynamoContactSearch

    return DynamoContactSearch(aws.client("dynamodb"), contacts_table=config.contacts_table_name)


@scope.per_function
def search_terms() -> SearchTerms:
    """The stage function's upkeep of the contacts' search terms (the contacts table's stream)."""
    config = settings.load(settings.EngagementSettings)
    _aws()
    return _contact_search(config)


# --- issue 15: the nightly recommendations pass (recommendations_extract, _fit, _write) -------------------


def _recommendation_staging(config: settings.AnalyticsBucketSettings) -> S3RecommendationStaging:
    from shared.adapters.recommendation_nightly import S3RecommendationStaging

    return S3RecommendationStaging(aws.client("s3"), bucket=config.analytics_bucket_name)


@scope.per_function
def recommendations_extract() -> RecommendationsExtracting:
    """Step 1: a segment of the contacts' profiles (their recent products), staged."""
    from shared.adapters.recommendation_nightly import DynamoRecentProductScan
    from shared.observability import PowertoolsTelemetry
    from shared.usecases.recommendation_nightly import Extracting

    config = settings.load(settings.RecommendationsExtractSettings)
    _aws()
    return Extracting(
        profiles=DynamoRecentProductScan(aws.client("dynamodb"), contacts_table=config.contacts_table_name),
        staging=_recommendation_staging(config),
        telemetry=PowertoolsTelemetry(),
        clock=clock.current(),
    )


@scope.per_function
def recommendations_fit() -> RecommendationsFitting:
    """Step 2: the item-to-item model (numpy and scipy: this function's layer only), staged in parts."""
    from shared.observability import PowertoolsTelemetry
    from shared.usecases.recommendation_nightly import Fitting

    config = settings.load(settings.RecommendationsFitSettings)
    _aws()
    return Fitting(
        staging=_recommendation_staging(config),
        telemetry=PowertoolsTelemetry(),
        clock=clock.current(),
        settings=_model_settings(config),
        part_size=config.recommendations_part_size,
    )


@scope.per_function
def recommendations_write() -> RecommendationsWriting:
    """Step 3: a part of the model written into the config table."""
    from shared.adapters.recommendation_nightly import DynamoModelStore
    from shared.observability import PowertoolsTelemetry
    from shared.usecases.recommendation_nightly import Writing

    config = settings.load(settings.RecommendationsWriteSettings)
    _aws()
    return Writing(
        staging=_recommendation_staging(config),
        store=DynamoModelStore(aws.client("dynamodb"), config_table=config.config_table_name),
        telemetry=PowertoolsTelemetry(),
        clock=clock.current(),
    )
