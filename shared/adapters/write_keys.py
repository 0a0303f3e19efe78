"""Write keys on DynamoDB: stored as SHA-256 hashes, cached briefly in the function."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.adapters.dynamodb import error_code, exact_number, failure, n, plain_item, s
from shared.errors import Conflict, NotFound
from shared.tracking.rates import RateLimit
from shared.tracking.timestamps import format_time
from shared.tracking.trust import Source, Trust

PREFIX = "WRITEKEY#"
#: How long a lookup is cached in a warm function; a new or disabled key takes effect within it.
CACHE_SECONDS = 60.0


class WriteKeyItem(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    source: str
    trust: Trust
    disabled: bool = False
    createdAt: str | None = None
    #: calls naming a userId must carry a proof (browser keys; ``shared.tracking.proofs``)
    verifyIdentity: bool = False
    #: the key's own rate limit (both or neither); without it, the tracking function's default
    rate: float | None = Field(None, gt=0)
    burst: int | None = Field(None, ge=1)

    def limit(self) -> RateLimit | None:
        return None if self.rate is None or self.burst is None else RateLimit(self.rate, self.burst)


def fingerprint(write_key: str) -> str:
    return hashlib.sha256(write_key.encode("utf-8", "surrogatepass")).hexdigest()


class DynamoWriteKeys:
    def __init__(
        self,
        client: Any,
        *,
        table: str,
        cache_seconds: float = CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = client
        self._table = table
        self._ttl = cache_seconds
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, Source | None]] = {}

    def lookup(self, write_key: str) -> Source | None:
        digest = fingerprint(write_key)
        cached = self._cache.get(digest)
        if cached and cached[0] > self._monotonic():
            return cached[1]
        try:
            item = self._db.get_item(TableName=self._table, Key=_key(digest)).get("Item")
        except Exception as exc:
            raise failure(exc, "the write-key directory") from exc
        source = None
        if item:
            record = WriteKeyItem.model_validate(plain_item(item))
            source = (
                None
                if record.disabled
                else Source(
                    name=record.source,
                    trust=record.trust,
                    limit=record.limit(),
                    requires_proof=record.verifyIdentity and record.trust is Trust.BROWSER,
                )
            )
        if len(self._cache) > 1000:
            self._cache.clear()
        self._cache[digest] = (self._monotonic() + self._ttl, source)
        return source

    def register(
        self,
        write_key: str,
        source: str,
        trust: Trust,
        at: datetime,
        limit: RateLimit | None = None,
        *,
        requires_proof: bool = False,
    ) -> None:
        """Store a write key (idempotent for the same source and trust), with its own rate limit or none."""
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    **_key(fingerprint(write_key)),
                    "source": s(source),
                    "trust": s(trust.value),
                    "createdAt": s(format_time(at)),
                    **({"verifyIdentity": {"BOOL": True}} if requires_proof else {}),
                    **(_limit_attributes(limit) if limit else {}),
                },
                ConditionExpression="attribute_not_exists(pk) OR (#source = :source AND #trust = :trust)",
                ExpressionAttributeNames={"#source": "source", "#trust": "trust"},
                ExpressionAttributeValues={":source": s(source), ":trust": s(trust.value)},
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise Conflict("that write key already belongs to another source or trust level") from exc
            raise

    def create(
        self,
        source: str,
        trust: Trust,
        at: datetime,
        limit: RateLimit | None = None,
        *,
        requires_proof: bool = False,
    ) -> str:
        """Mint a new random write key for a source; only its hash is stored."""
        write_key = ("wk_srv_" if trust is Trust.SERVER else "wk_web_") + secrets.token_urlsafe(24)
        self.register(write_key, source, trust, at, limit, requires_proof=requires_proof)
        return write_key

    def set_limit(self, write_key: str, limit: RateLimit | None) -> None:
        """Give a key its own rate limit, or (None) return it to the default; warm functions apply it
        within their cache time."""
        values = {f":{k}": v for k, v in _limit_attributes(limit).items()} if limit else {}
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_key(fingerprint(write_key)),
                UpdateExpression="SET #rate = :rate, #burst = :burst" if limit else "REMOVE #rate, #burst",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#rate": "rate", "#burst": "burst"},
                **({"ExpressionAttributeValues": values} if values else {}),
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise NotFound("no such write key") from exc
            raise
        self._cache.pop(fingerprint(write_key), None)

    def disable(self, write_key: str) -> None:
        self._set(write_key, "disabled", True)

    def require_proof(self, write_key: str, required: bool) -> None:
        """Make calls naming a userId prove it (or stop requiring it); applies within the cache time."""
        self._set(write_key, "verifyIdentity", required)

    def _set(self, write_key: str, flag: str, value: bool) -> None:
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_key(fingerprint(write_key)),
                UpdateExpression="SET #flag = :value",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#flag": flag},
                ExpressionAttributeValues={":value": {"BOOL": value}},
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise NotFound("no such write key") from exc
            raise
        self._cache.pop(fingerprint(write_key), None)


def _limit_attributes(limit: RateLimit) -> dict[str, Any]:
    return {"rate": n(exact_number(limit.rate)), "burst": n(limit.burst)}


def _key(digest: str) -> dict[str, Any]:
    return {"pk": s(PREFIX + digest), "sk": s("WRITEKEY")}
