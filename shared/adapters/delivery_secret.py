"""The delivery secret in Secrets Manager: the key that signs unsubscribe and confirmation links and
webhooks. Read once per instance (GetSecretValue on first use, then kept): a new value reaches a warm
function when it is recycled. The value never leaves this module except as the key, and is never logged.

A secret that cannot be read (missing, not yet created, no value, being rotated, Secrets Manager
failing) raises ``DependencyUnavailable``: no link is signed or checked with a key that is not there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from shared.adapters.dynamodb import error_code
from shared.errors import DependencyUnavailable

#: GetSecretValue errors that name the secret's state, not a failure of the service
MISSING = frozenset({"ResourceNotFoundException", "InvalidRequestException"})


class SecretsManagerSecret:
    def __init__(self, client_factory: Callable[[], Any], *, secret_arn: str) -> None:
        self._client = client_factory
        self._arn = secret_arn
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def key(self) -> bytes:
        """The secret's value (its SecretString as UTF-8, or its SecretBinary), read on first use."""
        if self._key is None:
            with self._lock:
                if self._key is None:
                    self._key = self._read()
        return self._key

    def _read(self) -> bytes:
        from shared.observability import logger

        try:
            response = self._client().get_secret_value(SecretId=self._arn)
        except Exception as exc:
            from botocore.exceptions import BotoCoreError

            code = error_code(exc)
            if code is None and not isinstance(exc, BotoCoreError):
                raise  # a bug of ours, not the secret's state
            logger.warning(
                "delivery secret unreadable",
                extra={"dependency": "delivery secret", "error": code or type(exc).__name__},
            )
            if code in MISSING:
                raise DependencyUnavailable(
                    "the delivery secret does not exist or cannot be read yet", code="delivery_secret_missing"
                ) from exc
            raise DependencyUnavailable("the delivery secret is unavailable right now; retry") from exc
        value = response.get("SecretString")
        key = value.encode("utf-8") if isinstance(value, str) else response.get("SecretBinary")
        if not key:
            raise DependencyUnavailable("the delivery secret has no value", code="delivery_secret_missing")
        return bytes(key)
