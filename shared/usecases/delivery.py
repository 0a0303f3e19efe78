"""Delivering what the automations decided: each request sent once, within consent, caps and quiet hours.

One request per queue message (``shared.delivery.requests``). For each:

1. A control-group request is recorded (``held_out``); nothing is sent (and nothing written for a
   contact that no longer exists).
2. The ledger entry is *claimed* with a condition (``shared.delivery.ledger``): a request already sent,
   skipped or held out is done (a retried batch never sends twice); one another attempt holds is tried
   again after that attempt's lease; one deferred is left to the deferral.
3. The checks (``shared.delivery.policy.check``) say send, skip (settled with the reason) or defer
   (until a time, with the reason; the timer function queues the request again then). A contact that
   no longer exists (erased) has its claimed entry dropped: nothing is left under its partition.
4. The message is rendered and composed (unsubscribe headers and footer for marketing email), the time
   left is checked, the frequency caps are taken (unless the entry says an earlier attempt took them),
   and the provider is called, once (its client makes no SDK retries: a send is not idempotent).
5. Accepted: the entry is *completed* with the provider's message id. Refused for good: *settled*
   skipped with the provider's reason. Certainly not taken (the connection failed, a throttle, the
   quota, the account paused): *released* (retryable, never ``sent``, ``caps_taken`` recorded) and the
   message's redelivery postponed with a growing delay (the provider's own retry-after at least). In
   doubt (a read timeout, the connection closed after sending, a 5xx: the provider may have taken it):
   the entry stays ``claimed`` and the message comes back after the claim's lease.

The window left: the provider accepted and the function died, or the answer was lost, before the ledger
said so. The entry stays ``claimed``; a redelivery within its lease (``CLAIM_LEASE_SECONDS``) does not
send; after it the next attempt sends again and counts ``SendsInDoubt``. See docs/decisions.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, NoReturn, Protocol

from pydantic import ValidationError

from shared.campaigns.ports import Exposures
from shared.clock import Clock
from shared.delivery.compose import compose_email, email_tags
from shared.delivery.ledger import CLAIM_LEASE_SECONDS, SendRecord
from shared.delivery.links import CONFIRM_PATH, UNSUBSCRIBE_PATH
from shared.delivery.policy import (
    BEST_HOUR,
    FREQUENCY_CAP,
    NO_CONTENT,
    NO_SENDER,
    RENDER_FAILED,
    SMS_TOO_LONG,
    UNKNOWN_CONTACT,
    SendingPolicy,
    check,
    reason_code,
    zone_named,
)
from shared.delivery.ports import (
    CampaignStatus,
    DeliveryControl,
    EmailRenderer,
    EngagementTimes,
    FrequencyCaps,
    Mailer,
    OutgoingEmail,
    ProviderInDoubt,
    ProviderRefused,
    Recipient,
    Recipients,
    RenderedEmail,
    RenderFailed,
    Secrets,
    SendLedger,
    Suppressions,
    Texter,
    WebhookPoster,
)
from shared.delivery.requests import DeliveryRequest
from shared.delivery.sms import segments
from shared.delivery.surveys import survey_context
from shared.delivery.tokens import LinkClaims, link, sign
from shared.delivery.webhooks import receiver_key, retry_delay, signature_headers
from shared.errors import DependencyUnavailable, InvalidRequest, LifecycleError
from shared.usecases.campaigns import count_send
from shared.usecases.nps_metrics import SurveyMetering, count_survey_sent
from shared.usecases.recommendations import RecommendedProduct

#: no provider call starts with less than this much of the invocation left (the crash window): one
#: attempt's connect timeout (2 s) and read timeout (5 s) of ``shared.adapters.aws``, and a second
PROVIDER_MARGIN_SECONDS = 8.0
#: how long a webhook receiver has to answer
WEBHOOK_TIMEOUT_SECONDS = 10.0
#: the ledger's ``complete`` after the provider accepted, tried this many times at once
COMPLETE_TRIES = 3
#: the release reason of a provider that certainly did not take the message (retried with backoff)
PROVIDER_UNAVAILABLE = "provider_unavailable"
#: the code of the retry after a provider call in doubt (the entry stays claimed until its lease ends)
PROVIDER_IN_DOUBT = "provider_in_doubt"
#: release reasons for the other failures before the provider accepted
TIME_LEFT = "time_left"
UNAVAILABLE = "unavailable"
#: webhook answers that are worth retrying although they are 4xx
RETRYABLE_CLIENT_STATUSES = frozenset({408, 429})

Status = Literal["sent", "skipped", "deferred", "held_out", "done"]


class Telemetry(Protocol):
    def count(self, name: str, value: int) -> None: ...

    def failure(self, what: str) -> None:
        """Record the exception being handled (logged with its traceback, no personal data)."""
        ...


class Redeliveries(Protocol):
    def postpone(self, receipt: str, seconds: int) -> None:
        """Receive the queue message with this receipt again only after ``seconds``."""
        ...


class TemplateContext(Protocol):
    """What a template sees (``shared.delivery.templates.template_context``)."""

    def __call__(
        self,
        contact_id: str,
        traits: Mapping[str, Any],
        tags: Sequence[str],
        stage: str | None,
        values: Mapping[str, Any],
        *,
        unsubscribe_url: str | None,
        confirm_url: str | None,
        postal_address: str,
        recommendations: Sequence[Any] = (),
    ) -> dict[str, Any]: ...


class ContactRecommender(Protocol):
    """issue 15: the products recommended to a contact (``shared.usecases.recommendations.Recommender``)."""

    def for_contact(self, contact_id: str, n: int = ...) -> list[RecommendedProduct]: ...


class RetryLater(DependencyUnavailable):
    """Not sent now, to try again after ``retry_after_seconds`` (the message's redelivery is postponed
    that long): a provider or webhook that failed (backoff), a provider call in doubt (the claim's
    lease), or a send another attempt holds."""


@dataclass(frozen=True, slots=True)
class Delivering:
    clock: Clock
    ledger: SendLedger
    recipients: Recipients
    suppressions: Suppressions
    caps: FrequencyCaps
    control: DeliveryControl
    mailer: Mailer
    texter: Texter
    webhooks: WebhookPoster
    secrets: Secrets
    renderer: EmailRenderer
    template_context: TemplateContext
    times: EngagementTimes
    redeliveries: Redeliveries
    telemetry: Telemetry
    policy: SendingPolicy
    #: the verified identity emails come from; None: emails are skipped (``no_sender``)
    sender: str | None
    postal_address: str
    #: the public API's base URL, for unsubscribe and confirmation links
    public_base_url: str
    link_days: int
    sms_max_segments: int
    # --- issue 13: campaigns: a cancelled campaign's requests are skipped; its sends are counted
    campaigns: CampaignStatus | None = None
    results: Exposures | None = None
    # --- issue 15: ``recommendations`` in the rendering context, for the templates that name it
    recommender: ContactRecommender | None = None
    # --- issue 15: surveys sent are counted, for the NPS response rate
    surveys: SurveyMetering | None = None


@dataclass(frozen=True, slots=True)
class Delivered:
    """What became of one request: ``sent`` (with the provider's id), ``skipped`` or ``deferred`` (with
    the reason, and until when), ``held_out``, or ``done`` (an earlier attempt settled it, or a deferral
    holds it: nothing was done now)."""

    status: Status
    reason: str | None = None
    provider_id: str | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class _Accepted:
    provider_id: str


class _ProviderFailed(Exception):
    """The email or SMS provider did not take the message (``__cause__``: its error); ``caps_taken``:
    this attempt had taken the frequency caps."""

    def __init__(self, caps_taken: bool) -> None:
        super().__init__("the provider did not take the message")
        self.caps_taken = caps_taken


def parse_request(body: str, telemetry: Telemetry) -> DeliveryRequest:
    """A queue message's body as a delivery request; anything else is an ``InvalidRequest`` that names
    the fields at fault and never their values."""
    try:
        return DeliveryRequest.model_validate_json(body)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in error["loc"]) or "body" for error in exc.errors()})
        problem = InvalidRequest(
            f"a delivery message is not a delivery request (fields: {', '.join(fields[:10])})"
        )
    telemetry.count("InvalidRequests", 1)
    raise problem


def deliver_message(body: str, receipt: str, deps: Delivering, time_left: Callable[[], float]) -> Delivered:
    """One queue message. A ``RetryLater`` postpones the message's redelivery before it is raised (the
    function then reports the message failed, and SQS hands it out again after that delay)."""
    request = parse_request(body, deps.telemetry)
    try:
        return deliver(request, deps, time_left)
    except RetryLater as later:
        try:
            deps.redeliveries.postpone(receipt, later.retry_after_seconds)
        except Exception:  # noqa: BLE001 - the message then comes back after the queue's own timeout
            deps.telemetry.count("PostponeFailed", 1)
            deps.telemetry.failure("could not postpone a delivery message")
        raise


def deliver(request: DeliveryRequest, deps: Delivering, time_left: Callable[[], float]) -> Delivered:
    """Send one request at most once (see the module's docstring)."""
    now = deps.clock.now()
    if request.status == "held_out":
        if deps.recipients.recipient(request.contact_id) is None:
            # erased (or never known): nothing is written under its partition
            return _counted_skip(UNKNOWN_CONTACT, deps)
        deps.ledger.settle(request, "held_out", request.reason, now)
        deps.telemetry.count("HeldOut", 1)
        return Delivered("held_out", request.reason)
    claim = deps.ledger.claim(request, now)
    if claim.outcome == "done":
        deps.telemetry.count("AlreadyDone", 1)
        if claim.record is not None and claim.record.status == "sent":
            _count_sent(request, claim.record.sent_at or now, deps)  # a count the sending attempt missed
        return Delivered("done")
    found = claim.record
    if claim.outcome == "busy":
        return _busy(found, now, deps)
    if _in_doubt(found, now):
        # a claim older than its lease: an attempt died, perhaps after the provider accepted
        deps.telemetry.count("SendsInDoubt", 1)
    attempt = (found.attempts if found is not None else 0) + 1
    try:
        result = _attempt(request, found, attempt, deps, time_left, now)
    except ProviderRefused as refused:
        try:
            return _skipped(request, refused.reason, deps, now)
        except Exception:
            _release(request, UNAVAILABLE, deps, now)  # not sent: retried, and refused again
            raise
    except _ProviderFailed as failed:
        _provider_failed(request, failed, attempt, deps, now)
    except Exception as exc:
        if not isinstance(exc, LifecycleError):
            deps.telemetry.failure("a delivery attempt failed unexpectedly; retried")
        _release(request, _release_reason(exc), deps, now)
        if request.channel == "webhook" and not isinstance(exc, RetryLater) and not _time_short(exc):
            raise RetryLater(
                "the webhook could not be delivered; retried later",
                retry_after_seconds=retry_delay(attempt),
                code=_release_reason(exc),
            ) from exc
        raise
    if isinstance(result, Delivered):
        return result
    _complete(request, result.provider_id, deps)
    deps.telemetry.count("Sent", 1)
    _count_sent(request, now, deps)
    return Delivered("sent", provider_id=result.provider_id)


def _count_sent(request: DeliveryRequest, at: datetime, deps: Delivering) -> None:
    """Issue 13: a campaign's send counts once for its arm; issue 15: a survey's, once for the NPS response
    rate. A failure raises after the send was recorded: the message comes back, finds the entry sent
    (``done``) and counts then."""
    if deps.results is not None and count_send(deps.results, request, "sent", at):
        deps.telemetry.count("CampaignSendsCounted", 1)
    if deps.surveys is not None:
        count_survey_sent(request, at, deps.renderer, deps.surveys)  # issue 15: once, if it is a survey


def _provider_failed(
    request: DeliveryRequest, failed: _ProviderFailed, attempt: int, deps: Delivering, now: datetime
) -> NoReturn:
    """In doubt: the entry stays claimed (marked so, with the caps it took), the message comes back after
    the lease. Not now: released and postponed, at least as long as the provider asked. Anything else:
    released and raised as it is."""
    cause = failed.__cause__
    if isinstance(cause, ProviderInDoubt):
        # the provider may have taken it: sending again at once could send it twice; after the lease the
        # claim is taken over (counted SendsInDoubt) and it is sent again, without taking the caps again
        deps.telemetry.count("ProviderInDoubt", 1)
        try:
            deps.ledger.mark_in_doubt(request, now, caps_taken=failed.caps_taken)
        except Exception:  # noqa: BLE001 - the lease holds all the same; only the caps may count twice
            deps.telemetry.count("MarkInDoubtFailed", 1)
            deps.telemetry.failure("could not mark a send ledger entry in doubt")
        raise RetryLater(
            f"the {request.channel} provider may have taken the message; tried again after the claim's lease",
            retry_after_seconds=CLAIM_LEASE_SECONDS,
            code=PROVIDER_IN_DOUBT,
        ) from cause
    _release(request, PROVIDER_UNAVAILABLE, deps, now, caps_taken=failed.caps_taken)
    if isinstance(cause, DependencyUnavailable):
        raise RetryLater(
            f"the {request.channel} provider did not take the message; retried later",
            retry_after_seconds=max(cause.retry_after_seconds, retry_delay(attempt)),
            code=PROVIDER_UNAVAILABLE,
        ) from cause
    deps.telemetry.failure(f"the {request.channel} provider failed unexpectedly; retried")
    assert cause is not None
    raise cause


def _busy(found: SendRecord | None, now: datetime, deps: Delivering) -> Delivered:
    if found is not None and found.status == "deferred":
        # the deferral owns the send: the timer function queues it when it is due
        deps.telemetry.count("AlreadyDeferred", 1)
        return Delivered("done", found.reason, until=found.due_at)
    deps.telemetry.count("SendsBusy", 1)
    wait = CLAIM_LEASE_SECONDS
    if found is not None and found.claimed_at is not None:
        left = found.claimed_at + timedelta(seconds=CLAIM_LEASE_SECONDS) - now
        wait = int(min(CLAIM_LEASE_SECONDS, max(0.0, left.total_seconds()))) + 1
    raise RetryLater("another attempt holds this send; tried again after its lease", retry_after_seconds=wait)


def _in_doubt(found: SendRecord | None, now: datetime) -> bool:
    return (
        found is not None
        and found.status == "claimed"
        and found.claimed_at is not None
        and now - found.claimed_at >= timedelta(seconds=CLAIM_LEASE_SECONDS)
    )


def _attempt(
    request: DeliveryRequest,
    found: SendRecord | None,
    attempt: int,
    deps: Delivering,
    time_left: Callable[[], float],
    now: datetime,
) -> Delivered | _Accepted:
    recipient = deps.recipients.recipient(request.contact_id)
    decision = check(
        request,
        recipient,
        now,
        deps.policy,
        control=deps.control,
        suppressions=deps.suppressions,
        texter=deps.texter,
        times=deps.times,
        campaigns=deps.campaigns,
    )
    if decision.action == "skip":
        if recipient is None:
            # erased meanwhile (or never known): the claim is dropped, so nothing is left under the
            # contact's partition
            deps.ledger.drop_claim(request)
            return _counted_skip(UNKNOWN_CONTACT, deps)
        return _skipped(request, decision.reason or "", deps, now)
    if decision.action == "defer":
        assert decision.until is not None and decision.reason is not None
        return _deferred(request, decision.until, decision.reason, deps, now)
    assert recipient is not None
    if request.channel == "webhook":
        return _post_webhook(request, recipient, attempt, deps, time_left, now)
    message = (
        _email(request, recipient, deps, now)
        if request.channel == "email"
        else _text(request, recipient, deps)
    )
    if isinstance(message, str):
        return _skipped(request, message, deps, now)
    _require_time(time_left, PROVIDER_MARGIN_SECONDS)
    caps_taken = False
    if request.purpose == "marketing" and not (found is not None and found.caps_taken):
        windows = deps.policy.windows(request.channel, now, zone_named(recipient.timezone))
        if windows:
            if not deps.caps.take(recipient.contact_id, request.channel, windows, now):
                return _skipped(request, FREQUENCY_CAP, deps, now)
            caps_taken = True
    try:
        if isinstance(message, OutgoingEmail):
            return _Accepted(deps.mailer.send(message))
        return _Accepted(deps.texter.send(message[0], message[1]))
    except ProviderRefused:
        raise
    except Exception as exc:
        raise _ProviderFailed(caps_taken) from exc


def _link(
    deps: Delivering,
    path: str,
    purpose: Literal["unsubscribe", "confirm"],
    contact: str,
    channel: str,
    now: datetime,
) -> str:
    claims = LinkClaims(purpose, contact, channel, now + timedelta(days=deps.link_days), issued=now)
    return link(deps.public_base_url, path, sign(deps.secrets.key(), claims))


def _email(
    request: DeliveryRequest, recipient: Recipient, deps: Delivering, now: datetime
) -> OutgoingEmail | str:
    """The email to send, or why none can go (a skip reason)."""
    if not deps.sender:
        return NO_SENDER
    marketing = request.purpose == "marketing"
    contact = recipient.contact_id
    unsubscribe_url = (
        _link(deps, UNSUBSCRIBE_PATH, "unsubscribe", contact, "email", now) if marketing else None
    )
    confirming = request.values.get("confirm")
    confirm_url = (
        _link(deps, CONFIRM_PATH, "confirm", contact, confirming, now)
        if confirming in ("email", "sms")
        else None
    )
    rendered = _rendered(request, recipient, deps, unsubscribe_url=unsubscribe_url, confirm_url=confirm_url)
    if isinstance(rendered, str):
        return rendered
    if not (rendered.text or rendered.html):
        return NO_CONTENT
    assert recipient.email is not None
    return compose_email(
        rendered,
        sender=deps.sender,
        to=recipient.email.strip(),
        unsubscribe_url=unsubscribe_url,
        postal_address=deps.postal_address,
        tags=email_tags(contact, request.id),
    )


def _text(request: DeliveryRequest, recipient: Recipient, deps: Delivering) -> tuple[str, str] | str:
    """(phone, text) to send, or why none can go."""
    rendered = _rendered(request, recipient, deps, unsubscribe_url=None, confirm_url=None)
    if isinstance(rendered, str):
        return rendered
    text = (rendered.text or "").strip()
    if not text:
        return NO_CONTENT
    if segments(text) > deps.sms_max_segments:
        return SMS_TOO_LONG
    assert recipient.phone is not None
    return recipient.phone.strip(), text


def _rendered(
    request: DeliveryRequest,
    recipient: Recipient,
    deps: Delivering,
    *,
    unsubscribe_url: str | None,
    confirm_url: str | None,
) -> RenderedEmail | str:
    """The request's template rendered for the contact, or its inline content; a reason if it fails."""
    if request.template is None:
        return RenderedEmail(subject=request.subject or "", text=request.text, html=request.html)
    context = deps.template_context(
        recipient.contact_id,
        recipient.traits,
        recipient.tags,
        recipient.stage,
        request.values,
        unsubscribe_url=unsubscribe_url,
        confirm_url=confirm_url,
        postal_address=deps.postal_address,
        recommendations=_recommendations(request.template, recipient, deps),
    )
    survey = deps.renderer.survey(request.template)
    if survey is not None:  # issue 15: an NPS survey: one signed answer link per score
        now = deps.clock.now()
        context["survey"] = survey_context(
            deps.secrets.key(),
            deps.public_base_url,
            survey=request.template,
            question=survey.question,
            contact_id=recipient.contact_id,
            channel=request.channel,
            issued=now,
            expires=now + timedelta(days=deps.link_days),
        )
    try:
        return deps.renderer.render(request.template, context)
    except RenderFailed as failed:
        return f"{RENDER_FAILED}:{failed.reason}"[:200]


def _recommendations(template_id: str, recipient: Recipient, deps: Delivering) -> list[dict[str, Any]]:
    """issue 15: the products recommended to the contact, for a template that names ``recommendations``
    (others cost no request)."""
    if deps.recommender is None or "recommendations" not in deps.renderer.names(template_id):
        return []
    return [r.for_template() for r in deps.recommender.for_contact(recipient.contact_id)]


def _post_webhook(
    request: DeliveryRequest,
    recipient: Recipient,
    attempt: int,
    deps: Delivering,
    time_left: Callable[[], float],
    now: datetime,
) -> _Accepted:
    """POST the request's body, signed. 2xx: accepted (the status is the provider id); a 4xx other than
    408 and 429: refused for good; anything else: retried with backoff."""
    assert request.url is not None
    payload = {
        **(request.body or {}),
        "lifecycle": {
            "delivery_id": request.id,
            "contact_id": recipient.contact_id,
            "automation": request.automation,
            "occurrence": request.occurrence,
        },
    }
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")
    headers = signature_headers(receiver_key(deps.secrets.key()), body, int(now.timestamp()), request.id)
    _require_time(time_left, WEBHOOK_TIMEOUT_SECONDS + PROVIDER_MARGIN_SECONDS)
    status = deps.webhooks.post(request.url, body, headers, WEBHOOK_TIMEOUT_SECONDS)
    if 200 <= status < 300:
        return _Accepted(str(status))
    if 400 <= status < 500 and status not in RETRYABLE_CLIENT_STATUSES:
        raise ProviderRefused(f"http:{status}")
    raise RetryLater(
        f"the webhook answered {status}; retried later",
        retry_after_seconds=retry_delay(attempt),
        code=f"http:{status}",
    )


class _TimeShort(DependencyUnavailable):
    pass


def _require_time(time_left: Callable[[], float], needed: float) -> None:
    if time_left() < needed:
        raise _TimeShort("too little of the invocation left to call the provider; retried", code=TIME_LEFT)


def _time_short(exc: BaseException) -> bool:
    return isinstance(exc, _TimeShort)


def _release_reason(exc: BaseException) -> str:
    if isinstance(exc, LifecycleError):
        return exc.code
    return UNAVAILABLE


def _skipped(request: DeliveryRequest, reason: str, deps: Delivering, now: datetime) -> Delivered:
    deps.ledger.settle(request, "skipped", reason, now)
    return _counted_skip(reason, deps)


def _counted_skip(reason: str, deps: Delivering) -> Delivered:
    deps.telemetry.count("Skipped", 1)
    deps.telemetry.count(f"Skipped.{reason_code(reason)}", 1)
    return Delivered("skipped", reason)


def _deferred(
    request: DeliveryRequest, until: datetime, reason: str, deps: Delivering, now: datetime
) -> Delivered:
    # the request the timer queues again: a best-hour deferral is not deferred for the best hour again
    # (it arrives within that hour, or a little after it)
    kept = request.model_copy(update={"best_hour": False}) if reason == BEST_HOUR else request
    deps.ledger.defer(kept, until, reason, now)
    deps.telemetry.count("Deferred", 1)
    deps.telemetry.count(f"Deferred.{reason_code(reason)}", 1)
    return Delivered("deferred", reason, until=until)


def _release(
    request: DeliveryRequest, reason: str, deps: Delivering, now: datetime, *, caps_taken: bool = False
) -> None:
    deps.telemetry.count("Retried", 1)
    try:
        deps.ledger.release(request, reason, now, caps_taken=caps_taken)
    except Exception:  # noqa: BLE001 - the claim then lapses after its lease, and the send is retried
        deps.telemetry.count("ReleaseFailed", 1)
        deps.telemetry.failure("could not release a send ledger entry")


def _complete(request: DeliveryRequest, provider_id: str, deps: Delivering) -> None:
    """Record the send; tried a few times at once. If it still fails, the message was sent all the same:
    the entry stays ``claimed`` (counted, logged) rather than the message coming back to be sent again."""
    for attempt in range(COMPLETE_TRIES):
        try:
            deps.ledger.complete(request, provider_id, deps.clock.now())
            return
        except Exception:  # noqa: BLE001 - retried, then counted
            if attempt + 1 == COMPLETE_TRIES:
                deps.telemetry.count("SentUnrecorded", 1)
                deps.telemetry.failure("a sent message could not be recorded in the send ledger")
