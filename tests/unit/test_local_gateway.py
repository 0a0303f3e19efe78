"""The local gateway mirrors API Gateway: routes and auth from the wiring, CORS, loopback-only admin."""

from __future__ import annotations

import io
import json
from email.message import Message
from types import SimpleNamespace

from infra.local.gateway import Gateway, LocalRoute, api_gateway_event, routes_for
from infra.local.stack import parse_duration
from infra.wiring import FUNCTIONS, HttpRoute, function


class FakeRequest:
    def __init__(
        self, method: str, path: str, client: str, body: bytes = b"", headers: dict[str, str] | None = None
    ):
        self.command, self.path, self.client_address = method, path, (client, 5555)
        self.request_version = "HTTP/1.1"
        self.headers = Message()
        for k, v in {"content-length": str(len(body)), **(headers or {})}.items():
            self.headers[k] = v
        self.rfile, self.wfile = io.BytesIO(body), io.BytesIO()
        self.status: int | None = None
        self.sent: dict[str, str] = {}

    def send_response(self, status: int) -> None:
        self.status = status

    def send_header(self, name: str, value: str) -> None:
        self.sent[name.lower()] = value

    def end_headers(self) -> None:
        pass


def gateway(invoked: list) -> Gateway:
    def fake_handler(event, context):
        invoked.append(event)
        return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": "{}"}

    routes = [
        LocalRoute(
            HttpRoute("GET", "/admin/contacts/{contactId}", auth="iam"),
            function("admin"),
            __import__("re").compile(r"^/admin/contacts/(?P<contactId>[^/]+)$"),
            fake_handler,
        ),
        LocalRoute(
            HttpRoute("POST", "/admin/contacts/{contactId}/accept", auth="iam"),
            function("admin"),
            __import__("re").compile(r"^/admin/contacts/(?P<contactId>[^/]+)/accept$"),
            fake_handler,
        ),
        LocalRoute(
            HttpRoute("POST", "/v1/track"),
            function("tracking"),
            __import__("re").compile(r"^/v1/track$"),
            fake_handler,
        ),
    ]
    return Gateway(
        routes,
        cors_origins=["https://shop.example"],
        extra={("POST", "/_local/clock"): lambda body: (invoked.append(body), (200, {"now": "x"}))[1]},
    )


def test_admin_routes_answer_loopback_callers_only() -> None:
    invoked: list = []
    gw = gateway(invoked)
    remote = FakeRequest("GET", "/admin/contacts/user_id:ann", "192.0.2.10")
    gw._dispatch(remote)
    assert remote.status == 403 and invoked == []
    local = FakeRequest("GET", "/admin/contacts/user_id%3Aann", "127.0.0.1")
    gw._dispatch(local)
    assert local.status == 200 and invoked[0]["pathParameters"] == {"contactId": "user_id:ann"}


def test_tracking_routes_answer_anyone_and_unknown_routes_are_404() -> None:
    invoked: list = []
    gw = gateway(invoked)
    remote = FakeRequest(
        "POST",
        "/v1/track",
        "192.0.2.10",
        b"{}",
        {"content-type": "application/json", "origin": "https://shop.example"},
    )
    gw._dispatch(remote)
    assert remote.status == 200 and remote.sent["access-control-allow-origin"] == "https://shop.example"
    assert remote.sent["access-control-expose-headers"] == "retry-after", "pages may read Retry-After"
    missing = FakeRequest("POST", "/v1/nope", "127.0.0.1")
    gw._dispatch(missing)
    assert missing.status == 404 and json.loads(missing.wfile.getvalue()) == {"message": "Not Found"}


def test_preflight_for_allowed_and_other_origins() -> None:
    gw = gateway([])
    allowed = FakeRequest(
        "OPTIONS",
        "/v1/track",
        "127.0.0.1",
        headers={"origin": "https://shop.example", "access-control-request-method": "POST"},
    )
    gw._preflight(allowed)
    assert allowed.status == 204 and "authorization" in allowed.sent["access-control-allow-headers"].split(
        ","
    )
    other = FakeRequest(
        "OPTIONS",
        "/v1/track",
        "127.0.0.1",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    gw._preflight(other)
    assert "access-control-allow-origin" not in other.sent


def test_preflight_allows_every_header_the_tracking_clients_send() -> None:
    """analytics-next adds X-Retry-Count to every retry: a preflight refusing it lost the retried events."""
    gw = gateway([])
    preflight = FakeRequest(
        "OPTIONS",
        "/v1/t",
        "127.0.0.1",
        headers={
            "origin": "https://shop.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type,x-retry-count",
        },
    )
    gw._preflight(preflight)
    allowed = {h.strip().lower() for h in preflight.sent["access-control-allow-headers"].split(",")}
    assert preflight.status == 204 and preflight.sent["access-control-allow-origin"] == "https://shop.example"
    assert {"authorization", "content-type", "x-retry-count", "content-encoding"} <= allowed
    assert preflight.sent["access-control-allow-methods"] == "POST"


def test_admin_and_local_preflights_allow_no_origin() -> None:
    gw = gateway([])
    for path, method in (("/admin/contacts/ann", "GET"), ("/admin/contacts/ann/accept", "POST")):
        for verb in (method, "PUT", "DELETE"):
            preflight = FakeRequest(
                "OPTIONS",
                path,
                "127.0.0.1",
                headers={"origin": "https://shop.example", "access-control-request-method": verb},
            )
            gw._preflight(preflight)
            assert preflight.status == 403
            assert not any(h.startswith("access-control-") for h in preflight.sent)
    local = FakeRequest(
        "OPTIONS",
        "/_local/clock",
        "127.0.0.1",
        headers={"origin": "https://shop.example", "access-control-request-method": "POST"},
    )
    gw._preflight(local)
    assert local.status == 403 and not any(h.startswith("access-control-") for h in local.sent)


def test_admin_and_local_requests_from_web_pages_are_refused() -> None:
    """Any page a developer visits could otherwise read contacts or change rules through their browser."""
    invoked: list = []
    gw = gateway(invoked)
    json_type = {"content-type": "application/json"}
    attempts = [
        # a cross-origin read (the allowed tracking origin is no exception) and a no-cors one
        FakeRequest("GET", "/admin/contacts/ann", "127.0.0.1", headers={"origin": "https://shop.example"}),
        FakeRequest("GET", "/admin/contacts/ann", "127.0.0.1", headers={"sec-fetch-site": "cross-site"}),
        FakeRequest("GET", "/admin/contacts/ann", "127.0.0.1", headers={"sec-fetch-site": "same-site"}),
        # a "simple" POST needs no preflight: text/plain, form, or JSON from a page of another origin
        FakeRequest(
            "POST",
            "/admin/contacts/ann/accept",
            "127.0.0.1",
            b'{"salesperson":"s"}',
            {"content-type": "text/plain", "origin": "https://evil.example"},
        ),
        FakeRequest(
            "POST",
            "/_local/clock",
            "127.0.0.1",
            b'{"advance":"P30D"}',
            {"content-type": "text/plain", "origin": "null"},
        ),
        FakeRequest(
            "POST",
            "/_local/clock",
            "127.0.0.1",
            b'{"advance":"P30D"}',
            {**json_type, "origin": "http://localhost:3000"},
        ),
        # DNS rebinding: the page's own name resolved to 127.0.0.1, so the browser calls it same-origin
        FakeRequest(
            "GET",
            "/admin/contacts/ann",
            "127.0.0.1",
            headers={"host": "attacker.example:3000", "sec-fetch-site": "same-origin"},
        ),
    ]
    for attempt in attempts:
        gw._dispatch(attempt)
        assert attempt.status == 403, (attempt.command, attempt.path, dict(attempt.headers))
        assert not any(h.startswith("access-control-") for h in attempt.sent)
        assert json.loads(attempt.wfile.getvalue())["message"]
    assert invoked == []


def test_admin_and_local_state_changes_must_be_json() -> None:
    """A page can send text/plain or a form without a preflight and without reading the answer: refused."""
    invoked: list = []
    gw = gateway(invoked)
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None):
        for path in ("/admin/contacts/ann/accept", "/_local/clock"):
            headers = {"host": "127.0.0.1:3000"} | ({"content-type": content_type} if content_type else {})
            request = FakeRequest("POST", path, "127.0.0.1", b'{"advance":"P1D"}', headers)
            gw._dispatch(request)
            assert request.status == 415, (path, content_type)
            assert "application/json" in json.loads(request.wfile.getvalue())["message"]
    assert invoked == []


def test_admin_and_local_answer_curl_and_the_developers_own_tab() -> None:
    invoked: list = []
    gw = gateway(invoked)
    allowed = [
        FakeRequest("GET", "/admin/contacts/ann", "127.0.0.1", headers={"host": "localhost:3000"}),
        FakeRequest(
            "GET", "/admin/contacts/ann", "::1", headers={"host": "[::1]:3000", "sec-fetch-site": "none"}
        ),
        FakeRequest(
            "POST",
            "/admin/contacts/ann/accept",
            "127.0.0.1",
            b"{}",
            {"host": "127.0.0.1:3000", "content-type": "application/json; charset=utf-8"},
        ),
        FakeRequest("POST", "/_local/clock", "127.0.0.1", b"{}", {"content-type": "application/json"}),
    ]
    for request in allowed:
        gw._dispatch(request)
        assert request.status == 200, (request.path, dict(request.headers))
        assert "access-control-allow-origin" not in request.sent
    assert len(invoked) == 4


def test_bodies_are_passed_as_api_gateway_does() -> None:
    route = HttpRoute("POST", "/v1/batch")
    url = SimpleNamespace(path="/v1/batch", query="")
    plain = api_gateway_event(
        route,
        FakeRequest("POST", "/v1/batch", "127.0.0.1", b'{"a":1}', {"content-type": "text/plain"}),
        url,
        {},
        b'{"a":1}',
    )
    assert plain["body"] == '{"a":1}' and plain["isBase64Encoded"] is False
    zipped = api_gateway_event(
        route,
        FakeRequest(
            "POST",
            "/v1/batch",
            "127.0.0.1",
            b"\x1f\x8b",
            {"content-type": "application/json", "content-encoding": "gzip"},
        ),
        url,
        {},
        b"\x1f\x8b",
    )
    assert zipped["isBase64Encoded"] is True and zipped["routeKey"] == "POST /v1/batch"


def test_every_wired_route_is_served_locally() -> None:
    local = {(r.route.method, r.route.path) for r in routes_for(FUNCTIONS)}
    assert local == {(r.method, r.path) for f in FUNCTIONS for r in f.routes}


def test_durations() -> None:
    assert parse_duration("P30D").days == 30
    assert parse_duration("PT12H").total_seconds() == 12 * 3600
    assert parse_duration("P1W2DT3H").total_seconds() == (9 * 24 + 3) * 3600
    for bad in ("30 days", "P", "PT", "-P1D"):
        try:
            parse_duration(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_a_client_dropping_its_connection_prints_no_traceback(capsys) -> None:
    from infra.local.gateway import QuietServer

    server = QuietServer(("127.0.0.1", 0), object)  # type: ignore[arg-type]
    try:
        for error in (ConnectionResetError("peer reset"), ValueError("a real bug")):
            try:
                raise error
            except Exception:
                server.handle_error(None, ("127.0.0.1", 1))
    finally:
        server.server_close()
    printed = capsys.readouterr().err
    assert "a real bug" in printed and "peer reset" not in printed


def test_the_consoles_own_page_may_change_things_and_another_port_may_not() -> None:
    """The console is served by the gateway: its POST, PUT and DELETE carry its own origin (same-origin);
    a page on another port or name of this machine is another origin."""
    invoked: list = []
    gw = gateway(invoked)
    own = {"host": "127.0.0.1:3000", "origin": "http://127.0.0.1:3000", "sec-fetch-site": "same-origin"}
    request = FakeRequest(
        "POST", "/admin/contacts/ann/accept", "127.0.0.1", b"{}", {**own, "content-type": "application/json"}
    )
    gw._dispatch(request)
    assert request.status == 200 and len(invoked) == 1
    for origin in ("http://127.0.0.1:3001", "http://localhost:3000", "https://127.0.0.1:3000"):
        other = FakeRequest(
            "POST",
            "/admin/contacts/ann/accept",
            "127.0.0.1",
            b"{}",
            {**own, "origin": origin, "content-type": "application/json"},
        )
        gw._dispatch(other)
        assert other.status == 403, origin
    assert len(invoked) == 1
