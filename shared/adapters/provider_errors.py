"""How the delivery providers' adapters (SES v2, SNS) read a failed call: its message, and whether it
means "not now" (a throttle, a server error, the network) rather than "never" or a bug of ours."""

from __future__ import annotations

from collections.abc import Collection

from shared.adapters.dynamodb import error_code


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
