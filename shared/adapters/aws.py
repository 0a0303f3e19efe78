"""AWS clients, created on first use and never at import time (import cost is cold start)."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def client(service: str, region: str | None = None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "total_max_attempts": 3},
        connect_timeout=2,
        read_timeout=5,
        tcp_keepalive=True,
    )
    return boto3.session.Session().client(service, region_name=region, config=config)


def reset() -> None:
    """Forget cached clients (tests and the local stack change endpoints)."""
    client.cache_clear()
