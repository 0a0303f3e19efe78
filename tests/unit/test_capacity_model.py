"""The billed-capacity model of ``bench/capacity.py`` against DynamoDB's documented rules and examples.

The meter is checked on moto too: what a function's own client does is billed from the item images, a
Query on everything it evaluated before its filter, an index on the change to what it stores.
"""

from __future__ import annotations

import base64

import pytest

from bench.capacity import (
    Index,
    Meter,
    condition_check_cost,
    get_cost,
    index_entry,
    index_write_units,
    indexes,
    item_size,
    query_cost,
    read_units,
    stored_bytes,
    write_cost,
    write_units,
)
from shared.adapters.tables import GlobalIndex, LocalIndex, TableSpec

KB = 1024
#: A table like the project's: an ALL and an INCLUDE local index, a sparse keys-only global index.
SPEC = TableSpec(
    id="things",
    env="THINGS_TABLE_NAME",
    local_indexes=(
        LocalIndex(name="byTime", sort_key="at"),
        LocalIndex(name="byScore", sort_key="scoredAt", include=("ledger",)),
    ),
    global_indexes=(GlobalIndex(name="byDue", partition_key="dueShard", sort_key="dueKey"),),
)
BY_TIME, BY_SCORE, BY_DUE = indexes(SPEC)


def sized(size: int, **attributes: dict[str, str]) -> dict[str, dict[str, str]]:
    """An item of exactly ``size`` bytes: keys, ``attributes``, and a string ``p`` padding the rest."""
    item = {"pk": {"S": "C#1"}, "sk": {"S": "M#1"}, **attributes}
    padding = size - item_size(item) - len("p")
    assert padding >= 0, "the attributes alone are larger than the size asked for"
    item["p"] = {"S": "x" * padding}
    assert item_size(item) == size
    return item


# --- item size: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html


def test_a_string_is_its_name_plus_its_utf8_bytes() -> None:
    assert item_size({"name": {"S": "Ann"}}) == 4 + 3
    assert item_size({"café": {"S": "crème"}}) == 5 + 6  # é and è are two bytes each in UTF-8


def test_a_number_is_one_byte_per_two_significant_digits_plus_one() -> None:
    assert item_size({"n": {"N": "12345"}}) == 1 + 3 + 1
    assert item_size({"n": {"N": "12"}}) == 1 + 1 + 1
    # leading and trailing zeroes are trimmed
    assert item_size({"n": {"N": "000120.500"}}) == item_size({"n": {"N": "1205"}}) == 1 + 2 + 1


def test_binary_counts_raw_bytes_not_base64() -> None:
    raw = bytes(range(30))
    assert item_size({"b": {"B": base64.b64encode(raw).decode()}}) == 1 + 30
    assert item_size({"b": {"B": raw}}) == 1 + 30


def test_null_and_boolean_are_one_byte() -> None:
    assert item_size({"ok": {"BOOL": True}, "no": {"NULL": True}}) == (2 + 1) + (2 + 1)


def test_lists_and_maps_cost_three_bytes_and_one_per_element() -> None:
    assert item_size({"l": {"L": []}}) == 1 + 3
    assert item_size({"m": {"M": {}}}) == 1 + 3
    assert item_size({"l": {"L": [{"S": "ab"}, {"N": "7"}]}}) == 1 + 3 + (1 + 2) + (1 + 2)
    assert item_size({"m": {"M": {"k": {"S": "v"}}}}) == 1 + 3 + (1 + 1 + 1)
    nested = {"m": {"M": {"in": {"L": [{"BOOL": False}]}}}}
    assert item_size(nested) == 1 + 3 + (2 + 1 + (3 + 1 + 1))


def test_sets_are_the_sum_of_their_members() -> None:
    assert item_size({"ss": {"SS": ["a", "bc"]}}) == 2 + 3
    assert item_size({"ns": {"NS": ["1", "1234"]}}) == 2 + 2 + 3


# --- writes: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html


def test_a_write_costs_one_unit_per_kb_or_part() -> None:
    assert write_units(1) == write_units(KB) == 1
    assert write_units(1500) == 2  # a 1,500-byte item
    assert write_units(KB + 1) == 2
    assert write_cost(None, sized(1500), SPEC).table == 2


def test_update_and_overwrite_are_billed_on_the_larger_image() -> None:
    small, large = sized(300), sized(2500)
    assert write_cost(large, small, SPEC).table == 3  # an update that shrinks the item
    assert write_cost(small, large, SPEC).table == 3
    assert write_cost(sized(900), sized(1000), SPEC).table == 1


def test_a_delete_is_billed_on_the_deleted_item_and_a_missing_item_costs_one() -> None:
    assert write_cost(sized(3000), None, SPEC).table == 3
    assert write_cost(None, None, SPEC).table == 1


def test_a_failed_conditional_write_costs_the_existing_item_and_no_index() -> None:
    existing = sized(2100, at={"S": "t1"})
    cost = write_cost(existing, existing, SPEC, failed=True)
    assert (cost.table, dict(cost.indexes)) == (3, {})
    assert write_cost(None, None, SPEC, failed=True).table == 1


# --- transactions: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html
# (two underlying writes of every item: prepare and commit) and https://aws.amazon.com/dynamodb/pricing/provisioned/
# ("a transactional write request of a 3 KB item would require six WCUs")


def test_a_transaction_doubles_each_items_write() -> None:
    assert write_cost(None, sized(3 * KB), SPEC, transactional=True).table == 6
    assert write_cost(None, sized(500), SPEC, transactional=True).table == 2
    assert condition_check_cost(sized(1500)).total == 4
    assert condition_check_cost(None).total == 2


def test_index_writes_in_a_transaction_are_not_doubled() -> None:
    """Only the table's writes are transactional (as an emulator found against DynamoDB: nubo-db/dynoxide#188)."""
    cost = write_cost(None, sized(900, at={"S": "t1"}), SPEC, transactional=True)
    assert (cost.table, dict(cost.indexes)) == (2, {"byTime": 1})


# --- secondary indexes: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/LSI.html
# ("Provisioned throughput considerations") and .../GSI.html#GSI.Writes


def test_indexes_come_from_the_table_spec() -> None:
    assert BY_TIME == Index("byTime", "local", ("at",), ("pk", "sk"), "ALL")
    assert BY_SCORE == Index("byScore", "local", ("scoredAt",), ("pk", "sk"), "INCLUDE", ("ledger",))
    assert BY_DUE == Index("byDue", "global", ("dueShard", "dueKey"), ("pk", "sk"), "KEYS_ONLY")


def test_an_item_entering_an_index_costs_one_write_of_its_entry() -> None:
    item = sized(1500, at={"S": "t1"}, scoredAt={"S": "t1"}, ledger={"S": "[]"})
    cost = write_cost(None, item, SPEC)
    # byTime copies the whole item (2 KB of units); byScore only keys and the ledger
    assert dict(cost.indexes) == {"byTime": 2, "byScore": 1}
    assert cost.total == 2 + 2 + 1


def test_an_item_without_the_index_key_is_not_in_the_index() -> None:
    assert index_entry(sized(200), BY_TIME) is None
    assert index_entry(sized(200, dueShard={"S": "1"}), BY_DUE) is None  # half a key is no key
    assert dict(write_cost(None, sized(200), SPEC).indexes) == {}


def test_a_change_of_the_index_key_is_a_delete_and_a_put() -> None:
    before = sized(300, dueShard={"S": "3"}, dueKey={"S": "2026-01-01#c"})
    after = {**before, "dueKey": {"S": "2026-02-01#c"}}
    assert index_write_units(before, after, BY_DUE) == 2
    assert dict(write_cost(before, after, SPEC).indexes) == {"byDue": 2}


def test_changing_only_projected_attributes_is_one_write_and_others_none() -> None:
    before = sized(600, scoredAt={"S": "t1"}, ledger={"S": "[1]"})
    assert index_write_units(before, {**before, "ledger": {"S": "[1, 2]"}}, BY_SCORE) == 1
    assert index_write_units(before, {**before, "p": {"S": "changed"}}, BY_SCORE) == 0  # not projected
    keyed = sized(600, dueShard={"S": "3"}, dueKey={"S": "k"})
    assert index_write_units(keyed, {**keyed, "p": {"S": "changed"}}, BY_DUE) == 0  # keys only


def test_an_item_leaving_an_index_costs_one_write() -> None:
    before = sized(600, at={"S": "t1"})
    after = {name: value for name, value in before.items() if name != "at"}
    assert index_write_units(before, after, BY_TIME) == 1
    assert dict(write_cost(before, None, SPEC).indexes) == {"byTime": 1}  # a delete, too


# --- reads: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html


def test_reads_round_up_to_4_kb_and_eventual_consistency_halves_them() -> None:
    assert get_cost(sized(3500), consistent=True) == 1  # "reading a 3,500-byte item ... as a 4 KB item"
    assert get_cost(sized(3 * KB)) == 0.5  # a 3 KB item, eventually consistent
    eight = sized(8 * KB)  # "an 8 KB item: 2 read units strongly consistent, 1 eventually, 4 transactional"
    assert (get_cost(eight, consistent=True), get_cost(eight), get_cost(eight, transactional=True)) == (
        2,
        1,
        4,
    )
    assert get_cost(sized(10 * KB), consistent=True) == 3  # "a 10 KB item ... rounds up to 12 KB"


def test_a_missing_item_still_costs_a_read() -> None:
    assert get_cost(None) == 0.5
    assert get_cost(None, consistent=True) == 1


def test_batch_get_rounds_each_item_and_query_the_total() -> None:
    # "BatchGetItem reads a 1.5 KB item and a 6.5 KB item: DynamoDB calculates the size as 12 KB"
    batch = get_cost(sized(1536), consistent=True) + get_cost(sized(6656), consistent=True)
    assert batch == 12 * KB / 4096
    # "a query returns 10 items whose combined size is 40.8 KB: DynamoDB rounds ... to 44 KB"
    assert query_cost([round(40.8 * KB / 10)] * 10, consistent=True) == 11
    assert query_cost([round(40.8 * KB / 10)] * 10) == 5.5
    assert query_cost([]) == read_units(0, False) == 0.5


# --- storage: CapacityUnitCalculations.html (100 bytes per item) and GSI.html#GSI.StorageConsiderations


def test_storage_is_the_item_and_each_index_entry_each_with_100_bytes() -> None:
    item = sized(1000, at={"S": "t1"}, scoredAt={"S": "t2"}, ledger={"S": "[]"})
    entry = item_size({k: item[k] for k in ("pk", "sk", "scoredAt", "ledger")})
    assert stored_bytes(item, SPEC) == {None: 1100, "byTime": 1100, "byScore": entry + 100}


# --- the meter, on moto: a function's own client, billed from the images


@pytest.fixture
def metered():
    from moto import mock_aws

    from infra.local.moto_dynamodb import serialise
    from shared.adapters.tables import create_table_request

    serialise()
    with mock_aws():
        import boto3

        client = boto3.client("dynamodb", region_name="eu-west-1")
        client.create_table(**create_table_request(SPEC, "things-table"))
        meter = Meter({"things-table": SPEC}, who=lambda: "test")
        with meter.installed():
            yield client, meter


def key(sk: str = "M#1") -> dict[str, dict[str, str]]:
    return {"pk": {"S": "C#1"}, "sk": {"S": sk}}


def test_the_meter_bills_puts_updates_and_failed_conditions(metered) -> None:
    client, meter = metered
    client.put_item(TableName="things-table", Item=sized(1500, at={"S": "t1"}))
    assert meter.by("write", "operation", "index") == {("PutItem", None): 2, ("PutItem", "byTime"): 2}
    meter.clear()
    client.update_item(
        TableName="things-table",
        Key=key(),
        UpdateExpression="SET dueShard = :s, dueKey = :k",
        ExpressionAttributeValues={":s": {"S": "1"}, ":k": {"S": "k1"}},
    )
    # the item (1.5 KB) is rewritten; byTime's entry (the whole item) changes; it enters byDue
    assert meter.by("write", "index") == {(None,): 2, ("byTime",): 2, ("byDue",): 1}
    meter.clear()
    with pytest.raises(client.exceptions.ConditionalCheckFailedException):
        client.put_item(TableName="things-table", Item=key(), ConditionExpression="attribute_not_exists(pk)")
    assert meter.units("write") == 2 and len(meter.errors) == 1


def test_the_meter_doubles_transactions_and_bills_queries_before_their_filter(metered) -> None:
    client, meter = metered
    client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": "things-table", "Item": sized(3000)}},
            {"Put": {"TableName": "things-table", "Item": {**sized(100), "sk": {"S": "M#2"}}}},
        ]
    )
    assert meter.units("write") == 3 * 2 + 1 * 2
    meter.clear()
    found = client.query(
        TableName="things-table",
        KeyConditionExpression="pk = :p",
        FilterExpression="sk = :none",
        ExpressionAttributeValues={":p": {"S": "C#1"}, ":none": {"S": "nothing"}},
        ConsistentRead=True,
    )
    assert found["Count"] == 0  # the filter kept nothing, but 3.1 KB were read: 1 unit
    assert meter.units("read") == 1
    meter.clear()
    client.get_item(TableName="things-table", Key=key("M#9"))
    assert meter.units("read") == 0.5


def test_the_meter_reports_what_it_does_not_bill(metered) -> None:
    client, meter = metered
    client.execute_statement(Statement='SELECT * FROM "things-table"')
    assert meter.units("read") == 0
    assert meter.unbilled == {("test", "ExecuteStatement"): 1}


def test_the_meter_leaves_invalid_requests_to_moto(metered) -> None:
    client, meter = metered
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.put_item(TableName="no-such-table", Item=key())
    assert meter.units("write") == 0
