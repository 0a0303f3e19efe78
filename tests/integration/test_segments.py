"""Segments on moto through the real handlers: the admin API (validation naming the field, versions,
If-Match), a tracked contact joining a segment and listed among its members, departures through the due
time, and re-evaluation after the writes of automations, the preference links and the nightly pass."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW, SERVER_KEY, Context, as_function
from tests.integration.conftest import call_admin, dump

KIDS: dict[str, Any] = {
    "name": "Parents",
    "description": "Contacts tagged kids who visited within 30 days",
    "filter": {"all": [{"tag": "kids"}, {"last": "activity", "within_days": 30}]},
}


@pytest.fixture
def segments_api(aws):
    """Call /admin/segments routes: segments_api("PUT", "kids", body, headers), ("GET", "kids", action="members")."""

    def _call(
        method: str,
        segment_id: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        action: str | None = None,
        query: dict[str, str] | None = None,
    ):
        if segment_id is None:
            return call_admin(method, "/admin/segments", None, body, headers)
        route_path = "/admin/segments/{segmentId}" + (f"/{action}" if action else "")
        if query:
            from functions.admin.handler import handler
            from tests.conftest import http_event, invoke

            return invoke(
                handler,
                http_event(
                    method,
                    route_path.format(segmentId=segment_id),
                    route=f"{method} {route_path}",
                    key=None,
                    path_parameters={"segmentId": segment_id},
                    query=query,
                ),
            )
        return call_admin(method, route_path, {"segmentId": segment_id}, body, headers)

    return _call


def identify(send, user: str, tags: list[str]) -> None:
    status, _, _ = send("/v1/identify", {"userId": user, "traits": {"tags": tags}}, key=SERVER_KEY)
    assert status == 200


def members(segments_api, segment_id: str, limit: int = 100) -> list[str]:
    found: list[str] = []
    query: dict[str, str] = {"limit": str(limit)}
    while True:
        status, page, _ = segments_api("GET", segment_id, action="members", query=query)
        assert status == 200, page
        found += page["members"]
        if page["after"] is None:
            return sorted(found)
        query = {"limit": str(limit), "after": page["after"]}


def test_a_tracked_contact_joins_a_segment_and_is_listed_among_its_members(
    segments_api, send, stream, bus_events, admin
) -> None:
    status, stored, _ = segments_api("PUT", "kids", KIDS)
    assert status == 200 and (stored["id"], stored["version"]) == ("kids", 1)
    identify(send, "ann", ["kids"])
    identify(send, "bob", ["sports"])
    identify(send, "cy", ["kids", "sports"])
    stream.drain()
    assert members(segments_api, "kids") == ["user_id:ann", "user_id:cy"]
    assert members(segments_api, "kids", limit=1) == ["user_id:ann", "user_id:cy"], "page by page"
    assert segments_api("GET", "kids", action="count")[1] == {"segment": "kids", "count": 2}
    changes = [e for e in bus_events() if e["detail-type"] == "SegmentChanged"]
    assert sorted((e["detail"]["contact_id"], e["detail"]["change"]) for e in changes) == [
        ("user_id:ann", "entered"),
        ("user_id:cy", "entered"),
    ]
    assert all(e["detail"]["kind"] == "segment" and e["detail"]["segment"] == "kids" for e in changes)
    assert admin("user_id:cy")[1]["segments"] == ["kids"] and admin("user_id:bob")[1]["segments"] == []

    identify(send, "ann", ["-kids"])
    stream.drain()
    stream.drain()  # redelivered: nothing more
    assert members(segments_api, "kids") == ["user_id:cy"]
    left = [e["detail"] for e in bus_events() if e["detail-type"] == "SegmentChanged"]
    assert [(d["contact_id"], d["change"]) for d in left] == [("user_id:ann", "left")]


def test_an_unknown_field_in_a_filter_is_a_400_naming_it_and_changes_nothing(segments_api, aws) -> None:
    before = dump(aws, "CONFIG_TABLE_NAME")
    bad = {
        **KIDS,
        "filter": {"all": [{"tag": "kids"}, {"last": "activity", "within_days": 30, "colour": "red"}]},
    }
    status, error, _ = segments_api("PUT", "kids", bad)
    assert status == 400 and error["code"] == "invalid_segment"
    assert error["message"] == "filter.all.1.colour: Extra inputs are not permitted"
    status, error, _ = segments_api("PUT", "kids", {**KIDS, "filter": {"colour": "red"}})
    assert status == 400 and error["message"].startswith("filter: not a condition (it has 'colour')")
    assert dump(aws, "CONFIG_TABLE_NAME") == before, "nothing stored"
    assert segments_api("GET", "kids")[0] == 404


def test_if_match_makes_a_change_conditional_and_history_keeps_every_version(segments_api) -> None:
    assert segments_api("PUT", "kids", KIDS, {"if-match": "1"})[0] == 409, "none stored yet"
    assert segments_api("PUT", "kids", KIDS, {"if-match": "0"})[1]["version"] == 1
    status, second, _ = segments_api("PUT", "kids", {**KIDS, "name": "Parents (2)"}, {"if-match": "1"})
    assert status == 200 and second["version"] == 2
    status, body, _ = segments_api("PUT", "kids", {**KIDS, "name": "Lost"}, {"if-match": "1"})
    assert status == 409 and body["code"] == "conflict"
    assert segments_api("DELETE", "kids", headers={"if-match": "1"})[0] == 409
    status, detail, _ = segments_api("GET", "kids")
    assert status == 200 and [v["version"] for v in detail["history"]] == [2, 1]
    assert detail["segment"]["name"] == "Parents (2)"
    assert segments_api("PUT", "kids", detail["segment"], {"if-match": "2"})[1]["version"] == 3, (
        "GET, PUT back"
    )
    status, paused, _ = segments_api("POST", "kids", headers={"if-match": "3"}, action="pause")
    assert status == 200 and paused["paused"] and paused["version"] == 4
    assert paused.pop("backfill") is None, "a pause moves nobody: no back-fill"
    assert segments_api("GET")[1]["segments"] == [paused]
    status, deleted, _ = segments_api("DELETE", "kids", headers={"if-match": "4"})
    assert status == 200 and deleted == {
        "deleted": "kids",
        "version": 4,
        # its back-fill empties it (started, or the error and the name to start it by)
        "backfill": {
            "workflow": "contacts_backfill",
            "name": "seg-kids-v5",
            "started": deleted["backfill"]["started"],
            "status": "/admin/backfills/contacts_backfill/seg-kids-v5",
            "error": deleted["backfill"]["error"],
        },
    }
    assert segments_api("GET", "kids", action="members")[0] == 404


def test_a_bad_cursor_or_limit_is_a_400(segments_api) -> None:
    segments_api("PUT", "kids", KIDS)
    status, error, _ = segments_api("GET", "kids", action="members", query={"after": "nonsense"})
    assert status == 400 and error["code"] == "invalid_cursor"
    status, error, _ = segments_api("GET", "kids", action="members", query={"limit": "0"})
    assert status == 400 and error["code"] == "invalid_limit"


def test_a_member_whose_visits_lapse_leaves_at_its_due_time(segments_api, send, stream, clock, aws) -> None:
    from infra.local.gateway import load_handler

    segments_api("PUT", "kids", KIDS)
    identify(send, "ann", ["kids"])
    stream.drain()
    assert members(segments_api, "kids") == ["user_id:ann"]
    profile = aws.get_item(
        TableName=os.environ["CONTACTS_TABLE_NAME"],
        Key={"pk": {"S": "C#user_id:ann"}, "sk": {"S": "PROFILE"}},
    )["Item"]
    assert profile["segments"] == {"SS": ["kids"]}
    timers = load_handler("functions.timers.handler.handler")
    scheduled = json.loads((Path(__file__).parents[2] / "events/timers/scheduled.json").read_text())
    clock.advance(timedelta(days=29))
    timers(scheduled, Context())
    assert members(segments_api, "kids") == ["user_id:ann"], "29 days: still within"
    clock.advance(timedelta(days=1, minutes=2))
    timers(scheduled, Context())
    assert members(segments_api, "kids") == []


@pytest.mark.parametrize("writer", ["automation", "preferences", "analytics"])
def test_writes_of_automations_preference_links_and_the_nightly_pass_are_evaluated(
    writer, segments_api, send, stream, aws
) -> None:
    """Tags (automations), consent (the unsubscribe link) and RFM segments (the nightly pass): each writer's
    own adapter writes the profile, and the stage function's trigger passes the write."""
    from shared.analytics.facts import Analytics, RfmFacts
    from shared.contacts.identity import ContactId
    from shared.delivery.consent import ConsentFact
    from shared.usecases.analytics import Previous

    filters = {
        "automation": {"tag": "nurtured"},
        "preferences": {"consent": "email", "eq": "revoked"},
        "analytics": {"field": "rfm", "eq": "champions"},
    }
    segments_api("PUT", "watched", {"name": "Watched", "filter": filters[writer]})
    identify(send, "ann", [])
    stream.drain()
    assert members(segments_api, "watched") == []
    ann, table = ContactId.user("ann"), os.environ["CONTACTS_TABLE_NAME"]
    if writer == "automation":
        from shared.adapters.contact_effects import DynamoContactEffects
        from shared.adapters.contact_items import Retention

        with as_function("automation_signals"):
            from shared.adapters import aws as clients

            effects = DynamoContactEffects(
                clients.client("dynamodb"),
                contacts_table=table,
                events_table=os.environ["EVENTS_TABLE_NAME"],
                retention=Retention(),
            )
            effects.tag(ann, ["nurtured"], [], NOW)
    elif writer == "preferences":
        from shared.adapters.consent_profiles import DynamoConsentProfiles

        with as_function("preferences"):
            from shared.adapters import aws as clients

            profiles = DynamoConsentProfiles(clients.client("dynamodb"), contacts_table=table)
            assert profiles.revoke(ann, "email", ConsentFact(source="unsubscribe-link", at=NOW)) == ann
    else:
        from shared.adapters.analytics_store import DynamoAnalyticsStore

        with as_function("analytics_apply"):
            from shared.adapters import aws as clients

            store = DynamoAnalyticsStore(clients.client("dynamodb"), contacts_table=table)
            champions = Analytics(day=NOW.date(), rfm=RfmFacts(r=5, f=5, m=5, segment="champions"))
            assert store.record(ann, champions, [], Previous()).written
    stream.drain()
    assert members(segments_api, "watched") == ["user_id:ann"]


def test_a_visitor_who_signs_up_is_a_member_under_the_contact_it_joined(
    segments_api, send, stream, merges, bus_events
) -> None:
    from tests.conftest import BROWSER_KEY

    segments_api("PUT", "viewers", {"name": "Viewers", "filter": {"count": "product_viewed", "gte": 1}})
    viewed = {"anonymousId": "v1", "event": "Product Viewed", "properties": {"sku": "kite-3"}}
    assert send("/v1/t", viewed, key=BROWSER_KEY)[0] == 200
    stream.drain()
    assert members(segments_api, "viewers") == ["anonymous_id:v1"]
    assert send("/v1/i", {"anonymousId": "v1", "userId": "ann"}, key=BROWSER_KEY)[0] == 200
    assert merges.drain() == 1
    stream.drain()
    assert members(segments_api, "viewers") == ["user_id:ann"], "the visitor left, the contact entered"
    changes = [
        (e["detail"]["contact_id"], e["detail"]["change"])
        for e in bus_events()
        if e["detail-type"] == "SegmentChanged"
    ]
    assert changes == [("anonymous_id:v1", "entered"), ("user_id:ann", "entered")], (
        "a merged-away identity leaves unannounced"
    )


def test_the_sample_admin_events_run_through_the_admin_handler(aws) -> None:
    from functions.admin.handler import handler
    from tests.conftest import ROOT

    samples = ROOT / "events" / "admin"
    put = handler(json.loads((samples / "put_segment.json").read_text()), Context())
    assert put["statusCode"] == 200, put
    listed = handler(json.loads((samples / "get_segment_members.json").read_text()), Context())
    assert listed["statusCode"] == 200 and json.loads(listed["body"]) == {
        "segment": "active-parents",
        "members": [],
        "after": None,
    }
