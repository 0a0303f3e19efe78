"""Scores over time (issue 14) through the real handlers on moto: tracked events scored by the rules, then
the chart's series read back; its last point is the card's scores."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import http_event, invoke

KITES = {"behaviour": "product_viewed", "points": 4, "match": {"product": "kite-3"}, "tag": "kites"}


def scores(contact: str, days: str | None = None):
    from functions.admin.handler import handler

    route = "GET /admin/contacts/{contactId}/scores"
    event = http_event(
        "GET",
        f"/admin/contacts/{contact}/scores",
        route=route,
        key=None,
        path_parameters={"contactId": contact},
        query={"days": days} if days is not None else None,
    )
    return invoke(handler, event)[:2]


def test_the_series_follows_the_scored_events_and_ends_at_the_cards_scores(
    send, admin, rules_api, clock, stream
) -> None:
    assert rules_api("PUT", "kites", KITES)[0] == 200
    start = clock.now()
    send("/v1/track", {"userId": "ann", "event": "Order Completed", "messageId": "o1"})  # 20 points
    clock.advance(timedelta(days=10))
    send(
        "/v1/track",
        {
            "userId": "ann",
            "event": "Product Viewed",
            "messageId": "v1",
            "properties": {"product_id": "kite-3"},
        },
    )  # 2 (the shipped rule) + 4 (kites, tagged)
    stream.drain()
    clock.advance(timedelta(days=5))

    status, history = scores("ann", "30")
    assert status == 200, history
    assert (history["contact_id"], history["days"], history["complete"]) == ("user_id:ann", 30, True)
    points = history["points"]
    assert [p["at"][:10] for p in points] == [
        (start - timedelta(days=15)).date().isoformat(),  # the window's start
        start.date().isoformat(),
        (start + timedelta(days=10)).date().isoformat(),
        (start + timedelta(days=15)).date().isoformat(),  # now
    ]
    assert points[0]["global"] == 0 and points[0]["tags"] == {"kites": 0}
    assert points[1]["global"] == pytest.approx(20, rel=1e-6)
    assert points[2]["global"] == pytest.approx(20 * 2 ** (-10 / 30) + 6, rel=1e-6)
    assert points[2]["tags"] == {"kites": pytest.approx(4, rel=1e-6)}

    card = admin("ann")[1]
    assert points[-1]["global"] == card["scores"]["global"]["current"]
    assert points[-1]["tags"] == {t: v["current"] for t, v in card["scores"]["tags"].items()}
    assert history["stage"] == card["stage"]
    assert points[-1]["stage"] == card["scores"]["stages"][card["stage"]]["current"]

    default = scores("ann")[1]
    assert default["days"] == 90 and default["points"][-1] == points[-1]
    assert len(scores("ann", "1")[1]["points"]) == 2, "no scored event in the last day: its start and now"


@pytest.mark.parametrize("days", ["0", "731", "ninety", "-5"])
def test_a_bad_window_is_a_400_naming_days(send, days) -> None:
    send("/v1/track", {"userId": "ann", "event": "Order Completed", "messageId": "o1"})
    status, error = scores("ann", days)
    assert (status, error["code"], error["field"]) == (400, "invalid_days", "days")


def test_an_unknown_contact_is_a_404(aws) -> None:
    assert scores("user_id:nobody")[0] == 404
