"""Loopback: start the real local stack (``make run``) and drive real Segment and RudderStack clients at it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.loopback.conftest import BROWSER_KEY, SERVER_KEY, eventually, get, stored_message_ids

pytestmark = pytest.mark.loopback


def folded_card(base: str, contact: str) -> dict | None:
    """The contact's card, or None until the aggregation has folded its first events in (404)."""
    try:
        return get(f"{base}/admin/contacts/{contact}")
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def drive(client, user: str, anonymous: str) -> list[str]:
    """identify, page, track and a batch's worth of tracks; returns the messageIds the client sent."""
    sent = []
    sent.append(
        client.identify(user, {"email": f"{user}@example.com", "name": "Loop"}, anonymous_id=anonymous)[1]
    )
    sent.append(
        client.page(user, category="Docs", name="Install", properties={"url": "https://x.example/y"})[1]
    )
    sent.append(client.track(user, "Order Completed", {"revenue": 12.5, "products": [{"sku": "X"}]})[1])
    for i in range(120):  # more than one upload batch (100)
        sent.append(client.track(user, "Product Viewed", {"sku": f"S{i}"})[1])
    client.flush()
    return [m["messageId"] for m in sent]


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("library", ["segment", "rudderstack"])
def test_real_clients_every_call_succeeds_and_is_stored_once(
    local_stack: str, library: str, gzip: bool
) -> None:
    errors: list[object] = []
    if library == "segment":
        from segment.analytics.client import Client
    else:
        from rudderstack.analytics.client import Client
    client = Client(
        SERVER_KEY, host=local_stack, gzip=gzip, on_error=lambda e, batch: errors.append(e), max_retries=0
    )
    user = f"{library}-{'gzip' if gzip else 'plain'}"
    sent = drive(client, user, anonymous=f"anon-{user}")
    client.join()
    assert errors == []
    stored = stored_message_ids(local_stack, f"user_id:{user}")
    assert sorted(stored) == sorted(set(sent)) and len(stored) == len(sent)
    counts = {"identified": 1, "visit": 1, "purchase": 1, "product_viewed": 120}
    # the request stored the calls; the aggregation folds them into the profile from the stream
    card = eventually(
        lambda: (c := folded_card(local_stack, f"user_id:{user}")) and c["counts"] == counts and c
    )
    assert card and card["counts"] == counts
    assert card["traits"]["email"] == f"{user}@example.com"


def test_sync_mode_client_and_replay_of_the_same_batch(local_stack: str) -> None:
    from segment.analytics.client import Client

    errors: list[object] = []
    client = Client(
        SERVER_KEY, host=local_stack, sync_mode=True, on_error=lambda e, b: errors.append(e), max_retries=0
    )
    ok, message = client.track("sync-user", "Liked", {"post": 1})
    assert ok and errors == []
    replay = urllib.request.Request(
        f"{local_stack}/v1/batch",
        data=json.dumps({"batch": [message], "writeKey": SERVER_KEY}, default=str).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(replay, timeout=10) as response:
        assert response.status == 200 and json.loads(response.read()) == {"success": True}
    assert stored_message_ids(local_stack, "user_id:sync-user") == [message["messageId"]]


def test_admin_api_refuses_a_cross_origin_form_post(local_stack: str) -> None:
    """A form-like request from another origin (no preflight) is refused, with no CORS header to read it.

    (That browsers' real preflights pass is proven in a browser: tests/browser/test_browser_sdk.py.)"""
    forged = urllib.request.Request(
        f"{local_stack}/admin/contacts/anyone/accept",
        data=b'{"salesperson": "s"}',
        headers={"content-type": "text/plain", "origin": "https://evil.example"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(forged, timeout=10)
    assert refused.value.code == 403 and "access-control-allow-origin" not in refused.value.headers


def test_browser_key_purchase_is_refused_with_json_error(local_stack: str) -> None:
    request = urllib.request.Request(
        f"{local_stack}/v1/t",
        data=json.dumps({"userId": "u", "event": "Order Completed", "writeKey": BROWSER_KEY}).encode(),
        headers={"content-type": "text/plain"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
    body = json.loads(refused.value.read())
    assert body["code"] == "server_key_required" and "server write key" in body["message"]


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_stream_is_consumed_and_advancing_the_clock_fires_the_timers(local_stack: str) -> None:
    """The stage function runs by itself; 60 days later decay alone has moved the customer to exit."""
    from segment.analytics.client import Client

    client = Client(SERVER_KEY, host=local_stack, sync_mode=True, max_retries=0)
    client.track("decaying", "Order Completed", {"revenue": 20})
    assert eventually(lambda: (folded_card(local_stack, "decaying") or {}).get("stage") == "customer")
    before = get(f"{local_stack}/_local/clock")["now"]
    moved = post(f"{local_stack}/_local/clock", {"advance": "P60D"})
    assert moved["scheduled_runs"] >= 60 * 24 and moved["now"] > before
    card = get(f"{local_stack}/admin/contacts/decaying")
    assert (card["stage"], card["engagement"]["quarter"], card["engagement"]["direction"]) == (
        "at_risk",
        "exit",
        "falling",
    )
    published = get(f"{local_stack}/_local/events")["events"]
    exits = [
        e
        for e in published
        if e["detail"]["contact_id"] == "user_id:decaying" and e["detail"].get("to") == "exit"
    ]
    assert len(exits) == 1 and exits[0]["type"] == "EngagementQuarterChanged"


@pytest.mark.parametrize("library", ["segment", "rudderstack"])
def test_real_clients_send_identity_proofs_and_unproven_claims_stay_on_the_visitor(
    local_stack: str, library: str
) -> None:
    """The local stack's verified browser key (``local-verified-key``, secret ``local-identity-secret``):
    the SDK passes the proof through ``integrations``; a claim without one is kept on the visitor."""
    from shared.tracking.proofs import user_hash

    if library == "segment":
        from segment.analytics.client import Client
    else:
        from rudderstack.analytics.client import Client
    errors: list[object] = []
    client = Client(
        "local-verified-key", host=local_stack, on_error=lambda e, b: errors.append(e), max_retries=0
    )
    user, visitor = f"proven-{library}", f"visitor-{library}"
    proof = {"Lifecycle": {"userHash": user_hash("local-identity-secret", user)}}
    proven = [
        client.identify(user, {"name": "P"}, anonymous_id=visitor, integrations=proof)[1]["messageId"],
        client.track(user, "Product Viewed", {"sku": "A"}, anonymous_id=visitor, integrations=proof)[1][
            "messageId"
        ],
    ]
    claimed = [
        client.track(user, "Product Viewed", {"sku": "B"}, anonymous_id=f"other-{visitor}")[1]["messageId"],
        client.track(
            user,
            "Product Viewed",
            {"sku": "C"},
            anonymous_id=f"other-{visitor}",
            integrations={"Lifecycle": {"userHash": "0" * 64}},
        )[1]["messageId"],
    ]
    client.flush()
    client.join()
    assert errors == []
    assert sorted(stored_message_ids(local_stack, f"user_id:{user}")) == sorted(proven)
    assert sorted(stored_message_ids(local_stack, f"anonymous_id:other-{visitor}")) == sorted(claimed)
    events = get(f"{local_stack}/admin/contacts/anonymous_id:other-{visitor}/events")["events"]
    assert {(e["trust"], e["claimed_user_id"]) for e in events} == {("unverified", user)}
    verified = get(f"{local_stack}/admin/contacts/user_id:{user}/events")["events"]
    assert {e["trust"] for e in verified} == {"verified"}
