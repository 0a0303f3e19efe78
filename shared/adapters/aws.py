"""AWS clients, created on first use and never at import time (import cost is cold start).

Clients come straight from botocore: boto3 would add its resource layer and
s3transfer to every cold start for nothing the functions use.

Two kinds per service: ``client`` retries (standard mode, ``SDK_ATTEMPTS`` attempts), which is right for
idempotent calls and conditional writes; ``provider_client`` makes one attempt only, for the calls that
hand a message to a provider (SES ``SendEmail``, SNS ``Publish``): they are not idempotent, and an SDK
retry after a read timeout would send the message a second time. Their caller decides what a failure
means (``shared.adapters.provider_errors``).
"""

from __future__ import annotations

from typing import Any

from shared import scope

#: seconds to open a connection, and to wait for each read of an answer
CONNECT_TIMEOUT_SECONDS = 2
READ_TIMEOUT_SECONDS = 5
#: attempts of a ``client`` call (the first and the SDK's retries); a ``provider_client`` makes one
SDK_ATTEMPTS = 3
PROVIDER_ATTEMPTS = 1

_overrides: dict[str, Any] = {}


def client(service: str) -> Any:
    """The running function's client for ``service`` (one per function scope; see ``shared.scope``)."""
    return _client(service, "client", SDK_ATTEMPTS)


def provider_client(service: str) -> Any:
    """The running function's client for ``service`` that never retries a call (one per function
    scope): for handing a message to a provider, where a retry after a timeout may send it twice."""
    return _client(service, "provider_client", PROVIDER_ATTEMPTS)


def _client(service: str, kind: str, attempts: int) -> Any:
    running = scope.current_or_process()
    return (
        _overrides.get(service)
        or running.built.get((kind, service))
        or _create(running, service, kind, attempts)
    )


def _create(running: scope.FunctionScope, service: str, kind: str, attempts: int) -> Any:
    import botocore.session
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "total_max_attempts": attempts},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        tcp_keepalive=True,
    )
    created = botocore.session.get_session().create_client(service, config=config)
    if running.on_client is not None:
        running.on_client(service, created)
    running.built[(kind, service)] = created
    return created


def use(service: str, stand_in: Any) -> None:
    """Serve ``stand_in`` for ``service`` in every scope (benchmarks stub DynamoDB; tests inject faults)."""
    _overrides[service] = stand_in


def reset() -> None:
    """Forget clients (and what was built with them) in every scope, and the stand-ins."""
    _overrides.clear()
    scope.reset()
