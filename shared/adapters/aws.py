"""AWS clients, created on first use and never at import time (import cost is cold start).

Clients come straight from botocore: boto3 would add its resource layer and
s3transfer to every cold start for nothing the functions use.
"""

from __future__ import annotations

from functools import cache
from typing import Any

_overrides: dict[str, Any] = {}


def client(service: str) -> Any:
    return _overrides.get(service) or _create(service)


@cache
def _create(service: str) -> Any:
    import botocore.session
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "total_max_attempts": 3},
        connect_timeout=2,
        read_timeout=5,
        tcp_keepalive=True,
    )
    return botocore.session.get_session().create_client(service, config=config)


def use(service: str, stand_in: Any) -> None:
    """Serve ``stand_in`` for ``service`` (benchmarks stub DynamoDB at zero cost)."""
    _overrides[service] = stand_in


def reset() -> None:
    """Forget cached clients and stand-ins (tests and the local stack change endpoints)."""
    _overrides.clear()
    _create.cache_clear()
