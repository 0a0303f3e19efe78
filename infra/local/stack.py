"""Start and stop the local stack: moto in this process, tables, write keys and the gateway."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from infra.config import DeploymentConfig, environment, identity_secrets_path
from infra.local.bus import BusPump, rule_pattern
from infra.local.gateway import Gateway, LambdaContext, load_handler, routes_for
from infra.local.moto_dynamodb import serialise
from infra.local.scheduler import LocalScheduler
from infra.local.streams import StreamPump
from infra.wiring import FUNCTIONS, QUEUES, TABLES
from shared import clock as clocks
from shared.adapters.queues import DELIVERY, create_queue_request, dead_letters_request
from shared.adapters.tables import create_table_request
from shared.tracking.rates import RateLimit
from shared.tracking.timestamps import format_time, parse_time
from shared.tracking.trust import Trust

REGION = "eu-west-1"
#: How many times ``drain_streams`` goes round every trigger before giving up on quiet.
DRAIN_ROUNDS = 25
BUS = "lifecycle"
SENDER = "lifecycle@localhost.localdomain"
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
        self._create_queues()
        self._host_functions()
        self._seed_write_keys()
        self.rules = self._load_rules()
        self._stop = threading.Event()
        self._start_triggers()
        gateway = Gateway(
            routes_for(FUNCTIONS),
            cors_origins=self.settings.cors_origins,
            extra={
                ("POST", "/_local/clock"): self._clock_endpoint,
                ("GET", "/_local/clock"): self._clock_now,
                ("GET", "/_local/events"): self._events_endpoint,
                ("GET", "/_local/outbox"): self._outbox_endpoint,
                ("POST", "/_local/redrive"): self._redrive_endpoint,
            },
        )
        self._server = gateway.serve(self.settings.host, self.settings.port)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="gateway", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
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
            sender_email=SENDER,
            **self.settings.rate_limits,
        )

    def _host_functions(self) -> None:
        """Each function runs in its own scope: the environment CDK gives it, and its role's grants checked
        on every AWS call it makes. Its handler enters that scope however it is invoked (gateway, stream
        pump, scheduler)."""
        from infra.local.permissions import function_scope
        from shared import scope

        services = {"events": BUS, "sns": self.topic_arn, "identity_secrets": identity_secrets_path(BUS)}
        self.environments = {
            spec.name: environment(spec, self.table_names, self.config, services, self.queue_urls)
            for spec in FUNCTIONS
        }
        for spec in FUNCTIONS:
            scope.host(spec.handler, function_scope(spec, self.environments[spec.name]))

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
        self._outbox: list[tuple[datetime, int, dict[str, Any]]] = []
        self._outbox_lock = threading.Lock()

    def _start_triggers(self) -> None:
        """Stream, bus and schedule triggers from the wiring, driven by background threads."""
        from shared.adapters import aws

        self._threads: list[threading.Thread] = []
        self.pumps: list[StreamPump] = []
        #: one per bus-triggered function: its rule's queue on the local bus, handed to the function
        self.bus_pumps: list[BusPump] = []
        #: function name -> URL of its dead-letter queue (the deployed stack has one per triggered function)
        self.dead_letter_queues: dict[str, str] = {}
        self._redrivers: list[tuple[str, Any, Any, Any]] = []
        self.scheduler = LocalScheduler(self.clock, after_work=self.drain_streams)
        sqs = aws.client("sqs")
        for spec in FUNCTIONS:
            handler = load_handler(spec.handler)
            context = lambda name=spec.name, timeout=spec.timeout_seconds: LambdaContext(
                function_name=f"lifecycle-{name}", aws_request_id="local", timeout_seconds=timeout
            )  # noqa: E731
            if spec.stream is None and spec.schedule is None and spec.bus is None:
                continue
            url = sqs.create_queue(QueueName=f"lifecycle-{spec.name}-dead-letters")["QueueUrl"]
            self.dead_letter_queues[spec.name] = url
            send = lambda letter, u=url: sqs.send_message(  # noqa: E731
                QueueUrl=u, MessageBody=json.dumps(letter)
            )
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
                    idle_until=self._earliest_due if spec.schedule.due_index else None,
                )
        for pump in self.pumps:
            self._threads.append(
                threading.Thread(target=pump.run, args=(self._stop,), name="streams", daemon=True)
            )
        for bus_pump in self.bus_pumps:
            self._threads.append(
                threading.Thread(target=bus_pump.run, args=(self._stop,), name="bus", daemon=True)
            )
        self._threads.append(
            threading.Thread(target=self.scheduler.run, args=(self._stop,), name="scheduler", daemon=True)
        )
        for thread in self._threads:
            thread.start()

    def _bus_rule(self, name: str, trigger: Any) -> str:
        """The function's rule on the local bus, its pattern as deployed, targeting a queue the pump reads."""
        from shared.adapters import aws

        sqs, events = aws.client("sqs"), aws.client("events")
        url = sqs.create_queue(QueueName=f"lifecycle-{name}-bus-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        rule = f"local-{name}"
        events.put_rule(Name=rule, EventBusName=BUS, EventPattern=json.dumps(rule_pattern(trigger)))
        events.put_targets(Rule=rule, EventBusName=BUS, Targets=[{"Id": "function", "Arn": arn}])
        return url

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

    def drain_streams(self) -> None:
        """Until every stream and bus rule is quiet: a function's writes may trigger another's (events
        fold into profiles, whose changes move stages, whose announcements run automations, whose
        writes may do it all again)."""
        for _ in range(DRAIN_ROUNDS):
            if not sum(pump.drain() for pump in [*self.pumps, *self.bus_pumps]):
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
        """What automations handed to delivery, oldest first (by ``at``, then arrival; the last 1000).

        Until the delivery function exists, the local stack consumes the delivery queue as it will:
        each message received and deleted; one that is not a delivery request goes to the queue's
        dead letters (as it would after failing delivery ``max_receive_count`` times)."""
        from pydantic import ValidationError

        from shared.adapters import aws
        from shared.delivery.requests import DeliveryRequest

        self.drain_streams()
        sqs, url = aws.client("sqs"), self.queue_urls[DELIVERY.id]
        with self._outbox_lock:
            while True:
                messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    try:
                        request = DeliveryRequest.model_validate_json(message["Body"])
                    except ValidationError as exc:
                        print(f"[local] not a delivery request, set aside: {exc}")
                        sqs.send_message(
                            QueueUrl=self.queue_dead_letters[DELIVERY.id], MessageBody=message["Body"]
                        )
                    else:
                        self._outbox.append(
                            (request.at, len(self._outbox), _outbox_entry(request, message["Body"]))
                        )
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            self._outbox.sort(key=lambda entry: entry[:2])
            del self._outbox[:-1000]
            return 200, {"messages": [entry for _, _, entry in self._outbox]}

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
                "Messages automations handed to delivery (email, SMS, webhooks):",
                f"  curl -s {url}/_local/outbox",
                "Move time on (scheduled jobs fire on the way):",
                f"  curl -s -X POST {url}/_local/clock -H 'content-type: application/json' \\",
                '    -d \'{"advance": "P30D"}\'',
            ]
        )


def _outbox_entry(request: Any, body: str) -> dict[str, Any]:
    """One delivery request as ``GET /_local/outbox`` lists it, its ``at`` as it was sent."""
    return {
        "id": request.id,
        "contact_id": request.contact_id,
        "automation": request.automation,
        "channel": request.channel,
        "at": json.loads(body)["at"],
        "status": request.status,
        "reason": request.reason,
        "subject": request.subject,
        "text": request.text,
    }


_DURATION = __import__("re").compile(
    r"^P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


def parse_duration(text: str) -> timedelta:
    """ISO-8601 durations in weeks, days, hours, minutes and seconds: ``P30D``, ``PT12H``, ``P1W2DT3H``."""
    match = _DURATION.match(text.strip().upper()) if isinstance(text, str) else None
    if not match or text.strip().upper() in ("P", "PT"):
        raise ValueError(f"{text!r} is not an ISO-8601 duration such as P30D or PT12H")
    return timedelta(**{k: int(v) for k, v in match.groupdict().items() if v})
