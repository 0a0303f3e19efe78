"""Announcing stage moves: EventBridge for everyone, SNS and email for the salesperson a lead goes to."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from shared.adapters.dynamodb import is_transient, unavailable
from shared.engagement.events import SOURCE, LeadRouted, Output
from shared.errors import DependencyUnavailable


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

    def publish(self, outputs: Sequence[Output]) -> None:
        for start in range(0, len(outputs), 10):  # PutEvents takes 10 entries
            chunk = outputs[start : start + 10]
            entries = [
                {
                    "Source": SOURCE,
                    "DetailType": output.detail_type,
                    "Detail": output.model_dump_json(by_alias=True),
                    "EventBusName": self._bus,
                    "Time": output.at,
                }
                for output in chunk
            ]
            try:
                answer = self._events.put_events(Entries=entries)
            except Exception as exc:
                raise (unavailable(exc, "EventBridge") if is_transient(exc) else exc) from exc
            if answer.get("FailedEntryCount"):
                raise DependencyUnavailable(f"EventBridge refused {answer['FailedEntryCount']} events; retry")
        for output in outputs:
            if isinstance(output, LeadRouted):
                self._notify(output)

    def _notify(self, lead: LeadRouted) -> None:
        """The assignee hears of the lead twice over: the team's SNS topic and a direct email.

        SNS keeps only protocol names at the top of a JSON message structure: machines (SQS, Lambda,
        HTTPS, email-json) get the lead's fields as ``default``, people (email, SMS) a sentence.
        """
        text = (
            f"{lead.salesperson_name}, a new lead is yours: {lead.contact_id} "
            f"(stage {lead.stage}, engagement {lead.engagement:.0f}). Accept it in your CRM to move it to SAL."
        )
        try:
            if self._sns is not None and self._topic:
                self._sns.publish(
                    TopicArn=self._topic,
                    Subject="New lead assigned",
                    Message=json.dumps(
                        {"default": lead.model_dump_json(by_alias=True), "email": text, "sms": text}
                    ),
                    MessageStructure="json",
                    MessageAttributes={
                        "salesperson": {"DataType": "String", "StringValue": lead.salesperson_id}
                    },
                )
            if self._ses is not None and self._sender:
                self._ses.send_email(
                    Source=self._sender,
                    Destination={"ToAddresses": [lead.salesperson_email]},
                    Message={"Subject": {"Data": "New lead assigned"}, "Body": {"Text": {"Data": text}}},
                )
        except Exception as exc:
            raise (unavailable(exc, "lead notification") if is_transient(exc) else exc) from exc
