"""The back-fills' adapters against a stub client: a scan segment read page by page as DynamoDB pages it
(1 MB unless a page size is set), the conditional update of a purchase, and starting a run exactly once."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shared.adapters.backfill_runs import StepFunctionsBackfills, execution_arn
from shared.adapters.contact_scan import DynamoProfileScan
from shared.adapters.purchase_backfill import DynamoUnindexedPurchases
from shared.clock import FixedClock
from shared.errors import DependencyUnavailable
from shared.usecases.backfills import UnindexedPurchase

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def refusal(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, operation)


class Pages:
    """``scan`` answers the pages given, in order, recording each request."""

    def __init__(self, *pages: dict[str, Any]) -> None:
        self.pages = list(pages)
        self.requests: list[dict[str, Any]] = []

    def scan(self, **request: Any) -> dict[str, Any]:
        self.requests.append(json.loads(json.dumps(request)))
        return self.pages.pop(0)


def profile(user: str) -> dict[str, Any]:
    return {"pk": {"S": f"C#user_id:{user}"}, "sk": {"S": "PROFILE"}, "userId": {"S": user}}


def test_a_profile_segment_is_read_page_by_page_from_where_the_last_one_ended() -> None:
    client = Pages(
        {"Items": [profile("ann")], "ScannedCount": 7, "LastEvaluatedKey": {"pk": {"S": "C#user_id:ann"}}},
        {"Items": [], "ScannedCount": 5, "LastEvaluatedKey": {"pk": {"S": "C#user_id:bo"}}},
        {"Items": [profile("bob"), profile("cy")], "ScannedCount": 4},
    )
    pages = list(DynamoProfileScan(client, contacts_table="t-contacts").scan(3, 32))
    assert [[r.contact_id for r in p.profiles] for p in pages] == [
        ["user_id:ann"],
        [],
        ["user_id:bob", "user_id:cy"],
    ]
    assert [p.read for p in pages] == [7, 5, 4]
    first, second, third = client.requests
    assert first == {
        "TableName": "t-contacts",
        "Segment": 3,
        "TotalSegments": 32,
        # issue 14: with each contact's search bookkeeping, so a contact already searchable costs nothing
        "FilterExpression": "#sk IN (:profile, :search)",
        "ExpressionAttributeNames": {"#sk": "sk"},
        "ExpressionAttributeValues": {":profile": {"S": "PROFILE"}, ":search": {"S": "SEARCH"}},
    }, "no Limit: DynamoDB's 1 MB pages"
    assert second["ExclusiveStartKey"] == {"pk": {"S": "C#user_id:ann"}}
    assert third["ExclusiveStartKey"] == {"pk": {"S": "C#user_id:bo"}}


def test_a_page_is_read_only_when_the_previous_one_is_done_with() -> None:
    client = Pages({"Items": [profile("ann")], "ScannedCount": 1, "LastEvaluatedKey": {"k": {"S": "x"}}})
    pages = DynamoProfileScan(client, contacts_table="t", page_size=1).scan(0, 1)
    next(pages)
    assert len(client.requests) == 1 and client.requests[0]["Limit"] == 1


def test_a_throttled_page_is_retried_then_unavailable() -> None:
    class Throttled:
        calls = 0

        def scan(self, **_: Any) -> dict[str, Any]:
            self.calls += 1
            raise refusal("ProvisionedThroughputExceededException", "Scan")

    client = Throttled()
    with pytest.raises(DependencyUnavailable):
        list(DynamoProfileScan(client, contacts_table="t").scan(0, 1))
    assert client.calls > 1


def test_the_purchase_scan_keeps_purchases_without_the_index_and_reads_their_properties() -> None:
    body = json.dumps({"type": "track", "properties": {"revenue": 5, "sku": "kite"}})
    client = Pages(
        {
            "Items": [
                {
                    "pk": {"S": "C#user_id:ann"},
                    "sk": {"S": "E#1"},
                    "timestamp": {"S": "2025-01-02T03:04:05.678Z"},
                    "body": {"S": body},
                },
                {
                    "pk": {"S": "C#user_id:ann"},
                    "sk": {"S": "E#2"},
                    "timestamp": {"S": "2025-01-03T00:00:00.000Z"},
                    "body": {"S": "{not json"},
                },
                {"pk": {"S": "C#user_id:ann"}, "sk": {"S": "E#3"}, "body": {"S": body}},
            ],
            "ScannedCount": 10,
        }
    )
    (page,) = DynamoUnindexedPurchases(client, events_table="t-events").scan(0, 4)
    assert [(p.key, p.properties) for p in page.purchases] == [
        ("E#1", {"revenue": 5, "sku": "kite"}),
        ("E#2", {}),
    ]
    assert (page.read, page.unreadable) == (10, 1), "no time: left out, counted"
    (request,) = client.requests
    assert request["FilterExpression"] == "#behaviour = :purchase AND attribute_not_exists(#at)"
    assert request["ExpressionAttributeNames"]["#at"] == "purchasedAt"
    assert request["ExpressionAttributeValues"] == {":purchase": {"S": "purchase"}}
    assert (request["Segment"], request["TotalSegments"]) == (0, 4)


class Updates:
    def __init__(self, *answers: Exception | None) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []

    def update_item(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else None
        if answer is not None:
            raise answer
        return {}


PURCHASE = UnindexedPurchase(partition="C#user_id:ann", key="E#1", timestamp="2025-01-02T03:04:05.678Z")


def test_a_purchase_is_indexed_on_condition_that_it_is_there_and_not_indexed_yet() -> None:
    client = Updates()
    assert DynamoUnindexedPurchases(client, events_table="t").index(PURCHASE, (("kite", "toys"),)) is True
    (request,) = client.requests
    assert request["UpdateExpression"] == "SET #at = :at, #basket = :basket"
    assert request["ConditionExpression"] == (
        "attribute_exists(#pk) AND attribute_not_exists(#at) AND #behaviour = :purchase"
    )
    assert request["ExpressionAttributeValues"][":at"] == {"S": "2025-01-02T03:04:05.678Z"}
    assert request["ExpressionAttributeValues"][":basket"] == {"S": '[["kite","toys"]]'}
    assert DynamoUnindexedPurchases(Updates(), events_table="t").index(PURCHASE, ()) is True
    refused = Updates(refusal("ConditionalCheckFailedException", "UpdateItem"))
    assert DynamoUnindexedPurchases(refused, events_table="t").index(PURCHASE, ()) is False
    throttled = Updates(refusal("ThrottlingException", "UpdateItem"))
    assert DynamoUnindexedPurchases(throttled, events_table="t").index(PURCHASE, ()) is True
    assert len(throttled.requests) == 2, "a throttled update is retried"


class Machines:
    def __init__(self) -> None:
        self.started: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []

    def start_execution(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        arn = execution_arn(request["stateMachineArn"], request["name"])
        if arn in self.started and self.started[arn] != request["input"]:
            raise refusal("ExecutionAlreadyExists", "StartExecution")
        self.started[arn] = request["input"]
        return {"executionArn": arn, "startDate": NOW}


MACHINE = "arn:aws:states:eu-west-1:123456789012:stateMachine:lifecycle-contacts_backfill"


def test_a_start_carries_its_time_and_a_token_of_its_own_so_a_second_one_is_refused() -> None:
    client = Machines()
    tokens = iter(["t1", "t2"])
    runs = StepFunctionsBackfills(
        client,
        state_machines={"contacts_backfill": MACHINE},
        clock=FixedClock(NOW),
        token=lambda: next(tokens),
    )
    assert runs.start("contacts_backfill", "segment-vip-v1") is True
    assert runs.start("contacts_backfill", "segment-vip-v1") is False
    first, second = client.requests
    assert json.loads(first["input"]) == {"time": "2026-11-23T12:00:00.000Z", "start": "t1"}
    assert json.loads(second["input"])["start"] == "t2", "same input would be taken for the same start"
    assert (
        execution_arn(MACHINE, "x")
        == "arn:aws:states:eu-west-1:123456789012:execution:lifecycle-contacts_backfill:x"
    )


def test_a_start_whose_answer_was_lost_is_resent_as_the_same_start() -> None:
    class LostAnswer(Machines):
        def start_execution(self, **request: Any) -> dict[str, Any]:
            answer = super().start_execution(**request)
            if len(self.requests) == 1:
                raise refusal("ServiceUnavailable", "StartExecution")
            return answer

    client = LostAnswer()
    runs = StepFunctionsBackfills(
        client, state_machines={"contacts_backfill": MACHINE}, clock=FixedClock(NOW)
    )
    assert runs.start("contacts_backfill", "segment-vip-v1") is True
    assert len(client.requests) == 2 and client.requests[0]["input"] == client.requests[1]["input"]
