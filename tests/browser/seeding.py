"""Contacts for the console's browser tests, made as a site makes them: through the tracking API with the
local stack's server write key, plus the admin API for what an administrator sets up (a salesperson, a
rule, a segment). Each contact is new (a random suffix), so tests sharing the session's stack do not meet.

The stack folds events in the background: the helpers wait (``eventually``) until the admin API shows the
contact as the test needs it."""

from __future__ import annotations

import base64
import json
import secrets
import string
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from infra.local.stack import DEFAULT_SERVER_KEY

#: how long the stack may take to fold events into a card, search terms or a segment
FOLDED_WITHIN = 30.0
#: the engagement the seeding rule gives: with the funnel's default thresholds (sales 50), the index is
#: 1 + (62 - 50) / 50 = 1.24: the second quarter, "sales" (62: the rule's 60 and the general 2 a view gets)
SALES_READY_POINTS = 60


def call(base: str, method: str, path: str, body: Any = None, key: str | None = None) -> tuple[int, Any]:
    """An HTTP call to the stack: (status, JSON body or None)."""
    headers = {"content-type": "application/json", "accept": "application/json"}
    if key is not None:
        headers["authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        text = error.read()
        try:
            return error.code, json.loads(text) if text else None
        except ValueError:
            return error.code, {"raw": text.decode(errors="replace")}


def admin(base: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """The admin API, as the console calls it locally (loopback: no sign-in)."""
    return call(base, method, path, body)


def track(base: str, body: dict[str, Any]) -> None:
    status, answer = call(base, "POST", "/v1/track", body, key=DEFAULT_SERVER_KEY)
    assert status == 200, answer


def identify(base: str, body: dict[str, Any]) -> None:
    status, answer = call(base, "POST", "/v1/identify", body, key=DEFAULT_SERVER_KEY)
    assert status == 200, answer


def contact_path(contact_id: str, tail: str = "") -> str:
    return f"/admin/contacts/{quote(contact_id, safe='')}{tail}"


def card(base: str, contact_id: str) -> dict[str, Any] | None:
    """The contact's card, or None when the admin API has no such contact (404)."""
    status, answer = admin(base, "GET", contact_path(contact_id))
    if status == 404:
        return None
    assert status == 200, answer
    return answer


def eventually(check: Callable[[], Any], what: str, timeout: float = FOLDED_WITHIN) -> Any:
    """Poll ``check`` until it returns something true; fail naming ``what`` if it never does."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"the stack did not get there: {what}"
        time.sleep(0.25)


def suffix() -> str:
    """Letters only: a name search reads words of letters."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(10))


@dataclass(frozen=True)
class Seeded:
    contact_id: str
    user_id: str
    name: str
    surname: str
    email: str
    #: the tag the seeding rule gave it, and the segment of that tag (None: not made)
    tag: str | None = None
    segment: str | None = None
    #: the salesperson the lead was routed to (None: not routed)
    owner: str | None = None


def known_contact(base: str) -> Seeded:
    """A contact that identified itself with a name and an email, and did nothing more: stage ``lead``,
    engagement 0 (quarter ``nurturing``)."""
    s = suffix()
    surname = f"Zq{s}".capitalize()
    seeded = Seeded(
        contact_id=f"user_id:u-{s}",
        user_id=f"u-{s}",
        name=f"Quinta {surname}",
        surname=surname,
        email=f"quinta.{s}@example.com",
    )
    identify(base, {"userId": seeded.user_id, "traits": {"email": seeded.email, "name": seeded.name}})
    eventually(lambda: (c := card(base, seeded.contact_id)) and c["stage"] == "lead", "the contact is a lead")
    return seeded


def sales_ready_contact(base: str, *, in_segment: bool = True) -> Seeded:
    """A contact in the gauge's second quarter (``sales``, index 1.24), tagged by a rule of its own, in a
    segment of that tag (unless ``in_segment`` is false: a new segment re-evaluates every contact the
    stack holds), and routed to a salesperson (one is put on the team first)."""
    s = suffix()
    tag, person = f"uic-{s}", f"sp-{s}"
    segment = tag if in_segment else None
    status, answer = admin(
        base, "PUT", f"/admin/salespeople/{person}", {"name": f"Sam {s}", "email": f"sam.{s}@example.com"}
    )
    assert status == 200, answer
    status, answer = admin(
        base,
        "PUT",
        f"/admin/rules/{tag}",
        {"behaviour": "product_viewed", "points": SALES_READY_POINTS, "match": {"product": tag}, "tag": tag},
    )
    assert status == 200, answer
    if segment is not None:
        status, answer = admin(
            base, "PUT", f"/admin/segments/{segment}", {"name": f"Browser {s}", "filter": {"tag": tag}}
        )
        assert status == 200, answer
    seeded = known_contact(base)
    track(
        base,
        {"userId": seeded.user_id, "event": "Product Viewed", "properties": {"product_id": tag}},
    )
    folded = eventually(
        lambda: (
            (c := card(base, seeded.contact_id))
            and c["engagement"]["quarter"] == "sales"
            and c["owner"]
            and (segment is None or segment in c["segments"])
            and c
        ),
        "the contact is sales-ready, routed and in its segment",
    )
    if segment is not None:
        eventually(
            lambda: (
                seeded.contact_id in admin(base, "GET", f"/admin/segments/{segment}/members")[1]["members"]
            ),
            "the segment lists the contact",
        )
    return Seeded(**{**seeded.__dict__, "tag": tag, "segment": segment, "owner": folded["owner"]})
