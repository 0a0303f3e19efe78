"""issue 14: the console's sign-in in Chromium, against a tiny fake of Cognito's hosted login started here.

The console is served as the cloud serves it (``shared.console.answer``) with a configuration whose
``signIn`` points at the fake; its ``/console/admin/...`` calls are checked for the bearer token the fake
issued and then passed to the local stack's copy of the same route (loopback). The fake's authorize
endpoint sends the browser straight back with a code (no login form); its token endpoint checks the PKCE
verifier against the challenge, as Cognito does, and refreshes; its logout endpoint sends the browser back
to the registered address."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from infra.console_assets import STATIC
from shared.console import SIGN_IN_SCOPES, ConsoleConfig, SignIn, answer

pytestmark = pytest.mark.browser

CLIENT_ID = "console-test-client"
EMAIL = "ann@example.com"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _id_token(claims: dict[str, Any]) -> str:
    """A JWT-shaped ID token (the page only reads who signed in from it; the API checks access tokens)."""
    return ".".join(_b64url(json.dumps(part).encode()) for part in ({"alg": "none"}, claims)) + ".sig"


@dataclass
class FakeLogin:
    """What the hosted login was asked, and what it issued."""

    #: the console's address, registered as the client's callback and sign-out URL
    console: str = ""
    url: str = ""
    authorizations: list[dict[str, str]] = field(default_factory=list)
    #: code -> (PKCE challenge, redirect URI), each usable once
    codes: dict[str, tuple[str, str]] = field(default_factory=dict)
    grants: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    access_tokens: list[str] = field(default_factory=list)
    refresh_tokens: set[str] = field(default_factory=set)
    revoked: list[str] = field(default_factory=list)
    logouts: list[dict[str, str]] = field(default_factory=list)

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        self.authorizations.append(query)
        expected = {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": f"{self.console}/",
            "code_challenge_method": "S256",
            "scope": " ".join(SIGN_IN_SCOPES),
        }
        if any(query.get(k) != v for k, v in expected.items()) or not query.get("state"):
            return 400, {}, b"invalid_request"
        if not re.fullmatch(r"[A-Za-z0-9_-]{43}", query.get("code_challenge", "")):
            return 400, {}, b"invalid code_challenge"
        code = secrets.token_urlsafe(12)
        self.codes[code] = (query["code_challenge"], query["redirect_uri"])
        location = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
        return 302, {"location": location}, b""

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        grant = form.get("grant_type", "")
        self.grants.append(grant)
        if form.get("client_id") != CLIENT_ID:
            return self._refuse("invalid_client")
        if grant == "authorization_code":
            found = self.codes.pop(form.get("code", ""), None)
            if found is None or form.get("redirect_uri") != found[1]:
                return self._refuse("invalid_grant")
            verifier = form.get("code_verifier", "")
            if (
                not 43 <= len(verifier) <= 128
                or _b64url(hashlib.sha256(verifier.encode()).digest()) != found[0]
            ):
                return self._refuse("invalid_grant: the verifier does not match the challenge")
            refresh = secrets.token_urlsafe(24)
            self.refresh_tokens.add(refresh)
            return 200, self._tokens(refresh_token=refresh)
        if grant == "refresh_token" and form.get("refresh_token") in self.refresh_tokens:
            return 200, self._tokens()  # Cognito answers no new refresh token
        return self._refuse("invalid_grant")

    def _tokens(self, **more: str) -> dict[str, Any]:
        access = f"access-{len(self.access_tokens) + 1}-{secrets.token_urlsafe(8)}"
        self.access_tokens.append(access)
        return {
            "access_token": access,
            "id_token": _id_token({"email": EMAIL, "aud": CLIENT_ID}),
            "token_type": "Bearer",
            "expires_in": 900,
            **more,
        }

    def _refuse(self, error: str) -> tuple[int, dict[str, Any]]:
        self.refused.append(error)
        return 400, {"error": error}


def _serve(handle: Any) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            handle(self)

        do_POST = do_PUT = do_DELETE = do_OPTIONS = do_GET

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _send(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
    request.send_response(status)
    for name, value in headers.items():
        request.send_header(name, value)
    request.send_header("content-length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)


def _body(request: BaseHTTPRequestHandler) -> bytes:
    length = int(request.headers.get("content-length") or 0)
    return request.rfile.read(length) if length else b""


@dataclass
class SignedInConsole:
    url: str
    login: FakeLogin
    #: (method, path, the Authorization header) of every admin call the page made
    calls: list[tuple[str, str, str | None]]


@pytest.fixture
def signed_in_console(console_url: str) -> Iterator[SignedInConsole]:
    login = FakeLogin()
    calls: list[tuple[str, str, str | None]] = []

    def hosted_login(request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        cors = {"access-control-allow-origin": login.console}
        if request.command == "GET" and url.path == "/oauth2/authorize":
            status, headers, text = login.authorize(query)
            _send(request, status, headers, text)
        elif request.command == "POST" and url.path == "/oauth2/token":
            form = {k: v[0] for k, v in parse_qs(_body(request).decode()).items()}
            status, payload = login.token(form)
            _send(request, status, {"content-type": "application/json", **cors}, json.dumps(payload).encode())
        elif request.command == "POST" and url.path == "/oauth2/revoke":
            form = {k: v[0] for k, v in parse_qs(_body(request).decode()).items()}
            login.revoked.append(form.get("token", ""))
            login.refresh_tokens.discard(form.get("token", ""))
            _send(request, 200, cors, b"")
        elif request.command == "GET" and url.path == "/logout":
            login.logouts.append(query)
            if query.get("client_id") == CLIENT_ID and query.get("logout_uri") == f"{login.console}/":
                _send(request, 302, {"location": query["logout_uri"]}, b"")
            else:
                _send(request, 400, {}, b"invalid logout request")
        else:
            _send(request, 404, {}, b"")

    login_server, login.url = _serve(hosted_login)
    config = ConsoleConfig(api_base="/console", sign_in=SignIn(url=login.url, client_id=CLIENT_ID))

    def console(request: BaseHTTPRequestHandler) -> None:
        path = urlsplit(request.path).path
        if path.startswith("/console/admin/"):
            token = request.headers.get("authorization")
            calls.append((request.command, path, token))
            if token is None or token.removeprefix("Bearer ") not in login.access_tokens[-1:]:
                _send(request, 401, {"content-type": "application/json"}, b'{"message":"Unauthorized"}')
                return
            _pass_to_local_stack(request, console_url)
            return
        response = answer(path, STATIC, config)
        raw = response["body"]
        data = base64.b64decode(raw) if response["isBase64Encoded"] else raw.encode()
        _send(request, response["statusCode"], response["headers"], data)

    console_server, url = _serve(console)
    login.console = url
    try:
        yield SignedInConsole(url, login, calls)
    finally:
        for server in (console_server, login_server):
            server.shutdown()
            server.server_close()


def _pass_to_local_stack(request: BaseHTTPRequestHandler, stack: str) -> None:
    """The local stack's copy of the route (loopback: a tool's request, with the page's body and headers)."""
    headers = {
        k: request.headers[k] for k in ("content-type", "if-match", "accept") if request.headers.get(k)
    }
    forwarded = urllib.request.Request(
        stack + request.path, data=_body(request) or None, headers=headers, method=request.command
    )
    try:
        with urllib.request.urlopen(forwarded, timeout=30) as response:
            status, payload, found = response.status, response.read(), response.headers
    except urllib.error.HTTPError as refused:
        status, payload, found = refused.code, refused.read(), refused.headers
    kept = {k: found[k] for k in ("content-type", "etag") if found.get(k)}
    _send(request, status, kept, payload)


def _tokens(page: Any) -> dict[str, Any]:
    return json.loads(page.evaluate("sessionStorage.getItem('lifecycle.console.tokens')") or "null")


def _call_api(page: Any, path: str) -> Any:
    """The console's own api() (the same module instance the page runs)."""
    return page.evaluate(
        f"import('/console/api.js').then(m => m.api('GET', {json.dumps(path)})).then(r => r.data)"
    )


def test_the_console_signs_in_with_a_code_and_pkce_and_calls_the_api_with_the_access_token(
    page: Any, signed_in_console: SignedInConsole
) -> None:
    console, login = signed_in_console, signed_in_console.login
    page.goto(f"{console.url}/#/reports")
    page.get_by_role("link", name="Sign out").wait_for()
    # to the hosted login and back: the state and challenge sent, the code exchanged with the verifier
    (asked,) = login.authorizations
    assert asked["code_challenge_method"] == "S256" and len(asked["state"]) >= 16
    assert login.grants == ["authorization_code"] and not login.refused
    # the code and state left the address; the screen the user opened is back
    assert page.url == f"{console.url}/#/reports"
    assert page.evaluate("sessionStorage.getItem('lifecycle.console.signIn')") is None
    assert page.locator("#account").inner_text().startswith(EMAIL)
    first = login.access_tokens[0]
    assert _tokens(page)["access"] == first

    rules = _call_api(page, "/admin/rules")
    assert isinstance(rules["rules"], list), "the local stack's answer, through the console's route"
    assert ("GET", "/console/admin/rules", f"Bearer {first}") in console.calls
    assert all(token == f"Bearer {first}" for _, _, token in console.calls)

    # an expired access token is refreshed first (one refresh), and the new one is sent
    page.evaluate(
        "(() => { const t = JSON.parse(sessionStorage.getItem('lifecycle.console.tokens')); t.expiresAt = 0;"
        " sessionStorage.setItem('lifecycle.console.tokens', JSON.stringify(t)) })()"
    )
    _call_api(page, "/admin/funnel")
    assert login.grants == ["authorization_code", "refresh_token"]
    second = login.access_tokens[1]
    assert console.calls[-1] == ("GET", "/console/admin/funnel", f"Bearer {second}")
    refresh = _tokens(page)["refresh"]
    assert refresh in login.refresh_tokens, "the refresh token is kept (a refresh answers none)"

    # sign out: the refresh token revoked, the hosted login's session ended, back to the console, which
    # signs in again (the fake asks nobody)
    page.get_by_role("link", name="Sign out").click()
    page.wait_for_function("() => document.querySelector('#account a') !== null && location.search === ''")
    page.get_by_role("link", name="Sign out").wait_for()
    assert login.revoked == [refresh]
    assert login.logouts == [{"client_id": CLIENT_ID, "logout_uri": f"{console.url}/"}]
    assert len(login.authorizations) == 2 and login.grants[-1] == "authorization_code"
    assert _tokens(page)["access"] == login.access_tokens[-1] != second


def test_a_sign_in_the_page_did_not_start_is_not_used(page: Any, signed_in_console: SignedInConsole) -> None:
    console, login = signed_in_console, signed_in_console.login
    page.goto(f"{console.url}/?code=stolen&state=forged")
    page.get_by_role("alert").wait_for()
    assert "not started from this page" in page.get_by_role("alert").inner_text()
    assert login.grants == [] and _tokens(page) is None, "no code exchanged, no token kept"
    assert page.url == f"{console.url}/", "the code left the address"
    assert console.calls == []
    # signing in again from there works
    page.get_by_role("button", name="Sign in again").click()
    page.get_by_role("link", name="Sign out").wait_for()
    assert login.grants == ["authorization_code"] and not login.refused


def test_an_error_in_an_address_the_page_did_not_start_shows_none_of_its_text(
    page: Any, signed_in_console: SignedInConsole
) -> None:
    console = signed_in_console
    crafted = urlencode(
        {"error": "access_denied", "error_description": "Call 555-0100 to restore access", "state": "forged"}
    )
    page.goto(f"{console.url}/?{crafted}")
    page.get_by_role("alert").wait_for()
    assert page.get_by_role("alert").inner_text() == "The sign-in did not succeed."
    assert "555-0100" not in page.content(), "a crafted error_description is not shown"
    assert page.url == f"{console.url}/", "the error left the address"
    assert console.calls == []
