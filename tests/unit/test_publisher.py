"""Announcements per channel: what is sent, refused for good, or left to retry; and the SNS message shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from shared.adapters.publisher import AwsPublisher
from shared.engagement.events import ContactStageChanged, LeadRouted
from shared.usecases.engagement import Delivery, Pending
from tests.conftest import sns_rules

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LEAD = LeadRouted(
    event_id="user_id:ann#4#routed",
    contact_id="user_id:ann",
    at=NOW,
    salesperson_id="ann-s",
    salesperson_name="Ann Seller",
    salesperson_email="ann.s@example.com",
    stage="sql",
    engagement=61.0,
    reason="sales-ready",
)
MOVE = ContactStageChanged(
    event_id="user_id:ann#4#0",
    contact_id="user_id:ann",
    at=NOW,
    from_stage="mql",
    to_stage="sql",
    phase="conversion",
    reason="sales-ready",
    engagement=61.0,
    index=1.22,
    direction="rising",
)


def error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


class Service:
    """A client stand-in: records each call, raises the next planned failure, answers otherwise."""

    def __init__(self, *failures: BaseException, answer: dict[str, Any] | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.failures = list(failures)
        self.answer = answer

    def _call(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        if self.failures:
            raise self.failures.pop(0)
        return self.answer or {"Entries": [{"EventId": "e"} for _ in params.get("Entries", [])]}

    put_events = publish = send_email = _call


def publisher(events: Service, sns: Service, ses: Service) -> AwsPublisher:
    return AwsPublisher(
        events, bus="bus", sns=sns, topic_arn="arn:aws:sns:eu-west-1:1:leads", ses=ses, sender="l@x.example"
    )


@pytest.mark.parametrize(
    ("failure", "refused"),
    [
        (error("MessageRejected"), "MessageRejected"),  # the sandbox, or an unverified sender
        (error("MailFromDomainNotVerified"), "MailFromDomainNotVerified"),
        (error("AccountSendingPausedException"), "AccountSendingPausedException"),
        (error("Throttling"), None),  # SES throttles with a 400: still worth a retry
        (error("InternalFailure", 500), None),
        (error("SomethingNew", 503), None),
        (EndpointConnectionError(endpoint_url="https://email.eu-west-1.amazonaws.com"), None),
    ],
)
def test_an_email_refused_for_good_is_recorded_and_a_failure_for_now_retried(failure, refused) -> None:
    events, sns, ses = Service(), Service(), Service(failure)
    (delivery,) = publisher(events, sns, ses).publish([Pending("k", LEAD)])
    assert delivery.sent == {"events", "sns"}
    if refused:
        assert (delivery.refused, delivery.retry, delivery.complete) == ({"ses": refused}, set(), True)
    else:
        assert (delivery.refused, delivery.retry, delivery.complete) == ({}, {"ses"}, False)


def test_only_the_channels_not_done_are_sent_again() -> None:
    events, sns, ses = Service(), Service(), Service()
    (delivery,) = publisher(events, sns, ses).publish([Pending("k", LEAD, done=frozenset({"events", "sns"}))])
    assert (len(events.calls), len(sns.calls), len(ses.calls)) == (0, 0, 1)
    assert delivery == Delivery("k", sent=frozenset({"ses"}))


def test_a_bug_is_raised_not_recorded_as_a_refusal() -> None:
    with pytest.raises(TypeError):
        publisher(Service(), Service(TypeError("bad")), Service()).publish([Pending("k", LEAD)])


def test_bus_entries_fail_one_by_one() -> None:
    answer = {
        "FailedEntryCount": 2,
        "Entries": [{"EventId": "1"}, {"ErrorCode": "ThrottlingException"}, {"ErrorCode": "MalformedDetail"}],
    }
    deliveries = publisher(Service(answer=answer), Service(), Service()).publish(
        [Pending("a", MOVE), Pending("b", MOVE), Pending("c", MOVE)]
    )
    assert [(d.sent, d.retry, dict(d.refused)) for d in deliveries] == [
        ({"events"}, set(), {}),
        (set(), {"events"}, {}),
        (set(), set(), {"events": "MalformedDetail"}),
    ]


def test_the_lead_topic_message_carries_the_lead_for_machines_and_a_sentence_for_people() -> None:
    sns = Service()
    publisher(Service(), sns, Service()).publish([Pending("k", LEAD)])
    (call,) = sns.calls
    sns_rules(call)  # protocol keys only, with a default: what SNS accepts
    structure = json.loads(call["Message"])
    assert json.loads(structure["default"]) == LEAD.model_dump(mode="json", by_alias=True)
    assert structure["email"].startswith("Ann Seller, a new lead is yours: user_id:ann")
    assert call["MessageAttributes"]["salesperson"]["StringValue"] == "ann-s"


def test_a_lead_message_with_a_key_that_is_not_a_protocol_is_caught() -> None:
    with pytest.raises(AssertionError, match="not protocols"):
        sns_rules({"Message": json.dumps({"default": "x", "lead": {}}), "MessageStructure": "json"})
