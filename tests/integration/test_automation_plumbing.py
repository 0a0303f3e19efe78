"""The automation plumbing in the local stack, as deployed: lifecycle signals on the bus reach the signal
automations (asynchronously, with Lambda's retries and dead letters), the trigger loop runs until every
stream, rule and queue is quiet, automations may send to the delivery queue only, and ``GET /_local/outbox``
lists what the delivery function did with what they handed it."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError


def get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def signal_pump(local_stack: Any) -> Any:
    (pump,) = [p for p in local_stack.bus_pumps if p.name == "automation_signals"]
    return pump


class Recorder:
    """The real signal handler, recording the events it is given; failing while ``failing`` is set."""

    def __init__(self) -> None:
        from functions.automation_signals.handler import handler

        self._handler = handler
        self.events: list[dict[str, Any]] = []
        self.failing = False

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        if self.failing:
            raise RuntimeError("an automation defect")
        return self._handler(event, context)


def publish(detail_type: str, detail: dict[str, Any]) -> None:
    from infra.local.stack import BUS
    from shared.adapters import aws

    entry = {
        "Source": "lifecycle",
        "DetailType": detail_type,
        "Detail": json.dumps(detail),
        "EventBusName": BUS,
    }
    assert aws.client("events").put_events(Entries=[entry])["FailedEntryCount"] == 0


def test_signals_reach_the_signal_automations_as_eventbridge_hands_them_over(local_stack) -> None:
    recorder = Recorder()
    signal_pump(local_stack)._handler = recorder
    detail = {"event_id": "user_id:ann#2#0", "contact_id": "user_id:ann", "from": "nurturing", "to": "sales"}
    publish("EngagementQuarterChanged", detail)
    publish("SomethingElse", {"contact_id": "user_id:ann"})  # not a signal automations react to
    local_stack.drain_streams()
    (event,) = recorder.events
    assert (event["source"], event["detail-type"], event["detail"]) == (
        "lifecycle",
        "EngagementQuarterChanged",
        detail,
    )
    assert {"version", "id", "time", "region", "resources"} <= set(event)
    assert len(event["account"]) == 12 and event["account"].isdigit()
    captured = [e["type"] for e in get(f"{local_stack.url}/_local/events")["events"]]
    assert captured == ["EngagementQuarterChanged", "SomethingElse"], "the capture rule still sees all"


def test_a_failing_signal_run_is_retried_twice_then_dead_lettered_with_its_event(local_stack) -> None:
    from shared.adapters import aws

    recorder = Recorder()
    recorder.failing = True
    signal_pump(local_stack)._handler = recorder
    publish("ContactStageChanged", {"event_id": "user_id:bob#3#0", "contact_id": "user_id:bob", "to": "lead"})
    local_stack.drain_streams()
    assert len(recorder.events) == 3 and recorder.events[0] == recorder.events[2], "1 + 2 attempts"
    sqs = aws.client("sqs")
    url = local_stack.dead_letter_queues["automation_signals"]
    (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestPayload"] == recorder.events[0]
    assert record["responsePayload"] == {"errorMessage": "an automation defect", "errorType": "RuntimeError"}
    recorder.failing = False
    local_stack.drain_streams()
    assert len(recorder.events) == 3, "the event was taken off the rule's queue: not run again"


def test_tracked_behaviour_runs_through_streams_and_the_bus_in_one_drain(local_stack) -> None:
    """A purchase is recorded, folded into the profile, moves the stage, is announced on the bus and
    reaches the signal automations, all within one ``drain_streams``."""
    recorder = Recorder()
    signal_pump(local_stack)._handler = recorder
    request = urllib.request.Request(
        f"{local_stack.url}/v1/track",
        data=json.dumps({"userId": "ann", "event": "Order Completed", "properties": {"revenue": 5}}).encode(),
        headers={"content-type": "application/json", "authorization": "Basic bG9jYWwtc2VydmVyLWtleTo="},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read()) == {"success": True}
    local_stack.drain_streams()
    moves = [e["detail"]["to"] for e in recorder.events if e["detail-type"] == "ContactStageChanged"]
    assert moves and moves[-1] == "customer"
    assert all(e["detail"]["contact_id"] == "user_id:ann" for e in recorder.events)


@pytest.mark.parametrize("name", ["automation_events", "automation_signals", "timers"])
def test_automations_may_send_to_the_delivery_queue_and_nowhere_else(local_stack, name) -> None:
    from infra.wiring import function
    from shared import scope
    from shared.adapters import aws

    hosted = scope.hosted(function(name).handler)
    url = hosted.environ["DELIVERY_QUEUE_URL"]
    assert url == local_stack.queue_urls["delivery"]
    with hosted.active():
        sqs = aws.client("sqs")
        sqs.send_message(QueueUrl=url, MessageBody=request("x#a#1#0", datetime(2026, 1, 1, tzinfo=UTC)))
        with pytest.raises(ClientError, match="sqs:SendMessage"):
            sqs.send_message(QueueUrl=local_stack.queue_dead_letters["delivery"], MessageBody="{}")
        with pytest.raises(ClientError, match="sqs:ReceiveMessage"):
            sqs.receive_message(QueueUrl=url)


def request(id: str, at: datetime, **fields: Any) -> str:
    from shared.delivery.requests import DeliveryRequest

    contact, automation, occurrence, step = id.split("#")
    return DeliveryRequest(
        id=id,
        contact_id=contact,
        automation=automation,
        version=1,
        occurrence=occurrence,
        step=int(step),
        channel=fields.pop("channel", "email"),
        at=at,
        **fields,
    ).model_dump_json()


def test_the_delivery_function_consumes_the_queue_and_the_outbox_lists_what_it_did(local_stack) -> None:
    """Requests for contacts delivery does not know are skipped and leave no ledger entry (an erased
    contact's partition is never written again: the outbox lists them as requested, ``queued``), a
    held-out one likewise, oldest first; a message that is no delivery request fails each receive and
    reaches the queue's dead-letter queue after ``max_receive_count``."""
    from shared.adapters import aws

    sqs, url = aws.client("sqs"), local_stack.queue_urls["delivery"]
    early, late = datetime(2026, 11, 23, 12, 0, tzinfo=UTC), datetime(2026, 11, 23, 13, 30, tzinfo=UTC)
    sqs.send_message(QueueUrl=url, MessageBody=request("user_id:ann#welcome#o1#1", late, text="later"))
    sqs.send_message(
        QueueUrl=url,
        MessageBody=request("user_id:ann#welcome#o1#0", early, subject="Welcome", text="Hello Ann"),
    )
    sqs.send_message(
        QueueUrl=url,
        MessageBody=request(
            "user_id:bob#welcome#o2#0", early, channel="sms", status="held_out", reason="control group"
        ),
    )
    sqs.send_message(QueueUrl=url, MessageBody='{"not": "a delivery request"}')
    messages = get(f"{local_stack.url}/_local/outbox")["messages"]
    assert [m["id"] for m in messages] == [
        "user_id:ann#welcome#o1#0",  # earliest, sent second
        "user_id:bob#welcome#o2#0",  # as early: after it, in arrival order
        "user_id:ann#welcome#o1#1",
    ]
    assert messages[0] == {
        "id": "user_id:ann#welcome#o1#0",
        "contact_id": "user_id:ann",
        "automation": "welcome",
        "channel": "email",
        "at": json.loads(request("x#a#1#0", early))["at"],
        "status": "queued",
        "reason": None,
        "subject": "Welcome",
        "text": "Hello Ann",
    }
    assert (messages[1]["channel"], messages[1]["status"], messages[1]["reason"]) == (
        "sms",
        "held_out",
        "control group",
    )
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == [], "handled and deleted"
    contacts = local_stack.table_names["contacts"]
    for contact in ("user_id:ann", "user_id:bob"):
        written = aws.client("dynamodb").query(
            TableName=contacts,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"C#{contact}"}},
        )["Items"]
        assert written == [], "nothing written under a contact delivery does not know"
    (aside,) = sqs.receive_message(QueueUrl=local_stack.queue_dead_letters["delivery"])["Messages"]
    assert json.loads(aside["Body"]) == {"not": "a delivery request"}
    assert get(f"{local_stack.url}/_local/outbox")["messages"] == messages, "kept in memory"
    assert "/_local/outbox" in local_stack.banner()
