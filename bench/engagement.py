"""Stage-function benchmarks (issue 4): writes per processed stream record; records per second."""

from __future__ import annotations

import time
from collections import Counter
from contextlib import ExitStack, contextmanager
from typing import Any

from bench.harness import cpu_seconds, median
from bench.tracking import Context, api_event, function_environment, host_functions
from infra.config import DeploymentConfig
from infra.wiring import function
from shared.adapters.tables import TABLES, create_table_request

WRITES = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")


@contextmanager
def engagement_stack():
    """moto with the tables, bus and topic; each function in its own scope; stream pumps for the aggregation
    (events into profiles) and the stage function."""
    from moto import mock_aws

    from infra.local.moto_dynamodb import serialise
    from infra.local.streams import StreamPump
    from shared import runtime
    from shared.adapters import aws

    serialise()
    names = {t.id: f"bench-{t.id}" for t in TABLES}
    with mock_aws(), function_environment(names), ExitStack() as stack:
        runtime.reset()
        db = aws.client("dynamodb")
        for spec in TABLES:
            db.create_table(**create_table_request(spec, names[spec.id]))
        aws.use("dynamodb", db)  # the functions' calls go through the counted client
        aws.client("events").create_event_bus(Name="bench-bus")
        topic = aws.client("sns").create_topic(Name="bench-leads")["TopicArn"]
        config = DeploymentConfig(rules_cache_seconds=60, due_shards=1)
        functions = ("tracking", "aggregation", "stage_transition")
        stack.enter_context(host_functions(names, functions, config, {"events": "bench-bus", "sns": topic}))
        from datetime import UTC, datetime

        from shared.adapters.write_keys import DynamoWriteKeys
        from shared.tracking.trust import Trust

        DynamoWriteKeys(db, table=names["config"]).register(
            "bench-server-key", "bench", Trust.SERVER, datetime.now(UTC)
        )
        from functions.stage_transition.handler import handler as stage

        captured: list[dict[str, Any]] = []
        trigger = function("stage_transition").stream
        pump = StreamPump(
            dynamodb=db,
            streams=aws.client("dynamodbstreams"),
            table=names["contacts"],
            trigger=trigger,
            handler=lambda event, context: captured.append(event) or stage(event, context),
            context=Context,
        )
        from functions.aggregation.handler import handler as aggregate

        folding = StreamPump(  # the events the requests record, folded into the profiles
            dynamodb=db,
            streams=aws.client("dynamodbstreams"),
            table=names["events"],
            trigger=function("aggregation").stream,
            handler=aggregate,
            context=Context,
        )
        writes: Counter[str] = Counter()
        db.meta.events.register(
            "before-parameter-build.dynamodb",
            lambda model, **_: writes.update([model.name]) if model.name in WRITES else None,
        )
        yield db, pump, captured, writes, stage, folding
        runtime.reset()


def stream_costs(contacts: int = 100) -> dict[str, float]:
    from functions.tracking.handler import handler as track

    with engagement_stack() as (db, pump, captured, writes, stage, folding):

        def send(batch: list[dict[str, Any]]) -> None:
            event = api_event("/v1/batch", {"batch": batch})
            event["headers"]["authorization"] = (
                "Basic " + __import__("base64").b64encode(b"bench-server-key:").decode()
            )
            assert track(event, Context())["statusCode"] == 200
            folding.drain()  # the profiles change off the request path: the stage function sees them then

        # 1. contacts arrive: every record moves someone into the funnel
        send([{"type": "identify", "userId": f"u{i}", "messageId": f"i{i}"} for i in range(contacts)])
        writes.clear()
        start = time.perf_counter()
        entering = pump.drain()
        entering_seconds = time.perf_counter() - start
        entering_writes = sum(writes.values())
        first_batch = captured[-1]

        # 2. more behaviour that moves nobody: a visit each (1 point)
        send([{"type": "page", "userId": f"u{i}", "messageId": f"p{i}"} for i in range(contacts)])
        captured.clear()
        writes.clear()
        quiet = pump.drain()
        quiet_writes = sum(writes.values())
        quiet_batch = captured[-1]

        # 3. the same records delivered again
        writes.clear()
        for event in (first_batch, quiet_batch):
            assert stage(event, Context()) == {"batchItemFailures": []}
        replay_writes = sum(writes.values())

        # 4. CPU per record for a batch where nothing changes (no AWS call at all)
        repeat, rounds = 20, 5
        samples = [cpu_seconds(lambda: stage(quiet_batch, Context()), repeat) for _ in range(rounds)]
        per_record = median(samples) / repeat / len(quiet_batch["Records"])
    return {
        "records_entering": entering,
        "writes_per_record_entering": entering_writes / entering,
        "records_per_second_entering_moto": entering / entering_seconds,
        "records_quiet": quiet,
        "writes_per_record_quiet": quiet_writes / quiet,
        "writes_replayed": replay_writes,
        "records_per_second_quiet": 1 / per_record,
        "us_per_record_quiet": per_record * 1e6,
    }
