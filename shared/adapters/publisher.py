"""Announcing stage moves: EventBridge for everyone, SNS and email for the salesperson a lead goes to.

Each announcement goes out on its channels independently: ``events`` (the bus, every announcement),
``sns`` (the lead topic) and ``ses`` (the salesperson's email) for a routed lead. Every attempt ends
in one of three states per channel: sent; refused for good (a client error that retrying cannot
fix, e.g. SES's ``MessageRejected`` for an unverified sender or the sandbox), recorded and never
retried; or failed for now (throttled, a server error, the network), retried later.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from shared.adapters.dynamodb import error_code, is_transient
from shared.engagement.events import SOURCE, LeadRouted, Output
from shared.usecases.engagement import Delivery, Pending

EVENTS, SNS, SES = "events", "sns", "ses"

#: Error codes that mean "not now" although the status is 4xx (SES throttles with 400 ``Throttling``).
NOT_NOW = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "Throttled",
        "TooManyRequestsException",
        "KMSThrottling",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalFailure",
        "InternalException",
        "InternalError",
        "ServiceUnavailable",
    }
)


def refusal(exc: BaseException) -> str | None:
    """The error code if the service refused for good; ``None`` if a later attempt may succeed.

    Anything that is not an AWS error (a bug) is neither: it is raised again.
    """
    if is_transient(exc):  # throttles and server errors DynamoDB names alike, network failures
        return None
    code = error_code(exc)
    if code is None:
        raise exc
    status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
    if code in NOT_NOW or status >= 500 or status == 429:
        return None
    return code


class _Attempt:
    """One announcement's channels during an attempt: what is left, sent, refused, failed for now."""

    def __init__(self, pending: Pending, channels: Sequence[str]) -> None:
        self.pending = pending
        self.todo = [c for c in channels if c not in pending.done]
        self.sent: set[str] = set()
        self.refused: dict[str, str] = {}
        self.retry: set[str] = set()

    def outcome(self, channel: str, code: str | None, *, sent: bool = False) -> None:
        if sent:
            self.sent.add(channel)
        elif code is None:
            self.retry.add(channel)
        else:
            self.refused[channel] = code

    def delivery(self) -> Delivery:
        return Delivery(
            key=self.pending.key,
            sent=frozenset(self.sent),
            refused=dict(self.refused),
            retry=frozenset(self.retry),
        )


class AwsPublisher:
    def __init__(
        self,
        events: Any,
        *,
        bus: str,
        sns: Any | None = None,
        topic_arn: str | None = None,
        ses: Any | None = None,
        sender: str | None = None,
    ) -> None:
        self._events, self._bus = events, bus
        self._sns, self._topic = sns, topic_arn
        self._ses, self._sender = ses, sender

    def channels(self, output: Output) -> list[str]:
        """Where an announcement goes: the bus always; a routed lead also to the topic and by email."""
        found = [EVENTS]
        if isinstance(output, LeadRouted):
            if self._sns is not None and self._topic:
                found.append(SNS)
            if self._ses is not None and self._sender:
                found.append(SES)
        return found

    def publish(self, pending: Sequence[Pending]) -> list[Delivery]:
        attempts = [_Attempt(p, self.channels(p.output)) for p in pending]
        to_bus = [a for a in attempts if EVENTS in a.todo]
        for start in range(0, len(to_bus), 10):  # PutEvents takes 10 entries
            self._put_events(to_bus[start : start + 10])
        for attempt in attempts:
            output = attempt.pending.output
            if not isinstance(output, LeadRouted):
                continue
            for channel, send in ((SNS, self._notify), (SES, self._email)):
                if channel in attempt.todo:
                    try:
                        send(output)
                    except Exception as exc:
                        attempt.outcome(channel, refusal(exc))
                    else:
                        attempt.outcome(channel, None, sent=True)
        return [a.delivery() for a in attempts]

    def _put_events(self, chunk: Sequence[_Attempt]) -> None:
        entries = [
            {
                "Source": SOURCE,
                "DetailType": a.pending.output.detail_type,
                "Detail": a.pending.output.model_dump_json(by_alias=True),
                "EventBusName": self._bus,
                "Time": a.pending.output.at,
            }
            for a in chunk
        ]
        try:
            answer = self._events.put_events(Entries=entries)
        except Exception as exc:
            code = refusal(exc)
            for attempt in chunk:
                attempt.outcome(EVENTS, code)
            return
        results = answer.get("Entries") or []
        if len(results) != len(chunk):  # no word per entry: all went, or all are in doubt
            doubt = {"ErrorCode": "InternalFailure"} if answer.get("FailedEntryCount") else {}
            results = [doubt] * len(chunk)
        for attempt, entry in zip(chunk, results, strict=True):
            failed = entry.get("ErrorCode")
            if not failed:
                attempt.outcome(EVENTS, None, sent=True)
            else:  # an entry refused for now (throttled, internal) or for good (malformed, denied)
                attempt.outcome(EVENTS, None if failed in NOT_NOW else failed)

    def _notify(self, lead: LeadRouted) -> None:
        """The team's SNS topic hears of the lead (filter on the ``salesperson`` attribute).

        SNS keeps only protocol names at the top of a JSON message structure: machines (SQS, Lambda,
        HTTPS, email-json) get the lead's fields as ``default``, people (email, SMS) a sentence.
        """
        text = _sentence(lead)
        self._sns.publish(
            TopicArn=self._topic,
            Subject="New lead assigned",
            Message=json.dumps({"default": lead.model_dump_json(by_alias=True), "email": text, "sms": text}),
            MessageStructure="json",
            MessageAttributes={"salesperson": {"DataType": "String", "StringValue": lead.salesperson_id}},
        )

    def _email(self, lead: LeadRouted) -> None:
        """The assignee gets a direct email."""
        self._ses.send_email(
            Source=self._sender,
            Destination={"ToAddresses": [lead.salesperson_email]},
            Message={"Subject": {"Data": "New lead assigned"}, "Body": {"Text": {"Data": _sentence(lead)}}},
        )


def _sentence(lead: LeadRouted) -> str:
    return (
        f"{lead.salesperson_name}, a new lead is yours: {lead.contact_id} "
        f"(stage {lead.stage}, engagement {lead.engagement:.0f}). Accept it in your CRM to move it to SAL."
    )
