"""Dead letters of the stream trigger: metadata in the queue, and the redrive that re-reads the range."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Context
from tests.integration.conftest import stream_pump
from tests.integration.test_engagement import stage_of, write_profiles


@pytest.fixture
def queue(aws):
    from shared.adapters import aws as clients

    sqs = clients.client("sqs")
    url = sqs.create_queue(QueueName="lifecycle-stage_transition-dead-letters")["QueueUrl"]

    class Queue:
        def send(self, letter: dict[str, Any]) -> None:
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(letter))

        def bodies(self) -> list[dict[str, Any]]:
            """Every message now in the queue (received, then made visible again)."""
            found = {}
            while True:
                page = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)
                if not page.get("Messages"):
                    break
                for message in page["Messages"]:
                    found[message["MessageId"]] = (json.loads(message["Body"]), message["ReceiptHandle"])
            for _, receipt in found.values():
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=0)
            return [body for body, _ in found.values()]

    Queue.url = url
    Queue.sqs = sqs
    return Queue()


class Breakable:
    """The stage function with a defect for some contacts, until it is fixed; records what it was given."""

    def __init__(self, broken_for: set[str]) -> None:
        from functions.stage_transition.handler import handler

        self._handler = handler
        self.broken_for = broken_for
        self.batches: list[list[str]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.batches.append([r["dynamodb"]["SequenceNumber"] for r in event["Records"]])
        if any(r["dynamodb"]["Keys"]["pk"]["S"] in self.broken_for for r in event["Records"]):
            raise RuntimeError("a defect, fixed later")
        return self._handler(event, context)


def pump(aws, handler, queue, **trigger_changes: Any):
    return stream_pump(aws, "stage_transition", handler=handler, on_failure=queue.send, **trigger_changes)


def redrive(stream, handler, queue, **options: Any):
    from infra.local.filters import matches
    from infra.redrive import Redrive
    from infra.redrive.aws import HandlerInvoker, SqsDeadLetters, StreamShardRanges
    from shared.adapters import aws as clients

    trigger = stream._trigger
    return Redrive(
        SqsDeadLetters(queue.sqs, queue.url, wait_seconds=0),
        StreamShardRanges(clients.client("dynamodbstreams")),
        HandlerInvoker(handler, Context),
        passes=lambda record: any(matches(p, record) for p in trigger.filters),
        batch_size=trigger.batch_size,
        **options,
    ).run()


def write_profile(aws, user: str, writer: str = "tracking") -> None:
    aws.update_item(
        TableName=os.environ["CONTACTS_TABLE_NAME"],
        Key={"pk": {"S": f"C#user_id:{user}"}, "sk": {"S": "PROFILE"}},
        UpdateExpression="SET contactId = :c, userId = :u, lastWriter = :w ADD eventCount :one",
        ExpressionAttributeValues={
            ":c": {"S": f"user_id:{user}"},
            ":u": {"S": user},
            ":w": {"S": writer},
            ":one": {"N": "1"},
        },
    )


def test_a_failed_record_is_redriven_once_after_the_fix_and_its_dead_letter_removed(
    aws, queue, admin
) -> None:
    handler = Breakable({"C#user_id:u2"})
    stream = pump(aws, handler, queue)
    write_profiles(aws, 5, poison_at=-1)
    assert stream.drain() == 5
    (letter,) = queue.bodies()
    assert letter == stream.dead_letters[0]
    batch = letter["DDBStreamBatchInfo"]
    assert batch["batchSize"] == 1 and batch["startSequenceNumber"] == batch["endSequenceNumber"]
    assert stage_of(admin, "u2")["stage"] != "lead"
    write_profile(aws, "later")  # written after the failure, not yet delivered: not part of the range

    handler.broken_for.clear()  # the defect is fixed and deployed
    handler.batches.clear()
    (result,) = redrive(stream, handler, queue)
    assert (result.outcome, result.records) == ("redriven", 1)
    assert handler.batches == [[batch["startSequenceNumber"]]], "exactly that range, once"
    assert stage_of(admin, "u2")["stage"] == "lead"
    assert queue.bodies() == [], "the dead letter is removed once its whole range was processed"
    assert redrive(stream, handler, queue) == [] and len(handler.batches) == 1


def test_the_redrive_filters_the_range_as_the_trigger_does(aws, queue, admin) -> None:
    handler = Breakable({"C#user_id:a", "C#user_id:b"})
    stream = pump(aws, handler, queue, bisect_on_error=False, retry_attempts=0)
    write_profile(aws, "a")
    write_profile(aws, "own", writer="stage")  # the stage function's own write: filtered out
    write_profile(aws, "b")
    assert stream.drain() == 2
    (letter,) = queue.bodies()
    assert letter["DDBStreamBatchInfo"]["batchSize"] == 2
    handler.broken_for.clear()
    handler.batches.clear()
    (result,) = redrive(stream, handler, queue)
    assert result.outcome == "redriven" and result.records == 2
    (delivered,) = handler.batches
    assert (delivered[0], delivered[-1], len(delivered)) == (
        letter["DDBStreamBatchInfo"]["startSequenceNumber"],
        letter["DDBStreamBatchInfo"]["endSequenceNumber"],
        2,
    )
    assert stage_of(admin, "a")["stage"] == stage_of(admin, "b")["stage"] == "lead"


def test_a_range_that_fails_again_stays_in_the_queue(aws, queue) -> None:
    handler = Breakable({"C#user_id:u1"})
    stream = pump(aws, handler, queue)
    write_profiles(aws, 3, poison_at=-1)
    stream.drain()
    (result,) = redrive(stream, handler, queue)
    assert result.outcome == "failed" and "raised" in result.detail
    assert len(queue.bodies()) == 1, "kept, and visible again for the next attempt"


def test_an_expired_range_is_reported_and_kept_unless_discarding_is_asked(aws, queue) -> None:
    from shared.adapters import aws as clients

    handler = Breakable({"C#user_id:u0"})
    stream = pump(aws, handler, queue)
    write_profiles(aws, 1, poison_at=-1)
    stream.drain()
    handler.broken_for.clear()

    def trimmed(**_: Any) -> None:  # what DynamoDB Streams answers once the 24 hours have passed
        raise ClientError(
            {"Error": {"Code": "TrimmedDataAccessException", "Message": "beyond the trim horizon"}},
            "GetShardIterator",
        )

    clients.client("dynamodbstreams").meta.events.register(
        "before-call.dynamodbstreams.GetShardIterator", trimmed
    )
    (result,) = redrive(stream, handler, queue)
    assert result.outcome == "expired" and "TrimmedDataAccessException" in result.detail
    assert len(queue.bodies()) == 1, "never deleted silently"
    (result,) = redrive(stream, handler, queue, discard_expired=True)
    assert result.outcome == "discarded" and queue.bodies() == []


def test_a_message_that_is_no_stream_batch_record_is_left_alone(aws, queue) -> None:
    queue.send({"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": {}})
    stream = pump(aws, Breakable(set()), queue)
    (result,) = redrive(stream, Breakable(set()), queue)
    assert result.outcome == "unreadable" and len(queue.bodies()) == 1


class StubLambda:
    def __init__(self, answer: dict[str, Any] | None, error: str | None = None) -> None:
        self.answer, self.error, self.calls = answer, error, []

    def invoke(self, **request: Any) -> dict[str, Any]:
        import io

        self.calls.append(request)
        response = {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(self.answer).encode())}
        return response | ({"FunctionError": self.error} if self.error else {})


def test_the_cloud_invoker_sends_the_stream_event_and_reads_failures() -> None:
    from infra.redrive import InvocationFailed
    from infra.redrive.aws import LambdaInvoker

    event = {"Records": [{"eventSource": "aws:dynamodb", "dynamodb": {"SequenceNumber": "7"}}]}
    ok = StubLambda({"batchItemFailures": []})
    LambdaInvoker(ok).invoke("arn:aws:lambda:eu-west-1:1:function:stage", event)
    (call,) = ok.calls
    assert call["InvocationType"] == "RequestResponse" and json.loads(call["Payload"]) == event
    with pytest.raises(InvocationFailed, match="failing again, from 7"):
        LambdaInvoker(StubLambda({"batchItemFailures": [{"itemIdentifier": "7"}]})).invoke("f", event)
    with pytest.raises(InvocationFailed, match="boom"):
        LambdaInvoker(StubLambda({"errorMessage": "boom"}, error="Unhandled")).invoke("f", event)


def test_the_local_stack_queues_dead_letters_and_redrives_them(local_stack) -> None:
    import urllib.request

    from infra.wiring import FUNCTIONS
    from shared.adapters import aws as clients

    streamed = [spec.name for spec in FUNCTIONS if spec.stream is not None]
    pump = local_stack.pumps[streamed.index("stage_transition")]
    handler = Breakable({"C#user_id:zed"})
    pump._handler = handler
    db = clients.client("dynamodb")
    os.environ["CONTACTS_TABLE_NAME"] = local_stack.table_names["contacts"]
    write_profile(db, "zed")
    local_stack.drain_streams()
    sqs, url = clients.client("sqs"), local_stack.dead_letter_queues["stage_transition"]
    (message,) = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]
    assert json.loads(message["Body"])["DDBStreamBatchInfo"]["batchSize"] == 1
    assert set(local_stack.dead_letter_queues) == {
        "aggregation",
        "merge",
        "stage_transition",
        "automation_events",
        "automation_signals",
        "timers",
        "delivery",  # the delivery queue's own dead-letter queue (an SQS trigger has no other)
        "feedback",
        "metrics",  # issue 13
        "campaigns",  # issue 13: its schedule's failed runs
    }

    handler.broken_for.clear()
    handler.batches.clear()
    request = urllib.request.Request(
        f"{local_stack.url}/_local/redrive", data=b"{}", headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request) as response:
        answer = json.loads(response.read())
    (result,) = answer["redriven"]["stage_transition"]
    assert (result["outcome"], result["records"]) == ("redriven", 1)
    assert len(handler.batches) == 1
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
