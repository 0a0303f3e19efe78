"""Billed capacity (issue 8): what DynamoDB on-demand bills for the writes and reads the system makes.

Three parts:

1. **The model**: pure functions over items in DynamoDB's wire format (``{"S": "..."}``): item sizes,
   write and read request units, secondary-index maintenance and stored bytes, by DynamoDB's documented
   rules (cross-checked against the documented examples in ``tests/unit/test_capacity_model.py``).
2. **The meter**: moto's DynamoDB request handler wrapped so that every call any function makes, each
   through its own client, is billed from the item images before and after it. The images are read from
   moto's backend directly (not billed); the code under test is not changed.
3. **The benchmark** (``python -m bench capacity``): the route function that serves ``/v1/batch`` and every
   function with a stream trigger, hosted as deployed, driven with SDK-shaped calls; every write that the
   events cause anywhere in the system is billed, per table, index and function.

Table layouts, index names and function names are read from ``shared.adapters.tables.TABLES`` and
``infra.wiring.FUNCTIONS``; nothing here names them.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import math
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from shared.adapters.tables import EVENTS, GlobalIndex, LocalIndex, TableSpec

Item = Mapping[str, Mapping[str, Any]]

#: One write request unit: a write of up to 1 KB.
WRITE_BLOCK = 1024
#: One read request unit: a strongly consistent read of up to 4 KB (half a unit if eventually consistent).
READ_BLOCK = 4096
#: Storage overhead DynamoDB bills per item, and per index entry.
ITEM_OVERHEAD = 100
EVENTS_CLASS = EVENTS.table_class


# --- 1. the model ----------------------------------------------------------------------------------------


def number_size(text: str) -> int:
    """A number: 1 byte per two significant digits (leading and trailing zeroes trimmed), plus 1 byte."""
    mantissa = text.strip().lstrip("+-").lower().split("e", 1)[0]
    digits = mantissa.replace(".", "").strip("0")
    return math.ceil(len(digits) / 2) + 1


def _binary_size(value: bytes | bytearray | str) -> int:
    """Raw bytes count, not their base64 text (the wire carries base64; moto may hold either)."""
    return len(value) if isinstance(value, bytes | bytearray) else len(base64.b64decode(value))


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one attribute value (without its name)."""
    (kind, data), *_ = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return number_size(data)
    if kind == "B":
        return _binary_size(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(member.encode()) for member in data)
    if kind == "NS":
        return sum(number_size(member) for member in data)
    if kind == "BS":
        return sum(_binary_size(member) for member in data)
    if kind == "L":  # 3 bytes, and 1 byte per element
        return 3 + sum(1 + value_size(element) for element in data)
    if kind == "M":
        return 3 + sum(len(name.encode()) + 1 + value_size(element) for name, element in data.items())
    raise ValueError(f"not a DynamoDB attribute value: {value!r}")


def item_size(item: Item | None) -> int:
    """Bytes of an item: each attribute's name (UTF-8) plus its value."""
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    """Write request units of one item write: 1 per KB or part of it, at least 1."""
    return max(1, math.ceil(size / WRITE_BLOCK))


def read_units(size: int, consistent: bool) -> float:
    """Read request units of one read of ``size`` bytes: 1 per 4 KB or part (at least one block),
    halved for an eventually consistent read."""
    return max(1, math.ceil(size / READ_BLOCK)) * (1.0 if consistent else 0.5)


Projection = Literal["ALL", "INCLUDE", "KEYS_ONLY"]


@dataclass(frozen=True, slots=True)
class Index:
    """A secondary index as billing sees it: which items it holds and what it copies of them."""

    name: str
    kind: Literal["local", "global"]
    #: the index's own key attributes; an item without any of them is not in the index (sparse)
    keys: tuple[str, ...]
    table_keys: tuple[str, ...]
    projection: Projection
    include: tuple[str, ...] = ()


def indexes(spec: TableSpec) -> tuple[Index, ...]:
    """The secondary indexes of a table spec: local ones project ALL or INCLUDE, global ones KEYS_ONLY."""
    table_keys = (spec.partition_key, spec.sort_key)
    found: list[Index] = []
    for index in spec.local_indexes:
        assert isinstance(index, LocalIndex)
        found.append(
            Index(
                index.name,
                "local",
                (index.sort_key,),
                table_keys,
                "INCLUDE" if index.include else "ALL",
                tuple(index.include),
            )
        )
    for index in spec.global_indexes:
        assert isinstance(index, GlobalIndex)
        found.append(
            Index(
                index.name,
                "global",
                (index.partition_key, index.sort_key),
                table_keys,
                "INCLUDE" if index.include else "KEYS_ONLY",
                tuple(index.include),
            )
        )
    return tuple(found)


def index_entry(item: Item | None, index: Index) -> dict[str, Any] | None:
    """What the index stores for ``item``: None if the item lacks an index key; else the table's and the
    index's keys plus the projected attributes."""
    if not item or any(key not in item for key in index.keys):
        return None
    if index.projection == "ALL":
        return dict(item)
    keep = {*index.table_keys, *index.keys, *index.include}
    return {name: value for name, value in item.items() if name in keep}


def _key(entry: Mapping[str, Any], index: Index) -> str:
    return json.dumps(
        [entry.get(name) for name in (*index.keys, *index.table_keys)], sort_keys=True, default=str
    )


def index_write_units(before: Item | None, after: Item | None, index: Index) -> int:
    """Write units the index consumes for one change of an item.

    An item entering or leaving the index costs one write of its entry; a change of the index key costs
    two (delete the old entry, put the new one); a change of projected attributes only costs one write,
    on the larger entry; no change of what the index stores costs nothing."""
    old, new = index_entry(before, index), index_entry(after, index)
    if old is None and new is None:
        return 0
    if old is None:
        return write_units(item_size(new))
    if new is None:
        return write_units(item_size(old))
    if _key(old, index) != _key(new, index):
        return write_units(item_size(old)) + write_units(item_size(new))
    if old == new:
        return 0
    return max(write_units(item_size(old)), write_units(item_size(new)))


@dataclass(frozen=True, slots=True)
class WriteCost:
    """One item write: units on the table (transactional doubling included) and on each index changed."""

    table: int
    indexes: Mapping[str, int] = field(default_factory=dict)
    transactional: bool = False

    @property
    def total(self) -> int:
        return self.table + sum(self.indexes.values())


def write_cost(
    before: Item | None,
    after: Item | None,
    spec: TableSpec | None,
    *,
    transactional: bool = False,
    failed: bool = False,
) -> WriteCost:
    """Put, update or delete of one item, from its images before and after.

    Billed on the larger image (a delete of a missing item still costs 1). A write whose condition failed
    costs the size of the existing item (at least 1) and changes no index. In a transaction the table's
    units are doubled (prepare and commit); index maintenance is not."""
    factor = 2 if transactional else 1
    if failed:
        return WriteCost(write_units(item_size(before)) * factor, {}, transactional)
    table = write_units(max(item_size(before), item_size(after))) * factor
    changed = {}
    for index in indexes(spec) if spec else ():
        units = index_write_units(before, after, index)
        if units:
            changed[index.name] = units
    return WriteCost(table, changed, transactional)


def condition_check_cost(item: Item | None) -> WriteCost:
    """A ConditionCheck inside TransactWriteItems: two write units per KB of the item it checks."""
    return WriteCost(write_units(item_size(item)) * 2, {}, True)


def get_cost(item: Item | None, *, consistent: bool = False, transactional: bool = False) -> float:
    """GetItem (and each item of BatchGetItem); a missing item still costs one block."""
    if transactional:
        return read_units(item_size(item), True) * 2
    return read_units(item_size(item), consistent)


def query_cost(sizes: Sequence[int], *, consistent: bool = False) -> float:
    """Query and Scan: every item evaluated (before any filter) adds up, rounded up to 4 KB once."""
    return read_units(sum(sizes), consistent)


def stored_bytes(item: Item, spec: TableSpec | None) -> dict[str | None, int]:
    """Billed storage of one item: its size plus 100 bytes, and per index entry the entry plus 100 bytes.

    Keyed by index name, None for the table itself."""
    stored: dict[str | None, int] = {None: item_size(item) + ITEM_OVERHEAD}
    for index in indexes(spec) if spec else ():
        entry = index_entry(item, index)
        if entry is not None:
            stored[index.name] = item_size(entry) + ITEM_OVERHEAD
    return stored


# --- 2. the meter ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Charge:
    """Units billed to one table or index for one request (or one item of a batch or transaction)."""

    function: str
    operation: str
    table: str
    #: None: the table itself
    index: str | None
    kind: Literal["write", "read"]
    units: float
    transactional: bool = False


def wire(value: Any) -> Any:
    """A moto ``DynamoType`` (or an ``Item``'s attributes) as a plain wire-format value."""
    kind, data = value.type, value.value
    if kind == "L":
        return {"L": [wire(element) for element in data]}
    if kind == "M":
        return {"M": {name: wire(element) for name, element in data.items()}}
    return {kind: data}


def image(moto_item: Any) -> dict[str, Any] | None:
    return None if moto_item is None else {name: wire(value) for name, value in moto_item.attrs.items()}


#: DynamoDB data requests that read or write items but are not billed by this model
UNMODELLED = frozenset({"ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"})


class Meter:
    """Bills every DynamoDB request moto serves while installed.

    ``tables`` maps physical table names to their specs (indexes are billed from the spec); a table not
    in it is billed without indexes. ``who`` names the caller of a request (the running function)."""

    def __init__(self, tables: Mapping[str, TableSpec], who: Callable[[], str] | None = None) -> None:
        self.tables = dict(tables)
        self.who = who or _running_function
        self.charges: list[Charge] = []
        #: requests that did not succeed, by (function, operation, error): a failed condition is billed,
        #: a request rejected as invalid is not
        self.errors: Counter[tuple[str, str, str]] = Counter()
        #: data requests this model does not bill (PartiQL), by (function, operation): reported, not hidden
        self.unbilled: Counter[tuple[str, str]] = Counter()
        self._lock = threading.RLock()
        self._backend: Any = None

    def clear(self) -> None:
        with self._lock:
            self.charges.clear()
            self.errors.clear()
            self.unbilled.clear()

    # installing -------------------------------------------------------------------------------------

    @contextmanager
    def installed(self) -> Iterator[Meter]:
        from moto.dynamodb.models.table import Table
        from moto.dynamodb.responses import DynamoHandler

        saved = (DynamoHandler.call_action, Table.query, Table.scan)
        meter = self
        call_action, query, scan = saved
        query_signature = inspect.signature(query)
        scan_signature = inspect.signature(scan)

        def metered_call_action(handler: Any) -> Any:
            return meter._serve(handler, lambda: call_action(handler))

        def metered_query(table: Any, *args: Any, **kwargs: Any) -> Any:
            return meter._evaluate(table, query, query_signature, "projection_expressions", args, kwargs)

        def metered_scan(table: Any, *args: Any, **kwargs: Any) -> Any:
            return meter._evaluate(table, scan, scan_signature, "projection_expression", args, kwargs)

        DynamoHandler.call_action = metered_call_action
        Table.query = metered_query
        Table.scan = metered_scan
        try:
            yield self
        finally:
            DynamoHandler.call_action, Table.query, Table.scan = saved

    # billing one request ----------------------------------------------------------------------------

    def _serve(self, handler: Any, call: Callable[[], Any]) -> Any:
        with self._lock:
            self._backend = handler.dynamodb_backend
            action = handler._get_action()
            params = getattr(handler, "params", None) or {}
            try:
                plan = self._plan(action, params)
            except Exception:  # noqa: BLE001 - a request moto rejects (no such table, no key): it answers
                plan = []
            if plan is None:  # table management is not billed per request; Query and Scan at evaluation
                if action in UNMODELLED:
                    self.unbilled[(self.who(), action)] += 1
                return call()
            before = [self._read(table, key) for _, table, key, _ in plan]
            response = call()
            status = response[0] if isinstance(response, tuple) else 200
            error = _error_type(response) if int(status) >= 400 else None
            if error:
                self.errors[(self.who(), action, error)] += 1
            after = [self._read(table, key) for _, table, key, _ in plan]
            self._bill(action, plan, before, after, error)
            return response

    def _plan(self, action: str, params: Mapping[str, Any]) -> list[tuple[str, str, Any, Mapping]] | None:
        """(operation, table, key, request) for each item the request names."""
        if action in ("PutItem", "UpdateItem", "DeleteItem", "GetItem"):
            table = params["TableName"]
            return [(action, table, self._key(table, params.get("Key") or params.get("Item")), params)]
        if action == "BatchWriteItem":
            plan = []
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        plan.append(("PutItem", table, self._key(table, request["PutRequest"]["Item"]), {}))
                    else:
                        plan.append(
                            ("DeleteItem", table, self._key(table, request["DeleteRequest"]["Key"]), {})
                        )
            return plan
        if action == "BatchGetItem":
            return [
                ("GetItem", table, self._key(table, key), request)
                for table, request in params["RequestItems"].items()
                for key in request["Keys"]
            ]
        if action in ("TransactWriteItems", "TransactGetItems"):
            plan = []
            for entry in params["TransactItems"]:
                (operation, request), *_ = entry.items()
                table = request["TableName"]
                plan.append(
                    (operation, table, self._key(table, request.get("Key") or request.get("Item")), request)
                )
            return plan
        return None

    def _key(self, table_name: str, attributes: Mapping[str, Any]) -> tuple[Any, Any]:
        from moto.dynamodb.models.dynamo_type import DynamoType

        table = self._backend.get_table(table_name)
        hash_key = DynamoType(attributes[table.hash_key_attr])
        range_key = DynamoType(attributes[table.range_key_attr]) if table.range_key_attr else None
        return hash_key, range_key

    def _read(self, table_name: str, key: tuple[Any, Any]) -> dict[str, Any] | None:
        """The item as stored, straight from moto's backend (not a request: nothing is billed)."""
        table = self._backend.tables.get(table_name)
        if table is None:
            return None
        held = table.items.get(key[0])
        if held is None:
            return None
        if table.range_key_attr:
            return image(held.get(key[1]))
        return image(held)

    def _bill(
        self,
        action: str,
        plan: list[tuple[str, str, Any, Mapping]],
        before: list[Any],
        after: list[Any],
        error: str | None,
    ) -> None:
        who = self.who()
        transactional = action.startswith("Transact")
        if error and error not in ("ConditionalCheckFailedException", "TransactionCanceledException"):
            return  # rejected before any item was touched: not billed
        for position, ((operation, table_name, _, request), old, new) in enumerate(
            zip(plan, before, after, strict=True)
        ):
            spec = self.tables.get(table_name)
            table = spec.id if spec else table_name
            if operation in ("GetItem", "Get"):
                consistent = bool(request.get("ConsistentRead"))
                units = get_cost(old, consistent=consistent, transactional=transactional)
                self.charges.append(Charge(who, operation, table, None, "read", units, transactional))
                continue
            if operation == "ConditionCheck":
                cost = condition_check_cost(old)
            else:
                # A failed request changed nothing; a cancelled transaction (assumed, not documented) is
                # billed like a failed conditional write of each of its items, doubled.
                cost = write_cost(old, new, spec, transactional=transactional, failed=bool(error))
            name = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}.get(
                operation, operation
            )
            self.charges.append(Charge(who, name, table, None, "write", cost.table, transactional))
            for index, units in cost.indexes.items():
                self.charges.append(Charge(who, name, table, index, "write", units, transactional))

    def _evaluate(
        self,
        table: Any,
        original: Callable[..., Any],
        signature: inspect.Signature,
        projection_argument: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """Query or Scan: bill every item evaluated before the filter, then filter and project as moto does."""
        bound = signature.bind(table, *args, **kwargs)
        arguments = bound.arguments
        filter_expression = arguments.get("filter_expression")
        projection = arguments.get(projection_argument)
        arguments["filter_expression"] = None
        arguments[projection_argument] = None
        results, scanned, last_key = original(*bound.args, **bound.kwargs)
        sizes = [item_size(image(item)) for item in results]
        consistent = bool(arguments.get("consistent_read"))
        spec = self.tables.get(table.name)
        operation = "Query" if projection_argument == "projection_expressions" else "Scan"
        self.charges.append(
            Charge(
                self.who(),
                operation,
                spec.id if spec else table.name,
                arguments.get("index_name"),
                "read",
                query_cost(sizes, consistent=consistent),
            )
        )
        if filter_expression is not None:
            results = [item for item in results if filter_expression.expr(item)]
        if projection:
            results = [item.project(projection) for item in results]
        return results, scanned, last_key

    # reading the bill -------------------------------------------------------------------------------

    def units(self, kind: str, *, index_factor_in_transactions: int = 1, **match: Any) -> float:
        """Units of ``kind`` billed so far, optionally only those whose fields equal ``match``."""
        total = 0.0
        for charge in self.charges:
            if charge.kind != kind or any(getattr(charge, k) != v for k, v in match.items()):
                continue
            doubled = charge.transactional and charge.index is not None
            total += charge.units * (index_factor_in_transactions if doubled else 1)
        return total

    def by(self, kind: str, *fields: str) -> dict[tuple[Any, ...], float]:
        totals: dict[tuple[Any, ...], float] = defaultdict(float)
        for charge in self.charges:
            if charge.kind == kind:
                totals[tuple(getattr(charge, name) for name in fields)] += charge.units
        return dict(totals)

    def storage(self) -> dict[tuple[str, str | None], int]:
        """Billed bytes held now, per (table, index), overheads included."""
        held: dict[tuple[str, str | None], int] = defaultdict(int)
        with self._lock:
            for name, spec in self.tables.items():
                table = self._backend.tables.get(name) if self._backend else None
                if table is None:
                    continue
                for moto_item in table.all_items():
                    for index, size in stored_bytes(image(moto_item), spec).items():
                        held[(spec.id, index)] += size
        return dict(held)

    def items(self, table_id: str) -> dict[str, dict[str, Any]]:
        """The items of a table now, by their key (read from moto, not billed)."""
        with self._lock:
            for name, spec in self.tables.items():
                if spec.id == table_id and self._backend is not None:
                    table = self._backend.tables.get(name)
                    keys = (spec.partition_key, spec.sort_key)
                    return {
                        json.dumps([held.get(k) for k in keys], default=str): held
                        for held in (image(i) for i in table.all_items())
                    }
        return {}


def _running_function() -> str:
    from shared import scope

    return scope.current_or_process().name


def _error_type(response: Any) -> str:
    body = response[2] if isinstance(response, tuple) and len(response) > 2 else ""
    try:
        kind = json.loads(body).get("__type", "")
    except (TypeError, ValueError):
        return "unknown"
    return kind.rsplit("#", 1)[-1] or "unknown"


# --- 3. the benchmark ------------------------------------------------------------------------------------

#: the request path, as SDKs call it: a batch endpoint, and one route per call type (``/v1/track``...)
BATCH_PATH = "/v1/batch"


def route_function(path: str = BATCH_PATH) -> Any:
    """The function the wiring routes ``path`` to (the tracking endpoint, whatever it is called)."""
    from infra.wiring import FUNCTIONS

    return next(f for f in FUNCTIONS if any(route.path == path for route in f.routes))


def stream_functions() -> tuple[Any, ...]:
    """Every function the wiring triggers from a table's stream."""
    from infra.wiring import FUNCTIONS

    return tuple(f for f in FUNCTIONS if f.stream is not None)


@dataclass
class System:
    """moto with the tables, the route function and every stream-triggered function hosted as deployed."""

    meter: Meter
    handler: Callable[[dict[str, Any], Any], dict[str, Any]]
    route: str
    pumps: list[Any]
    #: physical table names by table id
    tables: dict[str, str] = field(default_factory=dict)
    #: the harness's own DynamoDB client (not any function's)
    client: Any = None

    def send(self, path: str, body: dict[str, Any]) -> None:
        from bench.tracking import api_event
        from infra.local.gateway import LambdaContext

        response = self.handler(api_event(path, body), LambdaContext(f"lifecycle-{self.route}", "bench"))
        assert response["statusCode"] == 200, response

    def drain(self) -> int:
        """Deliver stream records to their functions until no trigger has anything left."""
        delivered = 0
        for _ in range(100):
            passed = sum(pump.drain() for pump in self.pumps)
            if not passed:
                return delivered
            delivered += passed
        raise RuntimeError("the streams never ran dry: a function keeps triggering itself")


@contextmanager
def system(also: Sequence[str] = ()) -> Iterator[System]:
    """The system on moto; ``also`` names more functions to host as deployed (the timer function...)."""
    from moto import mock_aws

    from bench.tracking import SERVER_KEY, function_environment, host_functions
    from infra.config import DeploymentConfig
    from infra.local.gateway import LambdaContext, load_handler
    from infra.local.moto_dynamodb import serialise
    from infra.local.streams import StreamPump
    from shared import runtime
    from shared.adapters import aws
    from shared.adapters.queues import QUEUES, create_queue_request, dead_letters_request
    from shared.adapters.tables import CONFIG, TABLES, create_table_request

    serialise()
    names = {spec.id: f"bench-{spec.id}" for spec in TABLES}
    route = route_function()
    triggered = stream_functions()
    hosted = tuple(dict.fromkeys([route.name, *(f.name for f in triggered), *also]))
    meter = Meter({names[spec.id]: spec for spec in TABLES})
    with mock_aws(), function_environment(names, functions=()), ExitStack() as stack:
        runtime.reset()
        db = aws.client("dynamodb")  # the harness's own client; each function builds its own
        for spec in TABLES:
            db.create_table(**create_table_request(spec, names[spec.id]))
        aws.client("events").create_event_bus(Name="bench-bus")
        topic = aws.client("sns").create_topic(Name="bench-leads")["TopicArn"]
        sqs = aws.client("sqs")
        queue_urls = {}
        for queue in QUEUES:
            dead_letters = sqs.create_queue(**dead_letters_request(queue, f"bench-{queue.id}"))["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=dead_letters, AttributeNames=["QueueArn"])
            request = create_queue_request(queue, f"bench-{queue.id}", arn["Attributes"]["QueueArn"])
            queue_urls[queue.id] = sqs.create_queue(**request)["QueueUrl"]
        stack.enter_context(
            host_functions(
                names, hosted, DeploymentConfig(), {"events": "bench-bus", "sns": topic}, queue_urls
            )
        )
        from datetime import UTC, datetime

        from shared.adapters.write_keys import DynamoWriteKeys
        from shared.tracking.trust import Trust

        DynamoWriteKeys(db, table=names[CONFIG.id]).register(
            SERVER_KEY, "bench", Trust.SERVER, datetime.now(UTC)
        )
        pumps = [
            StreamPump(
                dynamodb=db,
                streams=aws.client("dynamodbstreams"),
                table=names[spec.stream.table.id],
                trigger=spec.stream,
                handler=load_handler(spec.handler),
                context=lambda name=spec.name, timeout=spec.timeout_seconds: LambdaContext(
                    f"lifecycle-{name}", "bench", timeout_seconds=timeout
                ),
            )
            for spec in triggered
        ]
        stack.enter_context(meter.installed())
        try:
            yield System(meter, load_handler(route.handler), route.name, pumps, names, db)
        finally:
            runtime.reset()


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _call(i: int, contact: str, case: str) -> dict[str, Any]:
    """``sample_call``, sent now, with a messageId shaped like analytics.js's (``ajs-next-`` and 32 hex
    digits): the ids and times are stored several times in each event item, so their length counts."""
    from bench.tracking import sample_call

    call = sample_call(i, contact)
    call["messageId"] = "ajs-next-" + hashlib.md5(f"{case}-{contact}-{i}".encode()).hexdigest()
    call["timestamp"] = call["sentAt"] = _now()
    return call


def _median(values: Sequence[int]) -> float:
    return statistics.median(values) if values else 0.0


def measure(
    system: System, label: str, requests: list[tuple[str, dict[str, Any]]], events: int
) -> dict[str, Any]:
    """Bill everything the requests cause, streams drained after each request."""
    from shared.adapters.contact_items import PROFILE
    from shared.adapters.tables import CONTACTS, EVENTS

    meter = system.meter
    stored_before = meter.storage()
    events_before = set(meter.items(EVENTS.id))
    meter.clear()
    started = time.perf_counter()
    for path, body in requests:
        system.send(path, body)
        system.drain()
    seconds = time.perf_counter() - started
    stored_after = meter.storage()
    stored = {
        place: stored_after.get(place, 0) - stored_before.get(place, 0)
        for place in {*stored_before, *stored_after}
    }
    new_events = [item for key, item in meter.items(EVENTS.id).items() if key not in events_before]
    contacts = {json.dumps(item.get(CONTACTS.partition_key)) for item in new_events}
    profiles = [
        item
        for item in meter.items(CONTACTS.id).values()
        if item.get(CONTACTS.sort_key) == {"S": PROFILE}
        and json.dumps(item.get(CONTACTS.partition_key)) in contacts
    ]
    return {
        "case": label,
        "route": system.route,
        "triggered": [f.name for f in stream_functions()],
        "events": events,
        "requests": len(requests),
        "seconds": seconds,
        "wru": meter.units("write"),
        "wru_index_doubled": meter.units("write", index_factor_in_transactions=2),
        "rru_request": meter.units("read", function=system.route),
        "rru_total": meter.units("read"),
        "wru_by_place": meter.by("write", "table", "index"),
        "wru_by_function": meter.by("write", "function"),
        "wru_by_operation": meter.by("write", "function", "operation", "transactional", "table", "index"),
        "rru_by_function": meter.by("read", "function", "operation", "table", "index"),
        "stored": stored,
        "event_items": len(new_events),
        "event_item_bytes": _median([item_size(item) for item in new_events]),
        "event_items_over_1kb": sum(item_size(item) > WRITE_BLOCK for item in new_events),
        "profile_bytes": _median([item_size(item) for item in profiles]),
        "errors": dict(meter.errors),
        "unbilled": dict(meter.unbilled),
    }


def capacity_per_event(
    single: int = 20,
    *,
    prepare: Callable[[System], None] | None = None,
    more: Callable[[System], list[tuple[str, list[tuple[str, dict[str, Any]]], int]]] | None = None,
) -> list[dict[str, Any]]:
    """WRU, RRU and stored bytes per event for single events, a batch of 20 from one contact and a batch
    of 100 from 100 contacts; contacts are returning ones (seen in the warm-up), caches are warm.

    ``prepare`` runs on the system before the warm-up (configuration the functions should cache, such as
    automations); ``more`` adds cases (label, requests, events) measured after these."""
    with system() as running:
        if prepare is not None:
            prepare(running)
        # warm-up: write key and rules cached, every function's client built, every contact seen once
        warm = [_call(1, "solo", "warm"), _call(1, "one", "warm")] + [
            _call(i, f"user-{i}", "warm") for i in range(100)
        ]
        running.send(BATCH_PATH, {"batch": warm, "sentAt": "2026-11-22T10:43:57.556Z"})
        running.drain()
        running.send(f"/v1/{warm[0]['type']}", _call(2, "solo", "warm"))
        running.drain()
        cases = [
            (
                "single events (one call per request)",
                [
                    (f"/v1/{call['type']}", call)
                    for call in (_call(i, "solo", "single") for i in range(single))
                ],
                single,
            ),
            (
                "batch of 20, one contact",
                [(BATCH_PATH, {"batch": [_call(i, "one", "b20") for i in range(20)]})],
                20,
            ),
            (
                "batch of 100, 100 contacts",
                [(BATCH_PATH, {"batch": [_call(i, f"user-{i}", "b100") for i in range(100)]})],
                100,
            ),
        ]
        if more is not None:
            cases += more(running)
        return [measure(running, label, requests, events) for label, requests, events in cases]


#: us-east-1 on-demand list price per million write request units (Standard table class)
PRICE_PER_MILLION_WRU = 0.625
#: On-demand, us-east-1: Standard-IA bills requests 25% more and storage 60% less than Standard.
PRICES = {
    "STANDARD": {"wru": 0.625, "gb_month": 0.25},
    "STANDARD_INFREQUENT_ACCESS": {"wru": 0.78125, "gb_month": 0.10},
}


def table_class_costs(rows: list[dict[str, Any]], table: str, months: float) -> dict[str, dict[str, float]]:
    """Per million events: the table's writes and its storage over ``months`` of retention, per class."""
    wru = sum(r["wru_by_place"].get((table, None), 0.0) for r in rows) / sum(r["events"] for r in rows)
    stored = sum(v for r in rows for (t, _), v in r["stored"].items() if t == table) / sum(
        r["events"] for r in rows
    )
    gb_months = stored * 1_000_000 / 1024**3 * months
    return {
        name: {"writes": wru * price["wru"], "storage": gb_months * price["gb_month"]}
        for name, price in PRICES.items()
    }


def _place(table: str, index: str | None) -> str:
    return f"`{table}`" if index is None else f"`{table}` index `{index}`"


def section(where: str, rows: list[dict[str, Any]]) -> str:
    """The ``capacity`` section of BENCHMARKS.md."""
    names = " | ".join(r["case"] for r in rows)
    rule = "|---" * (len(rows) + 1) + "|"

    def per_event(values: Callable[[dict[str, Any]], float], digits: int = 2) -> str:
        return " | ".join(f"{values(r) / r['events']:.{digits}f}" for r in rows)

    summary = "\n".join(
        f"| {r['case']} | {r['events']} | **{r['wru'] / r['events']:.2f}** | 1 | "
        f"{r['rru_request'] / r['events']:.2f} | {r['rru_total'] / r['events']:.2f} | "
        f"**{sum(r['stored'].values()) / r['events'] / 1024:.2f}** | "
        f"{(r['event_item_bytes'] + ITEM_OVERHEAD) / 1024:.2f} | "
        f"${r['wru'] / r['events'] * PRICE_PER_MILLION_WRU:.2f} |"
        for r in rows
    )
    places = sorted(
        {p for r in rows for p in (*r["wru_by_place"], *r["stored"])}, key=lambda p: (p[0], p[1] or "")
    )
    writes = "\n".join(
        f"| {_place(*p)} | " + per_event(lambda r, p=p: r["wru_by_place"].get(p, 0.0)) + " |"
        for p in places
        if any(r["wru_by_place"].get(p) for r in rows)
    )
    causes = sorted(
        {c for r in rows for c in r["wru_by_operation"]}, key=lambda c: (c[0], c[3], c[4] or "", c[1])
    )
    by_function = "\n".join(
        f"| {function} | {operation}{' in a transaction' if transactional else ''} | {_place(table, index)} | "
        + per_event(
            lambda r, c=(function, operation, transactional, table, index): r["wru_by_operation"].get(c, 0.0)
        )
        + " |"
        for function, operation, transactional, table, index in causes
    )
    functions = sorted({c[0] for c in causes})
    function_totals = "\n".join(
        f"| **{name}** | | | "
        + per_event(lambda r, name=name: sum(u for c, u in r["wru_by_operation"].items() if c[0] == name))
        + " |"
        for name in functions
    )
    storage = "\n".join(
        f"| {_place(*p)} | " + " | ".join(f"{r['stored'].get(p, 0) / r['events']:,.0f}" for r in rows) + " |"
        for p in places
        if any(r["stored"].get(p) for r in rows)
    )
    classes = "\n".join(
        f"| {name}{' (chosen)' if name == EVENTS_CLASS else ''} | ${c['writes']:.2f} | ${c['storage']:.2f} | "
        f"**${c['writes'] + c['storage']:.2f}** |"
        for name, c in table_class_costs(rows, "events", 13).items()
    )
    failed = sum(n for r in rows for (_, _, error), n in r["errors"].items() if "Condition" in error)
    cancelled = sum(n for r in rows for (_, _, error), n in r["errors"].items() if "Cancel" in error)
    skipped: Counter[tuple[str, str]] = Counter()
    for r in rows:
        skipped.update(r["unbilled"])
    unbilled = (
        " **Not billed (not modelled)**: "
        + ", ".join(f"{n} {operation} by {function}" for (function, operation), n in sorted(skipped.items()))
        + "."
        if skipped
        else ""
    )
    over = sum(r["event_items_over_1kb"] for r in rows) / max(1, sum(r["event_items"] for r in rows))
    return f"""
Measured by `make bench` (or `python -m bench capacity`) on {where}.

**Billed capacity per event** (every DynamoDB request any function made, billed by `bench/capacity.py`;
the `{rows[0]["route"]}` function and every stream-triggered function ({", ".join(f"`{n}`" for n in rows[0]["triggered"])})
hosted as deployed on moto, streams drained until empty; returning contacts, warm caches):

| case | events | WRU per event | floor | RRU per event, request path | RRU per event, all functions | KB-units stored per event | floor | writes, $ per million events |
|---|---|---|---|---|---|---|---|---|
{summary}

Median event item {_median([r["event_item_bytes"] for r in rows]):,.0f} bytes ({over:.0%} of them over 1 KB), median
profile {_median([r["profile_bytes"] for r in rows]):,.0f} bytes. The floors: 1 WRU, and one event item with its 100
bytes of overhead. Writes are priced at ${PRICE_PER_MILLION_WRU} per million WRU (us-east-1, on-demand, Standard).

**Where the write units go** (WRU per event):

| table or index | {names} |
{rule}
{writes}
| **all** | {per_event(lambda r: r["wru"])} |
| all, if index writes inside transactions were doubled too | {per_event(lambda r: r["wru_index_doubled"])} |

**Which function causes them** (WRU per event, by write; the items of a `TransactWriteItems` appear as
the writes they are, their table units doubled):

| function | write | table or index | {names} |
{"|---" * 3}{rule[4:]}
{by_function}
{function_totals}

**What stays stored** (bytes per event, 100 bytes of overhead per item and per index entry included):

| table or index | {names} |
{rule}
{storage}

Failed conditional writes billed: {failed}; cancelled transactions billed: {cancelled}.{unbilled}

**The event log's table class** ($ per million events, all cases together: its writes, and its storage
kept 13 months, the default retention; purchases are kept longer, which favours Standard-IA more):

| class | writes | storage over 13 months | total |
|---|---|---|---|
{classes}
"""
