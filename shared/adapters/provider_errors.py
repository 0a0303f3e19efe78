"""How the delivery providers' adapters (SES v2, SNS) read a failed call: its message, whether the
provider may have taken the message all the same ("in doubt": the request went and its answer was lost),
and whether it means "not now" (a throttle, a server error, the network) rather than "never" or a bug of
ours."""

from __future__ import annotations

from collections.abc import Collection

from shared.adapters.dynamodb import error_code
from shared.delivery.ports import ProviderInDoubt


def error_message(exc: BaseException) -> str:
    """The service's own message of a ``ClientError`` (never the operation's name); empty otherwise."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Message") or "")
    return ""


def not_now(exc: BaseException, codes: Collection[str]) -> bool:
    """A failure a later attempt may not have: one of ``codes``, any 5xx or 429, or the network."""
    from botocore.exceptions import ConnectionError, HTTPClientError

    code = error_code(exc)
    if code is None:
        return isinstance(exc, ConnectionError | HTTPClientError)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)  # type: ignore[attr-defined]
    return code in codes or status >= 500 or status == 429


def in_doubt(exc: BaseException) -> bool:
    """A failure after the request may have reached the provider: a read timeout, the connection closed
    or broken once the request was on its way (botocore's ``HTTPClientError``), or a 5xx answer. A
    failure to connect (``ConnectionError``: refused, connect timeout, DNS, TLS) or a 4xx (throttling,
    the quota) certainly happened before the provider took anything."""
    from botocore.exceptions import HTTPClientError

    code = error_code(exc)
    if code is None:
        return isinstance(exc, HTTPClientError)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)  # type: ignore[attr-defined]
    return status >= 500


def in_doubt_failure(exc: BaseException, what: str) -> ProviderInDoubt:
    """A ``ProviderInDoubt`` naming the provider, never the backend's error (that goes to the log)."""
    from shared.observability import logger

    logger.warning(
        "provider call in doubt", extra={"dependency": what, "error": error_code(exc) or type(exc).__name__}
    )
    return ProviderInDoubt(f"{what} may have taken the message; retried after the claim's lease")
