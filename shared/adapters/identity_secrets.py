"""Sources' identity secrets in SSM Parameter Store: one SecureString per source, cached briefly.

The parameter ``<path><source>`` holds ``{"current": ..., "previous": ..., "previousUntil": ...}``:
after a rotation the previous secret is accepted until ``previousUntil``. Only the write-key command
(``python -m infra.write_keys``) writes it; the tracking function may only read it (GetParameter on the
path). The value never leaves this module except as a ``SourceSecret``, and is never logged.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from shared.adapters.dynamodb import error_code, failure
from shared.tracking.proofs import SourceSecret

#: How long a lookup is cached in a warm function: a rotated secret is accepted within it.
CACHE_SECONDS = 60.0
#: A source name that can name its parameter as it is; any other is named by its hash.
PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class SecretRecord(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    current: str = Field(min_length=16)
    previous: str | None = None
    previous_until: AwareDatetime | None = Field(None, alias="previousUntil")

    def secret(self) -> SourceSecret:
        return SourceSecret(self.current, self.previous, self.previous_until)


class SsmIdentitySecrets:
    def __init__(
        self,
        client: Callable[[], Any],
        *,
        path: str,
        cache_seconds: float = CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._path = path
        self._ttl = cache_seconds
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, SourceSecret | None]] = {}

    def secret_for(self, source: str) -> SourceSecret | None:
        """The source's secret, or None if it has none (or an unreadable one)."""
        cached = self._cache.get(source)
        if cached and cached[0] > self._monotonic():
            return cached[1]
        record = self._read(source)
        found = record.secret() if record is not None else None
        if len(self._cache) > 1000:
            self._cache.clear()
        self._cache[source] = (self._monotonic() + self._ttl, found)
        return found

    def create(self, source: str) -> str | None:
        """A new secret for a source that has none (returned once); None if it already has one."""
        secret = _new_secret()
        record = SecretRecord(current=secret)
        if not self._write(source, record, overwrite=False):
            return None
        return secret

    def adopt(self, source: str, secret: str) -> None:
        """Make ``secret`` the source's secret (the local stack's known one; deployments use ``create``)."""
        self._write(source, SecretRecord(current=secret), overwrite=True)
        self._cache.pop(source, None)

    def rotate(self, source: str, now: datetime, overlap: timedelta) -> str:
        """Replace the source's secret; the old one stays accepted for ``overlap``. Returns the new one.

        Only the secret being replaced stays accepted: rotating again within the overlap retires the
        one before it at once (rotate when the back-ends have moved to the current one)."""
        if not overlap >= timedelta(0):
            raise ValueError("the overlap must be zero or more")
        old = self._read(source)
        secret = _new_secret()
        record = SecretRecord(
            current=secret,
            previous=old.current if old is not None else None,
            previous_until=now + overlap if old is not None else None,
        )
        self._write(source, record, overwrite=True)
        self._cache.pop(source, None)
        return secret

    def _name(self, source: str) -> str:
        """The source's parameter: its name where SSM allows it, else ``sha256-<hex of the name>``
        (source names came free-form before secrets did: ``Main website``)."""
        if PLAIN_NAME.match(source) and not source.startswith("sha256-"):
            return f"{self._path}{source}"
        return f"{self._path}sha256-{hashlib.sha256(source.encode('utf-8', 'surrogatepass')).hexdigest()}"

    def _read(self, source: str) -> SecretRecord | None:
        try:
            response = self._client().get_parameter(Name=self._name(source), WithDecryption=True)
        except Exception as exc:
            if error_code(exc) == "ParameterNotFound":
                return None
            raise failure(exc, "the identity secrets") from exc
        try:
            return SecretRecord.model_validate_json(response["Parameter"]["Value"])
        except (ValidationError, KeyError):
            return None  # unreadable: no claim verifies, and the metric says why (never the value)

    def _write(self, source: str, record: SecretRecord, *, overwrite: bool) -> bool:
        value = record.model_dump_json(by_alias=True, exclude_none=True)
        try:
            self._client().put_parameter(
                Name=self._name(source),
                Value=value,
                Type="SecureString",
                Overwrite=overwrite,
                Description="Lifecycle: the source's identity secret (HMAC / HS256) for verified browser calls",
            )
        except Exception as exc:
            if error_code(exc) == "ParameterAlreadyExists":
                return False
            raise
        return True


def _new_secret() -> str:
    return secrets.token_urlsafe(32)
