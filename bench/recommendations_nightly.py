"""The nightly recommendations pass's cost (issue 15): requests and billed capacity per contact and per
product, as counts, on moto.

1. **The pass**: ``CONTACTS`` contacts whose profiles hold recent products (1 to 50 each, from a catalogue
   of ``PRODUCTS`` with a long tail of popularity), each partition also holding a few other items (stage
   history), written straight into moto; the workflow's three handlers hosted as deployed (their
   environments, their roles checked on every call) and run by the local runner
   (``infra.local.workflow.LocalWorkflow``) over ``SEGMENTS`` scan segments. Every request each function
   makes is counted on its own clients, and billed by ``bench.capacity``'s meter. Then the same night
   again (the items it writes are the same).
2. **The aggregation's share**: one contact's product views folded into its profile one change at a time
   through the real contact store (``DynamoContactStore``): the recent products ride on the profile update
   the aggregation makes anyway; the only extra request is writing the list back folded once it grows
   past its bound.

``python -m bench recommendations_nightly`` runs this section.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.harness import write_section

CONTACTS = 2_000
PRODUCTS = 500
SEGMENTS = 4
#: other items in a contact's partition the Scan reads too (stage history, segment memberships...)
OTHER_ITEMS = 2
VIEWS = 300
BUCKET = "bench-recommendations"
SEED = 15
NIGHT = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


@contextmanager
def hosted() -> Iterator[tuple[dict[str, str], Any, Any, Any]]:
    """moto with the tables and the staging bucket; the pass's functions hosted as deployed, their requests
    counted. Yields the table names, the counts, the meter and ``invoke``."""
    from moto import mock_aws

    from bench.capacity import Meter
    from bench.nightly import Calls
    from infra.config import DeploymentConfig, environment
    from infra.local.gateway import LambdaContext, load_handler
    from infra.local.moto_dynamodb import serialise
    from infra.local.permissions import function_scope
    from infra.wiring import NIGHTLY_RECOMMENDATIONS, function
    from shared import runtime, scope
    from shared.adapters import aws
    from shared.adapters.tables import TABLES, create_table_request

    serialise()
    names = {spec.id: f"bench-{spec.id}" for spec in TABLES}
    calls = Calls()
    quiet = {"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true",
             "POWERTOOLS_LOG_LEVEL": "WARNING"}  # fmt: skip
    with mock_aws(), ExitStack() as stack:
        region = os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
        runtime.reset()
        db = aws.client("dynamodb")
        for spec in TABLES:
            db.create_table(**create_table_request(spec, names[spec.id]))
        aws.client("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": region}
        )
        handlers = {}
        for step in NIGHTLY_RECOMMENDATIONS.steps:
            spec = function(step.function)
            env = {
                **environment(spec, names, DeploymentConfig(), bucket_names={"analytics": BUCKET}),
                **quiet,
            }
            scope.host(spec.handler, function_scope(spec, env, client_hooks=(calls.attach(spec.name),)))
            handlers[spec.name] = (load_handler(spec.handler), spec.timeout_seconds)
        stack.callback(scope.unhost_all)
        stack.callback(runtime.reset)
        meter = Meter({names[spec.id]: spec for spec in TABLES})

        def invoke(name: str, payload: dict[str, Any]) -> Any:
            handler, timeout = handlers[name]
            return handler(payload, LambdaContext(f"lifecycle-{name}", "bench", timeout_seconds=timeout))

        yield names, calls, meter, invoke


def population(rng: random.Random) -> Iterator[dict[str, Any]]:
    """Every contact's profile with its recent products, and other items of its partition."""
    from shared.adapters.contact_items import RECENT_PRODUCTS, recent_products_value
    from shared.recommendations.model import RecentProduct

    weights = [1 / (rank + 1) for rank in range(PRODUCTS)]  # a long tail: a few best-sellers
    for c in range(CONTACTS):
        pk = {"S": f"C#user_id:c{c:05d}"}
        count = rng.randint(1, 50)
        chosen = dict.fromkeys(rng.choices(range(PRODUCTS), weights, k=count))
        recent = [
            RecentProduct(
                product_id=f"p{p:03d}",
                kind=rng.choice(("purchase", "view")),
                at=NIGHT - timedelta(hours=n + 1),
            )
            for n, p in enumerate(chosen)
        ]
        yield {"pk": pk, "sk": {"S": "PROFILE"}, "contactId": {"S": f"user_id:c{c:05d}"},
               "eventCount": {"N": str(count)}, RECENT_PRODUCTS: recent_products_value(recent)}  # fmt: skip
        for o in range(OTHER_ITEMS):
            yield {"pk": pk, "sk": {"S": f"STAGE#2026-11-{o + 1:02d}"}, "stage": {"S": "lead"}}


def the_pass() -> dict[str, Any]:
    """Two runs of the same night over the population: requests and billed units per step."""
    from bench.nightly import _write
    from infra.local.workflow import LocalWorkflow
    from infra.wiring import NIGHTLY_RECOMMENDATIONS

    rng = random.Random(SEED)
    with hosted() as (names, calls, meter, invoke):
        _write(names["contacts"], list(population(rng)))
        runner = LocalWorkflow(NIGHTLY_RECOMMENDATIONS, SEGMENTS, invoke)
        nights = []
        for _ in range(2):
            calls.take()
            meter.clear()
            with meter.installed():
                state = runner.run(NIGHT.isoformat())
            nights.append(
                {
                    "requests": calls.take()["requests"],
                    "read": meter.by("read", "function"),
                    "write": meter.by("write", "function"),
                    "state": state,
                    "items": meter.items("config"),
                }
            )
        first, second = nights
        fitted = first["state"]["recommendations_fit"]
        return {
            "contacts": CONTACTS,
            "scanned": CONTACTS * (1 + OTHER_ITEMS),
            "products": fitted["products"],
            "items": len(first["items"]),
            "first": first,
            "same_items": first["items"] == second["items"],
            "second": second,
        }


def aggregation_share() -> dict[str, Any]:
    """One contact's ``VIEWS`` product views folded one change at a time: profile update requests."""
    from moto import mock_aws

    from infra.local.moto_dynamodb import serialise
    from shared.adapters import aws
    from shared.adapters.contact_store import DynamoContactStore
    from shared.adapters.tables import CONTACTS as CONTACTS_TABLE
    from shared.adapters.tables import EVENTS, create_table_request
    from shared.contacts.changes import plan_change
    from shared.contacts.identity import ContactId
    from shared.tracking.messages import parse_calls
    from shared.tracking.wire import Limits

    serialise()
    counted: dict[str, int] = {}
    with mock_aws():
        os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
        aws.reset()
        db = aws.client("dynamodb")
        db.create_table(**create_table_request(CONTACTS_TABLE, "bench-contacts"))
        db.create_table(**create_table_request(EVENTS, "bench-events"))
        db.meta.events.register(
            "before-parameter-build.dynamodb",
            lambda model, **_: counted.__setitem__(model.name, counted.get(model.name, 0) + 1),
        )
        store = DynamoContactStore(db, contacts_table="bench-contacts", events_table="bench-events")
        ann = ContactId.user("ann")
        for n in range(VIEWS):
            call = {"type": "track", "userId": "ann", "event": "Product Viewed", "messageId": f"v{n}",
                    "timestamp": (NIGHT + timedelta(seconds=n)).isoformat(),
                    "properties": {"product_id": f"p{n % 120:03d}"}}  # fmt: skip
            events = parse_calls("/v1/track", call, received_at=NIGHT + timedelta(seconds=n), limits=Limits())
            change = plan_change(ann, events)
            position = f"{n + 1:040d}"
            assert store.commit([replace(change, first_position=position, last_position=position)])[
                0
            ].committed
        size = len(db.get_item(TableName="bench-contacts", Key={"pk": {"S": "C#user_id:ann"}, "sk": {"S": "PROFILE"}})
                   ["Item"]["recentProducts"]["L"])  # fmt: skip
        kept = len(store.profile(ann).recent_products)
        aws.reset()
    return {"views": VIEWS, "updates": counted.get("UpdateItem", 0), "other": {k: v for k, v in counted.items()
            if k not in ("UpdateItem", "CreateTable", "GetItem")}, "stored": size, "kept": kept}  # fmt: skip


def run(where: str) -> None:
    passed = the_pass()
    print(f"recommendations nightly: {passed['first']['requests']}", flush=True)
    share = aggregation_share()
    print(f"recommendations aggregation: {share}", flush=True)
    first = passed["first"]
    contacts, products, scanned = passed["contacts"], passed["products"], passed["scanned"]
    rows = []
    for (name, operation), count in sorted(
        (tuple(key.split(" ", 1)), n) for key, n in first["requests"].items()
    ):
        rows.append(f"| {name} | {operation} | {count} |")
    read = {k[0]: v for k, v in first["read"].items()}
    write = {k[0]: v for k, v in first["write"].items()}
    scans = first["requests"].get("recommendations_extract Scan", 0)
    batches = first["requests"].get("recommendations_write BatchWriteItem", 0)
    write_section(
        "recommendations_nightly",
        f"""
Measured by `python -m bench recommendations_nightly` on {where}.

**The nightly recommendations pass** (issue 15) on moto: {contacts:,} contacts, each profile holding 1 to 50
recent products from a catalogue of {PRODUCTS} (a long tail: a few best-sellers), each partition {OTHER_ITEMS}
other items too ({scanned:,} items in the contacts table); the three handlers as deployed, run by the local
workflow runner over {SEGMENTS} scan segments. {products} products got neighbours: {passed["items"]} items
written (theirs and the popularity item).

| function | request | count |
|---|---|---|
{chr(10).join(rows)}

| per | what | count |
|---|---|---|
| contact | Scan requests (pages of 1 MB) | {scans / contacts:.4f} |
| contact | read units billed to the extract (the Scan reads the whole contacts table: a filter does not lower it) | {read.get("recommendations_extract", 0) / contacts:.3f} |
| product | BatchWriteItem requests (25 puts each) | {batches / max(products, 1):.3f} |
| product | write units billed to the write step (one a KB of item: 50 neighbours take about 1 KB) | {write.get("recommendations_write", 0) / max(products, 1):.2f} |

The same night run again wrote the same items: **{passed["same_items"]}**. The fit reads and writes only
the staging bucket (S3): no DynamoDB request.

**The aggregation's share** (the real contact store on moto): {share["views"]} product views of one contact
folded one change at a time took **{share["updates"]} UpdateItem requests**: one per change, the profile
update the aggregation makes anyway, plus {share["updates"] - share["views"]} writing the list back folded
(once past 100 stored entries); no read. The stored list then held {share["stored"]} entries, read back as
{share["kept"]} (one per product, at most 50). Other requests: {share["other"] or "none"}.
""",
    )
