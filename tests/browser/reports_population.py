"""A small population for the console's reports, seeded through the stack's own front doors: contacts
identified and buying through the tracking API (the stage and metrics functions count what they do), a
campaign with a holdout sent to them through the admin API, and the local clock moved on a month so the
cohort has a second month.

The clock only moves forward and the browser tests share one stack, so the population lives in months of
its own: from the first day of the month after the stack's "now".
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from shared.campaigns.assignment import arm_of
from shared.campaigns.model import HOLDOUT, Variant

SERVER = "Basic " + base64.b64encode(b"local-server-key:").decode()
CAMPAIGN_ID = "reports-sale"
SEGMENT_ID = "reports-news"
AUTOMATION_ID = "reports-win-back"
HOLDOUT_PERCENT = 30
VARIANTS = (Variant(id="A", split=100),)
USERS = [f"reports-{n:02d}" for n in range(16)]


def call(base: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    """One request to the stack; the answer's JSON (a refusal fails the seeding, naming why)."""
    request = urllib.request.Request(
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"content-type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raise AssertionError(f"{method} {path}: {error.code} {error.read()!r}") from None


def report(base: str, name: str, **query: str) -> dict[str, Any]:
    """``GET /admin/metrics/<name>`` as the console asks for it."""
    return call(base, "GET", f"/admin/metrics/{name}?{urllib.parse.urlencode(query)}")


def arm(user: str) -> str:
    return arm_of(CAMPAIGN_ID, f"user_id:{user}", HOLDOUT_PERCENT, VARIANTS)


@dataclass
class Population:
    base: str
    #: the first day of the population's first month, and a day in the month after it ("today" at the end)
    first_day: date
    today: date
    #: what each buyer spent, by the day they bought
    purchases: dict[date, dict[str, float]] = field(default_factory=dict)

    @property
    def first_month(self) -> str:
        return self.first_day.strftime("%Y-%m")

    @property
    def second_month(self) -> str:
        return self.today.strftime("%Y-%m")


def seed(base: str) -> Population:
    now = datetime.fromisoformat(call(base, "GET", "/_local/clock")["now"])
    first = (now.replace(day=1) + timedelta(days=32)).replace(
        day=1, hour=10, minute=0, second=0, microsecond=0
    )
    call(base, "POST", "/_local/clock", {"set": first.isoformat()})

    call(
        base,
        "PUT",
        f"/admin/segments/{SEGMENT_ID}",
        {"name": "Reports news", "filter": {"all": [{"tag": SEGMENT_ID}]}},
    )
    call(base, "PUT", "/admin/templates/reports-sale", {"subject": "Sale", "text": "Hello"})
    for user in USERS:
        call(
            base,
            "POST",
            "/v1/identify",
            {
                "userId": user,
                "traits": {"email": f"{user}@example.com", "email_opt_in": True, "tags": [SEGMENT_ID]},
            },
            {"authorization": SERVER},
        )
    tick(base)
    call(
        base,
        "PUT",
        f"/admin/campaigns/{CAMPAIGN_ID}",
        {
            "name": "Reports sale",
            "segment": SEGMENT_ID,
            "template": "reports-sale",
            "holdout_percent": HOLDOUT_PERCENT,
            "conversion": {"behaviour": "purchase", "days": 7},
        },
    )
    call(base, "POST", f"/admin/campaigns/{CAMPAIGN_ID}/send", headers={"if-match": "1"})
    call(base, "POST", "/_local/clock", {"advance": "PT1M"})  # the campaigns function plans and sends it

    treated = [u for u in USERS if arm(u) != HOLDOUT]
    held = [u for u in USERS if arm(u) == HOLDOUT]
    assert len(treated) >= 3 and held, (treated, held)
    population = Population(base=base, first_day=first.date(), today=first.date())
    # on the first day: three treated buyers and one held out
    population.purchases[first.date()] = {treated[0]: 30.0, treated[1]: 20.0, treated[2]: 15.5, held[0]: 10.0}
    buy(base, population.purchases[first.date()], "first")
    # a month on, the first buyer comes back
    later = (first + timedelta(days=32)).replace(hour=10)
    call(base, "POST", "/_local/clock", {"set": later.isoformat()})
    population.today = later.date()
    population.purchases[later.date()] = {treated[0]: 25.0}
    buy(base, population.purchases[later.date()], "again")
    # an automation holding a fifth of its contacts out, stored last (it acts on nobody here)
    call(
        base,
        "PUT",
        f"/admin/automations/{AUTOMATION_ID}",
        {
            "name": "Reports win-back",
            "trigger": {"type": "inactivity", "days": 60},
            "steps": [{"action": "email", "subject": "Hi", "text": "Hello"}],
            "holdout_percent": 20,
        },
    )
    tick(base)
    return population


def buy(base: str, amounts: dict[str, float], label: str) -> None:
    for user, revenue in amounts.items():
        call(
            base,
            "POST",
            "/v1/track",
            {
                "userId": user,
                "event": "Order Completed",
                "messageId": f"reports-{label}-{user}",
                "properties": {"revenue": revenue},
            },
            {"authorization": SERVER},
        )
    tick(base)


def tick(base: str) -> None:
    """Let the stack's streams and bus deliver what was sent so far (moving the clock drains them)."""
    call(base, "POST", "/_local/clock", {"advance": "PT1S"})
