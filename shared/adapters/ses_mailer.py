"""Email through SES v2: the MIME message built by ``shared.delivery.mime``, sent raw through the stack's
configuration set (which publishes sends, bounces, complaints, opens and clicks) with the email's tags.

Raw, not SES's simple content: only a raw message carries the headers exactly as composed
(``List-Unsubscribe``, ``List-Unsubscribe-Post``). The client must make one attempt only
(``shared.adapters.aws.provider_client``): SendEmail is not idempotent. Every failure ends in one of
three ways:

- ``ProviderInDoubt``: SES may have taken the message (a read timeout, the connection closed after the
  request went, a 5xx); the delivery function keeps the ledger entry claimed and tries again only after
  the claim's lease;
- ``DependencyUnavailable``: not now (throttled, the daily quota, a 5xx, the network, and the account's
  sending paused or suspended by SES: a state of the whole account, so every message waits in the queue and
  then its dead letters, to be redriven once SES sends again, rather than being settled as skipped); the
  delivery function releases the ledger entry and the message is retried;
- ``ProviderRefused(<code>)``: never (SES refused the message, the sender or its domain is not verified,
  an invalid address, no such configuration set, or a message that cannot be written); the send is settled
  as skipped with that code.

Anything else (a missing permission, a bug) is raised as it is: the record fails and ends in the
dead-letter queue, where someone looks at it.
"""

from __future__ import annotations

from typing import Any

from shared.adapters.dynamodb import error_code, unavailable
from shared.adapters.provider_errors import error_message, in_doubt, in_doubt_failure, not_now
from shared.clock import Clock, SystemClock
from shared.delivery.mime import envelope_address, mime_message
from shared.delivery.ports import OutgoingEmail, ProviderRefused

#: SES v2 SendEmail errors that mean "not now": throttling (the sending rate, and the daily quota, which
#: SES reports as a throttle) and the service's own failures
NOT_NOW = frozenset(
    {
        "TooManyRequestsException",
        "ThrottlingException",
        "Throttling",
        "LimitExceededException",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
        # the whole account, not this message: retried, then kept in the dead letters for a redrive
        "AccountSuspendedException",
        "SendingPausedException",
    }
)
#: SES v2 SendEmail errors that mean "never", as the short reasons the ledger records
REFUSALS = {
    "MessageRejected": "ses_message_rejected",
    "MailFromDomainNotVerifiedException": "ses_mail_from_not_verified",
    "BadRequestException": "ses_bad_request",
    "NotFoundException": "ses_configuration_set_not_found",
}
#: the daily quota throttles for up to a day; SES's advice is to wait up to 10 minutes between tries
QUOTA_RETRY_SECONDS = 600


class SesMailer:
    def __init__(
        self,
        client: Any,
        *,
        configuration_set: str | None,
        clock: Clock | None = None,
    ) -> None:
        self._ses = client
        self._configuration_set = configuration_set
        #: dates the message (the runtime's clock: the local stack's controlled one)
        self._clock = clock or SystemClock()

    def send(self, email: OutgoingEmail) -> str:
        """SES's message id; raises ``DependencyUnavailable`` or ``ProviderRefused``."""
        try:
            raw = mime_message(email, self._clock.now())
            sender, to = envelope_address(email.sender), envelope_address(email.to)
        except ValueError as exc:  # a header that would inject another, an address SES cannot take
            raise ProviderRefused("invalid_message") from exc
        request: dict[str, Any] = {
            # the envelope: SES wants bare ASCII addresses here (names and UTF-8 are in the headers)
            "FromEmailAddress": sender,
            "Destination": {"ToAddresses": [to]},
            "Content": {"Raw": {"Data": raw}},
        }
        if self._configuration_set:
            request["ConfigurationSetName"] = self._configuration_set
        if email.tags:
            request["EmailTags"] = [{"Name": name, "Value": value} for name, value in email.tags.items()]
        try:
            return self._ses.send_email(**request)["MessageId"]
        except Exception as exc:
            raise _outcome(exc) from exc


def _outcome(exc: BaseException) -> BaseException:
    """The failure as delivery handles it: refused for good, perhaps taken (in doubt), unavailable for
    now, or as it is."""
    code = error_code(exc)
    if code in REFUSALS:
        return ProviderRefused(REFUSALS[code])
    if in_doubt(exc):
        return in_doubt_failure(exc, "the email provider")
    if not_now(exc, NOT_NOW):
        failed = unavailable(exc, "the email provider")
        if "quota" in error_message(exc).lower():
            failed.retry_after_seconds = QUOTA_RETRY_SECONDS
        return failed
    return exc
