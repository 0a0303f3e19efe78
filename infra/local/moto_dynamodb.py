"""Make moto's DynamoDB behave like DynamoDB where the project depends on it.

1. Serialised requests. moto applies a transaction item by item without a lock, so two threads can
   interleave inside one ``TransactWriteItems``; real DynamoDB never lets that happen. One re-entrant
   lock around every backend call restores the guarantee the exactly-once logic relies on.
2. Long expressions. moto parses update expressions recursively, one frame per clause; DynamoDB
   takes 4 KB of them (some 300 clauses), which needs a deeper stack than Python's default.
3. Cheap, faithful transaction rollback. moto snapshots a whole table (``deepcopy``) for every item of
   every transaction, and on failure swaps in the copies, replacing the tables' stream objects too.
   That is quadratic in table size and breaks stream readers. Instead we snapshot only the partitions
   a transaction touches and, on failure, put them back and drop the stream records it emitted.
4. Numbers after arithmetic. moto writes the result of ``ADD`` or ``SET a = a + :x`` as Python prints
   the Decimal (``0E-15``) and later parses a number without a dot as an int, which fails; DynamoDB
   stores ``0``. Results are written in plain notation.
5. Update expressions parsed once. moto parses every update expression twice per item (to check
   names, then to apply it) and its check that an expression has one SET, REMOVE and ADD clause walks
   the tree again from every clause (quadratic). The project sends a handful of distinct expressions
   (values vary, text does not), so parsed trees are cached by text; moto's validator works on a copy,
   so a cached tree is never changed. The clause count is checked once, at the root, which is the
   same check, and each tree walker builds its node-type table once instead of at every node.
   Under concurrent batches this parsing and walking was most of the local stack's time.
"""

from __future__ import annotations

import copy
import functools
import sys
import threading
import types
from typing import Any

_LOCK = threading.RLock()
_METHODS = (
    "put_item",
    "update_item",
    "delete_item",
    "get_item",
    "query",
    "scan",
    "batch_write_item",
    "batch_get_item",
    "transact_write_items",
    "transact_get_items",
)
_MISSING = object()


def serialise() -> None:
    from moto.dynamodb import models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    if getattr(DynamoDBBackend, "_lifecycle_serialised", False):
        return
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))

    # moto's own per-item table snapshots become no-ops; _transact below keeps the real rollback.
    models.copy = types.SimpleNamespace(
        deepcopy=lambda value, memo=None: value if isinstance(value, Table) else copy.deepcopy(value, memo),
        copy=copy.copy,
    )
    original_transact = DynamoDBBackend.transact_write_items

    def _transact(self: Any, transact_items: list[dict[str, Any]]) -> None:
        partitions: dict[tuple[str, Any], Any] = {}
        streams: dict[str, int] = {}
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName"))
            attributes = op.get("Item") or op.get("Key") or {}
            if table is None or table.hash_key_attr not in attributes:
                continue
            hash_value = DynamoType(attributes[table.hash_key_attr])
            if (table.name, hash_value) not in partitions:
                held = table.items.get(hash_value, _MISSING) if hash_value in table.items else _MISSING
                partitions[(table.name, hash_value)] = (
                    copy.deepcopy(held) if held is not _MISSING else _MISSING
                )
            if table.stream_shard is not None:
                streams.setdefault(table.name, len(table.stream_shard.items))
        try:
            original_transact(self, transact_items)
        except Exception:
            for (name, hash_value), held in partitions.items():
                table = self.tables[name]
                if held is _MISSING:
                    table.items.pop(hash_value, None)
                else:
                    table.items[hash_value] = held
            for name, length in streams.items():
                del self.tables[name].stream_shard.items[length:]
            raise

    DynamoDBBackend.transact_write_items = _transact
    _plain_number_arithmetic(DynamoType)
    _parse_update_expressions_once()

    for name in _METHODS:
        method = getattr(DynamoDBBackend, name)

        @functools.wraps(method)
        def locked(self, *args, _method=method, **kwargs):
            with _LOCK:
                return _method(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, locked)
    DynamoDBBackend._lifecycle_serialised = True


def _plain_number_arithmetic(dynamo_type: Any) -> None:
    """``ADD`` and ``SET a = a + :x`` (moto's executors use these operators) write plain notation."""
    from decimal import Decimal

    def arithmetic(sign: int) -> Any:
        def apply(self: Any, other: Any) -> Any:
            if self.type != other.type or not self.is_number():
                raise TypeError("arithmetic on numbers only")
            total = Decimal(self.value) + sign * Decimal(other.value)
            return dynamo_type({"N": format(total.normalize(), "f") if total else "0"})

        return apply

    dynamo_type.__add__ = arithmetic(1)
    dynamo_type.__sub__ = arithmetic(-1)


def _parse_update_expressions_once() -> None:
    from moto.dynamodb.parsing import expressions
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, UpdateExpression
    from moto.dynamodb.parsing.validators import ActionCountValidator

    parse = expressions.UpdateExpressionParser.make.__func__
    cached = functools.lru_cache(maxsize=1024)(lambda cls, text: parse(cls, text))
    expressions.UpdateExpressionParser.make = classmethod(cached)

    def traverse(self: Any, node: Any) -> Any:
        return self.verify_action_counts(node) if isinstance(node, UpdateExpression) else node

    ActionCountValidator.traverse = traverse

    def processing_map(self: Any) -> tuple[dict[type, Any], tuple[type, ...]]:
        built = self.__dict__.get("_lifecycle_map")
        if built is None:
            table = self._processing_map()
            built = self.__dict__["_lifecycle_map"] = (table, tuple(table))
        return built

    def nodes_to_be_processed(self: Any) -> tuple[type, ...]:
        return processing_map(self)[1]

    def process(self: Any, node: Any) -> Any:
        for kind, processor in processing_map(self)[0].items():
            if isinstance(node, kind):
                return processor(node)
        return None

    DepthFirstTraverser.nodes_to_be_processed = nodes_to_be_processed
    DepthFirstTraverser.process = process
