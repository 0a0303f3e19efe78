"""The feedback function as deployed (its template environment and role, on moto): SES's events and the
reputation alarms, each as EventBridge hands it over (the samples in ``events/feedback/``)."""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest

from shared.delivery.ports import SendingPause
from tests.conftest import EVENTS, SERVER_KEY, Context

ADDRESS = "recipient@example.com"
CONTACT = "user_id:user-42"


def sample(name: str) -> dict:
    return json.loads((EVENTS / "feedback" / f"{name}.json").read_text())


@pytest.fixture
def feedback(aws, clock):
    """Hand one event to the feedback function, as the default bus's rule does (asynchronously: a retry
    is the same event again)."""
    from functions.feedback.handler import handler

    clock.advance(timedelta(days=1))  # the samples happened on the 23rd; their feedback arrives after

    def _deliver(event: dict) -> str:
        return handler(event, Context())["outcome"]

    return _deliver


@pytest.fixture
def ann(send):
    """The contact the samples' tags name, known with the address they name."""
    status, _, _ = send(
        "/v1/identify",
        {"userId": "user-42", "messageId": "identify-1", "traits": {"email": ADDRESS}},
        key=SERVER_KEY,
    )
    assert status == 200


def suppressions(aws):
    from shared.adapters.suppressions import DynamoSuppressions

    return DynamoSuppressions(aws, table=os.environ["CONTACTS_TABLE_NAME"])


def pause(aws) -> SendingPause | None:
    from shared.adapters.delivery_control import DynamoDeliveryControl

    return DynamoDeliveryControl(aws, table=os.environ["CONFIG_TABLE_NAME"], cache_seconds=0).pause()


def card(admin) -> dict:
    status, body, _ = admin(CONTACT)
    assert status == 200
    return body


def test_a_hard_bounce_suppresses_the_address_and_a_soft_bounce_does_not(aws, ann, feedback, metrics):
    assert feedback(sample("bounce_soft")) == "counted"
    assert suppressions(aws).suppressed("email", ADDRESS) is None
    assert feedback(sample("bounce_hard")) == "suppressed"
    assert feedback(sample("bounce_hard")) == "suppressed"  # a retry: harmless
    assert suppressions(aws).suppressed("email", ADDRESS.upper()) == "hard_bounce"
    assert metrics["BouncesTransient"] == 1 and metrics["BouncesPermanent"] == 2


def test_a_complaint_suppresses_and_the_card_shows_the_revocation(aws, ann, feedback, aggregation, admin):
    assert feedback(sample("complaint")) == "suppressed"
    assert feedback(sample("complaint")) == "suppressed"
    aggregation.drain()
    assert suppressions(aws).suppressed("email", ADDRESS) == "complaint"
    events = card(admin)["recent_events"]
    consent = [e for e in events if e["event"] == "Consent Updated"]
    assert len(consent) == 1 and consent[0]["behaviour"] == "consent_changed"


def test_opens_and_clicks_are_scored_once_each_even_when_ses_repeats_them(ann, feedback, aggregation, admin):
    before = card(admin)["scores"]["global"]["lifetime"]
    for name in ("open", "click", "open", "click"):
        feedback(sample(name))
    aggregation.drain()
    assert feedback(sample("open")) == "duplicate"
    after = card(admin)
    assert after["counts"]["email_opened_mailing"] == 1 and after["counts"]["email_clicked_mailing"] == 1
    assert after["scores"]["global"]["lifetime"] == before + 1 + 3  # the shipped rules: 1 an open, 3 a click
    opened = [e for e in after["recent_events"] if e["event"] == "Email Opened"]
    assert len(opened) == 1 and opened[0]["timestamp"].startswith("2026-11-23T12:05:00")


def test_an_open_for_a_contact_that_is_gone_does_not_bring_it_back(aws, feedback, admin, state):
    assert feedback(sample("open")) == "ignored"  # user-42 was never known (or was erased)
    _, events = state()
    assert not [e for e in events if e["pk"]["S"] == f"C#{CONTACT}"]
    assert admin(CONTACT)[0] == 404


def test_the_reputation_alarm_pauses_marketing_sends_and_ok_does_not_resume_them(aws, feedback, metrics):
    assert feedback(sample("alarm")) == "paused"
    paused = pause(aws)
    assert paused is not None and paused.reason.startswith("complaint_rate")
    ok = sample("alarm")
    ok["detail"]["state"]["value"] = "OK"
    assert feedback(ok) == "ignored"
    assert pause(aws) == paused
    assert metrics["SendingPaused"] == 1


# --- the admin's switches: the pause and the suppression list ------------------------------------------


def test_an_administrator_sees_the_pause_and_resumes_sending(aws, feedback):
    from tests.integration.conftest import call_admin

    assert call_admin("GET", "/admin/delivery")[1] == {"paused": False, "reason": None, "since": None}
    feedback(sample("alarm"))
    status, state, _ = call_admin("GET", "/admin/delivery")
    assert status == 200 and state["paused"] is True
    assert state["reason"] == "complaint_rate: alarm Lifecycle-ComplaintRate"
    assert state["since"].startswith("2026-11-23T15:00:00")
    assert call_admin("POST", "/admin/delivery/resume")[:2] == (
        200,
        {"paused": False, "reason": None, "since": None},
    )
    assert pause(aws) is None
    assert call_admin("POST", "/admin/delivery/resume")[0] == 200, "resuming twice is harmless"


def test_an_administrator_suppresses_an_address_and_looks_it_up(aws):
    from tests.integration.conftest import call_admin

    def lookup(channel: str, address: str):
        parameters = {"channel": channel, "address": address}
        return call_admin("GET", "/admin/suppressions/{channel}/{address}", parameters)

    assert lookup("email", "ann%40example.com")[1] == {
        "channel": "email",
        "suppressed": False,
        "reason": None,
    }
    entry = {"channel": "email", "address": "Ann@Example.com", "reason": "asked by phone"}
    status, body, _ = call_admin("PUT", "/admin/suppressions", body=entry)
    assert (status, body) == (200, {"channel": "email", "suppressed": True, "reason": "asked by phone"})
    assert lookup("email", "ann%40example.com")[1]["reason"] == "asked by phone"
    assert suppressions(aws).suppressed("email", "ann@example.com") == "asked by phone", "delivery sees it"
    sms = {"channel": "sms", "address": "+48 600 100 200"}
    assert call_admin("PUT", "/admin/suppressions", body=sms)[1]["reason"] == "admin"
    assert lookup("sms", "+48600100200")[1]["suppressed"] is True
    for bad, field in (
        ({"channel": "fax", "address": "x@example.com"}, "channel"),
        ({"channel": "email", "address": "not an address"}, "address"),
        ({"channel": "email", "address": "a@example.com", "extra": 1}, "extra"),
    ):
        status, body, _ = call_admin("PUT", "/admin/suppressions", body=bad)
        assert status == 400 and body["code"] == "invalid_suppression" and body["message"].startswith(field)
    assert lookup("fax", "x")[0] == 400
