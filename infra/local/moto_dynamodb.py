"""Make moto's DynamoDB serialise requests, as DynamoDB does.

moto applies a transaction item by item without a lock, so two threads can
interleave inside one ``TransactWriteItems``; real DynamoDB never lets that
happen. One re-entrant lock around every backend call restores the guarantee
the exactly-once logic relies on, in the local stack and in the tests.
"""

from __future__ import annotations

import functools
import threading

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


def serialise() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend, "_lifecycle_serialised", False):
        return
    for name in _METHODS:
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def locked(self, *args, _original=original, **kwargs):
            with _LOCK:
                return _original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, locked)
    DynamoDBBackend._lifecycle_serialised = True
