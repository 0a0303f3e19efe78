"""Start and stop the local stack: moto in this process, tables, write keys and the gateway."""

from __future__ import annotations

import json
import os
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from infra.config import DeploymentConfig, environment, identity_secrets_path
from infra.local.bus import BusPump, rule_pattern
from infra.local.gateway import Gateway, LambdaContext, load_handler, routes_for
from infra.local.mail import FeedbackRequest, InvalidFeedback, SentEmailTags, sent_email, ses_event
from infra.local.moto_dynamodb import serialise
from infra.local.outbox import Outbox
from infra.local.queues import QueuePump
from infra.local.scheduler import LocalScheduler
from infra.local.streams import StreamPump
from infra.local.workflow import LocalExecutions, LocalWorkflow, WorkflowFailed
from infra.wiring import (
    BUCKETS,
    FUNCTIONS,
    NIGHTLY_ANALYTICS,
    NIGHTLY_RECOMMENDATIONS,
    QUEUES,
    TABLES,
    WORKFLOWS,
    Workflow,
    function,
)
from shared import clock as clocks
from shared.adapters.queues import create_queue_request, dead_letters_request
from shared.adapters.tables import create_table_request
from shared.tracking.rates import RateLimit
from shared.tracking.timestamps import format_time, parse_time
from shared.tracking.trust import Trust

REGION = "eu-west-1"
#: How many times ``drain_streams`` goes round every trigger before giving up on quiet.
DRAIN_ROUNDS = 25
BUS = "lifecycle"
#: the account's default bus, where SES publishes its events and CloudWatch its alarms' state changes
DEFAULT_BUS = "default"
SENDER = "lifecycle@localhost.localdomain"
#: the SES configuration set emails are sent through (its events reach the feedback function)
CONFIGURATION_SET = "lifecycle-local"
#: the secret that signs unsubscribe and confirmation links and webhooks (a random value per start)
DELIVERY_SECRET = "lifecycle-local-delivery-secret"
#: printed at the foot of every marketing email
POSTAL_ADDRESS = "Lifecycle (local), 1 Example Street, Springfield"
#: where ``make run`` writes each sent email as an .eml file, unless ``LOCAL_MAIL_DIR`` says otherwise
DEFAULT_MAIL_DIR = Path(__file__).resolve().parents[2] / ".local" / "mail"
#: settings only the local stack gives a function, beyond what a deployment gives it: webhooks may go to
#: this machine over plain HTTP (a receiver under development); deployed, they go over HTTPS only
LOCAL_ENVIRONMENT: dict[str, dict[str, str]] = {
    "delivery": {"WEBHOOK_PLAIN_HTTP_HOSTS": "127.0.0.1,localhost"}
}
DEFAULT_BROWSER_KEY = "local-browser-key"
DEFAULT_SERVER_KEY = "local-server-key"
DEFAULT_VERIFIED_KEY = "local-verified-key"
VERIFIED_SOURCE = "local-verified-website"
DEFAULT_IDENTITY_SECRET = "local-identity-secret"


#: The tracking function's default rate limits, by environment variable (as deployed: ``DeploymentConfig``).
RATE_LIMIT_SETTINGS = {
    "KEY_RATE_PER_SECOND": "key_rate_per_second",
    "KEY_BURST": "key_burst",
    "IP_RATE_PER_SECOND": "ip_rate_per_second",
    "IP_BURST": "ip_burst",
}


@dataclass(frozen=True)
class SeededKey:
    """One more write key for the local stack: ``key:trust`` or ``key:trust:rate:burst`` (its own limit)."""

    key: str
    trust: Trust
    limit: RateLimit | None = None

    @classmethod
    def parse(cls, text: str) -> SeededKey:
        parts = text.strip().split(":")
        if len(parts) not in (2, 4) or not parts[0]:
            raise ValueError(f"LOCAL_WRITE_KEYS: {text!r} is not key:trust or key:trust:rate:burst")
        limit = RateLimit(rate=float(parts[2]), burst=int(parts[3])) if len(parts) == 4 else None
        return cls(parts[0], Trust(parts[1]), limit)


@dataclass
class LocalSettings:
    """Everything ``make run`` can be told through the environment."""

    host: str = "127.0.0.1"
    port: int = 3000
    browser_key: str = DEFAULT_BROWSER_KEY
    server_key: str = DEFAULT_SERVER_KEY
    #: a browser key whose calls must prove their userId, and its source's identity secret
    verified_key: str = DEFAULT_VERIFIED_KEY
    identity_secret: str = DEFAULT_IDENTITY_SECRET
    cors_origins: tuple[str, ...] = ("*",)
    quiet: bool = False
    #: more write keys, some with their own rate limits (``LOCAL_WRITE_KEYS``)
    write_keys: tuple[SeededKey, ...] = ()
    #: the default rate limits, where set (``KEY_RATE_PER_SECOND``...: ``DeploymentConfig`` field -> value)
    rate_limits: dict[str, str] = field(default_factory=dict)
    #: where sent emails are written as .eml files (``LOCAL_MAIL_DIR``; None: not written)
    mail_dir: Path | None = None
    #: consent sources whose grants wait for the contact's confirmation (``DOUBLE_OPT_IN_SOURCES``)
    double_opt_in_sources: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> LocalSettings:
        env = dict(os.environ if env is None else env)
        origins = tuple(o.strip() for o in env.get("CORS_ORIGINS", "*").split(",") if o.strip())
        return cls(
            host=env.get("HOST", "127.0.0.1"),
            port=int(env.get("PORT", "3000")),
            browser_key=env.get("LOCAL_BROWSER_WRITE_KEY", DEFAULT_BROWSER_KEY),
            server_key=env.get("LOCAL_SERVER_WRITE_KEY", DEFAULT_SERVER_KEY),
            verified_key=env.get("LOCAL_VERIFIED_WRITE_KEY", DEFAULT_VERIFIED_KEY),
            identity_secret=env.get("LOCAL_IDENTITY_SECRET", DEFAULT_IDENTITY_SECRET),
            cors_origins=origins or ("*",),
            write_keys=tuple(
                SeededKey.parse(k) for k in env.get("LOCAL_WRITE_KEYS", "").split(",") if k.strip()
            ),
            rate_limits={field: env[name] for name, field in RATE_LIMIT_SETTINGS.items() if env.get(name)},
            mail_dir=Path(env.get("LOCAL_MAIL_DIR") or DEFAULT_MAIL_DIR),
            double_opt_in_sources=tuple(
                s.strip() for s in env.get("DOUBLE_OPT_IN_SOURCES", "").split(",") if s.strip()
            ),
        )


@dataclass
class LocalStack:
    settings: LocalSettings
    clock: clocks.ControlledClock = field(default_factory=clocks.ControlledClock)
    table_names: dict[str, str] = field(default_factory=lambda: {t.id: f"lifecycle-{t.id}" for t in TABLES})

    def start(self) -> None:
        from moto import mock_aws

        serialise()
        # moto in this process, not behind its HTTP server: each AWS call skips two HTTP stacks and
        # moto's per-request service lookup, which cost more than the work itself (see BENCHMARKS.md).
        os.environ.pop("AWS_ENDPOINT_URL", None)  # an endpoint would send the calls past moto
        self._moto = mock_aws()
        self._moto.start()
        self._configure_environment()
        clocks.install(self.clock)
        from shared import runtime, scope

        runtime.reset()
        self._was_strict = scope.strict(True)
        self._create_tables()
        self._create_messaging()
        self._create_delivery()
        self._create_queues()
        self._create_buckets()
        self._create_state_machines()
        gateway = Gateway(
            routes_for(FUNCTIONS),
            cors_origins=self.settings.cors_origins,
            extra={
                ("POST", "/_local/clock"): self._clock_endpoint,
                ("GET", "/_local/clock"): self._clock_now,
                ("GET", "/_local/events"): self._events_endpoint,
                ("GET", "/_local/outbox"): self._outbox_endpoint,
                ("POST", "/_local/feedback"): self._feedback_endpoint,
                ("POST", "/_local/redrive"): self._redrive_endpoint,
                ("POST", "/_local/analytics/run"): self._analytics_endpoint,
                # issue 15: the nightly recommendations pass, now
                ("POST", "/_local/recommendations/run"): self._recommendations_endpoint,
            },
        )
        # bound before the functions are hosted: links in messages point at the stack's own URL, whose
        # port is known only now when it was 0 (any free port)
        self._server = gateway.serve(self.settings.host, self.settings.port)
        self.port = self._server.server_address[1]
        self._host_functions()
        self._seed_write_keys()
        self.rules = self._load_rules()
        self._stop = threading.Event()
        self._start_triggers()
        self._thread = threading.Thread(target=self._server.serve_forever, name="gateway", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        try:  # issue 13: a back-fill run still going is let finish its step for a moment, then left
            self.executions.wait(timeout=5)
        except TimeoutError:
            print("[local] a workflow run was still going: stopped with the stack")
        self._server.shutdown()
        self._server.server_close()
        self._moto.stop()
        clocks.install(None)
        from shared import scope

        scope.unhost_all()
        scope.strict(self._was_strict)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.settings.host in ("0.0.0.0", "") else self.settings.host
        return f"http://{host}:{self.port}"

    # --- set-up -----------------------------------------------------------------------------

    def _configure_environment(self) -> None:
        """What the Lambda runtime itself provides: region, credentials (here: moto's endpoint) and logging.

        No function's settings go into the process environment: each function is hosted in its own scope
        with exactly its environment (``_host_functions``)."""
        os.environ.update(
            {
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
                "POWERTOOLS_SERVICE_NAME": "lifecycle-local",  # one logger serves every hosted function
            }
        )
        # Rules and configuration apply at once locally (the cloud caches them for rulesCacheSeconds);
        # one due-index shard is plenty for a laptop.
        self.config = DeploymentConfig(
            cors_origins=self.settings.cors_origins,
            rules_cache_seconds=0,
            due_shards=1,
            # issue 13: a back-fill's steps over a laptop's contacts: a few segments are plenty
            backfill_scan_segments=4,
            sender_email=SENDER,
            postal_address=POSTAL_ADDRESS,
            double_opt_in_sources=self.settings.double_opt_in_sources,
            **self.settings.rate_limits,
        )

    def _host_functions(self) -> None:
        """Each function runs in its own scope: the environment CDK gives it, and its role's grants checked
        on every AWS call it makes. Its handler enters that scope however it is invoked (gateway, stream
        pump, scheduler)."""
        from infra.local.permissions import function_scope
        from shared import scope

        services = {
            "events": BUS,
            "sns": self.topic_arn,
            "identity_secrets": identity_secrets_path(BUS),
            "email": CONFIGURATION_SET,
            "delivery_secret": self.delivery_secret_arn,
            "links": self.url,
        }
        self.environments = {
            spec.name: {
                **environment(
                    spec,
                    self.table_names,
                    self.config,
                    services,
                    self.queue_urls,
                    self.bucket_names,
                    self.state_machine_arns,
                ),
                **LOCAL_ENVIRONMENT.get(spec.name, {}),
            }
            for spec in FUNCTIONS
        }
        #: the tags of every email sent (moto's SES keeps none), for the events ``/_local/feedback`` builds
        self.email_tags = SentEmailTags()
        for spec in FUNCTIONS:
            scope.host(
                spec.handler,
                function_scope(
                    spec,
                    self.environments[spec.name],
                    client_hooks=[self.email_tags.hook, self.executions.hook],
                ),
            )

    def _create_tables(self) -> None:
        from shared.adapters import aws

        db = aws.client("dynamodb")
        for spec in TABLES:
            db.create_table(**create_table_request(spec, self.table_names[spec.id]))
            if spec.ttl_attribute:
                db.update_time_to_live(
                    TableName=self.table_names[spec.id],
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
                )

    def _create_messaging(self) -> None:
        """The event bus (with a catch-all rule into a queue, for GET /_local/events), lead topic and sender."""
        from shared.adapters import aws

        events, sqs = aws.client("events"), aws.client("sqs")
        events.create_event_bus(Name=BUS)
        self._events_queue = sqs.create_queue(QueueName="lifecycle-local-events")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self._events_queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events.put_rule(
            Name="local-capture", EventBusName=BUS, EventPattern=json.dumps({"source": ["lifecycle"]})
        )
        events.put_targets(
            Rule="local-capture", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": queue_arn}]
        )
        self.topic_arn = aws.client("sns").create_topic(Name="lifecycle-leads")["TopicArn"]
        aws.client("ses").verify_email_identity(EmailAddress=SENDER)
        self._published: list[dict[str, Any]] = []

    def _create_delivery(self) -> None:
        """What delivery sends through, as the delivery construct deploys it: the SES configuration set and
        the secret that signs links and webhooks (a random value: links from an earlier run stop working)."""
        from shared.adapters import aws

        aws.client("sesv2").create_configuration_set(ConfigurationSetName=CONFIGURATION_SET)
        self.delivery_secret_arn = aws.client("secretsmanager").create_secret(
            Name=DELIVERY_SECRET, SecretString=secrets.token_urlsafe(32)
        )["ARN"]
        self.account = aws.client("sts").get_caller_identity()["Account"]

    def _create_queues(self) -> None:
        """The queues between functions, each with its dead-letter queue, as CDK builds them."""
        from shared.adapters import aws

        sqs = aws.client("sqs")
        #: queue id -> URL (what the functions' environment names), and of its dead-letter queue
        self.queue_urls: dict[str, str] = {}
        self.queue_dead_letters: dict[str, str] = {}
        for spec in QUEUES:
            name = f"lifecycle-queue-{spec.id}"
            dead_letters = sqs.create_queue(**dead_letters_request(spec, name))["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=dead_letters, AttributeNames=["QueueArn"])["Attributes"]
            self.queue_urls[spec.id] = sqs.create_queue(**create_queue_request(spec, name, arn["QueueArn"]))[
                "QueueUrl"
            ]
            self.queue_dead_letters[spec.id] = dead_letters
        self.outbox = Outbox(
            ledger=self._send_ledger,
            account=lambda: self.account,
            region=REGION,
            mail_dir=self.settings.mail_dir,
        )

    def _create_buckets(self) -> None:
        """The buckets, as CDK builds them (objects expire; moto keeps them for the session)."""
        from shared.adapters import aws

        s3 = aws.client("s3")
        #: bucket id -> name (what the functions' environment names)
        self.bucket_names = {spec.id: f"lifecycle-{spec.id}-local" for spec in BUCKETS}
        for name in self.bucket_names.values():
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})

    def _create_state_machines(self) -> None:
        """issue 13: a state machine per workflow that functions start (the back-fills): moto keeps the
        executions the functions start (a name used twice is refused, as in AWS) and ``LocalExecutions``
        runs each with the workflow's local runner, then records its outcome there."""
        from shared.adapters import aws

        sfn = aws.client("stepfunctions")
        #: workflow -> its state machine's ARN (what the starting functions' environment names)
        self.state_machine_arns: dict[str, str] = {
            flow.name: sfn.create_state_machine(
                name=f"lifecycle-{flow.name}",
                definition=json.dumps(
                    {
                        "Comment": flow.description,
                        "StartAt": "Run",
                        "States": {"Run": {"Type": "Pass", "End": True}},
                    }
                ),
                roleArn=f"arn:aws:iam::{self.account}:role/lifecycle-workflows",
            )["stateMachineArn"]
            for flow in WORKFLOWS
            if flow.started_by
        }
        self.executions = LocalExecutions(runners={})

    def _start_triggers(self) -> None:
        """Stream, bus, queue and schedule triggers from the wiring, driven by background threads."""
        from shared.adapters import aws

        self._threads: list[threading.Thread] = []
        self.pumps: list[StreamPump] = []
        #: one per bus-triggered function: its rule's queue on the local bus, handed to the function
        self.bus_pumps: list[BusPump] = []
        #: one per queue-triggered function (delivery): the queue's messages handed to the function
        self.queue_pumps: list[QueuePump] = []
        #: function name -> URL of its dead-letter queue (the deployed stack has one per triggered function)
        self.dead_letter_queues: dict[str, str] = {}
        self._redrivers: list[tuple[str, Any, Any, Any]] = []
        self.scheduler = LocalScheduler(self.clock, after_work=self.drain_streams)
        sqs = aws.client("sqs")
        for spec in FUNCTIONS:
            if spec.stream is None and spec.schedule is None and spec.bus is None and spec.queue is None:
                continue  # invoked by a workflow (or by routes): its handler loads when first run
            handler = load_handler(spec.handler)
            context = lambda name=spec.name, timeout=spec.timeout_seconds: LambdaContext(
                function_name=f"lifecycle-{name}", aws_request_id="local", timeout_seconds=timeout
            )
            if spec.queue is not None:
                # its failures go to the queue's own dead-letter queue, after max_receive_count receives
                self.dead_letter_queues[spec.name] = self.queue_dead_letters[spec.queue.queue.id]
                self.queue_pumps.append(
                    QueuePump(
                        name=spec.name,
                        sqs=sqs,
                        queue_url=self.queue_urls[spec.queue.queue.id],
                        trigger=spec.queue,
                        handler=handler,
                        context=context,
                        on_batch=self.outbox.received,
                    )
                )
            if spec.stream is None and spec.schedule is None and spec.bus is None:
                continue
            url = sqs.create_queue(QueueName=f"lifecycle-{spec.name}-dead-letters")["QueueUrl"]
            self.dead_letter_queues[spec.name] = url
            send = lambda letter, u=url: sqs.send_message(QueueUrl=u, MessageBody=json.dumps(letter))
            if spec.stream is not None:
                self.pumps.append(
                    StreamPump(
                        dynamodb=aws.client("dynamodb"),
                        streams=aws.client("dynamodbstreams"),
                        table=self.table_names[spec.stream.table.id],
                        trigger=spec.stream,
                        handler=handler,
                        context=context,
                        on_failure=send,
                    )
                )
                self._redrivers.append((spec.name, spec.stream, self.pumps[-1], context))
            if spec.bus is not None:
                self.bus_pumps.append(
                    BusPump(
                        name=spec.name,
                        sqs=sqs,
                        queue_url=self._bus_rule(spec.name, spec.bus),
                        trigger=spec.bus,
                        handler=handler,
                        context=context,
                        on_failure=send,
                    )
                )
            if spec.schedule is not None:
                self.scheduler.add(
                    spec.name,
                    spec.schedule.every,
                    lambda event, h=handler, c=context: h(event, c()),
                    retry_attempts=spec.schedule.retry_attempts,
                    on_failure=send,
                    idle_until=(
                        self._earliest_due
                        if spec.schedule.due_index
                        else self._earliest_campaign  # issue 13
                        if spec.schedule.live_campaigns
                        else None
                    ),
                )
        self._schedule_workflows()
        for pump in self.pumps:
            self._threads.append(
                threading.Thread(target=pump.run, args=(self._stop,), name="streams", daemon=True)
            )
        for bus_pump in self.bus_pumps:
            self._threads.append(
                threading.Thread(target=bus_pump.run, args=(self._stop,), name="bus", daemon=True)
            )
        for queue_pump in self.queue_pumps:
            self._threads.append(
                threading.Thread(target=queue_pump.run, args=(self._stop,), name="queue", daemon=True)
            )
        self._threads.append(
            threading.Thread(target=self.scheduler.run, args=(self._stop,), name="scheduler", daemon=True)
        )
        for thread in self._threads:
            thread.start()

    def _schedule_workflows(self) -> None:
        """Each workflow of the wiring, run in-process by the scheduler at its hour on the local clock, as
        the schedule starts the state machine in the cloud; a run that fails is kept in ``failed_runs`` (the
        cloud's failed-runs queue) and the schedule goes on."""
        #: workflow name -> its local runner
        self.workflows: dict[str, LocalWorkflow] = {
            flow.name: LocalWorkflow(
                flow,
                getattr(self.config, flow.segments_setting),
                self._invoke_function,
                # issue 13: a cache to outlast first (``Workflow.settle``): none locally (caches are 0)
                settle=flow.settle_seconds(self.config),
            )
            for flow in WORKFLOWS
        }
        # issue 13: the runs the functions start (the admin starts the back-fills), by state machine
        for name, arn in self.state_machine_arns.items():
            self.executions.runners[arn] = self.workflows[name]
        #: the reports of runs that failed, oldest first
        self.failed_runs: list[dict[str, Any]] = []
        for flow in WORKFLOWS:
            if not flow.scheduled:
                continue  # started on demand: through moto's Step Functions (``LocalExecutions``)
            self.scheduler.add(
                flow.name,
                flow.every,
                lambda event, f=flow: self._run_workflow(f, parse_time(event["time"])),
                retry_attempts=0,  # a failed execution is not started again: the next night's run covers it
                first_at=flow.next_run(self.clock.now()),
                # a jump of the clock over many nights runs the last one: it scores everyone from their
                # whole history (the nights before it would each do the same on less)
                coalesce=True,
            )

    def _run_workflow(self, flow: Workflow, at: datetime) -> dict[str, Any]:
        """One run with the schedule's input (its time, as EventBridge writes it): the final state, or the
        failure's report (also kept in ``failed_runs``)."""
        try:
            return self.workflows[flow.name].run(schedule_time(at))
        except WorkflowFailed as failed:
            self.failed_runs.append(failed.report())
            del self.failed_runs[:-100]
            return {"failed": failed.report()}

    def _invoke_function(self, name: str, payload: dict[str, Any]) -> Any:
        """A synchronous invocation, as Step Functions makes it: the payload and the result as JSON."""
        spec = function(name)
        context = LambdaContext(
            function_name=f"lifecycle-{name}",
            aws_request_id=str(uuid.uuid4()),
            memory_limit_in_mb=spec.memory_mb,
            timeout_seconds=spec.timeout_seconds,
        )
        result = load_handler(spec.handler)(json.loads(json.dumps(payload)), context)
        return json.loads(json.dumps(result))

    def _bus_rule(self, name: str, trigger: Any) -> str:
        """The function's rule on its bus (the stack's own, or the account's default bus where SES and
        CloudWatch publish), its pattern as deployed, targeting a queue the pump reads."""
        from shared.adapters import aws

        sqs, events = aws.client("sqs"), aws.client("events")
        bus = DEFAULT_BUS if trigger.bus == "default" else BUS
        url = sqs.create_queue(QueueName=f"lifecycle-{name}-bus-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        rule = f"local-{name}"
        events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(rule_pattern(trigger)))
        events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "function", "Arn": arn}])
        return url

    def _send_ledger(self) -> Any:
        """The send ledger, as the delivery function writes it (read by the outbox and /_local/feedback)."""
        from shared.adapters import aws
        from shared.adapters.send_ledger import DynamoSendLedger
        from shared.adapters.tables import CONTACTS

        return DynamoSendLedger(
            aws.client("dynamodb"),
            contacts_table=self.table_names[CONTACTS.id],
            due_shards=self.config.due_shards,
        )

    def _earliest_due(self) -> datetime | None:
        """The earliest entry of the due index (one Query per shard, the first key): the timer function
        has nothing to do before it."""
        from shared.adapters import aws
        from shared.adapters.tables import CONTACTS

        index = CONTACTS.global_indexes[0]
        earliest = None
        for shard in range(self.config.due_shards):
            page = aws.client("dynamodb").query(
                TableName=self.table_names[CONTACTS.id],
                IndexName=index.name,
                KeyConditionExpression="#p = :p",
                ExpressionAttributeNames={"#p": index.partition_key},
                ExpressionAttributeValues={":p": {"S": f"DUE#{shard}"}},
                Limit=1,
            )
            for item in page.get("Items", []):
                due = parse_time(item[index.sort_key]["S"].split("#", 1)[0])
                earliest = due if earliest is None else min(earliest, due)
        return earliest

    def _earliest_campaign(self) -> datetime | None:
        """Issue 13: the earliest start among live campaigns (one Query of the live set): the campaigns
        function has nothing to do before it, nor when none is live."""
        from shared.adapters import aws
        from shared.adapters.campaign_store import DynamoCampaignStates
        from shared.adapters.tables import CONFIG

        live = DynamoCampaignStates(aws.client("dynamodb"), table=self.table_names[CONFIG.id]).live()
        return min((c.due_at for c in live), default=None)

    def drain_streams(self) -> None:
        """Until every stream, bus rule and queue is quiet: a function's writes may trigger another's
        (events fold into profiles, whose changes move stages, whose announcements run automations,
        whose requests delivery sends, whose writes may do it all again)."""
        for _ in range(DRAIN_ROUNDS):
            if not sum(pump.drain() for pump in [*self.pumps, *self.bus_pumps, *self.queue_pumps]):
                return
        print(f"[local] triggers still busy after {DRAIN_ROUNDS} rounds: a function may trigger itself")

    def _seed_write_keys(self) -> None:
        from shared.adapters import aws
        from shared.adapters.identity_secrets import SsmIdentitySecrets
        from shared.adapters.write_keys import DynamoWriteKeys

        keys = DynamoWriteKeys(aws.client("dynamodb"), table=self.table_names["config"])
        now = self.clock.now()
        keys.register(self.settings.browser_key, "local-website", Trust.BROWSER, now)
        keys.register(self.settings.server_key, "local-backend", Trust.SERVER, now)
        keys.register(self.settings.verified_key, VERIFIED_SOURCE, Trust.BROWSER, now, requires_proof=True)
        secrets = SsmIdentitySecrets(lambda: aws.client("ssm"), path=identity_secrets_path(BUS))
        secrets.adopt(VERIFIED_SOURCE, self.settings.identity_secret)
        for seeded in self.settings.write_keys:
            keys.register(seeded.key, f"local-{seeded.trust.value}", seeded.trust, now, seeded.limit)

    def _load_rules(self) -> int:
        """Load and compile the scoring rules (the shipped defaults, plus any stored) as the functions will."""
        from shared.adapters import aws
        from shared.adapters.rule_store import DynamoRuleStore

        return len(DynamoRuleStore(aws.client("dynamodb"), table=self.table_names["config"]).book())

    # --- local-only endpoints ----------------------------------------------------------------

    def _clock_now(self, body: bytes) -> tuple[int, dict[str, Any]]:
        return 200, {"now": format_time(self.clock.now())}

    def _clock_endpoint(self, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            request = json.loads(body or b"{}")
            if "advance" in request:
                target = self.clock.now() + parse_duration(request["advance"])
            elif "set" in request:
                target = parse_time(request["set"])
                if target < self.clock.now():
                    raise ValueError("the clock only moves forward")
            else:
                raise ValueError('send {"advance": "P30D"} or {"set": "<ISO-8601 time>"}')
        except (ValueError, TypeError, AttributeError) as exc:
            return 400, {"code": "invalid_clock", "message": str(exc)}
        self.drain_streams()
        fired = self.scheduler.advance(target)
        self.drain_streams()
        return 200, {"now": format_time(self.clock.now()), "scheduled_runs": fired}

    def _redrive_endpoint(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """``python -m infra.redrive``, locally: each stream trigger's dead letters, re-read and re-run."""
        from infra.local.filters import matches
        from infra.redrive import Redrive
        from infra.redrive.aws import HandlerInvoker, SqsDeadLetters, StreamShardRanges
        from shared.adapters import aws

        results = {}
        for name, trigger, pump, context in self._redrivers:
            redrive = Redrive(
                SqsDeadLetters(aws.client("sqs"), self.dead_letter_queues[name], wait_seconds=0),
                StreamShardRanges(aws.client("dynamodbstreams")),
                HandlerInvoker(
                    lambda event, ctx, p=pump: p._handler(event, ctx), context
                ),  # as the pump does
                passes=lambda record, t=trigger: any(matches(p, record) for p in t.filters),
                batch_size=trigger.batch_size,
                function=name,
            )
            results[name] = [
                {"message": r.message_id, "outcome": r.outcome, "detail": r.detail, "records": r.records}
                for r in redrive.run()
            ]
        self.drain_streams()
        return 200, {"redriven": results}

    def _analytics_endpoint(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """The nightly analytics pass, now (the local clock's time): each step's output, or 500 naming the
        step that failed and why."""
        self.drain_streams()  # every purchase recorded so far is in the index before the scan
        result = self._run_workflow(NIGHTLY_ANALYTICS, self.clock.now())
        self.drain_streams()  # the announcements reach the automations
        if "failed" in result:
            return 500, result["failed"]
        return 200, result

    def _recommendations_endpoint(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """issue 15: the nightly recommendations pass, now (the local clock's time): each step's output, or
        500 naming the step that failed and why."""
        self.drain_streams()  # every product bought or viewed so far is on its contact's profile
        result = self._run_workflow(NIGHTLY_RECOMMENDATIONS, self.clock.now())
        if "failed" in result:
            return 500, result["failed"]
        return 200, result

    def _events_endpoint(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """What the functions published on the event bus, oldest first (the last 500)."""
        from shared.adapters import aws

        self.drain_streams()
        sqs = aws.client("sqs")
        while True:
            messages = sqs.receive_message(QueueUrl=self._events_queue, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                break
            for message in messages:
                event = json.loads(message["Body"])
                self._published.append(
                    {"type": event["detail-type"], "time": event["time"], "detail": event["detail"]}
                )
                sqs.delete_message(QueueUrl=self._events_queue, ReceiptHandle=message["ReceiptHandle"])
        del self._published[:-500]
        return 200, {"events": self._published}

    def _outbox_endpoint(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """What delivery did with each request it received, oldest first (by ``at``, then arrival; the
        last 1000): as requested, its send ledger status and reason, and what was sent (``Outbox``)."""
        self.drain_streams()
        return 200, {"messages": self.outbox.messages()}

    def _feedback_endpoint(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """What a mailbox provider reports about a sent email (opened, clicked, bounced, complained), as
        SES publishes it on the default bus: the feedback function handles it as deployed."""
        from shared.adapters import aws

        try:
            feedback = FeedbackRequest.parse(body)
        except InvalidFeedback as exc:
            return 400, {"code": "invalid_feedback", "field": exc.field, "message": str(exc)}
        self.drain_streams()
        record = self._send_ledger().record(feedback.id)
        if record is None:
            return 404, {
                "code": "unknown_send",
                "message": f"no delivery request {feedback.id!r} was handled",
            }
        sent = (
            sent_email(self.account, REGION, record.provider_id)
            if record.channel == "email" and record.status == "sent" and record.provider_id
            else None
        )
        if sent is None:
            return 409, {
                "code": "not_sent",
                "message": f"{feedback.id!r} is a {record.channel} request with status {record.status}: "
                "SES reports only on emails it sent",
            }
        entry = ses_event(
            feedback,
            sent,
            tags=self.email_tags.tags(sent.message_id),
            sent_at=record.sent_at or record.at,
            now=self.clock.now(),
            account=self.account,
            region=REGION,
            configuration_set=CONFIGURATION_SET,
        )
        answer = aws.client("events").put_events(Entries=[entry])
        if answer.get("FailedEntryCount"):
            return 503, {"code": "unavailable", "message": f"the default bus refused the event: {answer}"}
        self.drain_streams()
        return 200, {
            "published": {
                "source": entry["Source"],
                "detail-type": entry["DetailType"],
                "detail": json.loads(entry["Detail"]),
            }
        }

    def banner(self) -> str:
        url = self.url
        key = RateLimit(self.config.key_rate_per_second, self.config.key_burst)
        ip = RateLimit(self.config.ip_rate_per_second, self.config.ip_burst)
        limits = (
            f"Rate limits: {key.burst} requests per {key.window_ms / 1000:g} s per write key, "
            f"{ip.burst} per {ip.window_ms / 1000:g} s per address (browser keys)"
        )
        return "\n".join(
            [
                f"Lifecycle local stack on {url}  (Ctrl-C stops)",
                "",
                "Write keys:",
                f"  browser (behaviour only): {self.settings.browser_key}",
                f"  server  (all facts):      {self.settings.server_key}",
                (
                    f"  browser, verified identity: {self.settings.verified_key}  (source {VERIFIED_SOURCE}, "
                    f"identity secret {self.settings.identity_secret})"
                ),
                (
                    "  a call naming a userId proves it: integrations.Lifecycle.userHash = "
                    "hex HMAC-SHA256(secret, userId)"
                ),
                *(
                    f"  {k.trust.value:<7} (LOCAL_WRITE_KEYS):  {k.key}"
                    + (
                        f"  (at most {k.limit.burst} requests per {k.limit.window_ms / 1000:g} s)"
                        if k.limit
                        else ""
                    )
                    for k in self.settings.write_keys
                ),
                limits,
                "",
                "Send an event:",
                f"  curl -s -u {self.settings.server_key}: -H 'content-type: application/json' {url}/v1/track \\",
                '    -d \'{"userId": "ann", "event": "Product Viewed", "properties": {"sku": "X"}}\'',
                "See the contact (scores, tags, ledger):",
                f"  curl -s {url}/admin/contacts/user_id:ann",
                f"Scoring rules ({self.rules} loaded, shipped defaults included):",
                f"  curl -s {url}/admin/rules",
                f"  curl -s -X PUT {url}/admin/rules/kites -H 'content-type: application/json' \\",
                '    -d \'{"behaviour": "product_viewed", "points": 5, "match": {"product": "kite-3"}, "tag": "kites"}\'',
                "Stage events published on the bus:",
                f"  curl -s {url}/_local/events",
                "What delivery did with the automations' messages (sent, skipped, deferred, and why):",
                f"  curl -s {url}/_local/outbox",
                *(
                    [f"Sent emails, as .eml files to open in a mail client: {self.settings.mail_dir}"]
                    if self.settings.mail_dir is not None
                    else []
                ),
                "Report what a recipient did with a sent email (open, click, bounce, soft_bounce, complaint):",
                f"  curl -s -X POST {url}/_local/feedback -H 'content-type: application/json' \\",
                '    -d \'{"id": "<id from the outbox>", "kind": "click", "link": "https://shop.example/"}\'',
                "Run the nightly analytics now (RFM segments, churn risk; it also runs at 02:00 on the clock):",
                f"  curl -s -X POST {url}/_local/analytics/run -H 'content-type: application/json'",
                "Fit the product recommendations now (it also runs at 03:00 on the clock):",
                f"  curl -s -X POST {url}/_local/recommendations/run -H 'content-type: application/json'",
                "Back-fill: re-evaluate every contact, index purchases stored before the purchase index, or",
                "count the stage history into the lifecycle metrics (moves made before they were counted):",
                f"  curl -s -X POST {url}/admin/backfills/contacts_backfill -H 'content-type: application/json'",
                f"  curl -s -X POST {url}/admin/backfills/purchases_backfill -H 'content-type: application/json'",
                f"  curl -s -X POST {url}/admin/backfills/metrics_backfill -H 'content-type: application/json'",
                "Move time on (scheduled jobs fire on the way):",
                f"  curl -s -X POST {url}/_local/clock -H 'content-type: application/json' \\",
                '    -d \'{"advance": "P30D"}\'',
            ]
        )


_DURATION = __import__("re").compile(
    r"^P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


def schedule_time(at: datetime) -> str:
    """A time as a scheduled event carries it (EventBridge: ``2026-11-24T02:00:00Z``)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_duration(text: str) -> timedelta:
    """ISO-8601 durations in weeks, days, hours, minutes and seconds: ``P30D``, ``PT12H``, ``P1W2DT3H``."""
    match = _DURATION.match(text.strip().upper()) if isinstance(text, str) else None
    if not match or text.strip().upper() in ("P", "PT"):
        raise ValueError(f"{text!r} is not an ISO-8601 duration such as P30D or PT12H")
    return timedelta(**{k: int(v) for k, v in match.groupdict().items() if v})
