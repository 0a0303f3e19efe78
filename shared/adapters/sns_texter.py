"""SMS through SNS: a direct publish to the phone number (no topic), and SNS's opt-out list.

A number that replied STOP is on SNS's opt-out list; SNS would take a publish to it and drop it later,
so delivery asks ``opted_out`` first and skips the send. Publish is not idempotent: it goes through a
client that makes one attempt only (``publisher``, from ``shared.adapters.aws.provider_client``); the
opt-out check, a read, keeps the SDK's retries. Failures end in one of three ways:

- ``ProviderInDoubt`` (publish only): SNS may have taken the message (a read timeout, the connection
  closed after the request went, a 5xx): retried only after the ledger claim's lease;
- ``DependencyUnavailable``: not now (throttled, an SNS failure, the network): retried;
- ``ProviderRefused(<code>)``: never: ``invalid_number`` (SNS says the number is not one it can text),
  ``opted_out`` (SNS refused the publish for the opt-out), ``sns_invalid_parameter`` (another parameter).

Anything else (a missing permission, a bug) is raised as it is (the record ends in the dead-letter queue).
Messages are Promotional (SNS's cheaper route, with the opt-out enforced): delivery sends marketing texts.
"""

from __future__ import annotations

from typing import Any

from shared.adapters.dynamodb import error_code, unavailable
from shared.adapters.provider_errors import error_message, in_doubt, in_doubt_failure, not_now
from shared.delivery.ports import ProviderRefused

#: SNS errors that mean "not now"
NOT_NOW = frozenset(
    {
        "Throttled",
        "Throttling",
        "ThrottlingException",
        "KMSThrottling",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "RequestTimeout",
    }
)
#: SNS's invalid-parameter errors (a number it cannot text, or another parameter)
INVALID = frozenset({"InvalidParameter", "ParameterValueInvalid", "ValidationException"})
SMS_TYPE = "AWS.SNS.SMS.SMSType"
SENDER_ID = "AWS.SNS.SMS.SenderID"


class SnsTexter:
    def __init__(self, client: Any, *, publisher: Any = None, sender_id: str | None = None) -> None:
        """``client`` answers the opt-out check; ``publisher`` (no SDK retries) publishes (default:
        ``client``)."""
        self._sns = client
        self._publisher = client if publisher is None else publisher
        self._sender_id = sender_id

    def opted_out(self, phone: str) -> bool:
        """Whether the number is on SNS's opt-out list. A number SNS calls invalid is not on it: the send
        that follows is refused (``invalid_number``)."""
        try:
            return bool(self._sns.check_if_phone_number_is_opted_out(phoneNumber=phone)["isOptedOut"])
        except Exception as exc:
            if error_code(exc) in INVALID:
                return False
            raise _outcome(exc) from exc

    def send(self, phone: str, text: str) -> str:
        """SNS's message id; raises ``DependencyUnavailable`` or ``ProviderRefused``."""
        attributes = {SMS_TYPE: {"DataType": "String", "StringValue": "Promotional"}}
        if self._sender_id:
            attributes[SENDER_ID] = {"DataType": "String", "StringValue": self._sender_id}
        try:
            return self._publisher.publish(PhoneNumber=phone, Message=text, MessageAttributes=attributes)[
                "MessageId"
            ]
        except Exception as exc:
            if error_code(exc) not in INVALID and in_doubt(exc):
                raise in_doubt_failure(exc, "the SMS provider") from exc
            raise _outcome(exc) from exc


def _outcome(exc: BaseException) -> BaseException:
    """The failure as delivery handles it: refused for good, unavailable for now, or as it is."""
    if error_code(exc) in INVALID:
        message = error_message(exc).lower()
        if "opted out" in message or "opted-out" in message:
            return ProviderRefused("opted_out")
        if "phone" in message or "e164" in message or "endpoint" in message:
            return ProviderRefused("invalid_number")
        return ProviderRefused("sns_invalid_parameter")
    if not_now(exc, NOT_NOW):
        return unavailable(exc, "the SMS provider")
    return exc
