"""A believable demo population for the console's screenshots (and for trying the console by hand), seeded
through the stack's public doors only: the tracking API with the server write key, the admin API, and the
local clock (``/_local/clock``), which moves four months forward while the shop's visitors come and go.

What it makes (the same every time: a fixed seed):
- two salespeople, Ann (twice the share of leads) and Bob;
- 36 contacts, a few new each week, each living one of five stories: browsers who read and leave, webinar
  regulars (MQL), hot leads (sales-ready, routed to a salesperson; Ann accepts some), one-time buyers
  (who lapse into risk) and repeat customers (monthly cohorts that come back);
- a segment (the newsletter's subscribers) and another (customers who spent 150 or more);
- a template and a campaign to the newsletter with a 20 % holdout, sent in the last weeks, some of whose
  recipients then buy;
- the nightly analytics (RFM segments, churn risk) run at the end.

``python -m tests.browser.demo [URL] [SERVER_KEY]`` seeds a running stack (``make run``: the defaults);
tests/browser/screenshots.py and tests/browser/test_demo.py call :func:`seed`.
"""

from __future__ import annotations

import base64
import json
import random
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

#: The console's main pages, in the order the screenshots are taken: ``name: hash route``, with
#: ``{contact}`` (the featured contact's id), ``{salesperson}`` and ``{start}`` / ``{start_month}`` (the
#: demo's first day and the first day of its month, so reports cover the demo's months) filled in from the
#: seeded demo. The one place to change what the screenshots (``make screenshots``) and
#: tests/browser/test_demo.py cover.
PAGES: dict[str, str] = {
    "contacts": "#/contacts",
    "contact": "#/contacts/{contact}",
    "sales": "#/sales/{salesperson}",
    "rules": "#/rules",
    "segments": "#/segments",
    "campaigns": "#/campaigns",
    "funnel": "#/reports/funnel?period=week&from={start}",
    "cohorts": "#/reports/cohorts?from={start_month}",
}

#: ``make run``'s server write key.
DEFAULT_SERVER_KEY = "local-server-key"
WEEKS = 16
NEW_PER_WEEK = (3, 3, 2, 3, 2, 3, 2, 2, 3, 2, 2, 3, 2, 2, 1, 1)  # 36 in all
STORIES = ("browser", "webinar", "hot_lead", "one_time", "repeat")
SALESPEOPLE = {
    "ann-s": {"name": "Ann Seller", "email": "ann.seller@example.com", "weight": 2},
    "bob-s": {"name": "Bob Seller", "email": "bob.seller@example.com", "weight": 1},
}
FIRST = [
    "Ada",
    "Bruno",
    "Chiara",
    "Dmitri",
    "Elif",
    "Farah",
    "Goran",
    "Hana",
    "Ines",
    "Jonas",
    "Kaito",
    "Lena",
    "Mateo",
    "Nadia",
    "Oskar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tariq",
    "Uma",
    "Vera",
    "Wim",
    "Xenia",
    "Yusuf",
    "Zofia",
    "Amara",
    "Bastian",
    "Carmen",
    "Diego",
    "Emma",
    "Felix",
    "Greta",
    "Hugo",
    "Ivy",
    "Jules",
]
LAST = [
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Novak",
    "Okafor",
    "Petrov",
    "Quispe",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Ueda",
    "Varga",
    "Weber",
    "Yilmaz",
    "Zielinski",
    "Andersen",
    "Berger",
    "Costa",
    "Dubois",
    "Eriksen",
]
COMPANIES = ("Kitesurf Co", "Windy Ltd", "Skyline GmbH", "Blue Lagoon", "Harbour & Sons", "Gale Works")
PRODUCTS = (
    ("kite-3", "Trainer kite", 49.0),
    ("board-7", "Twin-tip board", 189.0),
    ("bar-2", "Control bar", 89.0),
)


@dataclass
class Demo:
    """What the seed made: the ids a screenshot or a test names."""

    base: str
    contacts: dict[str, str] = field(default_factory=dict)  # contact id -> story
    #: the contact card shown: a repeat customer with a long history
    featured: str = ""
    salesperson: str = "ann-s"
    segment: str = "newsletter"
    campaign: str = "spring-sale"
    routed: list[str] = field(default_factory=list)
    #: the local clock's day when the seed began (YYYY-MM-DD)
    start: str = ""

    def pages(self) -> dict[str, str]:
        """:data:`PAGES` with this demo's ids filled in."""
        return {
            name: route.format(
                contact=self.featured,
                salesperson=self.salesperson,
                start=self.start,
                start_month=self.start[:8] + "01",
            )
            for name, route in PAGES.items()
        }


class Stack:
    """The stack's doors, over HTTP: ``track`` (the tracking API, server key), ``admin`` and ``clock``."""

    def __init__(self, base: str, server_key: str) -> None:
        self.base = base.rstrip("/")
        self.auth = "Basic " + base64.b64encode(f"{server_key}:".encode()).decode()

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        request = urllib.request.Request(
            f"{self.base}{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"content-type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{method} {path}: {error.code} {error.read().decode()[:500]}") from None

    def track(self, call: str, body: dict[str, Any]) -> None:
        answer = self.request("POST", f"/v1/{call}", body, {"authorization": self.auth})
        assert answer == {"success": True}, answer

    def admin(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        return self.request(method, f"/admin{path}", body, headers)

    def now(self) -> datetime:
        return datetime.fromisoformat(self.request("GET", "/_local/clock")["now"])

    def advance(self, duration: str) -> None:
        self.request("POST", "/_local/clock", {"advance": duration})

    def set_clock(self, moment: datetime) -> None:
        self.request("POST", "/_local/clock", {"set": moment.isoformat()})


def seed(
    base: str, server_key: str = DEFAULT_SERVER_KEY, *, weeks: int = WEEKS, say: Callable[[str], None] = print
) -> Demo:
    """Seed the stack at ``base``; returns what was made. Takes a few minutes (four months of the local
    clock, with every hourly and nightly job the stack runs on its way); fewer ``weeks`` make a smaller
    population in less time (the campaign is sent three weeks before the end either way)."""
    stack = Stack(base, server_key)
    rng = random.Random(14)
    demo = Demo(base=stack.base)
    _morning(stack)
    demo.start = stack.now().date().isoformat()
    for person, fields in SALESPEOPLE.items():
        stack.admin("PUT", f"/salespeople/{person}", fields)
    stack.admin(
        "PUT",
        "/templates/spring-sale",
        {"subject": "Spring sale: 20% off every kite", "text": "The wind is back. Every kite is 20% off."},
    )
    stack.admin(
        "PUT", "/segments/newsletter", {"name": "Newsletter", "filter": {"all": [{"tag": "newsletter"}]}}
    )

    names = iter(rng.sample([f"{f} {last}" for f in FIRST for last in LAST], sum(NEW_PER_WEEK) * 2))
    joined: list[tuple[str, str, int]] = []  # (user, story, week)
    for week in range(weeks):
        say(f"demo: week {week + 1} of {weeks}")
        for _ in range(NEW_PER_WEEK[week % len(NEW_PER_WEEK)]):
            name = next(names)
            user = name.lower().replace(" ", ".")
            story = STORIES[len(joined) % len(STORIES)]
            _arrive(stack, rng, user, name, story)
            joined.append((user, story, week))
            demo.contacts[f"user_id:{user}"] = story
        for user, story, since in joined:
            _live(stack, rng, user, story, week - since, demo)
        if week == max(weeks - 3, 0):
            _campaign(stack, demo)
        stack.advance("P7D")
    stack.admin(
        "PUT",
        "/segments/big-spenders",
        {"name": "Big spenders", "filter": {"all": [{"revenue": "total", "gte": 150}]}},
    )
    say("demo: the nightly analytics (RFM segments, churn risk)")
    stack.request("POST", "/_local/analytics/run", {})
    repeat = [contact for contact, story in demo.contacts.items() if story == "repeat"]
    demo.featured = repeat[0]
    return demo


def _morning(stack: Stack) -> None:
    """The next 10:00 UTC: messages go out in the day (no quiet-hours deferral), and every later weekly
    step lands at 10:00 too."""
    now = stack.now()
    ten = now.replace(hour=10, minute=0, second=0, microsecond=0)
    stack.set_clock(ten if ten > now else ten + timedelta(days=1))


def _arrive(stack: Stack, rng: random.Random, user: str, name: str, story: str) -> None:
    """A visitor comes from an ad or a search, then signs up (the newsletter for most)."""
    visitor = f"visitor-{user}"
    source = rng.choice(("ads", "search", "newsletter"))
    stack.track(
        "page",
        {
            "anonymousId": visitor,
            "name": "Home",
            "properties": {"url": f"https://kites.example/?utm_source={source}"},
            "context": {"campaign": {"source": source}},
        },
    )
    first, last = name.split(" ", 1)
    traits: dict[str, Any] = {
        "email": f"{user}@example.com",
        "name": name,
        "first_name": first,
        "last_name": last,
        "company": rng.choice(COMPANIES),
        "email_opt_in": story != "browser" or rng.random() < 0.5,
    }
    if traits["email_opt_in"]:
        traits["tags"] = ["newsletter"]
    stack.track("identify", {"anonymousId": visitor, "userId": user, "traits": traits})


def _live(stack: Stack, rng: random.Random, user: str, story: str, age: int, demo: Demo) -> None:
    """One week of a contact's life, ``age`` weeks after it arrived."""
    if story == "browser":
        if age < 3:
            _view(stack, rng, user)
    elif story == "webinar":
        # three webinars in the first week (marketing-qualified), one now and then after: never sales-ready
        for topic in {0: ("Safety", "Jumps", "Gear"), 2: ("Waves",), 5: ("Travel",)}.get(age, ()):
            stack.track(
                "track", {"userId": user, "event": "Webinar Attended", "properties": {"topic": topic}}
            )
        _view(stack, rng, user)
    elif story == "hot_lead":
        if age == 0:  # six webinars in a week: sales-ready, and routed to a salesperson
            for topic in ("Safety", "Jumps", "Gear", "Waves", "Wind", "Travel"):
                stack.track(
                    "track", {"userId": user, "event": "Webinar Attended", "properties": {"topic": topic}}
                )
        if age == 1:
            card = stack.admin("GET", f"/contacts/user_id:{user}")
            owner = card.get("owner")
            if owner:
                demo.routed.append(f"user_id:{user}")
                # Ann accepts every other lead routed to her; the rest wait in her list
                if owner == "ann-s" and len(demo.routed) % 2 == 0:
                    stack.admin("POST", f"/contacts/user_id:{user}/accept", {"salesperson": owner})
    elif story == "one_time":
        if age == 1:
            _buy(stack, rng, user)
    elif story == "repeat":
        _view(stack, rng, user)
        if age % 4 == 1:
            _buy(stack, rng, user)


def _view(stack: Stack, rng: random.Random, user: str) -> None:
    sku, title, _price = rng.choice(PRODUCTS)
    stack.track(
        "track", {"userId": user, "event": "Product Viewed", "properties": {"sku": sku, "name": title}}
    )


def _buy(stack: Stack, rng: random.Random, user: str) -> None:
    products = rng.sample(PRODUCTS, rng.randint(1, 2))
    stack.track(
        "track",
        {
            "userId": user,
            "event": "Order Completed",
            "properties": {
                "order_id": f"o-{user}-{rng.randrange(10**6)}",
                "revenue": sum(p[2] for p in products),
                "currency": "EUR",
                "products": [{"sku": sku, "name": title, "price": price} for sku, title, price in products],
            },
        },
    )


def _campaign(stack: Stack, demo: Demo) -> None:
    """The spring sale to the newsletter, a 20 % holdout kept back, A/B subject lines; sent, then some of
    its recipients buy within the week (the report's conversions and uplift)."""
    stored = stack.admin(
        "PUT",
        f"/campaigns/{demo.campaign}",
        {
            "name": "Spring sale",
            "segment": demo.segment,
            "template": "spring-sale",
            "variants": [{"id": "A", "split": 50}, {"id": "B", "split": 50}],
            "holdout_percent": 20,
            "send_rate_per_minute": 1000,
            "conversion": {"behaviour": "purchase", "days": 7},
        },
    )
    stack.admin("POST", f"/campaigns/{demo.campaign}/send", None, **{"if-match": str(stored["version"])})
    stack.advance("PT1H")
    rng = random.Random(4)
    for contact in sorted(demo.contacts)[::4]:
        _buy(stack, rng, contact.removeprefix("user_id:"))


def main(argv: list[str]) -> int:
    base = argv[1] if len(argv) > 1 else "http://127.0.0.1:3000"
    demo = seed(base, argv[2] if len(argv) > 2 else DEFAULT_SERVER_KEY)
    print(f"seeded {len(demo.contacts)} contacts; open {base}/ and these pages:")
    for name, route in demo.pages().items():
        print(f"  {name:<10} {base}/{route}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
