"""Issue 14: what contact search costs, in requests, through the functions as deployed.

On moto, the tracking, aggregation, stage and admin functions hosted as deployed (``bench.hosted``: their
environment, their role checked on every call, every request counted on their own clients).
``CONTACTS`` contacts identify themselves through the real route (an email and a name each); their
profile changes reach the stage function on the contacts table's stream, which keeps their search terms.
Counted, per unit of work, on the stage function (its search upkeep: the requests beyond what the same
changes cost it without search are the ones on the ``SEARCH`` items) and on the admin:

- **new contact**: an identify with an email and a name (the profile created): the terms written;
- **quiet change**: a page view (the profile changes, no searched trait does): no search request;
- **other trait**: an identify changing a trait that is not searched (``plan``): no search request;
- **renamed**: an identify with a new last name: the terms replaced;
- **search**: ``GET /admin/contacts?q=`` for a name prefix, an email and a contact id; and paging.

Counts, not timings: they do not depend on the machine.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

START = datetime(2026, 12, 1, 9, tzinfo=UTC)
CONTACTS = 10
FUNCTIONS = ("tracking", "aggregation", "stage_transition", "admin")
SEARCH_ITEM = "SEARCH"


def _track(running: Any, calls: list[dict[str, Any]]) -> None:
    from bench.tracking import api_event

    answer = running.invoke("tracking", api_event("/v1/batch", {"batch": calls}))
    assert answer["statusCode"] == 200, answer


def _search(running: Any, query: dict[str, str]) -> dict[str, Any]:
    import json

    route = "GET /admin/contacts"
    event = {
        "version": "2.0",
        "routeKey": route,
        "rawPath": "/admin/contacts",
        "headers": {},
        "queryStringParameters": query,
        "requestContext": {"http": {"method": "GET", "path": "/admin/contacts"}, "routeKey": route},
        "isBase64Encoded": False,
    }
    answer = running.invoke("admin", event)
    assert answer["statusCode"] == 200, answer
    return json.loads(answer["body"])


def _contacts_table(running: Any) -> dict[str, int]:
    """The admin function's DynamoDB requests but those on the config table (the funnel, read for the
    contacts' stages, cached by the instance), by operation; a Query names its index."""
    from shared.adapters.tables import CONFIG

    requests = running.requests
    found = {op: n for op, n in requests.of("admin").items() if "." not in op}
    for (function, operation, table, index), n in requests.tables.items():
        if function != "admin":
            continue
        if table == CONFIG.id:
            found[operation] -= n
        elif index:
            found[operation] -= n
            found[f"{operation} ({index})"] = found.get(f"{operation} ({index})", 0) + n
    return {op: n for op, n in sorted(found.items()) if n}


class SearchRequests:
    """The stage function's requests on search items, told apart from its other requests by the keys
    they name (``SEARCH`` and ``SEARCH#<term>``): its transactions' items and its reads of ``SEARCH``."""

    def __init__(self) -> None:
        self.requests = 0
        self.items = 0

    def attach(self, requests: Any) -> None:
        """Look at every request the hosted functions' clients make (``bench.hosted.Requests``), keeping
        the stage function's DynamoDB requests on search items."""
        counted = requests._before

        def before(function: str, service: str, params: Any, model: Any, context: Any) -> None:
            counted(function, service, params, model, context)
            if function == "stage_transition" and model.service_model.service_name == "dynamodb":
                self.look(params, model)

        requests._before = before

    def clear(self) -> None:
        self.requests = self.items = 0

    def look(self, params: dict[str, Any], model: Any) -> None:
        if model.name == "TransactWriteItems":
            named = [self._sort_key(item) for item in params.get("TransactItems", [])]
            if any(key and key.startswith(SEARCH_ITEM) for key in named):
                self.requests += 1
                self.items += len(named)
        elif model.name == "GetItem" and (params.get("Key", {}).get("sk", {}).get("S") == SEARCH_ITEM):
            self.requests += 1

    @staticmethod
    def _sort_key(item: dict[str, Any]) -> str | None:
        ((_, request),) = item.items()
        key = request.get("Key") or request.get("Item") or {}
        return key.get("sk", {}).get("S")


def measure() -> dict[str, Any]:
    """Requests per unit of work (see the module's docstring)."""
    from bench.hosted import hosted

    def per_contact(running: Any, calls: list[dict[str, Any]]) -> dict[str, float]:
        search.clear()
        with running.measuring():
            _track(running, calls)
            running.drain()
        requests = running.requests
        return {
            "stage_requests": requests.dynamodb("stage_transition") / CONTACTS,
            "search_requests": search.requests / CONTACTS,
            "search_items": search.items / CONTACTS,
        }

    search = SearchRequests()
    with hosted(FUNCTIONS, start=START, streams=("aggregation", "stage_transition")) as running:
        search.attach(running.requests)
        people = [f"person-{n:02d}" for n in range(CONTACTS)]
        cases = {}
        cases["new contact"] = per_contact(
            running,
            [
                {
                    "type": "identify",
                    "userId": p,
                    "messageId": f"i-{p}",
                    "traits": {"email": f"{p}@example.com", "firstName": "Ann", "lastName": f"Lee{p[-2:]}"},
                }
                for p in people
            ],
        )
        cases["quiet change (a page view)"] = per_contact(
            running,
            [{"type": "page", "userId": p, "messageId": f"p-{p}", "name": "Home"} for p in people],
        )
        cases["a trait that is not searched"] = per_contact(
            running,
            [
                {"type": "identify", "userId": p, "messageId": f"t-{p}", "traits": {"plan": "pro"}}
                for p in people
            ],
        )
        cases["renamed"] = per_contact(
            running,
            [
                {
                    "type": "identify",
                    "userId": p,
                    "messageId": f"r-{p}",
                    "traits": {"lastName": f"Smith{p[-2:]}"},
                }
                for p in people
            ],
        )
        searches = {}
        for label, query in (
            ("a name prefix (20 a page)", {"q": "ann"}),
            ("two words", {"q": "ann smith03"}),
            ("an email", {"q": "person-03@example.com"}),
            ("a contact id", {"q": "user_id:person-04"}),
        ):
            with running.measuring():
                found = _search(running, query)
            searches[label] = {"requests": _contacts_table(running), "found": len(found["contacts"])}
        pages = 0
        with running.measuring():
            answer = _search(running, {"q": "smith", "limit": "3"})
            pages += 1
            while answer["next_cursor"]:
                answer = _search(running, {"q": "smith", "limit": "3", "cursor": answer["next_cursor"]})
                pages += 1
        searches[f"paging {CONTACTS} results by 3"] = {"requests": _contacts_table(running), "pages": pages}
    return {"contacts": CONTACTS, "changes": cases, "searches": searches}


def section(result: dict[str, Any], where: str) -> str:
    changes = "\n".join(
        f"| {case} | {c['search_requests']:.2f} | {c['search_items']:.2f} | {c['stage_requests']:.2f} |"
        for case, c in result["changes"].items()
    )
    searches = "\n".join(
        f"| {label} | {', '.join(f'{op} {n}' for op, n in s['requests'].items())} | "
        f"{s.get('found', s.get('pages'))} |"
        for label, s in result["searches"].items()
    )
    return f"""
Measured by `python -m bench search` on {where}: {result["contacts"]} contacts identified through the tracking
route, their profile changes delivered to the stage function by the contacts table's stream, the searches
through the admin function, all hosted on moto as deployed. Counts, not timings.

Search upkeep per contact change, on the stage function (requests naming the `SEARCH` items: transactions
and their reads; items: what those transactions hold), beside all the stage function's DynamoDB requests
for the change:

| change | search requests | search transaction items | stage function requests (all) |
|---|---|---|---|
{changes}

Per search, the admin function's requests on the contacts table (a name or an email: one Query of
`byLookup` and one BatchGetItem of the page's profiles; a contact id: its profile read, merges followed; the
funnel, read for the contacts' stages, is cached by the instance):

| search | requests | contacts found (pages) |
|---|---|---|
{searches}
"""


def run(where: str) -> str:
    result = measure()
    for case, c in result["changes"].items():
        print(f"search: {case}: {c['search_requests']:.2f} search requests per contact", flush=True)
    for label, s in result["searches"].items():
        print(f"search: {label}: {s['requests']}", flush=True)
    return section(result, where)
