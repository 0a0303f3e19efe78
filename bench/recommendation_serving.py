"""Issue 15: what serving recommendations costs, in requests, through the admin function as deployed.

On moto, the admin function hosted as deployed (``bench.hosted``: its environment, its role checked on
every call, every request counted on its own clients). The nightly model's items (a neighbour list for each
of ``PRODUCTS`` products and the popularity list), a catalog of as many products, and contacts whose
profiles hold 0, 1, 10 and 50 recent products, with 0, 1, 20 and 600 purchases in the event log (``PURCHASES``),
are written straight into the tables. Counted, per call:

- ``GET /admin/contacts/{id}/recommendations?n=10`` (and ``n=40``): the profile's read (merges followed),
  one Query of the purchase index (what the contact bought: its newest 500 purchases), one batch read of
  the neighbour lists with the popularity list and the catalog's settings, one batch read of the
  candidates' catalog entries: the same whatever the contact's history;
- ``GET /admin/products/{id}/recommendations?n=10``: the two batch reads;
- ``GET /admin/catalog/products?limit=100``: one Query per page.

Counts, not timings: they do not depend on the machine.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

START = datetime(2026, 12, 1, 9, tzinfo=UTC)
PRODUCTS = 300
NEIGHBOURS = 50
HISTORIES = (0, 1, 10, 50)
#: a contact's purchases in the event log, by its recent products: the last more than serving reads (500)
PURCHASES = {0: 0, 1: 1, 10: 20, 50: 600}


def _get(running: Any, route: str, path: str, parameters: dict[str, str], query: dict[str, str]) -> Any:
    event = {
        "version": "2.0",
        "routeKey": f"GET {route}",
        "rawPath": path,
        "headers": {},
        "pathParameters": parameters,
        "queryStringParameters": query,
        "requestContext": {"http": {"method": "GET", "path": path}, "routeKey": f"GET {route}"},
        "isBase64Encoded": False,
    }
    answer = running.invoke("admin", event)
    assert answer["statusCode"] == 200, answer
    return json.loads(answer["body"])


def _out_of_stock(product_id: str) -> bool:
    """One product in seven is out of stock."""
    return int(product_id[1:]) % 7 == 0


def _seed(running: Any) -> None:
    from shared.adapters.catalog_store import product_item
    from shared.adapters.contact_items import BASKET, PURCHASED_AT, partition, profile_key
    from shared.adapters.tables import CONFIG, CONTACTS, EVENTS
    from shared.contacts.identity import ContactId
    from shared.recommendations.catalog import Product
    from shared.recommendations.stored import POPULAR_KEY, neighbours_key
    from shared.tracking.timestamps import format_time

    def entries(products: list[tuple[str, float]]) -> dict[str, Any]:
        return {"L": [{"M": {"p": {"S": p}, "s": {"N": f"{score:.6f}"}}} for p, score in products]}

    product_ids = [f"p{n:04d}" for n in range(PRODUCTS)]
    items: list[dict[str, Any]] = []
    for n, product_id in enumerate(product_ids):
        neighbours = [(product_ids[(n + k) % PRODUCTS], 1.0 / k) for k in range(1, NEIGHBOURS + 1)]
        key = {k: {"S": v} for k, v in neighbours_key(product_id).items()}
        items.append({**key, "entries": entries(neighbours), "fittedOn": {"S": "2026-12-01"}})
        stocked = not _out_of_stock(product_id)  # never served
        items.append(product_item(Product(id=product_id, name=f"Product {n}", in_stock=stocked)))
    popular_key = {k: {"S": v} for k, v in POPULAR_KEY.items()}
    popular = [(p, float(PRODUCTS - n)) for n, p in enumerate(product_ids[:200])]
    items.append({**popular_key, "entries": entries(popular), "fittedOn": {"S": "2026-12-01"}})
    running.put(CONFIG.id, items)
    profiles = []
    for history in HISTORIES:
        recent = [
            {
                "M": {
                    "p": {"S": product_ids[(n * 5) % PRODUCTS]},
                    "k": {"S": "purchase" if n % 3 == 0 else "view"},
                    "t": {"S": format_time(START - timedelta(hours=n))},
                }
            }
            for n in range(history)
        ]
        contact = ContactId.user(f"history-{history}")
        profiles.append(
            {
                **profile_key(contact),
                "userId": {"S": contact.value},
                "recentProducts": {"L": recent},
            }
        )
    running.put(CONTACTS.id, profiles)
    purchases = []
    for history, count in PURCHASES.items():
        contact = ContactId.user(f"history-{history}")
        for n in range(count):
            at = format_time(START - timedelta(days=1 + n))
            purchases.append(
                {
                    "pk": partition(contact),
                    "sk": {"S": f"E#{at}#order-{n}"},
                    PURCHASED_AT: {"S": at},
                    BASKET: {"S": json.dumps([[p, None] for p in bought_by(history, n)])},
                }
            )
    running.put(EVENTS.id, purchases)


def bought_by(history: int, order: int) -> list[str]:
    """The products of a contact's ``order``-th newest purchase: three of twelve it buys again and again,
    among the neighbours of its recent products (so that serving has something to leave out)."""
    return [f"p{(history * 7 + (order % 4) * 3 + k + 1) % PRODUCTS:04d}" for k in range(3)]


def bought(history: int) -> set[str]:
    """What serving knows the contact bought: its newest 500 purchases."""
    return {p for order in range(min(PURCHASES[history], 500)) for p in bought_by(history, order)}


def _counted(running: Any) -> dict[str, int]:
    """The admin function's requests by operation (a Query names its index, if any)."""
    return {op: n for op, n in running.requests.of("admin").items() if n}


def measure() -> dict[str, Any]:
    from bench.hosted import hosted

    rows: dict[str, dict[str, Any]] = {}
    with hosted(("admin",), start=START) as running:
        _seed(running)
        _get(running, "/admin/catalog/settings", "/admin/catalog/settings", {}, {})  # a warm instance
        for history in HISTORIES:
            for n in ("10", "40"):
                contact = f"user_id:history-{history}"
                with running.measuring():
                    answer = _get(
                        running,
                        "/admin/contacts/{contactId}/recommendations",
                        f"/admin/contacts/{contact}/recommendations",
                        {"contactId": contact},
                        {"n": n},
                    )
                served = answer["recommendations"]
                rows[f"a contact with {history} recent products, n={n}"] = {
                    "requests": _counted(running),
                    "served": len(served),
                    "similar": sum(r["reason"] == "similar" for r in served),
                    "out_of_stock": sum(_out_of_stock(r["product_id"]) for r in served),
                    "bought": sum(r["product_id"] in bought(history) for r in served),
                }
        with running.measuring():
            answer = _get(
                running,
                "/admin/products/{productId}/recommendations",
                "/admin/products/p0001/recommendations",
                {"productId": "p0001"},
                {"n": "10"},
            )
        served = answer["recommendations"]
        rows["a product's bought together, n=10"] = {
            "requests": _counted(running),
            "served": len(served),
            "similar": sum(r["reason"] == "similar" for r in served),
            "out_of_stock": sum(_out_of_stock(r["product_id"]) for r in served),
            "bought": 0,
        }
        with running.measuring():
            page = _get(running, "/admin/catalog/products", "/admin/catalog/products", {}, {"limit": "100"})
        rows["a catalog page of 100"] = {
            "requests": _counted(running),
            "served": len(page["products"]),
            "similar": 0,
            "out_of_stock": 0,
            "bought": 0,
        }
    return {"products": PRODUCTS, "neighbours": NEIGHBOURS, "rows": rows}


def section(result: dict[str, Any], where: str) -> str:
    rows = "\n".join(
        f"| {label} | {', '.join(f'{op} {n}' for op, n in r['requests'].items())} | {r['served']} | "
        f"{r['similar']} | {r['out_of_stock']} | {r['bought']} |"
        for label, r in result["rows"].items()
    )
    return f"""
Measured by `python -m bench serving` on {where}: the admin function hosted on moto as deployed,
a nightly model of {result["products"]} products with {result["neighbours"]} neighbours each, a catalog of
as many (one in seven out of stock), contacts whose profiles hold 0 to 50 recent products and whose event
logs hold 0 to 600 purchases. The admin function's requests per call, counted on its own client (counts,
not timings):

| call | requests | products served | of them `similar` | of them out of stock | of them bought |
|---|---|---|---|---|---|
{rows}

A contact costs four requests whatever its history: its profile's GetItem, one Query of the purchase index
(what it bought, never offered: its newest 500 purchases, one page) and two BatchGetItem (the neighbour
lists of its recent products with the popularity list and the catalog's settings; then the catalog entries
of the candidates); a product the two BatchGetItem.
"""


def run(where: str) -> str:
    result = measure()
    for label, r in result["rows"].items():
        print(f"recommendations: {label}: {r['requests']} ({r['served']} served)", flush=True)
    return section(result, where)
