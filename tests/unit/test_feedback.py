"""Feedback: SES's events and the reputation alarms read into models, and acted on exactly once.

The samples in ``events/feedback/`` are the shapes SES and CloudWatch publish on EventBridge; the use
case runs here on the fakes (the integration tests run it through the deployed function on moto).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.clock import FixedClock
from shared.contacts.identity import ContactId
from shared.delivery.feedback import CONTACT_TAG, SEND_TAG, encode_tag
from shared.delivery.mail_events import (
    AlarmChange,
    BusEvent,
    MailEvent,
    automation_of,
    feedback_message_id,
)
from shared.delivery.ports import SendingPause
from shared.scoring.decay import Decay
from shared.tracking.behaviours import Behaviour
from shared.tracking.messages import parse_calls
from shared.tracking.wire import Limits
from shared.usecases.feedback import Feedback, on_feedback
from tests.conftest import EVENTS
from tests.fakes import (
    CountingTelemetry,
    MemoryContactStore,
    MemoryDeliveryControl,
    MemorySuppressions,
    StaticRules,
)

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
#: the contact and send the samples' tags name
CONTACT = ContactId.user("user-42")
SEND = "user_id:user-42#win-back#2026-11-23#0"
ADDRESS = "recipient@example.com"


def sample(name: str) -> dict:
    return json.loads((EVENTS / "feedback" / f"{name}.json").read_text())


def detail(name: str) -> MailEvent:
    return MailEvent.model_validate(BusEvent.model_validate(sample(name)).detail)


# --- reading the events ----------------------------------------------------------------------------------


def test_the_samples_read_into_their_parts_with_our_tags_decoded():
    bounce = detail("bounce_hard")
    assert bounce.bounce is not None and bounce.bounce.bounce_type == "Permanent"
    assert [r.address for r in bounce.bounce.bounced_recipients] == [ADDRESS]
    assert bounce.contact_id == str(CONTACT) and bounce.send_id == SEND
    assert detail("bounce_soft").bounce.bounce_type == "Transient"  # type: ignore[union-attr]
    assert [r.address for r in detail("complaint").complaint.complained_recipients] == [ADDRESS]  # type: ignore[union-attr]
    assert detail("open").open.timestamp == datetime(2026, 11, 23, 12, 5, tzinfo=UTC)  # type: ignore[union-attr]
    click = detail("click").click
    assert click is not None and click.link.startswith("https://shop.example/offers")


def test_an_address_with_a_display_name_is_read_bare():
    event = sample("bounce_hard")
    event["detail"]["bounce"]["bouncedRecipients"] = [{"emailAddress": "Ann <Ann@Example.com>"}]
    read = MailEvent.model_validate(event["detail"])
    assert [r.address for r in read.bounce.bounced_recipients] == ["Ann@Example.com"]  # type: ignore[union-attr]


def test_a_tag_that_is_not_ours_reads_as_absent():
    event = sample("open")["detail"]
    event["mail"]["tags"][CONTACT_TAG] = ["%%%not-base64%%%"]
    del event["mail"]["tags"][SEND_TAG]
    read = MailEvent.model_validate(event)
    assert read.contact_id is None and read.send_id is None


def test_the_alarm_sample_watches_the_complaint_rate_and_fires():
    change = AlarmChange.model_validate(sample("alarm")["detail"])
    assert change.reputation == "complaint_rate" and change.firing
    assert change.state.timestamp == datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def test_an_alarm_on_another_metric_is_not_a_reputation_alarm():
    event = sample("alarm")["detail"]
    event["configuration"]["metrics"][0]["metricStat"]["metric"] = {
        "namespace": "AWS/EC2",
        "name": "CPUUtilization",
    }
    assert AlarmChange.model_validate(event).reputation is None


def test_the_derived_message_id_is_stable_per_ses_event_and_differs_between_events():
    at = datetime(2026, 11, 23, 12, 5, tzinfo=UTC)
    one = feedback_message_id("ses-1", "Open", at)
    assert one == feedback_message_id("ses-1", "Open", at.astimezone(tz=None))  # the same instant
    assert one.startswith("ses-") and len(one) == 44
    others = {
        feedback_message_id("ses-1", "Open", at + timedelta(seconds=1)),
        feedback_message_id("ses-2", "Open", at),
        feedback_message_id("ses-1", "Click", at, "https://a.example/"),
        feedback_message_id("ses-1", "Click", at, "https://b.example/"),
    }
    assert one not in others and len(others) == 4


@pytest.mark.parametrize(
    ("send_id", "contact", "automation"),
    [
        ("user_id:ann#win-back#2026-11-23#0", "user_id:ann", "win-back"),
        ("user_id:a#b#c#win-back#occ#1", "user_id:a#b#c", "win-back"),  # a contact id with '#'
        ("user_id:bob#win-back#occ#1", "user_id:ann", None),  # someone else's send
    ],
)
def test_the_automation_is_read_from_the_send_id(send_id, contact, automation):
    assert automation_of(send_id, contact) == automation


# --- acting on them --------------------------------------------------------------------------------------


@pytest.fixture
def world():
    store = MemoryContactStore()
    identify = {
        "type": "identify",
        "userId": CONTACT.value,
        "messageId": "id-1",
        "traits": {"email": ADDRESS},
    }
    from shared.usecases.recording import record

    record(parse_calls("/v1/identify", identify, received_at=NOW, limits=Limits()), store, NOW)
    store.deliver_events()
    deps = Feedback(
        clock=FixedClock(NOW),
        suppressions=MemorySuppressions(),
        control=MemoryDeliveryControl(),
        contacts=store,
        log=store,
        rules=StaticRules(),
        decay=Decay(),
        telemetry=CountingTelemetry(),
    )
    return store, deps


def behaviours(store: MemoryContactStore) -> list[str]:
    return sorted(item.event.behaviour.value for item in store.log[CONTACT].values())


def test_a_hard_bounce_suppresses_the_address_and_a_soft_one_does_not(world):
    _, deps = world
    assert on_feedback(sample("bounce_soft"), deps) == "counted"
    assert deps.suppressions.suppressed("email", ADDRESS) is None
    assert on_feedback(sample("bounce_hard"), deps) == "suppressed"
    assert deps.suppressions.suppressed("email", " Recipient@Example.com") == "hard_bounce"
    assert deps.telemetry.counts["BouncesTransient"] == 1 and deps.telemetry.counts["BouncesPermanent"] == 1


def test_a_complaint_suppresses_and_records_the_revocation_once(world):
    store, deps = world
    assert on_feedback(sample("complaint"), deps) == "suppressed"
    assert on_feedback(sample("complaint"), deps) == "suppressed"  # redelivered
    assert deps.suppressions.suppressed("email", ADDRESS) == "complaint"
    consent = [i.event for i in store.log[CONTACT].values() if i.event.behaviour == Behaviour.CONSENT_CHANGED]
    assert len(consent) == 1
    assert dict(consent[0].properties) == {
        "email_opt_in": False,
        "source": "complaint",
        "email_id": SEND,
        "campaign_id": "win-back",
    }
    assert consent[0].stated_time == datetime(2026, 11, 23, 14, 30, tzinfo=UTC)


def test_an_open_and_a_click_become_scored_mailing_behaviours_once_each(world):
    store, deps = world
    assert on_feedback(sample("open"), deps) == "recorded"
    assert on_feedback(sample("click"), deps) == "recorded"
    assert on_feedback(copy.deepcopy(sample("open")), deps) == "duplicate"
    assert on_feedback(sample("click"), deps) == "duplicate"
    assert behaviours(store) == ["email_clicked_mailing", "email_opened_mailing", "identified"]
    click = next(
        i for i in store.log[CONTACT].values() if i.event.behaviour == Behaviour.EMAIL_CLICKED_MAILING
    )
    assert click.event.attributes == {"mailbox": "mailing", "campaign_id": "win-back", "email_id": SEND}
    assert click.event.properties["url"].startswith("https://shop.example/offers")
    assert [(c.rule_id, c.points) for c in click.ledger] == [("general.email_clicked_mailing", 3)]
    assert click.key.startswith("E#2026-11-23T12:06:00.000Z#ses-")
    store.deliver_events()
    assert store.profile(CONTACT).counts == {
        "identified": 1,
        "email_opened_mailing": 1,
        "email_clicked_mailing": 1,
    }
    assert deps.telemetry.counts["FeedbackDuplicate"] == 2


def test_a_second_open_of_the_same_email_is_another_behaviour(world):
    store, deps = world
    later = sample("open")
    later["detail"]["open"]["timestamp"] = "2026-11-23T18:00:00.000Z"
    on_feedback(sample("open"), deps)
    assert on_feedback(later, deps) == "recorded"
    assert behaviours(store).count("email_opened_mailing") == 2


def test_an_open_without_our_tag_or_for_an_erased_contact_is_counted_and_ignored(world):
    store, deps = world
    untagged = sample("open")
    del untagged["detail"]["mail"]["tags"][CONTACT_TAG]
    assert on_feedback(untagged, deps) == "ignored"
    stranger = sample("open")
    stranger["detail"]["mail"]["tags"][CONTACT_TAG] = [encode_tag("user_id:erased")]
    assert on_feedback(stranger, deps) == "ignored"
    assert behaviours(store) == ["identified"] and ContactId.user("erased") not in store.log
    assert (
        deps.telemetry.counts["FeedbackUntagged"] == 1
        and deps.telemetry.counts["FeedbackUnknownContact"] == 1
    )


def test_an_unreadable_event_is_counted_and_dropped(world):
    _, deps = world
    broken = sample("bounce_hard")
    del broken["detail"]["bounce"]
    assert on_feedback(broken, deps) == "ignored"
    assert on_feedback({"detail-type": "Email Opened"}, deps) == "ignored"
    assert deps.telemetry.counts["FeedbackUnreadable"] == 2


def test_the_reputation_alarm_pauses_once_and_ok_does_not_resume(world):
    _, deps = world
    assert on_feedback(sample("alarm"), deps) == "paused"
    first = deps.control.pause()
    assert first == SendingPause(
        reason="complaint_rate: alarm Lifecycle-ComplaintRate", at=datetime(2026, 11, 23, 15, tzinfo=UTC)
    )
    again = sample("alarm")
    again["detail"]["state"]["timestamp"] = "2026-11-23T16:00:00.000+0000"
    assert on_feedback(again, deps) == "counted"
    ok = sample("alarm")
    ok["detail"]["state"]["value"] = "OK"
    assert on_feedback(ok, deps) == "ignored"
    assert deps.control.pause() == first
    assert deps.telemetry.counts["SendingPaused"] == 1


def test_an_alarm_that_is_not_ours_does_not_pause(world):
    _, deps = world
    other = sample("alarm")
    other["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["name"] = "Send"
    assert on_feedback(other, deps) == "ignored"
    assert deps.control.pause() is None


# --- issue 13: a campaign email's delivery, first open and first click count for its arm ----------------


def test_a_campaign_emails_delivery_first_open_and_first_click_count_once_for_its_arm(world):
    from dataclasses import replace

    from shared.automations.model import Conversion
    from shared.campaigns.results import exposure
    from shared.delivery.feedback import SEND_TAG, encode_tag
    from tests.fakes import MemoryExposures

    _, deps = world
    results = MemoryExposures()
    results.expose(
        [exposure(str(CONTACT), "campaign:dec", "B", NOW - timedelta(days=2), Conversion(), "email")]
    )
    deps = replace(deps, results=results)

    def about_the_campaign(name: str) -> dict:
        event = sample(name)
        event["detail"]["mail"]["tags"][SEND_TAG] = [encode_tag(f"{CONTACT}#campaign:dec#B#0")]
        return event

    delivered = about_the_campaign("open")
    delivered["detail-type"], delivered["detail"]["eventType"] = "Email Delivered", "Delivery"
    delivered["detail"]["delivery"] = {"timestamp": "2026-11-23T12:01:00.000Z"}
    del delivered["detail"]["open"]
    for _ in range(2):  # every event redelivered, and a second open
        on_feedback(delivered, deps)
        on_feedback(about_the_campaign("open"), deps)
        on_feedback(about_the_campaign("click"), deps)
    counts = results.counts("campaign:dec")["B"]
    assert (counts.delivered, counts.opened, counts.clicked) == (1, 1, 1)
    assert deps.telemetry.counts["CampaignFeedbackCounted"] == 3
    on_feedback(sample("open"), deps)  # an automation's email: not a campaign's
    assert results.counts("campaign:dec")["B"].opened == 1
