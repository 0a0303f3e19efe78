"""A local HTTP gateway that behaves like the deployed HTTP API.

Routes, authorisation mode and CORS come from ``infra.wiring``; each request
becomes an API Gateway payload-2.0 event for the same handler the cloud runs.

IAM-authorised routes (admin), their copies for the console's sign-in (JWT in the cloud), and the local-only ``/_local`` endpoints stand in for routes a browser
cannot call in the cloud (they need SigV4), so locally they answer only loopback tools such as curl:
no CORS, nothing from a web page (``Origin``, a cross-site ``Sec-Fetch-Site``, a Host that is not
loopback, as after DNS rebinding), and bodies only as ``application/json``, which a page cannot send
to another origin without a preflight (DELETE is never sent without one).
"""

from __future__ import annotations

import base64
import importlib
import ipaddress
import json
import re
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from infra.wiring import CORS, FunctionSpec, HttpRoute

TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")
MAX_BODY = 10 * 1024 * 1024  # API Gateway's own payload limit
#: what browsers send in Sec-Fetch-Site for a request the developer made themselves (address bar, same page)
OWN_FETCH_SITES = ("same-origin", "none")
#: methods with a body; a page can POST text/plain or a form to any origin without a preflight
BODY_METHODS = ("POST", "PUT")


class QuietServer(ThreadingHTTPServer):
    """The gateway's server: a thread per connection, and no traceback when a client drops a kept-open
    connection (browsers do it routinely; API Gateway does not report it either)."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


@dataclass(frozen=True)
class LocalRoute:
    route: HttpRoute
    function: FunctionSpec
    pattern: re.Pattern[str]
    invoke: Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True)
class LambdaContext:
    function_name: str
    aws_request_id: str
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:local:000000000000:function:local"
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    #: the function's timeout, from the wiring: the time left counts down from it, as in Lambda
    timeout_seconds: int = 10
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))


def load_handler(dotted: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def routes_for(functions: Sequence[FunctionSpec]) -> list[LocalRoute]:
    routes = []
    for spec in functions:
        if not spec.routes:
            continue  # invoked otherwise (triggers, workflows): loaded there, when first needed
        handler = load_handler(spec.handler)
        for route in spec.routes:
            pattern = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(route.path))
            routes.append(LocalRoute(route, spec, re.compile(f"^{pattern}$"), handler))
    return routes


class Gateway:
    def __init__(
        self, routes: list[LocalRoute], *, cors_origins: Sequence[str], extra: Mapping[str, Callable] = {}
    ):
        self.routes = routes
        self.cors_origins = tuple(cors_origins)
        #: local-only endpoints such as POST /_local/clock: (method, path) -> fn(body) -> (status, json)
        self.extra = dict(extra)

    def match(self, method: str, path: str) -> tuple[LocalRoute, dict[str, str]] | None:
        for local in self.routes:
            if local.route.method != method:
                continue
            found = local.pattern.match(path)
            if found:
                return local, {k: unquote(v) for k, v in found.groupdict().items()}
        return None

    def private(self, path: str) -> bool:
        """Admin and local-only paths: whatever the method, so their preflights are refused too."""
        return (
            path.startswith("/_local/")
            or any(path == extra_path for _, extra_path in self.extra)
            # the admin routes for SigV4 callers and (issue 14) their copies for the console's sign-in
            or any(local.route.auth != "none" and local.pattern.match(path) for local in self.routes)
        )

    def allowed_origin(self, origin: str | None) -> str | None:
        if not origin:
            return None
        if "*" in self.cors_origins:
            return "*"
        return origin if origin in self.cors_origins else None

    def serve(self, host: str, port: int) -> ThreadingHTTPServer:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "LifecycleLocal/1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler API
                pass

            def do_OPTIONS(self) -> None:
                gateway._preflight(self)

            def do_GET(self) -> None:
                gateway._dispatch(self)

            def do_POST(self) -> None:
                gateway._dispatch(self)

            def do_PUT(self) -> None:
                gateway._dispatch(self)

            def do_DELETE(self) -> None:
                gateway._dispatch(self)

        return QuietServer((host, port), Handler)

    # --- request handling -----------------------------------------------------------

    def _preflight(self, request: BaseHTTPRequestHandler) -> None:
        if self.private(urlsplit(request.path).path):
            _refuse(request, 403, "admin and /_local routes answer no cross-origin requests")
            return
        origin = self.allowed_origin(request.headers.get("origin"))
        headers = {"content-length": "0"}
        if origin and request.headers.get("access-control-request-method"):
            headers.update(
                {
                    "access-control-allow-origin": origin,
                    "access-control-allow-methods": ",".join(CORS.allow_methods),
                    "access-control-allow-headers": ",".join(CORS.allow_headers),
                    "access-control-max-age": str(CORS.max_age_seconds),
                }
            )
        _send(request, 204, headers, b"")

    def _dispatch(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        length = int(request.headers.get("content-length") or 0)
        if length > MAX_BODY:
            _send(
                request, 413, {"content-type": "application/json"}, b'{"message":"Request Entity Too Large"}'
            )
            return
        body = request.rfile.read(length) if length else b""
        private = self.private(url.path)
        if private:
            refused = _refused_as_private(request)
            if refused is not None:
                _refuse(request, *refused)
                return
        extra = self.extra.get((request.command, url.path))
        if extra is not None:
            status, payload = extra(body)
            _send(request, status, {"content-type": "application/json"}, json.dumps(payload).encode())
            return
        found = self.match(request.command, url.path)
        if found is None:
            _send(request, 404, {"content-type": "application/json"}, b'{"message":"Not Found"}')
            return
        local, params = found
        event = api_gateway_event(local.route, request, url, params, body)
        context = LambdaContext(
            function_name=f"lifecycle-{local.function.name}",
            aws_request_id=event["requestContext"]["requestId"],
            timeout_seconds=local.function.timeout_seconds,
        )
        try:
            response = local.invoke(event, context)
        except Exception as exc:  # a crashed function: API Gateway answers 500
            print(f"[local] {local.function.name} failed: {exc!r}")
            _send(request, 500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}')
            return
        headers = {k.lower(): str(v) for k, v in (response.get("headers") or {}).items()}
        origin = None if private else self.allowed_origin(request.headers.get("origin"))
        if origin:
            headers["access-control-allow-origin"] = origin
            headers["access-control-expose-headers"] = ",".join(CORS.expose_headers)
        raw = response.get("body") or ""
        data = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode("utf-8")
        _send(request, int(response.get("statusCode", 200)), headers, data)


def api_gateway_event(
    route: HttpRoute, request: BaseHTTPRequestHandler, url: Any, params: dict[str, str], body: bytes
) -> dict[str, Any]:
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    encoded = headers.get("content-encoding", "identity").lower() not in ("", "identity")
    text = None
    if not encoded and (not media or media.startswith(TEXT_TYPES)):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.key,
        "rawPath": url.path,
        "rawQueryString": url.query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": headers.get("host", "localhost"),
            "http": {
                "method": request.command,
                "path": url.path,
                "protocol": request.request_version,
                "sourceIp": request.client_address[0],
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": route.key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": text is None and bool(body),
    }
    if url.query:
        event["queryStringParameters"] = dict(parse_qsl(url.query, keep_blank_values=True))
    if params:
        event["pathParameters"] = params
    if body:
        event["body"] = text if text is not None else base64.b64encode(body).decode()
    return event


def _refused_as_private(request: BaseHTTPRequestHandler) -> tuple[int, str] | None:
    """Why an admin or /_local request is refused (status, message), or None: a loopback tool's request."""
    headers = request.headers
    if not _is_loopback(request.client_address[0]):
        return 403, "Forbidden"
    origin = headers.get("origin")
    if origin is not None and not _same_origin(origin, headers.get("host")):
        return 403, "admin and /_local routes answer no cross-origin requests"
    if (headers.get("sec-fetch-site") or "none").strip().lower() not in OWN_FETCH_SITES:
        return 403, "admin and /_local routes answer no requests made by other sites"
    if not _is_loopback_host(headers.get("host")):
        return 403, "admin and /_local routes answer only requests addressed to localhost or loopback"
    media = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if request.command in BODY_METHODS and media != "application/json":
        return 415, "admin and /_local changes must be sent with content-type: application/json"
    return None


def _same_origin(origin: str, host: str | None) -> bool:
    """The page making the request was served by this gateway (the console): a browser sends its own
    origin with a same-origin POST, PUT or DELETE."""
    return bool(host) and origin.strip().lower() == f"http://{host.strip().lower()}"


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _is_loopback_host(host: str | None) -> bool:
    """The Host header names this machine (no header: an HTTP/1.0 tool, never a browser)."""
    if not host:
        return True
    name = urlsplit(f"//{host.strip()}").hostname or ""
    return name == "localhost" or name.endswith(".localhost") or _is_loopback(name)


def _refuse(request: BaseHTTPRequestHandler, status: int, message: str) -> None:
    _send(request, status, {"content-type": "application/json"}, json.dumps({"message": message}).encode())


def _send(request: BaseHTTPRequestHandler, status: int, headers: Mapping[str, str], body: bytes) -> None:
    request.send_response(status)
    for name, value in headers.items():
        if name != "content-length":
            request.send_header(name, value)
    request.send_header("content-length", str(len(body)))
    request.end_headers()
    if request.command != "HEAD":
        request.wfile.write(body)
