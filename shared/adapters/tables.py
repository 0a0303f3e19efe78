"""The DynamoDB tables: key schema, indexes, TTL and streams, declared once.

The CDK stack builds its tables from these specs, the local stack creates its
moto tables from them, and the tests check that the synthesized template
matches them, so code, cloud and local agree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LocalIndex:
    name: str
    sort_key: str
    #: non-key attributes copied into the index; empty means all of them
    include: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GlobalIndex:
    """A sparse global index over string keys, projecting its keys and the ``include`` attributes."""

    name: str
    partition_key: str
    sort_key: str
    #: non-key attributes copied into the index; empty: keys only
    include: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TableSpec:
    #: logical name, also the construct id
    id: str
    #: the environment variable that carries the physical table name to functions
    env: str
    partition_key: str = "pk"
    sort_key: str = "sk"
    local_indexes: tuple[LocalIndex, ...] = ()
    global_indexes: tuple[GlobalIndex, ...] = ()
    ttl_attribute: str | None = None
    #: a stream, for functions triggered by changes
    stream: bool = False
    #: what each stream record carries
    stream_view: str = "NEW_AND_OLD_IMAGES"
    #: STANDARD, or STANDARD_INFREQUENT_ACCESS for a table whose storage costs more than its traffic
    table_class: str = "STANDARD"


#: Contacts: one profile item per contact (sk PROFILE), merge markers (sk MERGED#...) and the stage
#: history with its outbox (sk STAGE#...). ``byDue`` is the due-time index: only profiles that decay
#: could move carry ``dueShard`` and ``dueKey`` (``<due time>#<contact>``). ``bySegment`` (issue 13) lists
#: a segment's members: only membership items (sk ``SEGMENT#<segment>``) carry ``segmentShard``
#: (``<segment>#<0..15>``, spreading a big segment over 16 partitions) and ``segmentMember`` (the contact).
#: ``byLookup`` (issue 14) is one overloaded, sparse, keys-only index for the console's look-ups, so a
#: release adds one index (CloudFormation creates one global index per table update): search-term items
#: (``lookupKey`` ``SEARCH#...``) and routed leads (``lookupKey`` ``OWNER#<salesperson>``) each carry
#: ``lookupKey`` and ``lookupSort``; nothing else does.
#: TTL ``expiresAt``: only published announcements under ``ANNOUNCED#`` carry it (``shared.adapters.stage_store``);
#: the stream triggers pass profile writes only, never its removals.
CONTACTS = TableSpec(
    id="contacts",
    env="CONTACTS_TABLE_NAME",
    global_indexes=(
        GlobalIndex(name="byDue", partition_key="dueShard", sort_key="dueKey"),
        # --- issue 13: segments ---
        GlobalIndex(name="bySegment", partition_key="segmentShard", sort_key="segmentMember"),
        # --- issue 14: the console's look-ups (contact search, a salesperson's leads) ---
        GlobalIndex(name="byLookup", partition_key="lookupKey", sort_key="lookupSort"),
    ),
    stream=True,
    # --- issue 13: stage history growth: published announcements other than stage moves expire ---
    ttl_attribute="expiresAt",
)

#: The event log: one item per contact and call, under the contact's partition. A call that carries its
#: own time is keyed ``E#<that time>#<messageId>``: the time an SDK stamps on a call is the same on every
#: retry, so the key both orders the log by time and refuses a replay, with no index. A call without a
#: time (raw HTTP callers only) is keyed ``M#<messageId>``. Each event carries its ledger (what it
#: scored). The stream feeds the aggregation function, which folds new events into the profiles.
#: Standard-IA: each event is written once and kept 13 months (purchases 10 years), so storage outweighs
#: the writes (docs/decisions.md, issue 8). ``byPurchase`` is sparse: only purchases carry
#: ``purchasedAt`` (their time), so the nightly analytics pass scans the purchases alone, in parallel
#: segments, reading the amount and the basket from the index (docs/analytics.md).
EVENTS = TableSpec(
    id="events",
    env="EVENTS_TABLE_NAME",
    global_indexes=(
        GlobalIndex(
            name="byPurchase", partition_key="pk", sort_key="purchasedAt", include=("revenue", "basket")
        ),
    ),
    ttl_attribute="expiresAt",
    stream=True,
    stream_view="NEW_IMAGE",
    table_class="STANDARD_INFREQUENT_ACCESS",
)

#: Configuration: write keys (and later scoring rules, salespeople...).
CONFIG = TableSpec(id="config", env="CONFIG_TABLE_NAME")

#: Rate-limit counters: one item per limited thing and window (pk ``<scope>#<hash>``, sk the window's
#: number), holding the window's request count; each expires an hour after its window.
RATES = TableSpec(id="rates", env="RATES_TABLE_NAME", ttl_attribute="expiresAt")

#: Lifecycle metrics (``shared.adapters.metric_store``): counters (pk ``<STAGES|REVENUE|CUSTOMERS|COHORTS>#<shard>``,
#: sk the row's key: ``D#<day>``, ``W#<week>``, ``M#<month>``, or a cohort's month), the markers of what was
#: counted (pk ``SEEN#<hash>``) and customers' facts (pk ``CUSTOMER#<hash>``: ``FIRST``, period markers). No
#: personal data: contacts and events are named by hashes. Markers expire (``expiresAt``); counters stay.
METRICS = TableSpec(id="metrics", env="METRICS_TABLE_NAME", ttl_attribute="expiresAt")

TABLES: tuple[TableSpec, ...] = (CONTACTS, EVENTS, CONFIG, RATES, METRICS)


def create_table_request(spec: TableSpec, table_name: str) -> dict:
    """The CreateTable call for a spec (the local stack; the cloud gets the same from CDK)."""
    keys = [
        spec.partition_key,
        spec.sort_key,
        *(i.sort_key for i in spec.local_indexes),
        *(k for i in spec.global_indexes for k in (i.partition_key, i.sort_key)),
    ]
    request: dict = {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [
            {"AttributeName": spec.partition_key, "KeyType": "HASH"},
            {"AttributeName": spec.sort_key, "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [{"AttributeName": k, "AttributeType": "S"} for k in dict.fromkeys(keys)],
    }
    if spec.local_indexes:
        request["LocalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": [
                    {"AttributeName": spec.partition_key, "KeyType": "HASH"},
                    {"AttributeName": index.sort_key, "KeyType": "RANGE"},
                ],
                "Projection": (
                    {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(index.include)}
                    if index.include
                    else {"ProjectionType": "ALL"}
                ),
            }
            for index in spec.local_indexes
        ]
    if spec.global_indexes:
        request["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": [
                    {"AttributeName": index.partition_key, "KeyType": "HASH"},
                    {"AttributeName": index.sort_key, "KeyType": "RANGE"},
                ],
                "Projection": (
                    {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(index.include)}
                    if index.include
                    else {"ProjectionType": "KEYS_ONLY"}
                ),
            }
            for index in spec.global_indexes
        ]
    if spec.stream:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": spec.stream_view}
    if spec.table_class != "STANDARD":
        request["TableClass"] = spec.table_class
    return request
