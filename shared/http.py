"""The HTTP boundary: API Gateway (HTTP API, payload 2.0) events in, responses out.

Domain exceptions become HTTP statuses here and nowhere else. Every error body
is JSON with ``code`` and ``message``, and ``field`` when a 400 is about one field.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from shared import errors
from shared.observability import logger

STATUS: Mapping[type[errors.LifecycleError], int] = {
    errors.InvalidRequest: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.RateLimited: 429,
    errors.DependencyUnavailable: 503,
}
JSON = {"content-type": "application/json"}


class HttpRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    method: str
    path: str
    #: "METHOD /path/{param}" as declared in the wiring
    route: str
    headers: dict[str, str] = {}
    query: dict[str, str] = {}
    path_parameters: dict[str, str] = {}
    body: str | None = None
    is_base64: bool = False
    #: the client's address (``requestContext.http.sourceIp``)
    source_ip: str | None = None

    @classmethod
    def from_api_gateway(cls, event: Mapping[str, Any]) -> HttpRequest:
        context = event.get("requestContext") or {}
        http = context.get("http") or {}
        return cls(
            method=http.get("method", "GET"),
            path=event.get("rawPath") or http.get("path") or "/",
            route=event.get("routeKey") or context.get("routeKey") or "",
            headers={k.lower(): v for k, v in (event.get("headers") or {}).items()},
            query=event.get("queryStringParameters") or {},
            path_parameters=event.get("pathParameters") or {},
            body=event.get("body"),
            is_base64=bool(event.get("isBase64Encoded")),
            source_ip=http.get("sourceIp"),
        )


def respond(
    event: Mapping[str, Any], operation: Callable[[HttpRequest], BaseModel | Mapping[str, Any]]
) -> dict[str, Any]:
    """Run one operation for an API Gateway event and render its result or error."""
    try:
        request = HttpRequest.from_api_gateway(event)
    except ValidationError:
        return error_response(errors.InvalidRequest("malformed API Gateway event", code="invalid_request"))
    try:
        result = operation(request)
    except errors.LifecycleError as exc:
        return error_response(exc)
    except Exception:
        logger.exception("unhandled error", extra={"route": request.route})
        return json_response(500, {"code": "internal_error", "message": "internal error; it has been logged"})
    return json_response(200, result)


def json_body(request: HttpRequest) -> Any:
    """An admin request's JSON body; not JSON is a 400."""
    try:
        raw = (
            base64.b64decode(request.body or "").decode("utf-8", "replace")
            if request.is_base64
            else request.body or ""
        )
        return json.loads(raw)
    except ValueError:
        raise errors.InvalidRequest("body is not valid JSON", code="invalid_json") from None


def if_match_version(request: HttpRequest) -> int | None:
    """``If-Match: <version>`` makes a change conditional on the version the caller last read."""
    header = request.headers.get("if-match")
    if header is None:
        return None
    text = header.strip().strip('"')
    if not text.isdigit():
        raise errors.InvalidRequest("If-Match must be a version number", code="invalid_request")
    return int(text)


def error_response(exc: errors.LifecycleError) -> dict[str, Any]:
    status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 500)
    headers = dict(JSON)
    if isinstance(exc, errors.DependencyUnavailable | errors.RateLimited):
        headers["retry-after"] = str(exc.retry_after_seconds)
    # a flood's refusals are counted (RequestsRateLimited), not logged one by one
    log = logger.warning if status >= 500 else logger.debug if status == 429 else logger.info
    log("request rejected", extra={"status": status, "code": exc.code})
    body = {"code": exc.code, "message": exc.message}
    if isinstance(exc, errors.InvalidRequest) and exc.field:
        body["field"] = exc.field  # the console shows the message next to this field
    return json_response(status, body, headers)


def json_response(
    status: int, body: BaseModel | Mapping[str, Any], headers: Mapping[str, str] = JSON
) -> dict[str, Any]:
    text = body.model_dump_json() if isinstance(body, BaseModel) else json.dumps(body, separators=(",", ":"))
    return {"statusCode": status, "headers": dict(headers), "body": text, "isBase64Encoded": False}


# --- issue 11, consent: the HTML pages of the public links (the preferences function) ---------------------


def html_response(status: int, body: str, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """An HTML page; by default with the links' headers: not cached, no referrer, a restrictive
    Content-Security-Policy (``shared.delivery.pages.PAGE_HEADERS``)."""
    from shared.delivery.pages import PAGE_HEADERS

    return {
        "statusCode": status,
        "headers": dict(PAGE_HEADERS if headers is None else headers),
        "body": body,
        "isBase64Encoded": False,
    }
