"""The publisher (the stage function's port): each announcement on its channels, one delivery each.

The adapter side runs on moto: the bus has a rule into an SQS queue and the lead topic an SQS
subscription, so the test reads what subscribers got; SES's sent mail is read from moto's backend. A
refusal for good is SES's own (an unverified sender); a failure for now is a throttle injected into the
SNS client. The fake is told the same through ``refuse`` and ``unavailable``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shared.engagement.events import ContactStageChanged, LeadRouted, Output
from shared.usecases.engagement import Pending
from tests.contract.helpers import NOW
from tests.fakes import MemoryPublisher

SENDER = "leads@example.com"


@dataclass
class Channels:
    """A publisher and what each channel's subscribers received (bus and topic: the announcement's
    fields; email: ``{"to": address}``)."""

    publisher: Any
    received: Callable[[str], list[dict[str, Any]]]


Build = Callable[..., Channels]


@pytest.fixture
def channels(implementation) -> Iterator[Build]:
    if implementation == "fake":

        def fake(refuse_email: bool = False, topic_unavailable: bool = False) -> Channels:
            publisher = MemoryPublisher(
                refuse={"ses": "MessageRejected"} if refuse_email else {},
                unavailable={"sns"} if topic_unavailable else set(),
            )

            def received(channel: str) -> list[dict[str, Any]]:
                outputs = [o for c, o in publisher.sent if c == channel]
                if channel == "ses":
                    return [{"to": o.salesperson_email} for o in outputs]
                return [json.loads(o.model_dump_json(by_alias=True)) for o in outputs]

            return Channels(publisher, received)

        yield fake
        return
    from moto import mock_aws

    from shared.adapters import aws

    with mock_aws():
        aws.reset()
        yield _aws_channels
        aws.reset()


def _aws_channels(refuse_email: bool = False, topic_unavailable: bool = False) -> Channels:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses import ses_backends

    from shared.adapters import aws
    from shared.adapters.publisher import AwsPublisher
    from tests.conftest import sns_rules

    events, sns, sqs, ses = (aws.client(s) for s in ("events", "sns", "sqs", "ses"))
    sns.meta.events.register("before-parameter-build.sns.Publish", sns_rules)
    queues = {}
    for channel in ("events", "sns"):
        url = sqs.create_queue(QueueName=f"contract-{channel}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queues[channel] = (url, arn)
    events.create_event_bus(Name="contract-bus")
    pattern = json.dumps({"source": ["lifecycle"]})
    events.put_rule(Name="all", EventBusName="contract-bus", EventPattern=pattern)
    target = [{"Id": "q", "Arn": queues["events"][1]}]
    events.put_targets(Rule="all", EventBusName="contract-bus", Targets=target)
    topic = sns.create_topic(Name="contract-leads")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queues["sns"][1])
    if not refuse_email:
        ses.verify_email_identity(EmailAddress=SENDER)
    if topic_unavailable:

        def throttled(**_: Any) -> None:
            raise ClientError(
                {"Error": {"Code": "Throttled"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "Publish"
            )

        sns.meta.events.register("before-call.sns.Publish", throttled)

    def received(channel: str) -> list[dict[str, Any]]:
        if channel == "ses":
            sent = ses_backends[DEFAULT_ACCOUNT_ID]["eu-west-1"].sent_messages
            return [{"to": address} for m in sent for address in m.destinations["ToAddresses"]]
        found = []
        while messages := sqs.receive_message(QueueUrl=queues[channel][0], MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in messages:
                body = json.loads(message["Body"])
                found.append(body["detail"] if channel == "events" else json.loads(body["Message"]))
                sqs.delete_message(QueueUrl=queues[channel][0], ReceiptHandle=message["ReceiptHandle"])
        return found

    publisher = AwsPublisher(events, bus="contract-bus", sns=sns, topic_arn=topic, ses=ses, sender=SENDER)
    return Channels(publisher, received)


def moved(n: int) -> ContactStageChanged:
    return ContactStageChanged(
        event_id=f"user_id:ann#{n}#0", contact_id="user_id:ann", at=NOW, from_stage="lead", to_stage="mql",
        phase="acquisition", reason="score", engagement=30.0, index=0.6, direction="rising",
    )


LEAD = LeadRouted(
    event_id="user_id:ann#4#routed", contact_id="user_id:ann", at=NOW, salesperson_id="sam",
    salesperson_name="Sam Seller", salesperson_email="sam@example.com", stage="sql", engagement=61.0,
    reason="sales-ready",
)


def pending(output: Output, *done: str) -> Pending:
    return Pending(key=f"STAGE#{output.event_id}", output=output, done=frozenset(done))


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["event_id"] for item in items]


def test_a_stage_change_goes_on_the_bus_only(channels):
    c = channels()
    (delivery,) = c.publisher.publish([pending(moved(1))])
    assert (delivery.key, delivery.sent, delivery.complete) == ("STAGE#user_id:ann#1#0", {"events"}, True)
    (detail,) = c.received("events")
    assert detail == json.loads(moved(1).model_dump_json(by_alias=True))
    assert c.received("sns") == [] and c.received("ses") == []


def test_a_routed_lead_goes_on_the_bus_to_the_topic_with_its_fields_and_by_email(channels):
    c = channels()
    (delivery,) = c.publisher.publish([pending(LEAD)])
    assert delivery.sent == {"events", "sns", "ses"} and delivery.complete and not delivery.refused
    assert ids(c.received("events")) == [LEAD.event_id]
    (lead,) = c.received("sns")
    assert lead["salesperson_id"] == "sam" and lead["contact_id"] == "user_id:ann" and lead["stage"] == "sql"
    assert c.received("ses") == [{"to": "sam@example.com"}]


def test_channels_already_done_are_not_sent_again(channels):
    c = channels()
    (delivery,) = c.publisher.publish([pending(LEAD, "events", "sns")])
    assert delivery.sent == {"ses"} and delivery.complete
    assert c.received("events") == [] and c.received("sns") == []
    assert c.received("ses") == [{"to": "sam@example.com"}]


def test_an_email_refused_for_good_is_reported_and_the_other_channels_still_go(channels):
    c = channels(refuse_email=True)
    (delivery,) = c.publisher.publish([pending(LEAD)])
    assert delivery.refused == {"ses": "MessageRejected"} and delivery.sent == {"events", "sns"}
    assert delivery.complete, "a refusal for good is not retried"
    assert ids(c.received("sns")) == [LEAD.event_id] and c.received("ses") == []


def test_a_channel_failing_for_now_is_left_to_retry(channels):
    c = channels(topic_unavailable=True)
    (delivery,) = c.publisher.publish([pending(LEAD)])
    assert delivery.retry == {"sns"} and delivery.sent == {"events", "ses"} and not delivery.complete
    assert c.received("sns") == []


def test_many_announcements_each_get_a_delivery_in_order(channels):
    c = channels()
    outputs = [moved(n) for n in range(23)] + [LEAD]
    deliveries = c.publisher.publish([pending(o) for o in outputs])
    assert [d.key for d in deliveries] == [f"STAGE#{o.event_id}" for o in outputs]
    assert all(d.complete for d in deliveries)
    assert sorted(ids(c.received("events"))) == sorted(o.event_id for o in outputs)
