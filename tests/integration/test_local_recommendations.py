"""Issue 15: the nightly recommendations pass in the local stack, with the real step handlers and the real
model: purchases and product views tracked through the API land on the profiles' recent products, the
workflow runs on ``POST /_local/recommendations/run`` (each step as deployed: its own environment, only its
grants), and the neighbour items and the popularity item read back from the config table as serving reads
them; a second run of the night writes the same items.

The baskets are hand-built so the neighbours are obvious: campers buy a tent with a stove (and view a
lamp), cyclists a helmet with a pump."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Any

from shared.recommendations.stored import POPULAR_KEY, StoredList, neighbours_key

SERVER = "Basic " + base64.b64encode(b"local-server-key:").decode()


def call(stack: Any, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None):
    request = urllib.request.Request(
        f"{stack.url}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"content-type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def order(user: str, n: int, *products: str, at: str) -> dict[str, Any]:
    return {"type": "track", "userId": user, "event": "Order Completed", "messageId": f"{user}-o{n}",
            "timestamp": at, "properties": {"revenue": 10, "products": [{"product_id": p} for p in products]}}  # fmt: skip


def viewed(user: str, n: int, product: str, at: str) -> dict[str, Any]:
    return {"type": "track", "userId": user, "event": "Product Viewed", "messageId": f"{user}-v{n}",
            "timestamp": at, "properties": {"product_id": product}}  # fmt: skip


def stored(stack: Any, key: dict[str, str]) -> StoredList | None:
    from shared.adapters import aws
    from shared.adapters.dynamodb import plain_item

    item = (
        aws.client("dynamodb")
        .get_item(TableName=stack.table_names["config"], Key={k: {"S": v} for k, v in key.items()})
        .get("Item")
    )
    return None if item is None else StoredList.model_validate(plain_item(item))


def test_the_nightly_pass_stores_each_products_neighbours_from_the_profiles(local_stack) -> None:
    at = (local_stack.clock.now() - timedelta(hours=2)).isoformat()
    calls = [
        *(order(u, 1, "tent", "stove", at=at) for u in ("ann", "bob", "cy")),
        *(viewed(u, 1, "lamp", at=at) for u in ("ann", "bob")),
        *(order(u, 1, "helmet", "pump", at=at) for u in ("dee", "eli")),
        order("fay", 1, "tent", at=at),
    ]
    status, answer = call(local_stack, "POST", "/v1/batch", {"batch": calls}, {"authorization": SERVER})
    assert (status, answer) == (200, {"success": True})

    status, state = call(local_stack, "POST", "/_local/recommendations/run")
    assert status == 200, state
    segments = local_stack.config.analytics_scan_segments
    assert len(state["recommendations_extract"]) == segments
    assert sum(e["contacts"] for e in state["recommendations_extract"]) == 6, "each profile once"
    assert state["recommendations_fit"]["contacts"] == 6
    assert state["recommendations_write"] == {"parts": len(state["recommendations_fit"]["parts"])}

    tent, helmet = stored(local_stack, neighbours_key("tent")), stored(local_stack, neighbours_key("helmet"))
    assert tent.neighbours()[0].product_id == "stove", "bought together by every camper"
    assert {n.product_id for n in tent.neighbours()} <= {"stove", "lamp"}, "never a cyclist's product"
    assert [n.product_id for n in helmet.neighbours()] == ["pump"]
    assert tent.fitted_on == local_stack.clock.now().date()
    popular = stored(local_stack, POPULAR_KEY)
    assert popular.neighbours()[0].product_id == "tent", "bought by four contacts"
    assert stored(local_stack, neighbours_key("kite")) is None

    status, again = call(local_stack, "POST", "/_local/recommendations/run")
    assert status == 200, again
    assert stored(local_stack, neighbours_key("tent")) == tent, "the same night writes the same items"
    assert stored(local_stack, POPULAR_KEY) == popular


def test_a_visitors_views_join_the_customers_products_when_identified(local_stack) -> None:
    """Product views of an anonymous visitor, then the customer's order, then identify: the merge keeps
    both contacts' products on the customer's profile, and the nightly pass reads the customer alone."""
    from shared.adapters import aws
    from shared.adapters.contact_profiles import read_profile
    from shared.contacts.identity import ContactId

    now = local_stack.clock.now()
    views = [
        {"type": "track", "anonymousId": "a-dee", "event": "Product Viewed", "messageId": f"a-v{n}",
         "timestamp": (now - timedelta(hours=3, minutes=n)).isoformat(), "properties": {"product_id": p}}
        for n, p in enumerate(("lamp", "tent"))
    ]  # fmt: skip
    bought = order("dee", 1, "helmet", at=(now - timedelta(hours=2)).isoformat())
    known = {"type": "identify", "userId": "dee", "anonymousId": "a-dee", "messageId": "i-dee"}
    for batch in (views, [bought], [known]):
        status, answer = call(local_stack, "POST", "/v1/batch", {"batch": batch}, {"authorization": SERVER})
        assert (status, answer) == (200, {"success": True})
        local_stack.drain_streams()

    db, table = aws.client("dynamodb"), local_stack.table_names["contacts"]
    dee = read_profile(db, table, ContactId.user("dee"))
    assert [(p.product_id, p.kind) for p in dee.recent_products] == [
        ("helmet", "purchase"),
        ("lamp", "view"),
        ("tent", "view"),
    ]
    assert read_profile(db, table, ContactId.anonymous("a-dee")).merged_into == "user_id:dee"

    status, state = call(local_stack, "POST", "/_local/recommendations/run")
    assert status == 200, state
    assert sum(e["contacts"] for e in state["recommendations_extract"]) == 1, "the visitor merged away is not"
