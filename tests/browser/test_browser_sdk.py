"""The real browser SDK in the real browser: a shop's page, served from another origin than the tracking
API, loads ``@segment/analytics-next`` (1.84.3, the browser build the package ships, ``dist/umd``, installed
by ``npm ci`` from tests/loopback/browser's lock file) in Debian's Chromium and sends page, identify and
track calls to the local stack (``make run``).

Chromium's own network log (the DevTools protocol's ``Network`` domain, which reports CORS preflights as
requests of their own) is the witness: each call's request was preflighted, because analytics-next sends
``Authorization`` (and ``X-Retry-Count`` on a retry), the preflight passed, and the call was answered 200.
The admin API then reads back exactly those calls, each stored once. Nothing but the shop and the stack
is reached: the settings are given inline (no CDN), and the SDK's lazily loaded parts would come from the
shop (``window.analytics._cdn``).

This replaces hand-made browser-shaped requests as the proof that browsers work.
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

import pytest

from tests.loopback.conftest import eventually, free_port, running_stack, stored_events
from tests.loopback.test_browser_sdk import installed_packages

pytestmark = pytest.mark.browser

#: The shop's browser write key, as the stack's banner prints it.
SITE_KEY = "browser-sdk-site-key"
#: Headers a browser may send cross-origin without asking first (the Fetch standard's CORS-safelisted
#: request headers, with ``content-type`` safelisted only for these media types).
SAFELISTED = {"accept", "accept-language", "content-language"}
SAFELISTED_MEDIA = {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"}

#: The shop's page: the SDK's browser build from the shop's own origin, its lazily loaded parts (were any
#: needed) from there too, and ``shop.visit`` doing what a page's snippet and code do.
SHOP_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Kites - Shop</title>
  <link rel="icon" href="data:,">
  <script>window.analytics = { _cdn: location.origin }</script>
  <script src="/analytics-next/bundles/index.js"></script>
</head>
<body>
<h1>Kites</h1>
<script>
window.shop = {
  // Loads analytics.js with its settings given (no CDN, no metrics) and makes each call in turn, awaited;
  // returns the visitor's ids and each call's messageId.
  async visit({ writeKey, apiHost, strategy, calls }) {
    const segmentio = { apiKey: writeKey, apiHost, protocol: 'http' }
    if (strategy === 'batching') {
      segmentio.deliveryStrategy = { strategy: 'batching', config: { size: calls.length, timeout: 200 } }
    }
    const errors = []
    const [analytics] = await AnalyticsNext.AnalyticsBrowser.load(
      { writeKey, cdnSettings: { integrations: { 'Segment.io': segmentio }, metrics: { sampleRate: 0 } } },
      { useQueryString: false },
    )
    analytics.on('error', (error) => errors.push(String(error.reason || error.code || error)))
    const sent = []
    for (const [method, ...args] of calls) {
      const ctx = await analytics[method](...args)
      sent.push({ method, messageId: ctx.event.messageId })
    }
    const user = analytics.user()
    return { anonymousId: user.anonymousId(), userId: user.id(), sent, errors }
  },
}
</script>
</body>
</html>
"""


@dataclass
class Exchange:
    """One request as Chromium's network log saw it, and its answer."""

    method: str
    url: str
    #: the request headers as sent on the wire (names in lower case)
    headers: dict[str, str]
    #: a preflight Chromium made for another request
    preflight: bool
    body: str | None = None
    status: int | None = None
    #: the response headers (names in lower case)
    answer: dict[str, str] = field(default_factory=dict)
    failed: str | None = None

    def messages(self) -> list[dict[str, Any]]:
        """The calls in the body: one, or a batch's."""
        sent = json.loads(self.body or "{}")
        return sent.get("batch", [sent])


class NetworkLog:
    """Every request of a page, from the DevTools protocol: preflights included, which Playwright's own
    request events leave out. Filled while Playwright is called (the sync API dispatches events then)."""

    def __init__(self, page: Any) -> None:
        self.exchanges: dict[str, Exchange] = {}
        session = page.context.new_cdp_session(page)
        session.on("Network.requestWillBeSent", self._request)
        session.on("Network.requestWillBeSentExtraInfo", self._request_headers)
        session.on("Network.responseReceived", self._response)
        session.on("Network.responseReceivedExtraInfo", self._response_headers)
        session.on("Network.loadingFailed", self._failed)
        session.send("Network.enable")

    def _exchange(self, request_id: str) -> Exchange:
        return self.exchanges.setdefault(request_id, Exchange("", "", {}, preflight=False))

    def _request(self, event: dict[str, Any]) -> None:
        exchange = self._exchange(event["requestId"])
        request = event["request"]
        exchange.method, exchange.url = request["method"], request["url"]
        exchange.preflight = event.get("initiator", {}).get("type") == "preflight"
        exchange.body = request.get("postData")
        exchange.headers = {k.lower(): v for k, v in request["headers"].items()} | exchange.headers

    def _request_headers(self, event: dict[str, Any]) -> None:
        # what went on the wire, Origin included, which requestWillBeSent may not carry
        self._exchange(event["requestId"]).headers.update({k.lower(): v for k, v in event["headers"].items()})

    def _response(self, event: dict[str, Any]) -> None:
        exchange = self._exchange(event["requestId"])
        exchange.status = event["response"]["status"]
        exchange.answer = {k.lower(): v for k, v in event["response"]["headers"].items()}

    def _response_headers(self, event: dict[str, Any]) -> None:
        # what came on the wire: also for a response CORS keeps from the page (no responseReceived then)
        exchange = self._exchange(event["requestId"])
        exchange.status = exchange.status or event["statusCode"]
        exchange.answer = {k.lower(): v for k, v in event["headers"].items()} | exchange.answer

    def _failed(self, event: dict[str, Any]) -> None:
        exchange = self._exchange(event["requestId"])
        exchange.failed = event.get("corsErrorStatus", {}).get("corsError") or event.get(
            "errorText", "failed"
        )

    def to(self, origin: str) -> list[Exchange]:
        return [e for e in self.exchanges.values() if e.url.startswith(origin + "/")]

    def posts(self, origin: str) -> list[Exchange]:
        return [e for e in self.to(origin) if e.method == "POST"]

    def preflights(self, origin: str) -> list[Exchange]:
        return [e for e in self.to(origin) if e.preflight]


def header_names(value: str) -> set[str]:
    return {name.strip().lower() for name in value.split(",") if name.strip()}


def unsafe_headers(exchange: Exchange) -> set[str]:
    """The headers of ``exchange`` that a browser must ask the server about first (a CORS preflight):
    every header the page's script set beyond the safelisted ones."""
    media = exchange.headers.get("content-type", "").split(";")[0].strip().lower()
    browser_set = {
        "origin",
        "referer",
        "user-agent",
        "host",
        "connection",
        "content-length",
        "accept-encoding",
    }
    return {
        name
        for name in exchange.headers
        if name not in SAFELISTED
        and name not in browser_set
        and not name.startswith("sec-")
        and not (name == "content-type" and media in SAFELISTED_MEDIA)
    }


def assert_preflighted(log: NetworkLog, origin: str, page_origin: str) -> None:
    """Every POST to ``origin`` carried headers that need a preflight, a preflight for its URL came first
    from the page's origin and passed (2xx, the origin allowed, those headers allowed), and the POST was
    sent; no request failed CORS."""
    preflights = log.preflights(origin)
    assert preflights, "Chromium made no CORS preflight: the calls were not cross-origin as a page's are"
    for preflight in preflights:
        assert preflight.method == "OPTIONS" and preflight.failed is None, preflight
        assert preflight.headers["origin"] == page_origin
        assert preflight.headers["access-control-request-method"] == "POST"
        assert "authorization" in header_names(preflight.headers["access-control-request-headers"])
        assert 200 <= (preflight.status or 0) < 300, preflight
        assert preflight.answer["access-control-allow-origin"] in ("*", page_origin)
        assert header_names(preflight.headers["access-control-request-headers"]) <= header_names(
            preflight.answer["access-control-allow-headers"]
        )
    for post in log.posts(origin):
        needed = unsafe_headers(post)
        assert "authorization" in needed, "analytics-next sends the write key in Authorization"
        allowed = [p for p in preflights if p.url == post.url]
        assert allowed, f"no preflight for {post.url}"
        assert any(needed <= header_names(p.answer["access-control-allow-headers"]) for p in allowed), (
            f"no preflight allowed {sorted(needed)} for {post.url}"
        )
        assert post.failed is None, post


class Shop:
    """The shop's own web server, on another origin than the tracking API (``localhost`` and its own port,
    the API being ``127.0.0.1``): its page, and the SDK's browser build as it ships in the npm package."""

    def __init__(self, bundles: Path) -> None:
        self.port = free_port()
        self.origin = f"http://localhost:{self.port}"

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                name = path.removeprefix("/analytics-next/bundles/")
                if path.startswith("/products/"):
                    self._send(200, "text/html; charset=utf-8", SHOP_PAGE.encode())
                elif name != path and "/" not in name and (bundles / name).is_file():
                    self._send(200, "text/javascript", (bundles / name).read_bytes())
                else:
                    self._send(404, "text/plain", b"not found")

            def _send(self, status: int, media: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", media)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True

    def __enter__(self) -> Self:
        threading.Thread(target=self.server.serve_forever, name="shop", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class FlakyGateway:
    """A gateway in front of the stack that fails the first POST to ``path`` once, as a network in between
    does; everything else, preflights included, it passes through unchanged.

    ``lost_answer``: that first POST reaches the stack (which stores the call) and only its answer is
    replaced by a 503; otherwise the gateway answers 503 itself. Either way the SDK must retry the call,
    with ``X-Retry-Count``, and the stack must keep one."""

    def __init__(self, upstream: str, path: str, *, lost_answer: bool) -> None:
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.forwarded: list[tuple[str, str]] = []
        target = urlsplit(upstream)
        failures = [path]
        lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_OPTIONS(self) -> None:
                self._pass()

            def do_POST(self) -> None:
                with lock:
                    fail = self.command == "POST" and self.path in failures
                    if fail:
                        failures.remove(self.path)
                if fail and not lost_answer:
                    self.rfile.read(int(self.headers.get("content-length") or 0))
                    self._answer(
                        503, {"access-control-allow-origin": "*"}, b'{"message":"Service Unavailable"}'
                    )
                    return
                status, headers, body = self._forward()
                if fail:
                    status, body = 503, b'{"message":"Service Unavailable"}'
                self._answer(status, headers, body)

            def _pass(self) -> None:
                self._answer(*self._forward())

            def _forward(self) -> tuple[int, dict[str, str], bytes]:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                connection.close()
                with lock:
                    gateway.forwarded.append((self.command, self.path))
                skip = ("connection", "content-length", "transfer-encoding", "date", "server")
                return (
                    response.status,
                    {k.lower(): v for k, v in response.getheaders() if k.lower() not in skip},
                    data,
                )

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True

    def __enter__(self) -> Self:
        threading.Thread(target=self.server.serve_forever, name="gateway", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def tracking_api() -> Iterator[str]:
    """The local stack with the shop's browser write key."""
    with running_stack(LOCAL_BROWSER_WRITE_KEY=SITE_KEY, LOCAL_SERVER_WRITE_KEY="browser-sdk-server-key") as (
        url,
        banner,
    ):
        assert SITE_KEY in banner
        warm_up(url)
        yield url


def warm_up(api: str) -> None:
    """The admin API's first answer (its function imported, as a cold start), awaited patiently once, so
    reading the events back later waits only for the events; a busy machine takes a while."""
    try:
        urllib.request.urlopen(f"{api}/admin/contacts/user_id:nobody-yet", timeout=180).close()
    except urllib.error.HTTPError as error:
        assert error.code == 404, error


@pytest.fixture(scope="module")
def shop() -> Iterator[Shop]:
    bundles = installed_packages() / "@segment" / "analytics-next" / "dist" / "umd"
    assert (bundles / "index.js").is_file(), "analytics-next ships its browser build in dist/umd"
    with Shop(bundles) as running:
        yield running


@contextmanager
def shop_page(chromium: Any, shop: Shop) -> Iterator[tuple[Any, NetworkLog, list[str]]]:
    """A new visitor (a fresh browser context: no stored ids, no cached preflights) on a product page,
    with the page's network log and its script errors."""
    context = chromium.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log = NetworkLog(page)
    page.goto(f"{shop.origin}/products/42?utm_source=newsletter")
    page.wait_for_function("() => window.AnalyticsNext && window.shop")
    try:
        yield page, log, errors
    finally:
        context.close()


def visit(page: Any, api_origin: str, user: str, strategy: str = "standard") -> dict[str, Any]:
    """The visitor views the page, signs in and looks at a product: page, identify, track."""
    calls = [
        ["page"],
        ["identify", user, {"name": "Ada Kite", "email": f"{user}@example.com"}],
        ["track", "Product Viewed", {"sku": "kite-3", "price": 12.5}],
    ]
    return page.evaluate(
        "config => shop.visit(config)",
        {
            "writeKey": SITE_KEY,
            "apiHost": api_origin.removeprefix("http://") + "/v1",
            "strategy": strategy,
            "calls": calls,
        },
    )


def settle(page: Any, done: Callable[[], bool], what: str) -> None:
    """Let the page run (and its network events arrive) until ``done``; bounded, not timed."""
    for _ in range(300):
        if done():
            return
        page.wait_for_timeout(100)
    pytest.fail(f"the page never {what}")


def answered(log: NetworkLog, origin: str, message_ids: list[str]) -> bool:
    """Each call has been answered 200 by ``origin``."""
    ok = {m["messageId"] for p in log.posts(origin) if p.status == 200 for m in p.messages()}
    return set(message_ids) <= ok


def stored(api: str, user: str, expected: list[str]) -> list[dict[str, Any]]:
    """The user's stored events once they are ``expected`` (the identify merges the visitor's first page
    view into the user, after the request), or what is there after the wait."""

    def ids() -> list[str]:
        return sorted(e["message_id"] for e in stored_events(api, f"user_id:{user}"))

    eventually(lambda: ids() == expected)
    return stored_events(api, f"user_id:{user}")


@pytest.mark.parametrize("strategy", ["standard", "batching"])
def test_analytics_next_in_chromium_preflights_every_call_and_each_is_stored_once(
    chromium: Any, shop: Shop, tracking_api: str, strategy: str
) -> None:
    user = f"sdk-{strategy}"
    with shop_page(chromium, shop) as (page, log, errors):
        visited = visit(page, tracking_api, user, strategy)
        ids = [call["messageId"] for call in visited["sent"]]
        settle(page, lambda: answered(log, tracking_api, ids), "had every call answered")
        assert visited["errors"] == [] and errors == []
        assert visited["userId"] == user

        # the page and the SDK came from the shop; the calls went to the stack; nothing else was reached
        assert {urlsplit(e.url).netloc for e in log.exchanges.values()} == {
            urlsplit(shop.origin).netloc,
            urlsplit(tracking_api).netloc,
        }
        assert_preflighted(log, tracking_api, shop.origin)
        posts = log.posts(tracking_api)
        assert [p.status for p in posts] == [200] * len(posts)
        paths = [urlsplit(p.url).path for p in posts]
        assert paths == (["/v1/p", "/v1/i", "/v1/t"] if strategy == "standard" else ["/v1/b"])
        on_the_wire = [m["messageId"] for p in posts for m in p.messages()]
        assert sorted(on_the_wire) == sorted(ids), "each call was sent once"
        assert all("x-retry-count" not in p.headers for p in posts)

    events = stored(tracking_api, user, sorted(ids))
    assert sorted(e["message_id"] for e in events) == sorted(ids), "exactly the calls made, each once"
    by_id = {e["message_id"]: e for e in events}
    assert [(by_id[i]["type"], by_id[i]["event"]) for i in ids] == [
        ("page", None),
        ("identify", None),
        ("track", "Product Viewed"),
    ]
    assert by_id[ids[0]]["context"]["page"]["url"] == f"{shop.origin}/products/42?utm_source=newsletter"
    # the visitor is the user now: read through the visitor's id, the same events, no copy left behind
    visitor = stored_events(tracking_api, f"anonymous_id:{visited['anonymousId']}")
    assert sorted(e["message_id"] for e in visitor) == sorted(ids)


@pytest.mark.parametrize("lost_answer", [False, True], ids=["refused", "answer-lost"])
def test_a_failed_call_is_retried_with_its_retry_count_through_a_real_preflight_and_stored_once(
    chromium: Any, shop: Shop, tracking_api: str, lost_answer: bool
) -> None:
    """The first attempt of the track call fails with a 503 (refused before the stack, or stored by the
    stack with its answer lost): analytics-next sends it again with ``X-Retry-Count: 1``, a header the
    stack's preflight answer allows, and the stack keeps the call once."""
    user = f"sdk-retry-{'lost' if lost_answer else 'refused'}"
    with (
        FlakyGateway(tracking_api, "/v1/t", lost_answer=lost_answer) as gateway,
        shop_page(chromium, shop) as (page, log, errors),
    ):
        visited = visit(page, gateway.origin, user)
        ids = [call["messageId"] for call in visited["sent"]]
        track = ids[2]
        settle(page, lambda: answered(log, gateway.origin, ids), "had the track call retried and answered")
        assert errors == []

        assert_preflighted(log, gateway.origin, shop.origin)
        attempts = [p for p in log.posts(gateway.origin) if track in {m["messageId"] for m in p.messages()}]
        assert [(p.status, p.headers.get("x-retry-count")) for p in attempts] == [(503, None), (200, "1")]
        assert "x-retry-count" in unsafe_headers(attempts[1])
        reached = [path for method, path in gateway.forwarded if method == "POST"]
        assert reached.count("/v1/t") == (2 if lost_answer else 1), "the stack saw the call as the case says"

    events = stored(tracking_api, user, sorted(ids))
    assert sorted(e["message_id"] for e in events) == sorted(ids), "the retried call is stored once"


def test_the_shops_page_cannot_reach_the_admin_api(chromium: Any, shop: Shop, tracking_api: str) -> None:
    """The admin API answers loopback callers without sign-in, but never another origin's page: a script on
    the shop can neither read a contact nor post a change (a form-like request needs no preflight; the
    stack refuses it, and without CORS headers the page cannot read the refusal either)."""
    with shop_page(chromium, shop) as (page, log, _errors):
        outcomes = page.evaluate(
            """async (api) => {
              const attempt = (url, init) =>
                fetch(url, init).then((r) => `read ${r.status}`, (e) => `blocked: ${e.name}`)
              return [
                await attempt(`${api}/admin/contacts/user_id:sdk-standard`),
                await attempt(`${api}/admin/contacts/user_id:sdk-standard/accept`,
                  { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"salesperson":"s"}' }),
              ]
            }""",
            tracking_api,
        )
        assert outcomes == ["blocked: TypeError", "blocked: TypeError"]
        refused = [e for e in log.to(tracking_api) if e.method in ("GET", "POST")]
        assert [e.status for e in refused] == [403, 403], "the stack itself refused both"
        assert all("access-control-allow-origin" not in e.answer for e in refused)
