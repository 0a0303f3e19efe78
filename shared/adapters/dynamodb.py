"""DynamoDB plumbing shared by the stores: attribute values, the retry loop, the error mapping."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from shared.errors import DependencyUnavailable, LifecycleError

#: Error codes that mean "try again later", not "you sent something wrong".
RETRYABLE = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
        "TransactionConflictException",
    }
)
#: Cancellation reasons inside a cancelled transaction that are worth a retry.
RETRYABLE_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
#: Attempts of one call (throttles, conflicts); botocore's own retries come on top for throttles.
ATTEMPTS = 4
#: Full-jitter exponential backoff: a pause drawn from [0, BASE * FACTOR**n) seconds after attempt n.
BACKOFF_BASE = 0.025
BACKOFF_FACTOR = 4
_T = TypeVar("_T")


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: int | Decimal) -> dict[str, str]:
    return {"N": str(value)}


def ss(values: Iterable[str]) -> dict[str, list[str]]:
    return {"SS": sorted(set(values))}


def js(value: Any) -> dict[str, str]:
    """Arbitrary JSON (traits) as text: no DynamoDB type limits on depth, floats or empty sets."""
    return {"S": json.dumps(value, separators=(",", ":"), ensure_ascii=False)}


def exact_number(value: float) -> Decimal:
    """A float as a DynamoDB number: 17 significant digits round-trip exactly."""
    return Decimal(format(value, ".17g"))


def plain(attribute: Mapping[str, Any]) -> Any:
    """An AttributeValue as a Python value (numbers as Decimal)."""
    ((kind, value),) = attribute.items()
    if kind == "S":
        return value
    if kind == "N":
        return Decimal(value)
    if kind == "SS":
        return set(value)
    if kind == "NS":
        return {Decimal(v) for v in value}
    if kind == "BOOL":
        return value
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: plain(v) for k, v in value.items()}
    if kind == "L":
        return [plain(v) for v in value]
    if kind == "BS":
        return set(value)
    return value


def plain_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: plain(v) for k, v in item.items()}


def error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


def unavailable(exc: BaseException, what: str) -> DependencyUnavailable:
    """A 503 whose message names the dependency, never the backend's error (that goes to the log)."""
    from shared.observability import logger

    logger.warning("dependency unavailable", extra={"dependency": what, "error": _kind(exc)})
    return DependencyUnavailable(f"{what} is unavailable right now; retry")


def failure(exc: BaseException, what: str) -> BaseException:
    """The one mapping of an AWS error: transient -> 503 (retry later); anything else as it is (a 500)."""
    if isinstance(exc, LifecycleError):
        return exc
    return unavailable(exc, what) if is_transient(exc) else exc


def is_transient(exc: BaseException) -> bool:
    """Throttles, server errors, network failures, transactions cancelled only by conflicts or throttles:
    the request may succeed later."""
    code = error_code(exc)
    if code == "TransactionCanceledException":
        reasons = set(cancellation_codes(exc) or ()) - {"None", None}
        return bool(reasons) and reasons <= RETRYABLE_REASONS
    if code is not None:
        return code in RETRYABLE
    from botocore.exceptions import ConnectionError, HTTPClientError

    # the network (timeouts, closed or refused connections); not our own mistakes such as a parameter
    # botocore refuses or a missing region, which no retry fixes (a 500, logged)
    return isinstance(exc, ConnectionError | HTTPClientError)


def cancellation_codes(exc: BaseException) -> list[str] | None:
    """The per-item reasons of a cancelled transaction (``None`` if it was not a cancellation)."""
    if error_code(exc) != "TransactionCanceledException":
        return None
    return [r.get("Code") for r in getattr(exc, "response", {}).get("CancellationReasons") or []]


def backoff(attempts: int = ATTEMPTS, sleep: Callable[[float], None] = time.sleep) -> Iterator[int]:
    """Attempt numbers, with a full-jitter pause before each retry (concurrent writers spread out)."""
    for attempt in range(attempts):
        if attempt:
            sleep(random.uniform(0, BACKOFF_BASE * BACKOFF_FACTOR ** (attempt - 1)))
        yield attempt


def retried(
    call: Callable[[], _T],
    what: str,
    *,
    attempts: int = ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> _T:
    """Run one AWS call, retrying what may succeed later; if it persists, ``DependencyUnavailable``
    (503 with Retry-After; in a stream handler, the record goes back for Lambda to retry).

    Any other error is raised as it is, for the caller to classify (conditions, validation).
    """
    for attempt in backoff(attempts, sleep):
        try:
            return call()
        except Exception as exc:
            if not is_transient(exc):
                raise
            if attempt + 1 == attempts:
                raise unavailable(exc, what) from exc
    raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class Cancelled:
    """A transaction DynamoDB cancelled for its items' sake: one reason per item, in order."""

    error: Exception
    reasons: list[Mapping[str, Any]]

    @property
    def codes(self) -> list[str | None]:
        return [reason.get("Code") for reason in self.reasons]


def transact(
    client: Any, items: list[dict[str, Any]], what: str, *, sleep: Callable[[float], None] = time.sleep
) -> Cancelled | None:
    """Run a transaction, retrying conflicts and throttles: ``None`` once it applied, or why its items
    cancelled it (a condition, an item too large). Any other error: 503 if it may pass later, else as it
    is (a 500)."""
    try:
        retried(lambda: client.transact_write_items(TransactItems=items), what, sleep=sleep)
    except LifecycleError:
        raise
    except Exception as exc:
        reasons = (getattr(exc, "response", None) or {}).get("CancellationReasons")
        if cancellation_codes(exc) is None or not reasons:
            raise failure(exc, what) from exc
        return Cancelled(exc, reasons)
    return None


def transact_if(
    client: Any, items: list[dict[str, Any]], what: str, sleep: Callable[[float], None] = time.sleep
) -> bool:
    """Run a transaction (retrying conflicts and throttles); ``False`` if one of its conditions failed
    (nothing was written)."""
    cancelled = transact(client, items, what, sleep=sleep)
    if cancelled is None:
        return True
    if "ConditionalCheckFailed" in cancelled.codes:
        return False
    raise failure(cancelled.error, what) from cancelled.error


def _kind(exc: BaseException) -> str:
    return error_code(exc) or type(exc).__name__


def query_all(client: Any, request: Mapping[str, Any], what: str) -> list[dict[str, Any]]:
    """Every item a Query returns, page after page."""
    items: list[dict[str, Any]] = []
    start: dict[str, Any] | None = None
    while True:
        page_request = {**request, **({"ExclusiveStartKey": start} if start else {})}
        try:
            page = retried(lambda request=page_request: client.query(**request), what)
        except Exception as exc:
            raise failure(exc, what) from exc
        items += page.get("Items", [])
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def scan_pages(
    client: Any, request: Mapping[str, Any], what: str, page_size: int | None = None
) -> Iterator[tuple[list[dict[str, Any]], int]]:
    """One parallel-scan segment's pages as read (the next is read when asked for): each page's items and
    how many items DynamoDB read for it (``ScannedCount``: what a filtered Scan is billed by). ``page_size``
    caps the items read per page (None: DynamoDB's 1 MB pages)."""
    page_request: dict[str, Any] = {**request, **({"Limit": page_size} if page_size else {})}
    while True:
        try:
            page = retried(lambda request=page_request: client.scan(**request), what)
        except Exception as exc:
            raise failure(exc, what) from exc
        yield page.get("Items", []), page.get("ScannedCount", 0)
        start = page.get("LastEvaluatedKey")
        if not start:
            return
        page_request = {**page_request, "ExclusiveStartKey": start}


def batch_write(
    client: Any,
    table: str,
    requests: list[dict[str, Any]],
    what: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Put and delete requests on one table, 25 per call, sending what DynamoDB left unprocessed again."""
    for start in range(0, len(requests), 25):
        pending = {table: requests[start : start + 25]}
        for _ in backoff(ATTEMPTS + 2, sleep):  # unprocessed items: throttled, send them again
            try:
                answer = retried(
                    lambda batch=pending: client.batch_write_item(RequestItems=batch), what, sleep=sleep
                )
            except LifecycleError:
                raise
            except Exception as exc:
                raise failure(exc, what) from exc
            pending = answer.get("UnprocessedItems") or {}
            if not pending:
                break
        if pending:
            raise DependencyUnavailable(f"{what} is throttled; retry")
