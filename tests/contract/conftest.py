"""Contract tests: every port's fake and its DynamoDB adapter pass the same tests.

The adapter side runs on moto with the tables built from ``shared.adapters.tables`` (the specs the CDK
stack synthesizes); the fake side runs in memory. A behaviour the fake gets wrong, or the adapter
drifts from, fails here rather than in a unit test that trusted the fake.

Ports covered (fakes in ``tests/fakes.py``): write keys, rule repository, engagement configuration
(``test_configuration_ports``); event log and contact store, with the events table's stream
(``test_contact_store``); merge store and merge requests (``test_merge_store``); contact log
(``test_contact_log``); stage store (``test_stage_store``); publisher (``test_publisher``, on moto's
EventBridge, SNS, SQS and SES); rate-limit counters (``test_rate_counters``); automation repository
(``test_automation_store``); the delivery providers: mailer, texter, delivery secret, webhook poster, on
moto's SES v2, SNS and Secrets Manager and a local HTTP server (``test_delivery_providers``); delivery's
send ledger with the due index (``test_send_ledger``), frequency caps (``test_frequency_caps``), recipients
(``test_recipients``) and engagement times (``test_engagement_times``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from shared.adapters.tables import CONFIG, CONTACTS, EVENTS, RATES, TableSpec, create_table_request


@pytest.fixture(params=["fake", "dynamodb"])
def implementation(request: pytest.FixtureRequest) -> str:
    return request.param


def moto_table(spec: TableSpec, name: str) -> Iterator[Callable[[], tuple[Any, str]]]:
    """A moto table of ``spec``, created on first use (the fake side never starts moto), with moto
    serialised as the local stack serialises it."""
    from moto import mock_aws

    from infra.local.moto_dynamodb import serialise
    from shared.adapters import aws

    serialise()
    with mock_aws():
        aws.reset()
        created: list[tuple[Any, str]] = []

        def _table() -> tuple[Any, str]:
            if not created:
                db = aws.client("dynamodb")
                db.create_table(**create_table_request(spec, name))
                created.append((db, name))
            return created[0]

        yield _table
        aws.reset()


@pytest.fixture
def config_table() -> Iterator[Callable[[], tuple[Any, str]]]:
    yield from moto_table(CONFIG, "contract-config")


@pytest.fixture
def rates_table() -> Iterator[Callable[[], tuple[Any, str]]]:
    yield from moto_table(RATES, "contract-rates")


@dataclass(frozen=True, slots=True)
class ContactTables:
    """The moto contacts and events tables, as the CDK stack builds them, and a client with DynamoDB's
    limits; ``stream`` reads the events table's stream from its start (``StreamPump``)."""

    db: Any
    contacts: str
    events: str
    stream: Any

    def stores(self) -> Any:
        """The event log, the contact store and the merge store over these tables, with the events
        table's stream, as one object: the fake (``MemoryContactStore``) offers them together."""
        from shared.adapters.contact_merges import DynamoMergeStore
        from shared.adapters.contact_store import DynamoContactStore
        from shared.adapters.event_log import DynamoEventLog

        tables = {"contacts_table": self.contacts, "events_table": self.events, "sleep": lambda _: None}
        return DynamoContacts(
            DynamoContactStore(self.db, **tables),
            DynamoMergeStore(self.db, **tables),
            DynamoEventLog(self.db, events_table=self.events, sleep=lambda _: None),
            self.stream,
        )


class EventStream:
    """The events table's stream as the aggregation's event source mapping delivers it (its filter:
    new events, not copies), each record turned into a ``NewEvent`` by ``new_event_from_stream``."""

    def __init__(self, db: Any, table: str) -> None:
        from dataclasses import replace

        from infra.local.streams import StreamPump
        from infra.wiring import function
        from shared.adapters import aws
        from shared.adapters.contact_items import new_event_from_stream

        self.delivered: list[Any] = []

        def collect(event: dict[str, Any], _context: Any) -> dict[str, Any]:
            self.delivered += [e for e in map(new_event_from_stream, event["Records"]) if e is not None]
            return {}

        trigger = replace(function("aggregation").stream, batch_size=1000)  # type: ignore[arg-type]
        self._pump = StreamPump(
            dynamodb=db,
            streams=aws.client("dynamodbstreams"),
            table=table,
            trigger=trigger,
            handler=collect,
            context=lambda: None,
        )

    def new_events(self) -> list[Any]:
        self._pump.drain()
        found, self.delivered = self.delivered, []
        return found


class DynamoContacts:
    """``ContactStore`` calls go to the contact store adapter, ``EventLog`` calls to the event log, the
    merge steps to the merge adapter; ``new_events`` and ``deliver_events`` read the stream, as the
    fake's do."""

    def __init__(self, contacts: Any, merges: Any, log: Any, stream: EventStream) -> None:
        self.contacts, self.merges, self.log, self.stream = contacts, merges, log, stream

    def __getattr__(self, name: str) -> Any:
        for port in (self.contacts, self.log, self.merges):
            if hasattr(port, name):
                return getattr(port, name)
        raise AttributeError(name)

    def new_events(self) -> list[Any]:
        return self.stream.new_events()

    def aggregation(self, rules: Any = None, decay: Any = None, telemetry: Any = None) -> Any:
        from shared.scoring.decay import Decay
        from shared.usecases.aggregation import Aggregation
        from tests.fakes import CountingTelemetry, StaticRules

        return Aggregation(
            contacts=self,
            log=self,
            rules=StaticRules() if rules is None else StaticRules(list(rules)),
            decay=Decay() if decay is None else decay,
            telemetry=CountingTelemetry() if telemetry is None else telemetry,
        )

    def deliver_events(self, rules: Any = None, decay: Any = None, telemetry: Any = None) -> Any:
        from shared.usecases.aggregation import aggregate

        return aggregate(self.new_events(), self.aggregation(rules, decay, telemetry))


@pytest.fixture
def contact_tables() -> Iterator[Callable[[], ContactTables]]:
    """The contacts and events tables in moto, created on first use (the fake side never asks).

    The client carries ``dynamodb_limits`` (4 KB expressions, 100 items per transaction), which moto does
    not enforce, and moto is patched as the local stack patches it (serialised, numbers written plainly).
    """
    from moto import mock_aws

    from infra.local.moto_dynamodb import serialise
    from shared.adapters import aws
    from tests.conftest import dynamodb_limits

    serialise()
    with mock_aws():
        aws.reset()
        created: list[ContactTables] = []

        def _tables() -> ContactTables:
            if not created:
                db = aws.client("dynamodb")
                db.meta.events.register("before-parameter-build.dynamodb", dynamodb_limits)
                db.create_table(**create_table_request(CONTACTS, "contract-contacts"))
                db.create_table(**create_table_request(EVENTS, "contract-events"))
                stream = EventStream(db, "contract-events")
                created.append(ContactTables(db, "contract-contacts", "contract-events", stream))
            return created[0]

        yield _tables
        aws.reset()
