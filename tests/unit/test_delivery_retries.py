"""Delivery's retries, on the shared fakes: provider calls made once (no SDK retries) and a lost answer
treated as *in doubt* (the claim kept for its lease), "not now" postponed with a growing delay that the
queue's receives cover, an erased contact's partition never recreated by a late request, and the
frequency caps taken once per send however often it is retried."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from shared.clock import FixedClock
from shared.contacts.identity import ContactId
from shared.delivery.consent import ConsentFact, ConsentRecord
from shared.delivery.ledger import CLAIM_LEASE_SECONDS, SendRecord
from shared.delivery.ports import OutgoingEmail, ProviderInDoubt, Recipient
from shared.delivery.requests import DeliveryRequest
from shared.delivery.webhooks import retry_delay
from shared.errors import DependencyUnavailable
from shared.usecases.delivery import (
    PROVIDER_MARGIN_SECONDS,
    Delivered,
    RetryLater,
    deliver,
    deliver_message,
)
from tests.fakes import (
    MemoryContactStore,
    MemoryDeliveryQueue,
    MemoryProfile,
    MemoryRecipients,
    MemorySendLedger,
)
from tests.unit.test_delivery_use_case import World as DeliveryWorld

#: a Wednesday, 12:00 in Warsaw
NOON = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)
ANN = ContactId.user("ann")
GRANTED = ConsentRecord(granted=ConsentFact(source="backend", at=datetime(2026, 1, 1, tzinfo=UTC)))
LEASE = timedelta(seconds=CLAIM_LEASE_SECONDS)
REGION = "eu-west-1"
SENDER = "news@shop.example"


class ErasingRecipients(MemoryRecipients):
    """Recipients whose read races an erasure: the profile is read, then the contact's partition (its
    ledger entries too) is deleted before the use case writes again."""

    def __init__(self, contacts: MemoryContactStore, ledger: MemorySendLedger) -> None:
        super().__init__(contacts)
        self.ledger = ledger
        self.erase_after_read = False

    def recipient(self, contact_id: str) -> Recipient | None:
        found = super().recipient(contact_id)
        if self.erase_after_read:
            erased = [k for k, e in self.ledger.entries.items() if e.record.contact_id == contact_id]
            for key in erased:
                del self.ledger.entries[key]
        return found


@dataclass
class World(DeliveryWorld):
    """The delivery use case's world (shared fakes, real rendering), with Ann reachable on both channels
    and a recipients port that can race an erasure."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.recipients = ErasingRecipients(self.contacts, self.ledger)
        self.contacts.profiles[ANN] = MemoryProfile(
            traits={"email": "ann@example.com", "phone": "+48600100200", "timezone": "Europe/Warsaw"},
            consent={"email": GRANTED.model_dump(), "sms": GRANTED.model_dump()},
        )

    @property
    def redeliveries(self) -> MemoryDeliveryQueue:
        return self.queue

    def deliver(self, request: DeliveryRequest) -> Delivered:
        return deliver(request, self.deps, lambda: self.time_left)

    def message(self, request: DeliveryRequest, receipt: str = "receipt-1") -> Delivered:
        """The request as a queue message (a ``RetryLater`` postpones it, then is raised)."""
        return deliver_message(request.model_dump_json(), receipt, self.deps, lambda: self.time_left)

    def entry(self, request: DeliveryRequest) -> SendRecord | None:
        return self.ledger.record(request.id)

    def caps_counted(self, channel: str = "email") -> int:
        return self.caps.counts.get((str(ANN), channel, "d:2026-06-03"), 0)


@pytest.fixture
def world() -> World:
    return World()


def request(
    step: int = 0, channel: str = "email", contact: ContactId = ANN, **fields: Any
) -> DeliveryRequest:
    content: dict[str, Any] = {"subject": "Hi", "text": "Hello"}
    if channel == "sms":
        content = {"text": "Your code BACK10 is waiting"}
    return DeliveryRequest(
        **{
            "id": f"{contact}#a#o#{step}",
            "contact_id": str(contact),
            "automation": "a",
            "version": 1,
            "occurrence": "o",
            "step": step,
            "channel": channel,
            "at": NOON,
            **content,
            **fields,
        }
    )


# --- 1. a provider call is made once; a lost answer is in doubt ---------------------------------------


@pytest.mark.parametrize("channel", ["email", "sms"])
def test_a_provider_call_in_doubt_keeps_the_claim_and_comes_back_after_the_lease(
    world: World, channel: str
) -> None:
    sent = request(channel=channel)
    provider = world.mailer if channel == "email" else world.texter
    provider.fail_next(ProviderInDoubt("the provider may have taken the message"))
    with pytest.raises(RetryLater) as raised:
        world.message(sent)
    assert raised.value.retry_after_seconds == CLAIM_LEASE_SECONDS
    assert raised.value.code == "provider_in_doubt"
    assert world.redeliveries.postponed == [("receipt-1", CLAIM_LEASE_SECONDS)]
    entry = world.entry(sent)
    assert entry is not None and entry.status == "claimed", "not released: a retry now could send twice"
    assert (entry.reason, entry.caps_taken, entry.claimed_at) == ("provider_in_doubt", True, NOON)
    assert "Retried" not in world.telemetry.counts and world.telemetry.counts["ProviderInDoubt"] == 1
    # a redelivery within the lease does not send
    world.clock.advance(LEASE - timedelta(seconds=10))
    with pytest.raises(RetryLater):
        world.deliver(sent)
    assert provider.sent == []
    # after it, the claim is taken over and the message sent again, counted as the documented window
    world.clock.advance(timedelta(seconds=10))
    assert world.deliver(sent).status == "sent"
    assert len(provider.sent) == 1
    assert world.telemetry.counts["SendsInDoubt"] == 1
    # the caps the first attempt took are not taken again (an SMS a day: the resend is not capped)
    assert world.caps_counted(channel) == 1


def test_no_provider_call_starts_without_time_for_its_connect_and_read_timeouts(world: World) -> None:
    from shared.adapters import aws

    assert PROVIDER_MARGIN_SECONDS >= aws.CONNECT_TIMEOUT_SECONDS + aws.READ_TIMEOUT_SECONDS + 1
    sent = request()
    world.time_left = aws.CONNECT_TIMEOUT_SECONDS + aws.READ_TIMEOUT_SECONDS + 0.5
    with pytest.raises(DependencyUnavailable) as raised:
        world.deliver(sent)
    assert raised.value.code == "time_left"
    assert world.mailer.sent == [] and world.caps_counted() == 0


@pytest.fixture
def moto() -> Iterator[None]:
    from moto import mock_aws

    from shared.adapters import aws

    with mock_aws():
        aws.reset()
        yield
        aws.reset()


class Attempts:
    """Every HTTP attempt of one operation on a client, each failing with the next of ``failures``
    (then going through)."""

    def __init__(self, client: Any, service: str, operation: str, failures: list[Exception]) -> None:
        self.count = 0
        self.failures = failures
        client.meta.events.register_first(f"before-send.{service}.{operation}", self._attempt)

    def _attempt(self, **_: Any) -> None:
        self.count += 1
        if self.failures:
            raise self.failures.pop(0)


def read_timeout() -> ReadTimeoutError:
    return ReadTimeoutError(endpoint_url="https://email.eu-west-1.amazonaws.com")


def test_provider_clients_make_one_attempt_where_the_other_clients_retry(moto: None) -> None:
    from shared.adapters import aws

    assert aws.provider_client("sesv2") is aws.provider_client("sesv2"), "one per scope"
    assert aws.provider_client("sesv2") is not aws.client("sesv2")
    retrying = Attempts(aws.client("sesv2"), "sesv2", "ListEmailIdentities", [read_timeout()])
    aws.client("sesv2").list_email_identities()
    assert retrying.count == 2, "an idempotent call is retried by the SDK"
    once = Attempts(aws.provider_client("sesv2"), "sesv2", "ListEmailIdentities", [read_timeout()])
    with pytest.raises(ReadTimeoutError):
        aws.provider_client("sesv2").list_email_identities()
    assert once.count == 1


def email() -> OutgoingEmail:
    return OutgoingEmail(sender=SENDER, to="ann@example.com", subject="Hi", text="Hello", html=None)


def server_error(
    code: str, status: int, operation: str = "SendEmail", message: str = "injected"
) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


ENDPOINT = "https://email.eu-west-1.amazonaws.com"
#: (name, the failure of an operation, whether the provider may have taken the message)
FAILURES = [
    ("read-timeout", lambda operation: ReadTimeoutError(endpoint_url=ENDPOINT), True),
    ("connection-closed", lambda operation: ConnectionClosedError(endpoint_url=ENDPOINT), True),
    ("500", lambda operation: server_error("InternalFailure", 500, operation), True),
    ("503", lambda operation: server_error("ServiceUnavailable", 503, operation), True),
    ("connect-refused", lambda operation: EndpointConnectionError(endpoint_url=ENDPOINT), False),
    ("connect-timeout", lambda operation: ConnectTimeoutError(endpoint_url=ENDPOINT), False),
    ("throttled", lambda operation: server_error("Throttling", 429, operation), False),
]
SES_ONLY = [
    (
        "quota",
        lambda _: server_error("LimitExceededException", 400, message="Daily message quota exceeded."),
        False,
    ),
    ("paused", lambda _: server_error("SendingPausedException", 400), False),
]


@pytest.mark.parametrize(
    ("failure", "in_doubt"), [f[1:] for f in FAILURES + SES_ONLY], ids=[f[0] for f in FAILURES + SES_ONLY]
)
def test_the_delivery_functions_mailer_sends_once_and_says_when_the_send_is_in_doubt(
    moto: None, failure: Any, in_doubt: bool
) -> None:
    from shared import runtime, scope
    from shared.adapters import aws

    with scope.FunctionScope("delivery", FUNCTION_ENV).active():
        deps = runtime.delivering()
        aws.provider_client("sesv2").create_email_identity(EmailIdentity=SENDER)
        attempts = Attempts(aws.provider_client("sesv2"), "sesv2", "SendEmail", [failure("SendEmail")])
        with pytest.raises(DependencyUnavailable) as raised:
            deps.mailer.send(email())
        assert deps.mailer.send(email()), "sent once the provider takes it"
    assert attempts.count == 2, "SendEmail is not idempotent: never retried by the SDK"
    assert isinstance(raised.value, ProviderInDoubt) is in_doubt


@pytest.mark.parametrize(("failure", "in_doubt"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES])
def test_the_delivery_functions_texter_publishes_once_and_checks_the_opt_out_with_retries(
    moto: None, failure: Any, in_doubt: bool
) -> None:
    from shared import runtime, scope
    from shared.adapters import aws

    with scope.FunctionScope("delivery", FUNCTION_ENV).active():
        deps = runtime.delivering()
        publishes = Attempts(aws.provider_client("sns"), "sns", "Publish", [failure("Publish")])
        checks = Attempts(aws.client("sns"), "sns", "CheckIfPhoneNumberIsOptedOut", [read_timeout()])
        assert deps.texter.opted_out("+447700900123") is False
        with pytest.raises(DependencyUnavailable) as raised:
            deps.texter.send("+447700900123", "Hi")
    assert checks.count == 2, "the opt-out check (a read) keeps the SDK's retries"
    assert publishes.count == 1, "Publish is not idempotent: never retried by the SDK"
    assert isinstance(raised.value, ProviderInDoubt) is in_doubt


FUNCTION_ENV = {
    "CONTACTS_TABLE_NAME": "contacts",
    "EVENTS_TABLE_NAME": "events",
    "CONFIG_TABLE_NAME": "config",
    "RATES_TABLE_NAME": "rates",
    # issue 15: delivery counts the NPS surveys it sends into the lifecycle metrics
    "METRICS_TABLE_NAME": "metrics",
    "DELIVERY_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/000000000000/delivery",
    "DELIVERY_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:000000000000:secret:delivery",
    "PUBLIC_BASE_URL": "https://api.shop.example",
    "SENDER_EMAIL": SENDER,
    "AWS_DEFAULT_REGION": REGION,
}


# --- 2. "not now" is postponed with a growing delay, within the queue's receives ----------------------


def test_a_provider_that_says_not_now_is_postponed_with_a_growing_delay(world: World) -> None:
    sent = request()
    world.mailer.fail_next(DependencyUnavailable("throttled"), times=3)
    for receive, delay in enumerate((30, 60, 120), start=1):
        with pytest.raises(RetryLater) as raised:
            world.message(sent, f"receipt-{receive}")
        assert raised.value.retry_after_seconds == delay
        assert world.entry(sent).status == "failed"
    assert [seconds for _, seconds in world.redeliveries.postponed] == [30, 60, 120]
    assert world.message(sent).status == "sent"
    assert len(world.mailer.sent) == 1


def test_the_providers_own_retry_after_is_kept_when_it_is_longer(world: World) -> None:
    sent = request(channel="sms")
    world.texter.fail_next(DependencyUnavailable("the daily quota", retry_after_seconds=600))
    with pytest.raises(RetryLater) as raised:
        world.message(sent)
    assert raised.value.retry_after_seconds == 600
    assert world.redeliveries.postponed == [("receipt-1", 600)]
    assert (world.entry(sent).status, world.entry(sent).reason) == ("failed", "provider_unavailable")


def test_the_delivery_queue_receives_a_message_long_enough_for_an_hour_of_backoff() -> None:
    from shared.adapters.queues import DELIVERY

    assert DELIVERY.max_receive_count == 10
    waited = sum(retry_delay(attempt) for attempt in range(1, DELIVERY.max_receive_count))
    assert waited >= 3600, "a provider or webhook down for an hour does not fill the dead letters"


# --- 3. an erased contact's partition is never recreated ---------------------------------------------


def test_a_late_request_for_an_erased_contact_leaves_nothing_in_the_ledger(world: World) -> None:
    del world.contacts.profiles[ANN]
    for late in (
        request(0),
        request(1, channel="sms"),
        request(2, channel="webhook", url="https://h.example/x"),
    ):
        assert world.deliver(late) == Delivered("skipped", "unknown_contact")
        assert world.entry(late) is None
    assert world.ledger.entries == {}
    assert world.telemetry.counts["Skipped.unknown_contact"] == 3


def test_a_late_held_out_request_for_an_erased_contact_writes_nothing(world: World) -> None:
    del world.contacts.profiles[ANN]
    held = request(status="held_out", reason="control group")
    assert world.deliver(held) == Delivered("skipped", "unknown_contact")
    assert world.ledger.entries == {}
    world.contacts.profiles[ANN] = MemoryProfile(traits={"email": "ann@example.com"})
    assert world.deliver(held) == Delivered("held_out", "control group")
    assert world.entry(held).status == "held_out"


@pytest.mark.parametrize(
    ("at", "consent"),
    [
        (NOON, {}),  # skipped: no consent
        (
            datetime(2026, 6, 3, 20, 0, tzinfo=UTC),
            {"email": GRANTED.model_dump()},
        ),  # deferred: 22:00 in Warsaw
    ],
    ids=["skip", "defer"],
)
def test_an_erasure_between_the_claim_and_the_check_is_not_undone(
    world: World, at: datetime, consent: dict[str, Any]
) -> None:
    world.clock = FixedClock(at)
    world.contacts.profiles[ANN].consent = consent
    world.recipients.erase_after_read = True
    outcome = world.deliver(request())
    assert outcome.status in ("skipped", "deferred")
    assert world.ledger.entries == {}, "no entry written back, least of all the request itself"
    assert world.ledger.due(at + timedelta(days=2)) == []


# --- 4. the caps are taken once per send -------------------------------------------------------------


def test_the_caps_are_taken_once_however_the_retries_fail(world: World) -> None:
    sent = request()
    world.mailer.fail_next(DependencyUnavailable("throttled"))
    with pytest.raises(RetryLater):
        world.deliver(sent)
    assert world.caps_counted() == 1
    assert world.entry(sent).caps_taken is True
    # the next attempt fails before the provider, for another reason: the entry still says the caps
    # were taken
    world.time_left = 1.0
    with pytest.raises(DependencyUnavailable):
        world.deliver(sent)
    assert world.entry(sent).reason == "time_left" and world.entry(sent).caps_taken is True
    world.time_left = 25.0
    assert world.deliver(sent).status == "sent"
    assert world.caps_counted() == 1, "one message, counted once"


def test_a_release_before_the_caps_were_taken_takes_them_on_the_retry(world: World) -> None:
    sent = request()
    world.time_left = 1.0
    with pytest.raises(DependencyUnavailable):
        world.deliver(sent)
    assert world.entry(sent).caps_taken is False
    world.time_left = 25.0
    assert world.deliver(sent).status == "sent"
    assert world.caps_counted() == 1


def test_a_transactional_retry_takes_no_caps(world: World) -> None:
    sent = request(purpose="transactional")
    world.mailer.fail_next(DependencyUnavailable("throttled"))
    with pytest.raises(RetryLater):
        world.deliver(sent)
    assert world.entry(sent).caps_taken is False
    assert world.deliver(sent).status == "sent"
    assert world.caps_counted() == 0
