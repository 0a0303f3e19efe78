"""The delivery use case on the shared fakes of its ports and the real template rendering: each send
exactly once (a repeated batch, a failure before the send, a failure after it), the checks, the caps,
quiet hours across DST, webhooks, and the email as it leaves (RFC 8058 headers, footer, links)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest

from shared.clock import FixedClock
from shared.contacts.identity import ContactId
from shared.delivery.consent import ConsentFact, ConsentRecord
from shared.delivery.ledger import CLAIM_LEASE_SECONDS, SendRecord
from shared.delivery.policy import Caps, QuietHours, SendingPolicy
from shared.delivery.ports import ProviderRefused, Recipient, SendingPause
from shared.delivery.requests import DeliveryRequest
from shared.delivery.templates import EmailTemplate, TemplateRendering, template_context
from shared.delivery.tokens import verify as verify_token
from shared.delivery.webhooks import receiver_key
from shared.delivery.webhooks import verify as verify_webhook
from shared.errors import DependencyUnavailable, InvalidRequest
from shared.usecases.delivery import (
    Delivered,
    Delivering,
    RetryLater,
    deliver,
    deliver_message,
)
from tests.conftest import EVENTS, Context
from tests.contract.helpers import entries
from tests.fakes import (
    CountingTelemetry,
    MemoryContactStore,
    MemoryDeliveryControl,
    MemoryDeliveryQueue,
    MemoryEngagementTimes,
    MemoryFrequencyCaps,
    MemoryMailer,
    MemoryProfile,
    MemoryRecipients,
    MemorySendLedger,
    MemorySuppressions,
    MemoryTemplateRepository,
    MemoryTexter,
    MemoryWebhookPoster,
    StaticSecret,
)

WARSAW = ZoneInfo("Europe/Warsaw")
#: a Wednesday, 12:00 in Warsaw
NOON = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)
BASE_URL = "https://api.shop.example"
SECRET = b"test-delivery-secret"
ANN = ContactId.user("ann")
GRANTED = ConsentRecord(granted=ConsentFact(source="backend", at=datetime(2026, 1, 1, tzinfo=UTC)))


class Crash(BaseException):
    """The function dying (a timeout, the runtime killed): nothing after it runs, not even ``except
    Exception`` blocks."""


# --- the shared fakes, with the faults these tests inject ---------------------------------------------


class FaultyLedger(MemorySendLedger):
    """The send ledger fake whose ``complete`` raises these first, in turn (``Crash`` to die there)."""

    def __init__(self) -> None:
        super().__init__()
        self.complete_failures: list[BaseException] = []

    def complete(self, request: DeliveryRequest, provider_id: str, now: datetime) -> None:
        if self.complete_failures:
            raise self.complete_failures.pop(0)
        super().complete(request, provider_id, now)


class FlakyRecipients(MemoryRecipients):
    """The recipients fake whose next ``failures`` reads fail (the contacts table throttled)."""

    def __init__(self, profiles: MemoryContactStore) -> None:
        super().__init__(profiles)
        self.failures = 0

    def recipient(self, contact_id: str) -> Recipient | None:
        if self.failures:
            self.failures -= 1
            raise DependencyUnavailable("the contacts table throttled")
        return super().recipient(contact_id)


@dataclass
class World:
    clock: FixedClock = field(default_factory=lambda: FixedClock(NOON))
    contacts: MemoryContactStore = field(default_factory=MemoryContactStore)
    ledger: FaultyLedger = field(default_factory=FaultyLedger)
    suppressions: MemorySuppressions = field(default_factory=MemorySuppressions)
    caps: MemoryFrequencyCaps = field(default_factory=MemoryFrequencyCaps)
    control: MemoryDeliveryControl = field(default_factory=MemoryDeliveryControl)
    texter: MemoryTexter = field(default_factory=MemoryTexter)
    webhooks: MemoryWebhookPoster = field(default_factory=MemoryWebhookPoster)
    templates: MemoryTemplateRepository = field(default_factory=MemoryTemplateRepository)
    queue: MemoryDeliveryQueue = field(default_factory=MemoryDeliveryQueue)
    telemetry: CountingTelemetry = field(default_factory=CountingTelemetry)
    #: what each render was given (the real ``template_context``'s answers)
    contexts: list[dict[str, Any]] = field(default_factory=list)
    time_left: float = 25.0
    sender: str | None = "news@shop.example"

    def __post_init__(self) -> None:
        self.recipients = FlakyRecipients(self.contacts)
        self.times = MemoryEngagementTimes(self.contacts)
        self.mailer = MemoryMailer(clock=self.clock)
        self.renderer = TemplateRendering(self.templates)

    def template_context(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        context = template_context(*args, **kwargs)
        self.contexts.append(context)
        return context

    @property
    def deps(self) -> Delivering:
        return Delivering(
            clock=self.clock,
            ledger=self.ledger,
            recipients=self.recipients,
            suppressions=self.suppressions,
            caps=self.caps,
            control=self.control,
            mailer=self.mailer,
            texter=self.texter,
            webhooks=self.webhooks,
            secrets=StaticSecret(SECRET),
            renderer=self.renderer,
            template_context=self.template_context,
            times=self.times,
            redeliveries=self.queue,
            telemetry=self.telemetry,
            policy=SendingPolicy(
                quiet=QuietHours(21, 8),
                double_opt_in=frozenset({"newsletter"}),
                caps={"email": Caps(per_day=2, per_week=3), "sms": Caps(per_day=1, per_week=3)},
            ),
            sender=self.sender,
            postal_address="Shop Ltd, 1 Main St, Springfield",
            public_base_url=BASE_URL,
            link_days=60,
            sms_max_segments=2,
        )

    def deliver(self, request: DeliveryRequest) -> Delivered:
        return deliver(request, self.deps, lambda: self.time_left)

    def entry(self, request: DeliveryRequest) -> SendRecord:
        found = self.ledger.record(request.id)
        assert found is not None
        return found

    def status(self, request: DeliveryRequest) -> tuple[str, str | None]:
        entry = self.entry(request)
        return entry.status, entry.reason

    def queued_again(self) -> list[DeliveryRequest]:
        """What the timer function takes from the ledger's due index now, to queue again."""
        now = self.clock.now()
        taken = [
            self.ledger.take_deferred(contact, key, now, now + timedelta(minutes=5))
            for contact, key in self.ledger.due(now)
        ]
        return [r for r in taken if r is not None]

    def ann(self, **fields: Any) -> None:
        """Ann's profile as the contacts table holds it (an address or the time zone None: no such trait)."""
        values = {
            "email": "ann@example.com",
            "phone": "+48600100200",
            "timezone": "Europe/Warsaw",
            "traits": {"first_name": "Ann"},
            "consent": {"email": GRANTED, "sms": GRANTED},
            **fields,
        }
        traits = {
            **{k: values[k] for k in ("email", "phone", "timezone") if values[k] is not None},
            **values["traits"],
        }
        self.contacts.profiles[ANN] = MemoryProfile(
            traits=traits, consent={c: r.model_dump() for c, r in values["consent"].items()}
        )

    def engaged_at(self, *times: datetime) -> None:
        """Ann's events, stated at these times, in the event log (as recording appends them)."""
        calls = [
            {"type": "page", "userId": "ann", "messageId": f"p{n}", "timestamp": at.isoformat()}
            for n, at in enumerate(times)
        ]
        self.contacts.append(entries(ANN, *calls, at=self.clock.now()))


@pytest.fixture
def world() -> World:
    found = World()
    found.ann()
    return found


def request(step: int = 0, channel: str = "email", occurrence: str = "o", **fields: Any) -> DeliveryRequest:
    content: dict[str, Any] = (
        {"subject": "Hi", "text": "Hello", "html": "<p>Hello</p>"} if channel == "email" else {}
    )
    if channel == "sms":
        content = {"text": "Your code BACK10 is waiting"}
    if channel == "webhook":
        content = {"url": "https://hooks.example/lead", "body": {"order": "o-1"}}
    return DeliveryRequest(
        **{
            "id": f"user_id:ann#a#{occurrence}#{step}",
            "contact_id": "user_id:ann",
            "automation": "a",
            "version": 1,
            "occurrence": occurrence,
            "step": step,
            "channel": channel,
            "at": NOON,
            **content,
            **fields,
        }
    )


# --- exactly once -----------------------------------------------------------------------------------


def test_a_repeated_batch_sends_once(world: World) -> None:
    email = request()
    assert world.deliver(email) == Delivered("sent", provider_id="mail-1")
    assert world.deliver(email) == Delivered("done")
    assert world.deliver(email) == Delivered("done")
    assert len(world.mailer.sent) == 1
    assert world.entry(email).status == "sent"
    assert world.entry(email).provider_id == "mail-1"
    assert world.telemetry.counts == {"Sent": 1, "AlreadyDone": 2}


def test_a_failure_before_the_send_leaves_it_retryable_and_the_retry_sends_once(world: World) -> None:
    email = request()
    world.mailer.fail_next(DependencyUnavailable("SES throttled"))
    with pytest.raises(DependencyUnavailable):
        world.deliver(email)
    assert world.status(email) == ("failed", "provider_unavailable")
    assert world.mailer.sent == []
    assert world.deliver(email).status == "sent"
    assert world.deliver(email).status == "done"
    assert len(world.mailer.sent) == 1
    # the caps counted the one send once, not once per attempt
    assert world.caps.counts[("user_id:ann", "email", "d:2026-06-03")] == 1
    assert world.telemetry.counts["Retried"] == 1


def test_a_failure_reading_the_contact_is_retried_without_sending(world: World) -> None:
    email = request()
    world.recipients.failures = 1
    with pytest.raises(DependencyUnavailable):
        world.deliver(email)
    assert world.status(email) == ("failed", "unavailable")
    assert world.deliver(email).status == "sent"
    assert len(world.mailer.sent) == 1


def test_no_provider_call_starts_with_too_little_time_left(world: World) -> None:
    email = request()
    world.time_left = 2.0
    with pytest.raises(DependencyUnavailable) as raised:
        world.deliver(email)
    assert raised.value.code == "time_left"
    assert world.status(email) == ("failed", "time_left")
    assert world.mailer.sent == [] and world.caps.counts == {}
    world.time_left = 25.0
    assert world.deliver(email).status == "sent"


def test_a_failure_after_the_provider_accepted_does_not_send_again_within_the_lease(world: World) -> None:
    """complete() keeps failing: the message went, so it is not sent back to be retried; the entry stays
    claimed and a redelivery within the lease is told to come back after it."""
    email = request()
    world.ledger.complete_failures = [DependencyUnavailable("throttled")] * 3
    assert world.deliver(email).status == "sent"
    assert world.status(email)[0] == "claimed"
    assert world.telemetry.counts["SentUnrecorded"] == 1
    world.clock.advance(timedelta(seconds=CLAIM_LEASE_SECONDS - 60))
    with pytest.raises(RetryLater) as raised:
        world.deliver(email)
    assert 55 <= raised.value.retry_after_seconds <= 61
    assert len(world.mailer.sent) == 1


def test_complete_is_retried_at_once(world: World) -> None:
    email = request()
    world.ledger.complete_failures = [DependencyUnavailable("throttled")] * 2
    assert world.deliver(email).status == "sent"
    assert world.status(email) == ("sent", None)
    assert "SentUnrecorded" not in world.telemetry.counts


def test_the_crash_window_sends_again_only_after_the_lease_and_is_counted(world: World) -> None:
    """The one window left: the provider accepted and the function died before the ledger said so."""
    email = request()
    world.ledger.complete_failures = [Crash()]
    with pytest.raises(Crash):
        world.deliver(email)
    assert len(world.mailer.sent) == 1
    world.clock.advance(timedelta(seconds=180))  # the queue's visibility timeout
    with pytest.raises(RetryLater):
        world.deliver(email)
    assert len(world.mailer.sent) == 1
    world.clock.advance(timedelta(seconds=CLAIM_LEASE_SECONDS))
    assert world.deliver(email).status == "sent"
    assert len(world.mailer.sent) == 2
    assert world.telemetry.counts["SendsInDoubt"] == 1


def test_held_out_requests_are_recorded_and_never_sent(world: World) -> None:
    held = request(status="held_out", reason="control group")
    assert world.deliver(held) == Delivered("held_out", "control group")
    assert world.status(held) == ("held_out", "control group")
    assert world.mailer.sent == []


# --- checks -----------------------------------------------------------------------------------------


def test_no_consent_and_double_opt_in_pending_skip_with_their_reason(world: World) -> None:
    world.ann(consent={})
    assert world.deliver(request(0)) == Delivered("skipped", "no_consent")
    pending = ConsentRecord(granted=ConsentFact(source="newsletter", at=NOON - timedelta(days=1)))
    world.ann(consent={"email": pending})
    assert world.deliver(request(1)) == Delivered("skipped", "consent_pending")
    confirmed = pending.model_copy(update={"confirmed_at": NOON - timedelta(hours=1)})
    world.ann(consent={"email": confirmed})
    assert world.deliver(request(2)).status == "sent"
    assert world.status(request(0)) == ("skipped", "no_consent")
    assert world.status(request(1)) == ("skipped", "consent_pending")
    assert world.telemetry.counts["Skipped.no_consent"] == 1
    # skipped is final: the same request again is done
    world.ann()
    assert world.deliver(request(0)) == Delivered("done")
    assert len(world.mailer.sent) == 1


def test_suppressed_addresses_are_skipped(world: World) -> None:
    world.suppressions.suppress("email", "ann@example.com", "hard_bounce", NOON)
    assert world.deliver(request()) == Delivered("skipped", "suppressed:hard_bounce")
    assert world.telemetry.counts["Skipped.suppressed"] == 1
    assert world.mailer.sent == []


def test_unknown_contacts_and_missing_addresses_are_skipped(world: World) -> None:
    assert (
        world.deliver(request(contact_id="user_id:bob", id="user_id:bob#a#o#0")).reason == "unknown_contact"
    )
    world.ann(phone=None)
    assert world.deliver(request(channel="sms")).reason == "no_address"


def test_the_daily_cap_skips_across_automations(world: World) -> None:
    assert world.deliver(request(0, occurrence="x")).status == "sent"
    assert world.deliver(request(0, occurrence="y", automation="b")).status == "sent"
    third = request(0, occurrence="z")
    assert world.deliver(third) == Delivered("skipped", "frequency_cap")
    assert world.status(third) == ("skipped", "frequency_cap")
    assert len(world.mailer.sent) == 2
    # the next local day has room again
    world.clock.advance(timedelta(days=1))
    assert world.deliver(request(1, occurrence="z")).status == "sent"


def test_the_weekly_cap_skips_until_monday(world: World) -> None:
    # Wednesday, Thursday, Friday: three emails, the week's limit
    for day in range(3):
        assert world.deliver(request(day, occurrence="w")).status == "sent"
        world.clock.advance(timedelta(days=1))
    # Saturday: the day has room, the week does not
    assert world.deliver(request(3, occurrence="w")) == Delivered("skipped", "frequency_cap")
    world.clock.advance(timedelta(days=2))  # Monday
    assert world.deliver(request(4, occurrence="w")).status == "sent"
    assert len(world.mailer.sent) == 4


def test_sms_has_its_own_caps(world: World) -> None:
    assert world.deliver(request(0, channel="sms")).status == "sent"
    assert world.deliver(request(1, channel="sms")) == Delivered("skipped", "frequency_cap")
    assert world.deliver(request(2)).status == "sent"


def test_quiet_hours_defer_and_land_in_the_window_across_a_dst_change(world: World) -> None:
    """Saturday 24 October 2026, 22:30 in Warsaw; the clocks go back that night: 08:00 CET is 07:00 UTC."""
    world.clock.at = datetime(2026, 10, 24, 20, 30, tzinfo=UTC)
    email = request()
    decided = world.deliver(email)
    assert decided == Delivered("deferred", "quiet_hours", until=datetime(2026, 10, 25, 7, 0, tzinfo=UTC))
    assert world.status(email) == ("deferred", "quiet_hours")
    assert world.mailer.sent == [] and world.queued_again() == []
    # the same message again before it is due: the deferral holds it, nothing is sent, nothing fails
    assert world.deliver(email).status == "done"
    # the timer queues it again when it is due: then it goes, at 08:00 local
    world.clock.at = decided.until
    (again,) = world.queued_again()
    assert again == email
    assert world.deliver(again).status == "sent"
    sent_at = world.entry(email).sent_at
    assert sent_at is not None and sent_at.astimezone(WARSAW).hour == 8
    assert len(world.mailer.sent) == 1


def test_the_best_hour_defers_once_to_the_contacts_hour(world: World) -> None:
    world.engaged_at(*(datetime(2026, 5, d, 17, 5, tzinfo=UTC) for d in range(1, 8)))  # 19:05 in Warsaw
    email = request(best_hour=True)
    decided = world.deliver(email)
    assert decided == Delivered("deferred", "best_hour", until=datetime(2026, 6, 3, 17, 0, tzinfo=UTC))
    # what the timer queues again is not deferred for the best hour again, even a little late
    world.clock.at = datetime(2026, 6, 3, 18, 2, tzinfo=UTC)
    (again,) = world.queued_again()
    assert again.best_hour is False and again.id == email.id
    assert world.deliver(again).status == "sent"


def test_the_pause_skips_marketing_but_not_transactional(world: World) -> None:
    world.control.set_pause(SendingPause(reason="complaint rate over 0.1%", at=NOON))
    assert world.deliver(request(0)) == Delivered("skipped", "sending_paused")
    assert world.deliver(request(1, purpose="transactional")).status == "sent"


def test_transactional_bypasses_consent_caps_and_quiet_hours_not_suppression(world: World) -> None:
    world.ann(consent={})
    world.clock.at = datetime(2026, 6, 3, 22, 0, tzinfo=UTC)  # midnight in Warsaw
    for step in range(4):
        assert world.deliver(request(step, purpose="transactional")).status == "sent"
    assert world.caps.counts == {}
    assert all(not e.headers for e in world.mailer.sent)
    world.suppressions.suppress("email", "ann@example.com", "complaint", NOON)
    assert world.deliver(request(9, purpose="transactional")) == Delivered("skipped", "suppressed:complaint")


def test_emails_without_a_sender_are_skipped(world: World) -> None:
    world.sender = None
    assert world.deliver(request()) == Delivered("skipped", "no_sender")


# --- what is sent -----------------------------------------------------------------------------------


def test_the_email_carries_one_click_unsubscribe_headers_and_the_footer(world: World) -> None:
    email = request()
    world.deliver(email)
    (sent,) = world.mailer.sent
    assert (sent.sender, sent.to, sent.subject) == ("news@shop.example", "ann@example.com", "Hi")
    assert sent.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = sent.headers["List-Unsubscribe"].removeprefix("<").removesuffix(">")
    parsed = urlparse(url)
    assert (parsed.scheme, parsed.netloc, parsed.path) == ("https", "api.shop.example", "/unsubscribe")
    claims = verify_token(SECRET, parse_qs(parsed.query)["t"][0], "unsubscribe", NOON)
    assert (claims.contact_id, claims.channel) == ("user_id:ann", "email")
    assert claims.expires == NOON + timedelta(days=60)
    assert sent.text is not None and url in sent.text and "Shop Ltd, 1 Main St, Springfield" in sent.text
    assert sent.html is not None and f'href="{url}"' in sent.html
    assert "ann@example.com" not in json.dumps(world.entry(email).model_dump(mode="json"))


def test_a_template_is_rendered_with_the_contact_values_and_links(world: World) -> None:
    world.templates.save(
        EmailTemplate(
            id="coupon", subject="{{ code }} for you", text="Use {{ code }}. Leave: {{ unsubscribe_url }}"
        ),
        NOON,
        None,
    )
    world.deliver(request(template="coupon", values={"code": "BACK10"}, subject=None, text=None, html=None))
    (context,) = world.contexts
    # the traits as the profile holds them when the email is sent
    assert context["contact"]["traits"] == {
        "email": "ann@example.com",
        "phone": "+48600100200",
        "timezone": "Europe/Warsaw",
        "first_name": "Ann",
    }
    assert context["code"] == "BACK10" and context["confirm_url"] is None
    (sent,) = world.mailer.sent
    assert sent.subject == "BACK10 for you"
    # the template shows the link: no second one in the footer
    assert sent.text is not None and sent.text.count(context["unsubscribe_url"]) == 1


def test_a_consent_confirmation_carries_its_confirm_link_and_no_unsubscribe(world: World) -> None:
    world.ann(consent={})
    # stored, it replaces the built-in one
    world.templates.save(
        EmailTemplate(
            id="consent-confirmation",
            subject="Please confirm your subscription",
            text="Confirm: {{ confirm_url }}",
        ),
        NOON,
        None,
    )
    confirmation = request(
        template="consent-confirmation",
        values={"confirm": "sms"},
        purpose="transactional",
        subject=None,
        text=None,
        html=None,
    )
    assert world.deliver(confirmation).status == "sent"
    (context,) = world.contexts
    assert context["unsubscribe_url"] is None
    parsed = urlparse(context["confirm_url"])
    assert parsed.path == "/consent/confirm"
    claims = verify_token(SECRET, parse_qs(parsed.query)["t"][0], "confirm", NOON)
    assert (claims.contact_id, claims.channel) == ("user_id:ann", "sms")
    (sent,) = world.mailer.sent
    assert sent.headers == {} and sent.text == f"Confirm: {context['confirm_url']}"


def test_a_template_that_fails_to_render_is_skipped_with_the_reason(world: World) -> None:
    assert world.deliver(request(template="missing", subject=None, text=None, html=None)) == Delivered(
        "skipped", "render_failed:unknown template missing"
    )
    assert world.telemetry.counts["Skipped.render_failed"] == 1


def test_a_provider_refusal_is_skipped_not_retried(world: World) -> None:
    world.mailer.fail_next(ProviderRefused("rejected"))
    assert world.deliver(request()) == Delivered("skipped", "rejected")
    assert world.deliver(request()) == Delivered("done")


def test_sms_within_its_segments_is_sent_and_longer_is_skipped(world: World) -> None:
    assert world.deliver(request(0, channel="sms")).status == "sent"
    assert world.texter.sent == [("+48600100200", "Your code BACK10 is waiting")]
    world.caps.counts.clear()
    too_long = request(1, channel="sms", text="ż" * 135)  # three UCS-2 segments
    assert world.deliver(too_long) == Delivered("skipped", "sms_too_long")
    world.texter.opted_out_numbers.add("+48600100200")
    assert world.deliver(request(2, channel="sms")) == Delivered("skipped", "opted_out")


# --- webhooks ---------------------------------------------------------------------------------------


def test_a_webhook_is_signed_and_its_2xx_completes_the_send(world: World) -> None:
    hook = request(channel="webhook")
    world.webhooks.answers = [204]
    assert world.deliver(hook) == Delivered("sent", provider_id="204")
    ((url, body, headers, timeout),) = [(p.url, p.body, p.headers, p.timeout) for p in world.webhooks.posted]
    assert url == "https://hooks.example/lead" and timeout == 10.0
    assert json.loads(body) == {
        "order": "o-1",
        "lifecycle": {
            "delivery_id": hook.id,
            "contact_id": "user_id:ann",
            "automation": "a",
            "occurrence": "o",
        },
    }
    assert headers["X-Lifecycle-Delivery"] == hook.id
    assert verify_webhook(receiver_key(SECRET), headers, body, NOON)
    assert not verify_webhook(SECRET, headers, body, NOON)


def test_a_webhook_is_not_subject_to_consent_caps_or_quiet_hours(world: World) -> None:
    world.ann(consent={}, email=None, phone=None)
    world.clock.at = datetime(2026, 6, 3, 22, 0, tzinfo=UTC)
    for step in range(4):
        assert world.deliver(request(step, channel="webhook")).status == "sent"


@pytest.mark.parametrize("status", [400, 404, 410, 422])
def test_a_webhooks_4xx_is_final(world: World, status: int) -> None:
    world.webhooks.answers = [status]
    assert world.deliver(request(channel="webhook")) == Delivered("skipped", f"http:{status}")


@pytest.mark.parametrize("answer", [500, 503, 408, 429, DependencyUnavailable("timed out")])
def test_a_failing_webhook_is_released_and_retried_with_backoff(
    world: World, answer: int | Exception
) -> None:
    hook = request(channel="webhook")
    world.webhooks.answers = [answer, answer, 200]
    for delay in (30, 60):
        with pytest.raises(RetryLater) as raised:
            world.deliver(hook)
        assert raised.value.retry_after_seconds == delay
        assert world.status(hook)[0] == "failed"
    assert world.deliver(hook) == Delivered("sent", provider_id="200")
    assert len(world.webhooks.posted) == 3


# --- queue messages ---------------------------------------------------------------------------------


def test_a_message_that_is_not_a_request_is_refused_without_its_values(world: World) -> None:
    body = json.dumps({"id": "x", "contact_id": "ann@example.com", "channel": "pigeon"})
    with pytest.raises(InvalidRequest) as raised:
        deliver_message(body, "receipt-1", world.deps, lambda: 25.0)
    assert "channel" in raised.value.message and "ann@example.com" not in raised.value.message
    assert raised.value.__context__ is None and raised.value.__cause__ is None
    with pytest.raises(InvalidRequest):
        deliver_message("not json", "receipt-1", world.deps, lambda: 25.0)
    assert world.telemetry.counts["InvalidRequests"] == 2


def test_a_webhook_retry_postpones_the_messages_redelivery(world: World) -> None:
    world.webhooks.answers = [503]
    body = request(channel="webhook").model_dump_json()
    with pytest.raises(RetryLater):
        deliver_message(body, "receipt-1", world.deps, lambda: 25.0)
    assert world.queue.postponed == [("receipt-1", 30)]
    # an email the provider cannot take now is postponed the same way, with its own backoff
    world.mailer.fail_next(DependencyUnavailable("SES throttled"))
    with pytest.raises(DependencyUnavailable):
        deliver_message(request().model_dump_json(), "receipt-2", world.deps, lambda: 25.0)
    assert world.queue.postponed == [("receipt-1", 30), ("receipt-2", 60)]


# --- the delivery function --------------------------------------------------------------------------

FUNCTION_ENV = {
    "CONTACTS_TABLE_NAME": "contacts",
    "EVENTS_TABLE_NAME": "events",
    "CONFIG_TABLE_NAME": "config",
    "RATES_TABLE_NAME": "rates",
    "DELIVERY_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/000000000000/delivery",
    "DELIVERY_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:000000000000:secret:delivery",
    "PUBLIC_BASE_URL": BASE_URL,
}


@pytest.fixture
def delivery_function(world: World):
    """The delivery function's handler, hosted in its own scope with the world's dependencies built."""
    from functions.delivery.handler import handler
    from shared import runtime, scope

    hosted = scope.FunctionScope("delivery", FUNCTION_ENV)
    hosted.built[runtime.delivering] = world.deps
    scope.host("functions.delivery.handler.handler", hosted)
    try:
        yield lambda event: handler(event, Context())
    finally:
        scope.unhost_all()


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m-{n}",
                "receiptHandle": f"receipt-{n}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:000000000000:delivery",
                "awsRegion": "eu-west-1",
            }
            for n, body in enumerate(bodies)
        ]
    }


def test_the_sample_batch_is_sent_once_however_often_it_arrives(world: World, delivery_function) -> None:
    sample = json.loads((EVENTS / "delivery" / "two_requests.json").read_text())
    assert delivery_function(sample) == {"batchItemFailures": []}
    assert delivery_function(sample) == {"batchItemFailures": []}
    assert len(world.mailer.sent) == 1 and len(world.texter.sent) == 1
    assert world.telemetry.counts["Sent"] == 2 and world.telemetry.counts["AlreadyDone"] == 2


def test_failed_messages_are_reported_alone_and_a_webhooks_is_postponed(
    world: World, delivery_function
) -> None:
    world.webhooks.answers = [503]
    event = sqs_event(
        request(0).model_dump_json(),
        '{"id": "x", "contact_id": "ann@example.com"}',
        request(1, channel="webhook").model_dump_json(),
    )
    assert delivery_function(event) == {
        "batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-2"}]
    }
    assert len(world.mailer.sent) == 1
    assert world.queue.postponed == [("receipt-2", 30)]
    # every message failing is still a partial response (each retried on its own), not an error
    assert delivery_function(sqs_event("{}")) == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}


def test_a_refusal_that_cannot_be_recorded_is_released_not_left_claimed(world: World) -> None:
    email = request()
    world.mailer.fail_next(ProviderRefused("rejected"))
    settle = world.ledger.settle

    def failing(*args: Any) -> None:
        raise DependencyUnavailable("throttled")

    world.ledger.settle = failing  # type: ignore[method-assign]
    with pytest.raises(DependencyUnavailable):
        world.deliver(email)
    assert world.status(email) == ("failed", "unavailable")
    world.ledger.settle = settle  # type: ignore[method-assign]
    assert world.deliver(email).status == "sent"


# --- issue 13: campaigns --------------------------------------------------------------------------------


def campaign_world(world: World):
    from dataclasses import replace as replaced

    from shared.automations.model import Conversion
    from shared.campaigns.results import exposure
    from tests.fakes import MemoryCampaignStates, MemoryCampaignStatus, MemoryExposures

    results, states = MemoryExposures(), MemoryCampaignStates()
    results.expose([exposure("user_id:ann", "campaign:dec", "A", NOON, Conversion(), "email")])
    deps = replaced(world.deps, results=results, campaigns=MemoryCampaignStatus(states))
    sale = request(occurrence="A", id="user_id:ann#campaign:dec#A#0", automation="campaign:dec")
    return deps, results, states, sale


def test_a_campaign_send_counts_once_for_its_arm(world: World) -> None:
    deps, results, _, sale = campaign_world(world)
    assert deliver(sale, deps, lambda: 25.0).status == "sent"
    assert deliver(sale, deps, lambda: 25.0).status == "done"
    assert results.counts("campaign:dec")["A"].sent == 1
    assert deliver(request(), deps, lambda: 25.0).status == "sent"  # an automation's: not counted
    assert results.counts("campaign:dec")["A"].sent == 1


def test_a_send_whose_count_failed_is_counted_when_the_message_comes_back(world: World) -> None:
    deps, results, _, sale = campaign_world(world)
    results.unavailable = True
    with pytest.raises(DependencyUnavailable):
        deliver(sale, deps, lambda: 25.0)
    assert world.entry(sale).status == "sent" and len(world.mailer.sent) == 1
    results.unavailable = False
    assert deliver(sale, deps, lambda: 25.0).status == "done"
    assert len(world.mailer.sent) == 1
    assert results.counts("campaign:dec")["A"].sent == 1


def test_a_cancelled_campaigns_request_is_skipped(world: World) -> None:
    from shared.campaigns.model import CampaignState

    deps, results, states, sale = campaign_world(world)
    states.create(CampaignState(campaign_id="dec", status="sending", version=1, send_at=NOON))
    states.write(states.state("dec").model_copy(update={"status": "cancelled"}), 0)
    assert deliver(sale, deps, lambda: 25.0) == Delivered("skipped", "campaign_cancelled")
    assert world.status(sale) == ("skipped", "campaign_cancelled")
    assert world.mailer.sent == [] and results.counts("campaign:dec")["A"].sent == 0
