"""AWS clients, created on first use and never at import time (import cost is cold start).

Clients come straight from botocore: boto3 would add its resource layer and
s3transfer to every cold start for nothing the functions use.
"""

from __future__ import annotations

from typing import Any

from shared import scope

_overrides: dict[str, Any] = {}


def client(service: str) -> Any:
    """The running function's client for ``service`` (one per function scope; see ``shared.scope``)."""
    running = scope.current_or_process()
    return _overrides.get(service) or running.built.get(("client", service)) or _create(running, service)


def _create(running: scope.FunctionScope, service: str) -> Any:
    import botocore.session
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "total_max_attempts": 3},
        connect_timeout=2,
        read_timeout=5,
        tcp_keepalive=True,
    )
    created = botocore.session.get_session().create_client(service, config=config)
    if running.on_client is not None:
        running.on_client(service, created)
    running.built[("client", service)] = created
    return created


def use(service: str, stand_in: Any) -> None:
    """Serve ``stand_in`` for ``service`` in every scope (benchmarks stub DynamoDB; tests inject faults)."""
    _overrides[service] = stand_in


def reset() -> None:
    """Forget clients (and what was built with them) in every scope, and the stand-ins."""
    _overrides.clear()
    scope.reset()
