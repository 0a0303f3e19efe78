"""Which function is triggered by what, with which access: declared once.

The CDK stack (``infra.stack``) and the local stack (``infra.local``) both read
this module, so the cloud and the laptop cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from shared.adapters.queues import DELIVERY, QUEUES, QueueSpec
from shared.adapters.tables import CONFIG, CONTACTS, EVENTS, METRICS, RATES, TABLES, TableSpec
from shared.admin import ROUTES as ADMIN_ROUTES
from shared.admin import console_route
from shared.delivery.feedback import (
    ALARM_STATE_CHANGE,
    FEEDBACK_DETAIL_TYPES,
    FEEDBACK_SOURCES,
    REPUTATION_ALARMS,
)
from shared.delivery.links import PREFERENCE_ROUTES
from shared.tracking.messages import TRACKING_PATHS
from shared.usecases.backfills import CONTACTS_BACKFILL as CONTACTS_BACKFILL_NAME
from shared.usecases.backfills import METRICS_BACKFILL as METRICS_BACKFILL_NAME
from shared.usecases.backfills import PURCHASES_BACKFILL as PURCHASES_BACKFILL_NAME

__all__ = [
    "ANALYTICS_BUCKET",
    "AUTOMATION_SIGNALS",
    "BACKFILLS",
    "BUCKETS",
    "CAPABILITIES",
    "CORS",
    "FUNCTIONS",
    "NIGHTLY_ANALYTICS",
    "NIGHTLY_RECOMMENDATIONS",
    "QUEUES",
    "TABLES",
    "WORKFLOWS",
    "BucketAccess",
    "BucketSpec",
    "Bundle",
    "BusTrigger",
    "Cors",
    "EachItem",
    "EachSegment",
    "FunctionSpec",
    "HttpRoute",
    "QueueAccess",
    "QueueTrigger",
    "ScheduleTrigger",
    "StreamTrigger",
    "TableAccess",
    "Workflow",
    "WorkflowStep",
    "function",
    "workflow",
]


@dataclass(frozen=True, slots=True)
class HttpRoute:
    method: str
    path: str
    #: "iam": SigV4-signed callers only in the cloud, loopback callers only locally; issue 14: "jwt": the
    #: console's signed-in users only in the cloud (a Cognito access token, checked by the API's JWT
    #: authorizer), loopback callers only locally
    auth: Literal["none", "iam", "jwt"] = "none"

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True, slots=True)
class TableAccess:
    table: TableSpec
    actions: tuple[str, ...]
    #: grant the actions on the table's indexes too (Query by index)
    indexes: bool = False
    #: the actions on this one index only, none on the table: the nightly pass Scans the sparse purchase
    #: index and nothing else (Scan is granted nowhere else); the admin Queries the segment index alone
    only_index: str | None = None
    #: issue 13: Scan may be among the actions, on the table itself: a back-fill's parallel scan, a
    #: whole-population step of a workflow, never on a request or timer path (``BACKFILL_SCANS``)
    batch_scan: bool = False


@dataclass(frozen=True, slots=True)
class QueueAccess:
    """Sending to a queue (``shared.adapters.queues``): the function gets its URL and these actions on it."""

    queue: QueueSpec
    actions: tuple[str, ...] = ("sqs:SendMessage",)


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """An S3 bucket of the stack: private, TLS only, encrypted, unversioned, objects expiring."""

    #: logical name, also the construct id
    id: str
    #: the environment variable that carries the bucket's name to functions
    env: str
    #: the functions' keys start with it: object grants and listings are limited to it
    prefix: str
    #: objects are deleted this many days after they were written (a lifecycle rule)
    expire_days: int


#: Staging between the nightly analytics steps: ``analytics/<day>/purchases/...`` (extract) and
#: ``analytics/<day>/scores/...`` (fit), read by the next step. The purchase files hold every customer's
#: history, erased contacts' included until they expire: kept two days, which a night's run (hours) and a
#: retry or redrive the next morning need, and no longer.
ANALYTICS_BUCKET = BucketSpec(id="analytics", env="ANALYTICS_BUCKET_NAME", prefix="analytics/", expire_days=2)
BUCKETS: tuple[BucketSpec, ...] = (ANALYTICS_BUCKET,)


@dataclass(frozen=True, slots=True)
class BucketAccess:
    """Objects of a bucket (``s3:GetObject``, ``s3:PutObject`` under its prefix) and listing its keys
    (``s3:ListBucket``, for prefixes under its prefix): the function gets the bucket's name."""

    bucket: BucketSpec
    actions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StreamTrigger:
    """A DynamoDB Streams trigger: what passes the filter, and what happens to failing records."""

    table: TableSpec
    #: event patterns (EventBridge syntax): a record passes if it matches any of them
    filters: tuple[Mapping[str, Any], ...]
    batch_size: int = 100
    max_batching_window_seconds: int = 1
    #: failed batches are split in two to isolate a poison record, retried a few times, then sent aside
    bisect_on_error: bool = True
    #: None: retried until it succeeds (the stream holds records 24 hours), for work that must not skip
    #: a record because a later one depends on it; nothing then goes to the dead-letter queue
    retry_attempts: int | None = 5
    max_record_age_seconds: int | None = 6 * 3600
    #: where a new trigger starts: LATEST, or TRIM_HORIZON when nothing written before it may be missed
    starting_position: Literal["LATEST", "TRIM_HORIZON"] = "LATEST"


@dataclass(frozen=True, slots=True)
class ScheduleTrigger:
    """A schedule: EventBridge invokes the function asynchronously, so a failing run is retried by Lambda
    and then sent, with its event, to the function's on-failure queue."""

    every: timedelta
    #: Lambda's retries of a run that failed (0 to 2)
    retry_attempts: int = 2
    #: a run not started within this long is not worth starting: the next one supersedes it
    max_event_age_seconds: int = 3600
    #: it runs only what the due index holds (the local stack skips runs when nothing is due yet)
    due_index: bool = False
    #: issue 13: it advances live campaigns only (the local stack skips runs while none is due)
    live_campaigns: bool = False

    @property
    def expression(self) -> str:
        minutes = int(self.every.total_seconds() // 60)
        if minutes % 1440 == 0:
            return f"rate({minutes // 1440} day{'s' if minutes > 1440 else ''})"
        if minutes % 60 == 0:
            return f"rate({minutes // 60} hour{'s' if minutes > 60 else ''})"
        return f"rate({minutes} minute{'s' if minutes > 1 else ''})"


@dataclass(frozen=True, slots=True)
class QueueTrigger:
    """An SQS trigger (Lambda's event source mapping): batches of messages, each failing message reported
    on its own (partial batch failures), so only those are received again; after the queue's
    ``max_receive_count`` receives a message moves to the queue's own dead-letter queue."""

    queue: QueueSpec
    batch_size: int = 10
    max_batching_window_seconds: int = 1
    #: at most this many instances read the queue at once (2 to 1000): the send rate's throttle
    max_concurrency: int = 5


@dataclass(frozen=True, slots=True)
class BusTrigger:
    """Events on the stack's bus (source ``lifecycle``) of these detail types. EventBridge invokes the
    function asynchronously: it retries handing an event over (``retry_attempts``, within
    ``max_event_age_seconds``), then sends it to the function's dead-letter queue; a run that fails is
    retried twice by Lambda, then its event and error go to the same queue."""

    detail_types: tuple[str, ...]
    #: the stack's own bus, or the account's default bus (where SES and CloudWatch alarms publish)
    bus: Literal["lifecycle", "default"] = "lifecycle"
    #: the sources the rule matches (``lifecycle``: the stack's own events)
    sources: tuple[str, ...] = ("lifecycle",)
    #: EventBridge's retries of an event Lambda did not accept (throttled, unavailable): 0 to 185
    retry_attempts: int = 8
    #: an event not handed over within this long goes to the dead-letter queue (60 s to 24 h)
    max_event_age_seconds: int = 86400
    #: Lambda's retries of a run that failed (0 to 2)
    invoke_retry_attempts: int = 2
    #: how long Lambda keeps an accepted event in its own queue, retries included (60 s to 6 h)
    invoke_max_event_age_seconds: int = 6 * 3600
    #: per detail type, a pattern its events' ``detail`` must match too (EventBridge syntax): e.g. only
    #: the stack's own alarms among every alarm of the account
    detail_filters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def event_pattern(self) -> dict[str, Any]:
        """The rule's event pattern, as deployed and as the local stack's rule: the sources and detail
        types; a detail type with a filter matches only events whose detail passes it (``$or``)."""
        unfiltered = [t for t in self.detail_types if t not in self.detail_filters]
        plain = {"source": list(self.sources), "detail-type": unfiltered}
        if not self.detail_filters:
            return plain
        filtered = [
            {
                "source": list(self.sources),
                "detail-type": [detail_type],
                "detail": dict(self.detail_filters[detail_type]),
            }
            for detail_type in self.detail_types
            if detail_type in self.detail_filters
        ]
        return {"$or": ([plain] if unfiltered else []) + filtered}


#: the event bus, the lead topic, the SES sender (lead emails), the sources' identity secrets (SSM, read
#: only); issue 14: ``sign_in`` (the console's Cognito hosted login and app client: environment variables,
#: set in the cloud only, no permission); delivery's: ``email`` (SES v2 through the stack's configuration set, from the sender only),
#: ``sms`` (SNS to phone numbers, and their opt-out check), ``delivery_secret`` (the Secrets Manager
#: secret that signs unsubscribe and confirmation links and webhooks), ``links`` (the public base URL the
#: links point at: no permission, an environment variable)
Service = Literal[
    "events", "sns", "ses", "identity_secrets", "email", "sms", "delivery_secret", "links", "sign_in"
]
#: A layer of libraries a function needs beyond Powertools (``infra.constructs.function.LIBRARY_BUNDLES``).
Bundle = Literal["templates", "analytics"]
#: What the system does, one construct each in the stack.
Capability = Literal[
    "ingest", "engagement", "automation", "delivery", "admin", "analytics", "reporting", "backfill"
]
CAPABILITIES: tuple[Capability, ...] = (
    "ingest",
    "engagement",
    "automation",
    "delivery",
    "admin",
    "analytics",
    # issue 13: lifecycle metrics, counted by the metrics function
    "reporting",
    # issue 13: the back-fills, workflows started on demand
    "backfill",
)
#: The processor a function runs on: arm64 (Graviton) unless a library bundle is built for x86_64.
Architecture = Literal["arm64", "x86_64"]


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    name: str
    #: the capability it belongs to: one CDK construct each (``infra.constructs.capability``)
    capability: Capability
    #: "package.module.function", importable from the project root
    handler: str
    description: str
    routes: tuple[HttpRoute, ...] = ()
    stream: StreamTrigger | None = None
    schedule: ScheduleTrigger | None = None
    bus: BusTrigger | None = None
    queue: QueueTrigger | None = None
    tables: tuple[TableAccess, ...] = ()
    #: queues it sends to (their URLs in its environment)
    queues: tuple[QueueAccess, ...] = ()
    #: buckets it reads or writes (their names in its environment)
    buckets: tuple[BucketAccess, ...] = ()
    #: announces on the event bus (events), notifies salespeople (sns, ses)
    services: tuple[Service, ...] = ()
    memory_mb: int = 512
    timeout_seconds: int = 10
    #: settings beyond table names, by environment variable
    environment: Mapping[str, str] = field(default_factory=dict)
    #: libraries beyond the Powertools layer, each a layer of its own (``templates``: jinja2 and
    #: markupsafe, for the functions that render the templates marketers write; ``analytics``: numpy
    #: and scipy, compiled for x86_64)
    bundles: tuple[Bundle, ...] = ()
    #: the processor: a bundle of compiled libraries fixes it (``infra.constructs.bundles``)
    architecture: Architecture = "arm64"


@dataclass(frozen=True, slots=True)
class Cors:
    """Browser access to the tracking routes; admin routes are for SigV4 callers and local tools, not pages.

    The headers are those browser tracking clients send beyond the CORS-safelisted ones: ``authorization``
    (listed explicitly: ``*`` never covers it), ``content-type`` (``application/json``), ``content-encoding``
    and ``x-retry-count``, which ``@segment/analytics-next`` adds to every retry. A page's script reads only
    the CORS-safelisted response headers unless others are exposed: ``retry-after`` (429 and 503) is.
    """

    #: the methods of the public routes (see ``CORS`` below)
    allow_methods: tuple[str, ...]
    allow_headers: tuple[str, ...] = ("authorization", "content-type", "content-encoding", "x-retry-count")
    expose_headers: tuple[str, ...] = ("retry-after",)
    max_age_seconds: int = 86400


#: The profile writers whose changes the stage function evaluates (issue 13: segments read what each of them
#: writes): ``tracking`` (the aggregation of tracked events, consent from tracking and the admin API, and
#: merges), ``automation`` (tags, re-entry marks), ``preferences`` (the unsubscribe and confirmation links'
#: consent), ``analytics`` (the nightly RFM segment and churn risk). Never ``stage`` (its own writes: no
#: loop) nor ``merge`` (a merge request cleared: nothing a contact is judged on).
PROFILE_WRITERS_EVALUATED = ("tracking", "automation", "preferences", "analytics")
#: Profile changes by those writers (not the stage function's own writes, not TTL removals).
PROFILE_CHANGED: Mapping[str, Any] = {
    "eventName": ["INSERT", "MODIFY"],
    "dynamodb": {
        "Keys": {"sk": {"S": ["PROFILE"]}},
        "NewImage": {"lastWriter": {"S": list(PROFILE_WRITERS_EVALUATED)}},
    },
}
#: Events the tracking path recorded (not copies moved by a merge, not ledger corrections or expiries).
#: ``exists`` tests leaves only: on ``movedFrom`` itself (an object, ``{"S": ...}``) ``false`` passes all.
EVENT_RECORDED: Mapping[str, Any] = {
    "eventName": ["INSERT"],
    "dynamodb": {"NewImage": {"movedFrom": {"S": [{"exists": False}]}}},
}
#: Profile writes of tracked events that ask for identity merges (``mergeRequested``).
MERGE_REQUESTED_BY_TRACKING: Mapping[str, Any] = {
    "eventName": ["INSERT", "MODIFY"],
    "dynamodb": {
        "Keys": {"sk": {"S": ["PROFILE"]}},
        "NewImage": {"lastWriter": {"S": ["tracking"]}, "mergeRequested": {"S": [{"exists": True}]}},
    },
}
ENGAGEMENT_TABLES = (
    # DeleteItem: a segment left (issue 13) deletes its membership item, in the stage write's transaction
    TableAccess(
        CONTACTS,
        (
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:DeleteItem",
        ),
        indexes=True,
    ),
    TableAccess(CONFIG, ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem")),
    # issue 14: a contact's search terms are replaced on condition that its profile still exists (a
    # transaction's ConditionCheck on the profile)
    TableAccess(CONTACTS, ("dynamodb:ConditionCheckItem",)),
)
#: What the automation functions read and write: profiles, runs, timers and the stage history, and the
#: due index (Query by index); the event log (an automation's points, one ledger entry per run); their
#: automations, the funnel and the sales rotation on the config table.
AUTOMATION_TABLES = (
    TableAccess(
        CONTACTS,
        (
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:Query",
        ),
        indexes=True,
    ),
    TableAccess(EVENTS, ("dynamodb:PutItem",)),
    TableAccess(CONFIG, ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem")),
)
#: Automations hand what they send to delivery, one request per message.
AUTOMATION_QUEUES = (QueueAccess(DELIVERY, ("sqs:SendMessage",)),)
#: The lifecycle signals automations react to, as published on the bus (detail types, source lifecycle).
AUTOMATION_SIGNALS: tuple[str, ...] = (
    "ContactStageChanged",
    "EngagementQuarterChanged",
    "ScoreThresholdCrossed",
    "SegmentChanged",
    "ChurnRiskChanged",
    # issue 15: an NPS answer recorded (service recovery for detractors, a referral ask for promoters)
    "NpsAnswered",
)

# --- issue 13: lifecycle metrics ----------------------------------------------------------------------------
#: What the events trigger adds to count purchases: counters, markers and customers' facts (a transaction of
#: puts and adds; a Query of the customer's facts), on the metrics table alone.
METRICS_COUNTING = TableAccess(METRICS, ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"))
#: The lifecycle signals the metrics count, as published on the bus: stage moves, and removals from the funnel;
#: issue 15: NPS answers.
METRIC_SIGNALS: tuple[str, ...] = ("ContactStageChanged", "ContactRemoved", "NpsAnswered")
#: Issue 15: what delivery adds to count the surveys it sends: the counters and a marker of the send, in one
#: transaction (puts and adds, no read), on the metrics table alone.
SURVEYS_SENT_COUNTING = TableAccess(METRICS, ("dynamodb:PutItem", "dynamodb:UpdateItem"))

#: Delivery reads its requests from the delivery queue; the concurrency cap is the send-rate throttle.
DELIVERY_TRIGGER = QueueTrigger(DELIVERY, batch_size=10, max_batching_window_seconds=1, max_concurrency=5)

FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec(
        name="tracking",
        capability="ingest",
        handler="functions.tracking.handler.handler",
        description="Segment-compatible tracking endpoint: records behaviour events exactly once",
        routes=tuple(HttpRoute("POST", path) for path in TRACKING_PATHS),
        tables=(
            # A conditional put per event, nothing else: profiles are folded in by the aggregation function.
            TableAccess(EVENTS, ("dynamodb:PutItem",)),
            TableAccess(CONFIG, ("dynamodb:GetItem", "dynamodb:Query")),
            # rate-limit counters: an atomic add now and then, never a read
            TableAccess(RATES, ("dynamodb:UpdateItem",)),
        ),
        # reads a browser source's secret to check the identity proofs its calls carry
        services=("identity_secrets",),
    ),
    FunctionSpec(
        name="aggregation",
        capability="ingest",
        handler="functions.aggregation.handler.handler",
        description="Aggregation: folds the events tracking recorded into profiles (counters, traits, scores)",
        # Never skips: a profile's stream position would pass a record set aside, and a redrive of it
        # would then be taken for one folded in before. A failing contact holds back its shard (watch
        # IteratorAge) until it succeeds; unreadable records are logged and passed, not retried.
        stream=StreamTrigger(
            EVENTS, filters=(EVENT_RECORDED,), retry_attempts=None, max_record_age_seconds=None
        ),
        tables=(
            # one blind update per contact and batch (a transaction with the copies, for re-routed events);
            # a read only for a re-routed call its contact held already: what a merge took back for it
            TableAccess(CONTACTS, ("dynamodb:UpdateItem", "dynamodb:GetItem")),
            # ledger corrections; re-routed events copied to their contact and deleted where they were sent
            TableAccess(
                EVENTS,
                ("dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:BatchWriteItem"),
            ),
            TableAccess(CONFIG, ("dynamodb:GetItem", "dynamodb:Query")),
        ),
        timeout_seconds=60,
    ),
    FunctionSpec(
        name="merge",
        capability="ingest",
        handler="functions.merge.handler.handler",
        description="Identity merges: moves an identified visitor's or aliased user's history to the contact",
        stream=StreamTrigger(CONTACTS, filters=(MERGE_REQUESTED_BY_TRACKING,)),
        tables=(
            TableAccess(
                CONTACTS,
                (
                    "dynamodb:GetItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:PutItem",
                    "dynamodb:ConditionCheckItem",
                ),
            ),
            TableAccess(
                EVENTS,
                (
                    "dynamodb:Query",
                    "dynamodb:BatchWriteItem",
                    "dynamodb:PutItem",
                    "dynamodb:DeleteItem",
                ),
            ),
        ),
        timeout_seconds=60,
    ),
    FunctionSpec(
        name="admin",
        capability="admin",
        handler="functions.admin.handler.handler",
        description="Admin API: contacts, ledgers, rules, automations, templates, consent, erasure, funnel, sales",
        # issue 14: each route twice: /admin/... for SigV4 callers, /console/admin/... for the console's users
        routes=tuple(HttpRoute(*key.split(" ", 1), auth="iam") for key in ADMIN_ROUTES)
        + tuple(HttpRoute(*console_route(key).split(" ", 1), auth="jwt") for key in ADMIN_ROUTES),
        tables=(
            # erasure deletes a contact's items (profile, history, runs, timers, send ledger)
            TableAccess(
                CONTACTS,
                (
                    "dynamodb:GetItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:PutItem",
                    "dynamodb:Query",
                    "dynamodb:DeleteItem",
                    "dynamodb:BatchWriteItem",
                    # issue 14: the profiles of a salesperson's leads, one BatchGetItem per page
                    "dynamodb:BatchGetItem",
                ),
            ),
            # issue 13: a segment's members, read from its index (and no other index)
            TableAccess(CONTACTS, ("dynamodb:Query",), only_index="bySegment"),
            # issue 14: a salesperson's leads (and contact search), read from the look-up index alone
            TableAccess(CONTACTS, ("dynamodb:Query",), only_index="byLookup"),
            # consent set by an administrator is an event in the contact's log; erasure deletes the log
            TableAccess(
                EVENTS,
                ("dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"),
            ),
            TableAccess(
                CONFIG,
                (
                    "dynamodb:GetItem",
                    "dynamodb:Query",
                    "dynamodb:PutItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:UpdateItem",
                    # issue 15: recommendations read the nightly model's lists and the catalog's items
                    # for their candidates, one BatchGetItem each
                    "dynamodb:BatchGetItem",
                ),
            ),
            # issue 13: the lifecycle metrics' reports read counter rows, a Query per shard
            TableAccess(METRICS, ("dynamodb:Query",)),
            # issue 15: what a contact bought, never recommended to it (one Query of the purchase index)
            TableAccess(EVENTS, ("dynamodb:Query",), only_index="byPurchase"),
        ),
        services=("events", "sns", "ses"),
        # previews and checks the templates it manages
        bundles=("templates",),
    ),
    # issue 14: the console, a web page over the admin API; its files are public, its data signed in
    FunctionSpec(
        name="console",
        capability="admin",
        handler="functions.console.handler.handler",
        description="Console: the web page marketers and salespeople use (its files; the data is the admin API's)",
        routes=(HttpRoute("GET", "/"), HttpRoute("GET", "/console/{file}")),
        # issue 14: in the cloud, where the page signs in (the user pool's hosted login and app client):
        # environment variables only, no permission
        services=("sign_in",),
        memory_mb=256,
    ),
    FunctionSpec(
        name="stage_transition",
        capability="engagement",
        handler="functions.stage_transition.handler.handler",
        description="Stage transitions: places contacts on the engagement index and funnel, routes leads",
        stream=StreamTrigger(CONTACTS, filters=(PROFILE_CHANGED,)),
        tables=ENGAGEMENT_TABLES,
        services=("events", "sns", "ses"),
        timeout_seconds=60,
    ),
    FunctionSpec(
        name="automation_events",
        capability="automation",
        handler="functions.automation_events.handler.handler",
        description="Automations triggered by behaviour: runs the rules whose trigger a recorded event matches",
        # The events stream's second reader (the aggregation is the first): DynamoDB Streams serves two
        # readers per shard without throttling, so no third function may read it (tests/infra check it).
        stream=StreamTrigger(EVENTS, filters=(EVENT_RECORDED,), retry_attempts=5, bisect_on_error=True),
        # issue 13: it counts each purchase into the lifecycle metrics too
        tables=(*AUTOMATION_TABLES, METRICS_COUNTING),
        queues=AUTOMATION_QUEUES,
        services=("events", "sns", "ses"),
        timeout_seconds=60,
    ),
    FunctionSpec(
        name="automation_signals",
        capability="automation",
        handler="functions.automation_signals.handler.handler",
        description="Automations triggered by lifecycle signals: stage, quarter, score, routing, segment, churn",
        bus=BusTrigger(detail_types=AUTOMATION_SIGNALS),
        tables=AUTOMATION_TABLES,
        queues=AUTOMATION_QUEUES,
        services=("events", "sns", "ses"),
        timeout_seconds=60,
    ),
    FunctionSpec(
        name="timers",
        capability="automation",
        handler="functions.timers.handler.handler",
        description="Timers: runs what is due (decay re-evaluations, inactivity, delays, anniversaries, programs)",
        schedule=ScheduleTrigger(every=timedelta(hours=1), due_index=True),
        tables=AUTOMATION_TABLES,
        queues=AUTOMATION_QUEUES,
        services=("events", "sns", "ses"),
        timeout_seconds=300,
    ),
    FunctionSpec(
        name="delivery",
        capability="delivery",
        handler="functions.delivery.handler.handler",
        description="Delivery: sends by SES, SNS and webhooks, once, within consent, caps and quiet hours",
        queue=DELIVERY_TRIGGER,
        tables=(
            # the profile (address, consent, time zone), the send ledger and suppressions; deferrals go on
            # the due index through the ledger entry (no index read here); a claimed entry of a contact
            # that no longer exists is deleted (a conditional DeleteItem: erasure is not undone)
            TableAccess(
                CONTACTS,
                ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"),
            ),
            # the contact's recent event times, for the best hour (Query on the contact's partition)
            TableAccess(EVENTS, ("dynamodb:Query",)),
            # templates and the sending pause; issue 15: a template's recommendations (the nightly model's
            # lists and the catalog's items for the candidates, one BatchGetItem each)
            TableAccess(CONFIG, ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem")),
            # issue 15: what the contact bought, never recommended to it (one Query of the purchase index)
            TableAccess(EVENTS, ("dynamodb:Query",), only_index="byPurchase"),
            # frequency caps: an atomic conditional add per channel and window
            TableAccess(RATES, ("dynamodb:UpdateItem",)),
            # issue 15: each survey sent, counted once for the NPS response rate
            SURVEYS_SENT_COUNTING,
        ),
        # a failing webhook is received again after a growing delay (its visibility is extended)
        queues=(QueueAccess(DELIVERY, ("sqs:ChangeMessageVisibility",)),),
        services=("email", "sms", "delivery_secret", "links"),
        timeout_seconds=30,
        bundles=("templates",),
    ),
    FunctionSpec(
        name="feedback",
        capability="delivery",
        handler="functions.feedback.handler.handler",
        description="Delivery feedback: bounces and complaints suppress, opens and clicks are scored",
        # SES publishes its events, and CloudWatch its alarms' state changes, on the default bus
        bus=BusTrigger(
            detail_types=FEEDBACK_DETAIL_TYPES,
            bus="default",
            sources=FEEDBACK_SOURCES,
            # the stack's own reputation alarms, not every alarm of the account
            detail_filters={ALARM_STATE_CHANGE: {"alarmName": list(REPUTATION_ALARMS)}},
        ),
        tables=(
            # suppressions (a put each), the send ledger entry a message id points at
            TableAccess(CONTACTS, ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")),
            # opens and clicks recorded as the contact's behaviour, once per SES event
            TableAccess(EVENTS, ("dynamodb:PutItem",)),
            # the scoring rules (to score them as tracking does) and the sending pause
            TableAccess(CONFIG, ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem")),
        ),
        timeout_seconds=30,
    ),
    FunctionSpec(
        name="preferences",
        capability="delivery",
        handler="functions.preferences.handler.handler",
        description="Unsubscribe (RFC 8058 one-click) and double opt-in confirmation links",
        routes=tuple(HttpRoute(*key.split(" ", 1)) for key in PREFERENCE_ROUTES),
        tables=(
            # consent changes at once on the profile, and as an event in the contact's log
            TableAccess(CONTACTS, ("dynamodb:GetItem", "dynamodb:UpdateItem")),
            TableAccess(EVENTS, ("dynamodb:PutItem",)),
            # issue 15: the NPS answer form asks its survey template's question: one GetItem of the
            # template's current version (never a Query of every template, never a write)
            TableAccess(CONFIG, ("dynamodb:GetItem",)),
        ),
        services=("delivery_secret", "links"),
    ),
    # --- analytics: the nightly pass, three steps of one workflow (``NIGHTLY_ANALYTICS`` below) ---------
    FunctionSpec(
        name="analytics_extract",
        capability="analytics",
        handler="functions.analytics_extract.handler.handler",
        description="Nightly analytics, step 1: one parallel-scan segment of the purchase index to S3",
        # the whole-population pass, and the only Scan granted: on the sparse purchase index, never the table
        tables=(TableAccess(EVENTS, ("dynamodb:Scan",), only_index="byPurchase"),),
        buckets=(BucketAccess(ANALYTICS_BUCKET, ("s3:PutObject",)),),
        # a segment's purchases gathered into columns page by page, then its JSON and gzip: 714k purchases
        # (a million customers in 16 segments) peak at 414 MB (docs/analytics.md); 2 GB for margin, and for
        # a whole vCPU to parse the pages (1 GB has 0.58)
        memory_mb=2048,
        timeout_seconds=900,
    ),
    FunctionSpec(
        name="analytics_fit",
        capability="analytics",
        handler="functions.analytics_fit.handler.handler",
        description="Nightly analytics, step 2: fits the churn models and scores every customer (numpy, scipy)",
        buckets=(BucketAccess(ANALYTICS_BUCKET, ("s3:GetObject", "s3:PutObject", "s3:ListBucket")),),
        # every customer's history in memory at once (segments read one at a time into compact columns):
        # a million customers (11.4 million purchase days) peak at 3.5 GB, while scoring; twice that and
        # more, and the CPU share that comes with the memory (docs/analytics.md)
        memory_mb=8192,
        timeout_seconds=900,
        bundles=("analytics",),
        architecture="x86_64",
    ),
    FunctionSpec(
        name="analytics_apply",
        capability="analytics",
        handler="functions.analytics_apply.handler.handler",
        description="Nightly analytics, step 3: one part of the scores onto profiles, changes announced",
        # profiles updated alone or in transactions of updates and puts (the history); GetItem reads the
        # history by key
        tables=(TableAccess(CONTACTS, ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem")),),
        # listing (under analytics/ only) makes S3 answer a missing part 404, not 403: it reads as not found
        buckets=(BucketAccess(ANALYTICS_BUCKET, ("s3:GetObject", "s3:ListBucket")),),
        services=("events",),
        memory_mb=1024,
        timeout_seconds=900,
    ),
    # --- issue 13: campaigns ----------------------------------------------------------------------------
    FunctionSpec(
        name="campaigns",
        capability="automation",
        handler="functions.campaigns.handler.handler",
        description="Campaigns: plans live campaigns' sends to their segments, throttled, from a saved cursor",
        # every minute; a run that fails is not retried: the next minute's resumes from the saved cursor
        schedule=ScheduleTrigger(
            every=timedelta(minutes=1), retry_attempts=0, max_event_age_seconds=60, live_campaigns=True
        ),
        tables=(
            # campaign versions and states (GetItem), the live set (Query), state writes (PutItem) and
            # leaving the live set (a DeleteItem in the same transaction)
            TableAccess(
                CONFIG, ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteItem")
            ),
            # exposures (conditional puts in transactions) and their counters (ADD)
            TableAccess(CONTACTS, ("dynamodb:PutItem", "dynamodb:UpdateItem")),
            # the segment's members: a Query of the membership index, and of no other index nor the table
            TableAccess(CONTACTS, ("dynamodb:Query",), only_index="bySegment"),
        ),
        queues=AUTOMATION_QUEUES,
        timeout_seconds=300,
    ),
    # --- issue 13: lifecycle metrics ------------------------------------------------------------------------
    FunctionSpec(
        name="metrics",
        capability="reporting",
        handler="functions.metrics.handler.handler",
        description="Lifecycle metrics: counts each stage move and NPS answer announced on the bus, once",
        bus=BusTrigger(detail_types=METRIC_SIGNALS),
        # the move's counters and its marker in one transaction (puts and adds, no read)
        tables=(TableAccess(METRICS, ("dynamodb:PutItem", "dynamodb:UpdateItem")),),
        timeout_seconds=30,
    ),
)

# --- issue 13: the back-fills' steps, one parallel-scan segment each (``BACKFILLS`` below) ---------------

#: The stage function: the contacts back-fill runs its evaluation, so it has its grants and services.
_STAGE = next(f for f in FUNCTIONS if f.name == "stage_transition")
#: The only Scans of a table itself: the back-fills' steps, one segment each, on a workflow started on
#: demand (tests/infra check that nothing else Scans a table).
BACKFILL_SCANS = {
    "backfill_contacts": TableAccess(CONTACTS, ("dynamodb:Scan",), batch_scan=True),
    "backfill_purchases": TableAccess(EVENTS, ("dynamodb:Scan", "dynamodb:UpdateItem"), batch_scan=True),
}
FUNCTIONS += (
    FunctionSpec(
        name="backfill_contacts",
        capability="backfill",
        handler="functions.backfill_contacts.handler.handler",
        description="Back-fill, one scan segment: every contact's profile re-evaluated as a change would be",
        # what the stage function reads and writes (its evaluation, recorded and announced), and the Scan
        tables=(*_STAGE.tables, BACKFILL_SCANS["backfill_contacts"]),
        services=_STAGE.services,
        environment=_STAGE.environment,
        # a segment's contacts one after another (a contact that changes: a read, a write, its announcements)
        memory_mb=1024,
        timeout_seconds=900,
    ),
    FunctionSpec(
        name="backfill_purchases",
        capability="backfill",
        handler="functions.backfill_purchases.handler.handler",
        description="Back-fill, one scan segment: purchases the purchase index lacks put in it, once",
        # the event log's purchases without purchasedAt (a filtered Scan), each a conditional update
        tables=(BACKFILL_SCANS["backfill_purchases"],),
        memory_mb=1024,
        timeout_seconds=900,
    ),
)

# --- issue 13: the metrics back-fill's step (the stage history counted as the metrics function counts) -------

#: The metrics function: the back-fill counts with its use case, so it has its grants on the metrics table.
_METERING = next(f for f in FUNCTIONS if f.name == "metrics")
BACKFILL_SCANS["backfill_metrics"] = TableAccess(CONTACTS, ("dynamodb:Scan",), batch_scan=True)
FUNCTIONS += (
    FunctionSpec(
        name="backfill_metrics",
        capability="backfill",
        handler="functions.backfill_metrics.handler.handler",
        description="Back-fill, one scan segment: the stage history counted into the lifecycle metrics, once",
        # the contacts table's stage moves and removals (a filtered Scan, no index); each counted as the
        # metrics function counts it (its counters and kept marker in one transaction, no read)
        tables=(BACKFILL_SCANS["backfill_metrics"], *_METERING.tables),
        memory_mb=1024,
        timeout_seconds=900,
    ),
)


# --- issue 15: the nightly recommendations pass, three steps of one workflow (``NIGHTLY_RECOMMENDATIONS``) --------

#: The extract step's Scan of the contacts table (its profiles' recent products), a whole-population step of
#: a workflow like the back-fills' (tests/infra check that nothing else Scans a table).
RECOMMENDATION_SCANS = {
    "recommendations_extract": TableAccess(CONTACTS, ("dynamodb:Scan",), batch_scan=True),
}
FUNCTIONS += (
    FunctionSpec(
        name="recommendations_extract",
        capability="analytics",
        handler="functions.recommendations_extract.handler.handler",
        description="Nightly recommendations, step 1: one parallel-scan segment of the profiles' recent products to S3",
        # the profiles' key and recentProducts only (a projection; the filter keeps profiles with products)
        tables=(RECOMMENDATION_SCANS["recommendations_extract"],),
        buckets=(BucketAccess(ANALYTICS_BUCKET, ("s3:PutObject",)),),
        memory_mb=1024,
        timeout_seconds=900,
    ),
    FunctionSpec(
        name="recommendations_fit",
        capability="analytics",
        handler="functions.recommendations_fit.handler.handler",
        description="Nightly recommendations, step 2: the item-to-item model on every contact's products (numpy, scipy)",
        # listing (under analytics/ only) makes S3 answer a segment not staged 404, not 403
        buckets=(BucketAccess(ANALYTICS_BUCKET, ("s3:GetObject", "s3:PutObject", "s3:ListBucket")),),
        # every contact's recent products at once (at most 50 each), then the sparse co-occurrence a block of
        # products at a time (shared.recommendations.fitting)
        memory_mb=4096,
        timeout_seconds=900,
        bundles=("analytics",),
        architecture="x86_64",
    ),
    FunctionSpec(
        name="recommendations_write",
        capability="analytics",
        handler="functions.recommendations_write.handler.handler",
        description="Nightly recommendations, step 3: one part of the model's items into the config table",
        # puts only (BatchWriteItem): a put replaces the item, so a retried part writes the same items
        tables=(TableAccess(CONFIG, ("dynamodb:BatchWriteItem",)),),
        buckets=(BucketAccess(ANALYTICS_BUCKET, ("s3:GetObject", "s3:ListBucket")),),
        memory_mb=1024,
        timeout_seconds=900,
    ),
)

#: CORS for the tracking routes, the only ones pages of other origins call; the API answers preflights for
#: other paths too, but with no other method allowed: admin routes refuse unsigned requests whatever a
#: page sends, and the preference pages (unsubscribe, confirmation) post forms to their own origin.
CORS = Cors(
    allow_methods=tuple(sorted({r.method for f in FUNCTIONS if f.name == "tracking" for r in f.routes}))
)


def function(name: str) -> FunctionSpec:
    return next(f for f in FUNCTIONS if f.name == name)


# --- workflows ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EachSegment:
    """A step run once per parallel-scan segment 0..N-1 (N: the workflow's ``segments_setting``, e.g.
    ``analyticsScanSegments``), at most ``max_concurrency`` at a time: each run gets ``{"time", "segment",
    "segments"}``."""

    max_concurrency: int


@dataclass(frozen=True, slots=True)
class EachItem:
    """A step run once per item of the list the previous step returned under ``field``, at most
    ``max_concurrency`` at a time: each run gets ``{"time", <item>: the item}``."""

    field: str
    item: str
    max_concurrency: int
    #: the runs' answers are left out of the run's state, their number kept instead (``{<field>: n}``):
    #: the state (256 KB in Step Functions) holds the items already, and need not hold an answer per item
    counted: bool = False


@dataclass(frozen=True, slots=True)
class WorkflowStep:
    """One function of a workflow: run once (``{"time", "segments"}``), or once per item (a Distributed
    Map in the cloud, a loop locally)."""

    function: str
    each: EachSegment | EachItem | None = None

    def input(self, time: Any, segments: Any, item: Any = None, run: Any = None) -> dict[str, Any]:
        """A run's input. The cloud passes JSONata expressions for the values, the local runner values.
        issue 13: ``run``, the execution's name, for a workflow started on demand (a back-fill's step reads
        which segment's save started it: ``seg-<id>-v<version>``)."""
        named = {} if run is None else {"run": run}
        if isinstance(self.each, EachSegment):
            return {"time": time, "segment": item, "segments": segments, **named}
        if isinstance(self.each, EachItem):
            return {"time": time, self.each.item: item, **named}
        return {"time": time, "segments": segments, **named}

    def kept(self, answers: list[Any]) -> Any:
        """What the run's state keeps of a per-item step's answers (the local runner; the cloud's map
        writes the same with JSONata): all of them, or how many there were."""
        if isinstance(self.each, EachItem) and self.each.counted:
            return {self.each.field: len(answers)}
        return answers


@dataclass(frozen=True, slots=True)
class Workflow:
    """Steps run in order, every day at ``at_hour`` UTC, or when started (no schedule): in the cloud a
    Step Functions state machine (on an EventBridge schedule), locally in-process on the controlled clock
    (``infra.local.workflow``).

    The run's state starts as ``{"time": <the schedule's time>}`` (a run started on demand: the input it
    was started with, its ``time`` the start's); each step's output is added under its function's name, so
    a step run per item reads its items from the previous step's output."""

    name: str
    description: str
    #: daily, or None: started on demand only (by the functions ``started_by`` names)
    every: timedelta | None
    #: the UTC hour it starts at (None when started on demand)
    at_hour: int | None
    steps: tuple[WorkflowStep, ...]
    #: retries of a step's run that failed (a function error, a timeout), with backoff; Lambda's own
    #: service errors and throttles are retried beyond these, in the cloud
    retry_attempts: int = 2
    #: a run still going after this long is stopped (and counts as failed)
    timeout: timedelta = timedelta(hours=12)
    #: issue 13: the functions that start runs (StartExecution, and DescribeExecution of its runs), given
    #: the state machine's ARN in their environment (``shared.adapters.backfill_runs.state_machine_env``)
    started_by: tuple[str, ...] = ()
    #: the deployment setting (``DeploymentConfig`` field) that says how many scan segments a step run
    #: per segment runs over
    segments_setting: str = "analytics_scan_segments"
    #: issue 13: the deployment setting (``DeploymentConfig`` field, seconds) of a cache the run must
    #: outlast before its first step: a Wait state of that long plus ``SETTLE_MARGIN`` (none when the
    #: setting is 0, as locally). The contacts back-fill waits out ``rulesCacheSeconds``, so every stage
    #: function instance then holds a segment book at least as new as the save that started the run.
    settle: str | None = None

    def settle_seconds(self, config: Any) -> int:
        """How long a run waits before its first step, in the deployment ``config``: the ``settle``
        setting's seconds plus ``SETTLE_MARGIN``, or 0 (no ``settle``, or the setting is 0)."""
        if self.settle is None:
            return 0
        cached = int(getattr(config, self.settle))
        return cached + int(SETTLE_MARGIN.total_seconds()) if cached > 0 else 0

    def __post_init__(self) -> None:
        if self.every is None and self.at_hour is None:
            if not self.started_by:
                raise ValueError(f"{self.name}: a workflow without a schedule is started by some function")
        elif self.every != timedelta(days=1) or self.at_hour is None or not 0 <= self.at_hour <= 23:
            raise ValueError(f"{self.name}: workflows run daily, at an hour 0 to 23 UTC")
        for position, step in enumerate(self.steps):
            if isinstance(step.each, EachItem) and position == 0:
                raise ValueError(f"{self.name}: {step.function} has no previous step to take items from")

    @property
    def scheduled(self) -> bool:
        return self.every is not None

    @property
    def expression(self) -> str:
        """The schedule, as EventBridge writes it."""
        if self.at_hour is None:
            raise ValueError(f"{self.name} has no schedule: it is started on demand")
        return f"cron(0 {self.at_hour} * * ? *)"

    def next_run(self, after: datetime) -> datetime:
        """The first scheduled time strictly after ``after`` (aware, UTC)."""
        if self.every is None or self.at_hour is None:
            raise ValueError(f"{self.name} has no schedule: it is started on demand")
        at = after.astimezone(UTC).replace(hour=self.at_hour, minute=0, second=0, microsecond=0)
        return at if at > after else at + self.every

    def previous(self, step: WorkflowStep) -> WorkflowStep:
        """The step before ``step``: the one whose output a per-item step reads its items from."""
        return self.steps[self.steps.index(step) - 1]

    def items(self, step: WorkflowStep, state: Mapping[str, Any], segments: int) -> list[Any]:
        """What a per-item step runs over, from the run's state (the local runner; the cloud reads the same
        path with JSONata)."""
        if isinstance(step.each, EachSegment):
            return list(range(segments))
        assert isinstance(step.each, EachItem), step
        source = self.previous(step).function
        output = state.get(source)
        found = output.get(step.each.field) if isinstance(output, Mapping) else None
        if not isinstance(found, list):
            raise TypeError(f"{source} returned no list {step.each.field!r} for {step.function} to run over")
        return found


#: The nightly analytics pass (issue 12): extract the purchases (a parallel Scan of the purchase index,
#: one run per segment), fit and score every customer at once, apply the scores to profiles (one run per
#: part of the scores). Shortly after midnight UTC, so the day scored (the last complete one) is whole.
NIGHTLY_ANALYTICS = Workflow(
    name="nightly_analytics",
    description="Nightly analytics: RFM segments and churn risk for every customer with purchases",
    every=timedelta(days=1),
    at_hour=2,
    steps=(
        WorkflowStep("analytics_extract", each=EachSegment(max_concurrency=16)),
        WorkflowStep("analytics_fit"),
        WorkflowStep(
            "analytics_apply", each=EachItem(field="parts", item="part", max_concurrency=10, counted=True)
        ),
    ),
)
WORKFLOWS: tuple[Workflow, ...] = (NIGHTLY_ANALYTICS,)
#: issue 15: the nightly recommendations pass: extract every contact's recent products (a parallel Scan of
#: the profiles, one run per segment), fit the item-to-item model, write its items into the config table (one
#: run per part). A workflow of its own, an hour after the analytics pass: it reads none of its output, and a
#: failure of one does not stop the other.
NIGHTLY_RECOMMENDATIONS = Workflow(
    name="nightly_recommendations",
    description="Nightly recommendations: each product's neighbours and the popular products, from every contact's",
    every=timedelta(days=1),
    at_hour=3,
    steps=(
        WorkflowStep("recommendations_extract", each=EachSegment(max_concurrency=16)),
        WorkflowStep("recommendations_fit"),
        WorkflowStep(
            "recommendations_write",
            each=EachItem(field="parts", item="part", max_concurrency=10, counted=True),
        ),
    ),
)
WORKFLOWS += (NIGHTLY_RECOMMENDATIONS,)

# --- issue 13: back-fills, started on demand (by the admin: a segment saved, or by hand) ----------------------

#: What a run waiting out a cache (``Workflow.settle``) adds to it: an instance's copy read just before
#: the save, and clocks that differ a little.
SETTLE_MARGIN = timedelta(seconds=5)

#: Every contact re-evaluated (``shared.usecases.backfills.backfill_contacts``): a new or edited segment
#: reaches existing contacts. One run per name: ``seg-<id>-v<version>``.
CONTACTS_BACKFILL = Workflow(
    name=CONTACTS_BACKFILL_NAME,
    description="Back-fill: every contact re-evaluated (segments, stages), one parallel-scan segment per run",
    every=None,
    at_hour=None,
    steps=(WorkflowStep("backfill_contacts", each=EachSegment(max_concurrency=16)),),
    started_by=("admin",),
    segments_setting="backfill_scan_segments",
    # the stage function's segment book may predate the save for rulesCacheSeconds: a stream evaluation
    # with that older book would re-apply an edited segment's old definition over the back-fill's work
    settle="rules_cache_seconds",
)
#: Purchases stored before the purchase index existed, put in it (``backfill_purchases``).
PURCHASES_BACKFILL = Workflow(
    name=PURCHASES_BACKFILL_NAME,
    description="Back-fill: purchases the purchase index lacks, indexed, one parallel-scan segment per run",
    every=None,
    at_hour=None,
    steps=(WorkflowStep("backfill_purchases", each=EachSegment(max_concurrency=16)),),
    started_by=("admin",),
    segments_setting="backfill_scan_segments",
)
#: The lifecycle stage counters seeded from the stage history (``backfill_metrics``): contacts placed before
#: the metrics function was deployed (or whose counting was lost) counted, what was counted live found counted.
METRICS_BACKFILL = Workflow(
    name=METRICS_BACKFILL_NAME,
    description="Back-fill: the stage history counted into the lifecycle metrics, one scan segment per run",
    every=None,
    at_hour=None,
    steps=(WorkflowStep("backfill_metrics", each=EachSegment(max_concurrency=16)),),
    started_by=("admin",),
    segments_setting="backfill_scan_segments",
)
BACKFILLS: tuple[Workflow, ...] = (CONTACTS_BACKFILL, PURCHASES_BACKFILL, METRICS_BACKFILL)
WORKFLOWS += BACKFILLS


def workflow(name: str) -> Workflow:
    return next(w for w in WORKFLOWS if w.name == name)
