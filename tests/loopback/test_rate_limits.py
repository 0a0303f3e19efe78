"""Loopback: rate limits in the real local stack, against floods and with the real Python clients.

The stack runs with small limits for dedicated keys (``LOCAL_WRITE_KEYS``) and a small per-address limit
(``IP_RATE_PER_SECOND``, ``IP_BURST``). Request counts are fixed and timeouts generous; nothing asserts
how long anything took, only what was answered and stored, and that a client waited at least as long as
it was told to. The floods meet windows of 1000 s, so however fast or slow this machine serves them, a
flood can pass at most twice its burst (the end of one window and the start of the next).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.loopback.conftest import running_stack
from tests.loopback.test_sdk_clients import eventually, stored_message_ids

pytestmark = pytest.mark.loopback
SERVER_KEY = "rates-server-key"
BROWSER_KEY = "rates-browser-key"
#: 10 requests per 1000 s window (0.01 per second)
FLOOD_KEY = "rates-flood-key"
FLOOD_BURST = 10
#: 5 requests per 1 s window each
SEGMENT_KEY = "rates-segment-key"
RUDDER_KEY = "rates-rudder-key"


@pytest.fixture(scope="module")
def local_stack() -> Iterator[str]:
    keys = f"{FLOOD_KEY}:server:0.01:{FLOOD_BURST},{SEGMENT_KEY}:server:5:5,{RUDDER_KEY}:server:5:5"
    with running_stack(
        LOCAL_SERVER_WRITE_KEY=SERVER_KEY,
        LOCAL_BROWSER_WRITE_KEY=BROWSER_KEY,
        LOCAL_WRITE_KEYS=keys,
        IP_RATE_PER_SECOND="0.01",
        IP_BURST=str(FLOOD_BURST),
    ) as (url, banner):
        assert FLOOD_KEY in banner and "at most 5 requests per 1 s" in banner
        assert "10 per 1000 s per address" in banner
        yield url


def post(url: str, key: str, body: dict[str, Any]) -> tuple[int, str | None]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={
            "content-type": "application/json",
            "authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
            "origin": "https://shop.example",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, None
    except urllib.error.HTTPError as error:
        assert error.headers["access-control-expose-headers"] == "retry-after"
        body_seen = json.loads(error.read())
        assert error.code != 429 or body_seen["code"] == "rate_limited"
        return error.code, error.headers.get("retry-after")


def test_a_flood_from_one_key_and_one_address_leaves_another_keys_traffic_served(local_stack: str) -> None:
    url = f"{local_stack}/v1/track"
    flooded: Counter[tuple[str, int]] = Counter()
    retry_after: set[str | None] = set()
    lock = threading.Lock()
    started = threading.Barrier(7)

    def flood(key: str, thread: int) -> None:
        started.wait(timeout=60)
        for i in range(150):
            status, after = post(
                url, key, {"userId": f"flood-{thread}", "event": "Liked", "messageId": f"f{thread}-{i}"}
            )
            with lock:
                flooded[(key, status)] += 1
                if status == 429:
                    retry_after.add(after)

    floods = [threading.Thread(target=flood, args=(FLOOD_KEY, t)) for t in range(4)]
    floods += [threading.Thread(target=flood, args=(BROWSER_KEY, t)) for t in range(4, 6)]
    for thread in floods:
        thread.start()
    started.wait(timeout=60)
    served = [
        post(url, SERVER_KEY, {"userId": "calm", "event": "Liked", "messageId": f"calm-{i}"})[0]
        for i in range(100)
    ]
    for thread in floods:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in floods)

    assert served == [200] * 100, Counter(served)
    assert sorted(flooded) == sorted(
        k for k in [(FLOOD_KEY, 200), (FLOOD_KEY, 429), (BROWSER_KEY, 200), (BROWSER_KEY, 429)] if flooded[k]
    ), flooded
    # 600 requests from one key, 300 from one address: each passes its burst at most twice over
    assert FLOOD_BURST <= flooded[(FLOOD_KEY, 200)] <= 2 * FLOOD_BURST, flooded
    assert FLOOD_BURST <= flooded[(BROWSER_KEY, 200)] <= 2 * FLOOD_BURST, flooded
    assert flooded[(FLOOD_KEY, 200)] + flooded[(FLOOD_KEY, 429)] == 600
    assert flooded[(BROWSER_KEY, 200)] + flooded[(BROWSER_KEY, 429)] == 300
    assert all(after is not None and 1 <= int(after) <= 1000 for after in retry_after), retry_after
    assert len(stored_message_ids(local_stack, "user_id:calm")) == 100


class Exchanges:
    """Every request a client's HTTP session sends: when it went, its answer, and when that came."""

    def __init__(self, session: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[tuple[float, int, str | None, float]] = []
        original = session.post

        def post(*args: Any, **kwargs: Any) -> Any:
            sent = time.monotonic()
            response = original(*args, **kwargs)
            self.seen.append(
                (sent, response.status_code, response.headers.get("retry-after"), time.monotonic())
            )
            return response

        monkeypatch.setattr(session, "post", post)

    def statuses(self) -> Counter[int]:
        return Counter(status for _, status, _, _ in self.seen)


def send_calls(client: Any, user: str, count: int) -> list[str]:
    sent = [client.track(user, "Product Viewed", {"sku": f"S{i}"})[1]["messageId"] for i in range(count)]
    client.flush()
    client.join()
    return sent


def rides_out_429s(client_class: Any, key: str, base: str, user: str, exchanges: Exchanges) -> None:
    """20 calls, one per request, from the client: no error, each stored once, some answered 429."""
    errors: list[object] = []
    client = client_class(key, host=base, upload_size=1, on_error=lambda e, b: errors.append(e))
    sent = send_calls(client, user, 20)
    assert errors == []
    stored = eventually(
        lambda: (ids := stored_message_ids(base, f"user_id:{user}")) and len(ids) >= 20 and ids
    )
    assert sorted(stored) == sorted(sent) and len(set(sent)) == 20
    statuses = exchanges.statuses()
    assert statuses[200] == 20 and statuses[429] > 0 and set(statuses) == {200, 429}, statuses


def test_segment_client_waits_out_retry_after_and_stores_every_call_once(
    local_stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segment.analytics import request
    from segment.analytics.client import Client

    exchanges = Exchanges(request._session, monkeypatch)
    # one call per request: 20 requests against a limit of 5 per second
    rides_out_429s(Client, SEGMENT_KEY, local_stack, "segment-limited", exchanges)
    for (_, status, after, answered), (next_sent, *_) in zip(
        exchanges.seen, exchanges.seen[1:], strict=False
    ):
        if status == 429:
            assert after == "1"
            assert next_sent - answered >= int(after) - 0.05, "the client waited as long as it was told"


def test_rudderstack_client_retries_429_until_every_call_is_stored_once(
    local_stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rudderstack.analytics import request
    from rudderstack.analytics.client import Client

    exchanges = Exchanges(request._session, monkeypatch)
    rides_out_429s(Client, RUDDER_KEY, local_stack, "rudder-limited", exchanges)
