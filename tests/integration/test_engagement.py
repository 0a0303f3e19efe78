"""The stage function on moto: the contacts table's stream pumped into it, as the event source mapping would."""

from __future__ import annotations

import os
import re
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import BROWSER_KEY, Context, as_function, http_event, invoke

TEAM = {
    "ann-s": {"name": "Ann Seller", "email": "ann.s@example.com", "weight": 2},
    "bob-s": {"name": "Bob Seller", "email": "bob.s@example.com", "weight": 1},
    "cy-s": {"name": "Cy Seller", "email": "cy.s@example.com", "available": False},
}


@pytest.fixture
def admin_call(aws):
    from functions.admin.handler import handler

    def _call(method: str, route: str, path: str, body: Any = None, **params: str):
        return invoke(
            handler,
            http_event(method, path, route=route, key=None, body=body, path_parameters=params or None),
        )

    return _call


@pytest.fixture
def team(admin_call):
    for person_id, person in TEAM.items():
        status, _, _ = admin_call(
            "PUT",
            "PUT /admin/salespeople/{salespersonId}",
            f"/admin/salespeople/{person_id}",
            person,
            salespersonId=person_id,
        )
        assert status == 200


@pytest.fixture
def writes(aws):
    """DynamoDB writes made through the shared client, by operation."""
    counted: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        if model.name in ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"):
            counted[model.name] += 1

    aws.meta.events.register("before-parameter-build.dynamodb", count)
    return counted


def stage_of(admin, contact: str) -> dict[str, Any]:
    status, card, _ = admin(contact)
    assert status == 200, card
    return card


def test_journey_from_anonymous_visitor_to_customer(
    send, stream, admin, admin_call, team, bus_events, clock
) -> None:
    send("/v1/p", {"anonymousId": "a1", "properties": {"url": "https://shop.example/"}}, key=BROWSER_KEY)
    stream.drain()
    card = stage_of(admin, "anonymous_id:a1")
    assert (card["stage"], card["engagement"]["quarter"]) == ("subscriber", "nurturing")

    clock.advance(timedelta(minutes=1))
    send(
        "/v1/i",
        {"anonymousId": "a1", "userId": "ann", "traits": {"email": "ann@example.com"}},
        key=BROWSER_KEY,
    )
    stream.drain()
    assert stage_of(admin, "ann")["stage"] == "lead"

    for i in range(3):  # 3 webinars: 30 points as a lead -> MQL (20) ... and 30 < 50: not sales-ready yet
        clock.advance(timedelta(minutes=1))
        send("/v1/track", {"userId": "ann", "event": "Webinar Attended", "messageId": f"w{i}"})
        stream.drain()
    card = stage_of(admin, "ann")
    assert card["stage"] == "mql" and card["owner"] is None

    for i in range(3):  # 30 more points: engagement 61 >= 50 -> SQL, routed to the first salesperson
        clock.advance(timedelta(minutes=1))
        send("/v1/track", {"userId": "ann", "event": "Webinar Attended", "messageId": f"x{i}"})
        stream.drain()
    card = stage_of(admin, "ann")
    assert (card["stage"], card["engagement"]["quarter"], card["owner"]) == ("sql", "sales", "ann-s")
    assert 1.0 <= card["engagement"]["index"] < 2.0

    status, accepted, _ = admin_call(
        "POST",
        "POST /admin/contacts/{contactId}/accept",
        "/admin/contacts/ann/accept",
        {"salesperson": "bob-s"},
        contactId="ann",
    )
    assert status == 409, "only the assignee accepts"
    status, accepted, _ = admin_call(
        "POST",
        "POST /admin/contacts/{contactId}/accept",
        "/admin/contacts/ann/accept",
        {"salesperson": "ann-s"},
        contactId="ann",
    )
    assert (status, accepted["stage"]) == (200, "opportunity")

    clock.advance(timedelta(minutes=1))
    send("/v1/track", {"userId": "ann", "event": "Order Completed", "properties": {"revenue": 99}})
    stream.drain()
    card = stage_of(admin, "ann")
    assert (card["stage"], card["engagement"]["quarter"]) == ("customer", "retention")

    moves = [
        (h["type"], h.get("from"), h.get("to") or h.get("salesperson_id"))
        for h in reversed(card["stage_history"])
    ]
    assert moves == [
        ("ContactStageChanged", None, "subscriber"),  # the known contact's first evaluation: straight to lead
        ("ContactStageChanged", "subscriber", "lead"),
        ("EngagementQuarterChanged", None, "nurturing"),
        ("ContactStageChanged", "lead", "mql"),
        ("ContactStageChanged", "mql", "sql"),
        ("EngagementQuarterChanged", "nurturing", "sales"),
        ("LeadRouted", None, "ann-s"),
        ("ContactStageChanged", "sql", "opportunity"),
        ("ContactStageChanged", "opportunity", "customer"),
        ("EngagementQuarterChanged", "sales", "retention"),
    ]

    published = bus_events()
    for_ann = [
        (e["detail-type"], e["detail"].get("to") or e["detail"].get("salesperson_id"))
        for e in published
        if e["detail"]["contact_id"] == "user_id:ann"
    ]
    assert ("LeadRouted", "ann-s") in for_ann and ("ContactStageChanged", "customer") in for_ann
    assert len({e["detail"]["event_id"] for e in published}) == len(published), "each announcement once"
    routed = next(e for e in published if e["detail-type"] == "LeadRouted")
    assert routed["source"] == "lifecycle" and routed["detail"]["salesperson_email"] == "ann.s@example.com"


def test_weighted_round_robin_skips_the_unavailable(send, stream, admin, team) -> None:
    owners = []
    for i in range(6):
        send(
            "/v1/batch",
            {
                "batch": [
                    {
                        "type": "track",
                        "userId": f"u{i}",
                        "event": "Order Completed" if False else "Webinar Attended",
                        "messageId": f"w{i}{j}",
                    }
                    for j in range(6)
                ]
            },
        )
        stream.drain()
        owners.append(stage_of(admin, f"u{i}")["owner"])
    assert owners == ["ann-s", "bob-s", "ann-s"] * 2


def test_routing_happens_once_per_crossing(send, stream, admin, team, bus_events, clock) -> None:
    for j in range(6):
        send("/v1/track", {"userId": "ann", "event": "Webinar Attended", "messageId": f"w{j}"})
    stream.drain()
    for j in range(5):  # more activity while sales-ready: no new routing
        clock.advance(timedelta(minutes=1))
        send("/v1/track", {"userId": "ann", "event": "Liked", "messageId": f"l{j}"})
        stream.drain()
    routed = [e for e in bus_events() if e["detail-type"] == "LeadRouted"]
    assert len(routed) == 1


def test_replayed_records_apply_once_and_own_writes_do_not_retrigger(
    send, stream, aws, writes, bus_events
) -> None:
    from functions.stage_transition.handler import handler

    captured: list[dict[str, Any]] = []
    original = stream._handler
    stream._handler = lambda event, context: captured.append(event) or original(event, context)
    send("/v1/track", {"userId": "ann", "event": "Order Completed", "properties": {"revenue": 5}})
    assert stream.drain() == 1
    first = bus_events()
    writes.clear()
    for event in captured * 3:  # the same batch delivered again, three times
        assert handler(event, Context()) == {"batchItemFailures": []}
    assert sum(writes.values()) == 0, "a redelivered record changes nothing"
    assert bus_events() == [] and first
    assert stream.drain() == 0, "the stage function's own writes are filtered out of its trigger"


def test_nothing_changes_nothing_written(send, stream, writes) -> None:
    send("/v1/track", {"userId": "ann", "event": "Liked", "messageId": "l0"})
    assert stream.drain() == 1
    send("/v1/track", {"userId": "ann", "event": "Liked", "messageId": "l1"})
    writes.clear()
    assert stream.drain() == 1
    assert sum(writes.values()) == 0


def write_profiles(aws, count: int, poison_at: int) -> None:
    """Profiles as the tracking path leaves them, with one unreadable item (a trait that is not JSON)."""
    table = os.environ["CONTACTS_TABLE_NAME"]
    for i in range(count):
        aws.update_item(
            TableName=table,
            Key={"pk": {"S": f"C#user_id:u{i}"}, "sk": {"S": "PROFILE"}},
            UpdateExpression="SET contactId = :c, userId = :u, lastWriter = :w ADD eventCount :one",
            ExpressionAttributeValues={
                ":c": {"S": f"user_id:u{i}"},
                ":u": {"S": f"u{i}"},
                ":w": {"S": "tracking"},
                ":one": {"N": "1"},
            },
        )
        if i == poison_at:
            aws.put_item(
                TableName=table,
                Item={
                    "pk": {"S": "C#user_id:poison"},
                    "sk": {"S": "PROFILE"},
                    "lastWriter": {"S": "tracking"},
                    "trait:email": {"S": "{not json"},
                },
            )


def test_a_poison_record_among_a_hundred_fails_alone(aws, stream, admin) -> None:
    from functions.stage_transition.handler import handler

    batches: list[dict[str, Any]] = []
    stream._handler = lambda event, context: batches.append(event) or {"batchItemFailures": []}
    write_profiles(aws, 100, poison_at=42)
    assert stream.drain() == 101
    (batch,) = [b for b in batches if len(b["Records"]) == 100] + [
        b for b in batches if len(b["Records"]) == 101
    ]
    records = [r for b in batches for r in b["Records"]]
    poison = next(r for r in records if r["dynamodb"]["Keys"]["pk"]["S"] == "C#user_id:poison")
    response = handler({"Records": records}, Context())
    assert response == {"batchItemFailures": [{"itemIdentifier": poison["dynamodb"]["SequenceNumber"]}]}
    for i in (0, 41, 42, 43, 99):
        assert stage_of(admin, f"u{i}")["stage"] == "lead"


def test_a_poison_record_is_retried_split_off_and_set_aside(aws, stream, admin) -> None:
    """Set aside as AWS does it: the destination gets the batch's shard and sequence range, no record."""
    from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamLambdaOnFailureDestinationModel

    seen: list[dict[str, Any]] = []
    handler = stream._handler
    stream._handler = lambda event, context: seen.extend(event["Records"]) or handler(event, context)
    write_profiles(aws, 5, poison_at=2)
    assert stream.drain() == 6
    (letter,) = stream.dead_letters
    poison = next(r for r in seen if r["dynamodb"]["Keys"]["pk"]["S"] == "C#user_id:poison")
    batch = letter["DDBStreamBatchInfo"]
    assert batch["startSequenceNumber"] == batch["endSequenceNumber"] == poison["dynamodb"]["SequenceNumber"]
    assert (batch["batchSize"], batch["streamArn"]) == (1, stream.arn)
    assert letter["requestContext"]["condition"] == "RetryAttemptsExhausted"
    words = set(re.findall(r"\w+", str(letter)))
    assert not {"Records", "Keys", "NewImage", "poison"} & words, "metadata only, as in AWS"
    DynamoDBStreamLambdaOnFailureDestinationModel.model_validate(letter)
    assert all(stage_of(admin, f"u{i}")["stage"] == "lead" for i in range(5))


def test_ttl_removals_cause_no_transitions(aws, stream) -> None:
    from functions.stage_transition.handler import handler

    removal = {
        "Records": [
            {
                "eventID": "1",
                "eventName": "REMOVE",
                "eventSource": "aws:dynamodb",
                "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
                "dynamodb": {
                    "Keys": {"pk": {"S": "C#user_id:gone"}, "sk": {"S": "PROFILE"}},
                    "OldImage": {"pk": {"S": "C#user_id:gone"}, "sk": {"S": "PROFILE"}},
                    "SequenceNumber": "1",
                },
            }
        ]
    }
    assert handler(removal, Context()) == {"batchItemFailures": []}
    from infra.local.filters import matches
    from infra.wiring import function

    assert not any(matches(p, removal["Records"][0]) for p in function("stage_transition").stream.filters)


def test_decay_alone_moves_a_customer_to_exit_through_the_timers(
    send, stream, admin, clock, bus_events
) -> None:
    from functions.timers.handler import handler as timers

    send("/v1/track", {"userId": "ann", "event": "Order Completed", "properties": {"revenue": 5}})
    send("/v1/track", {"userId": "ann", "event": "Webinar Attended"})
    stream.drain()
    card = stage_of(admin, "ann")
    assert (card["stage"], card["engagement"]["quarter"]) == ("customer", "retention")  # 30 points
    clock.advance(timedelta(days=40))  # 30 -> ~12: still above 10, not due yet
    assert timers({}, Context()) == {"done": 0}
    clock.advance(timedelta(days=20))  # ~7.5 < 10: past the crossing (log2(30/10) half-lives ~ 47.5 days)
    assert timers({}, Context()) == {"done": 1}
    card = stage_of(admin, "ann")
    assert (card["stage"], card["engagement"]["quarter"]) == ("at_risk", "exit")
    assert timers({}, Context()) == {"done": 0}, "a double-fired schedule finds nothing left to do"
    exits = [
        e
        for e in bus_events()
        if e["detail-type"] == "EngagementQuarterChanged" and e["detail"]["to"] == "exit"
    ]
    assert len(exits) == 1


def test_sample_events_for_every_trigger_are_handled(aws) -> None:
    """events/ holds a payload for every trigger; each runs through its real handler."""
    import json as _json

    from functions.admin.handler import handler as admin
    from functions.automation_events.handler import handler as automation_events
    from functions.automation_signals.handler import handler as automation_signals
    from functions.stage_transition.handler import handler as stage
    from functions.timers.handler import handler as timers
    from infra.wiring import AUTOMATION_SIGNALS
    from tests.conftest import EVENTS

    (stream_sample,) = (EVENTS / "stage_transition").glob("*.json")
    assert stage(_json.loads(stream_sample.read_text()), Context()) == {"batchItemFailures": []}
    (schedule_sample,) = (EVENTS / "timers").glob("*.json")
    assert timers(_json.loads(schedule_sample.read_text()), Context()) == {"done": 0}
    (behaviour_sample,) = (EVENTS / "automation_events").glob("*.json")
    assert automation_events(_json.loads(behaviour_sample.read_text()), Context()) == {
        "batchItemFailures": []
    }
    signal_samples = sorted((EVENTS / "automation_signals").glob("*.json"))
    for signal_sample in signal_samples:
        signal = _json.loads(signal_sample.read_text())
        assert signal["source"] == "lifecycle" and signal["detail-type"] in AUTOMATION_SIGNALS
        automation_signals(signal, Context())
    assert len(signal_samples) >= 3, "a stage or quarter change, a segment change, a churn-risk change"
    for sample in sorted((EVENTS / "admin").glob("*.json")):
        status = admin(_json.loads(sample.read_text()), Context())["statusCode"]
        assert status in (200, 404, 409), (
            sample.name
        )  # a card for a contact that does not exist here is a 404


def test_stage_writes_rebase_old_decay_buckets_without_changing_scores(
    aws, send, stream, admin, clock
) -> None:
    """Scores written long ago sit in old buckets; the next stage write folds them, values unchanged."""
    from shared.scoring.decay import Decay

    send("/v1/track", {"userId": "ann", "event": "Order Completed", "properties": {"revenue": 5}})
    clock.advance(timedelta(hours=5, minutes=17, seconds=3))
    send("/v1/track", {"userId": "ann", "event": "Liked"})  # a second ADD: the bucket's sum has >17 digits
    stream.drain()
    from functions.timers.handler import handler as timers

    clock.advance(timedelta(days=500))  # many buckets later (a bucket is 8 half-lives: 240 / 60 days)
    before = stage_of(admin, "ann")["scores"]["global"]
    assert timers({}, Context()) == {"done": 1}  # the hourly run: decay moves her to exit, a stage write
    send("/v1/track", {"userId": "ann", "event": "Webinar Attended"})  # 10 points now
    stream.drain()  # the webinar brings her back: another stage write

    item = aws.get_item(
        TableName=os.environ["CONTACTS_TABLE_NAME"],
        Key={"pk": {"S": "C#user_id:ann"}, "sk": {"S": "PROFILE"}},
    )["Item"]
    decay = Decay()
    for memory in decay.memories:
        buckets = sorted(
            int(name.rsplit(":", 1)[1]) for name in item if name.startswith(f"score:global:{memory.key}:")
        )
        now_bucket = memory.bucket(clock.now())
        assert all(b >= now_bucket - 1 for b in buckets), (memory.key, buckets, now_bucket)
    after = stage_of(admin, "ann")["scores"]["global"]
    assert after["lifetime"] == before["lifetime"] + 10
    expected = before["current"] + 10
    assert after["current"] == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert stream.dead_letters == []


def test_a_stage_move_long_after_entering_the_stage(aws, send, stream, admin, clock) -> None:
    """The old stage snapshot sits in old buckets; the move rewrites it (no overlapping paths)."""
    send(
        "/v1/track",
        {"userId": "ann", "event": "Order Completed", "properties": {"revenue": 5}, "messageId": "o1"},
    )
    stream.drain()
    assert stage_of(admin, "ann")["stage"] == "customer"
    clock.advance(timedelta(days=400))
    for i in (2, 3):  # the third purchase, engaged again: customer -> loyal
        send(
            "/v1/track",
            {"userId": "ann", "event": "Order Completed", "properties": {"revenue": 5}, "messageId": f"o{i}"},
        )
    stream.drain()
    assert stream.dead_letters == []
    card = stage_of(admin, "ann")
    assert (card["stage"], card["engagement"]["quarter"]) == ("loyal", "retention")
    assert card["scores"]["stages"]["loyal"]["lifetime"] == 0


def test_announcements_left_pending_go_out_with_the_contacts_next_record(
    send, stream, admin, bus_events, monkeypatch
) -> None:
    """EventBridge down for longer than the retries: the move stays written, its events pending; the
    contact's next record, even one that moves nothing, publishes them."""
    from shared.adapters.publisher import AwsPublisher
    from shared.errors import DependencyUnavailable

    original = AwsPublisher.publish

    def down(self, outputs):
        raise DependencyUnavailable("EventBridge refused the events; retry")

    monkeypatch.setattr(AwsPublisher, "publish", down)
    send("/v1/track", {"userId": "ann", "event": "Order Completed", "properties": {"revenue": 5}})
    stream.drain()
    assert len(stream.dead_letters) == 1 and bus_events() == []
    assert stage_of(admin, "ann")["stage"] == "customer"
    monkeypatch.setattr(AwsPublisher, "publish", original)
    send("/v1/track", {"userId": "ann", "event": "Liked"})  # moves nothing
    stream.drain()
    published = bus_events()
    assert {(e["detail-type"], e["detail"].get("to")) for e in published} == {
        ("ContactStageChanged", "subscriber"),
        ("ContactStageChanged", "customer"),  # a first purchase goes straight to customer
        ("EngagementQuarterChanged", "retention"),
    }
    send("/v1/track", {"userId": "ann", "event": "Liked"})
    stream.drain()
    assert bus_events() == [], "published once"


def hundred_tags(send, rules_api) -> None:
    """Ann views products in 100 categories: a score dimension for each."""
    interest = {"behaviour": "product_viewed", "points": 1, "tag_from": "properties.category"}
    assert rules_api("PUT", "interest", interest)[0] == 200
    for start in (0, 50):
        views = [
            {
                "type": "track",
                "userId": "ann",
                "event": "Product Viewed",
                "messageId": f"v{i}",
                "properties": {"category": f"category-{i:03d}"},
            }
            for i in range(start, start + 50)
        ]
        assert send("/v1/batch", {"batch": views})[0] == 200


def profile_item(aws, user: str = "ann") -> dict[str, Any]:
    return aws.get_item(
        TableName=os.environ["CONTACTS_TABLE_NAME"],
        Key={"pk": {"S": f"C#user_id:{user}"}, "sk": {"S": "PROFILE"}},
        ConsistentRead=True,
    )["Item"]


def test_a_contact_with_a_hundred_tags_rebases_within_the_expression_limit(
    aws, send, stream, admin, rules_api, clock
) -> None:
    """Every score dimension adds rebase conditions to the stage write; with 100 tags they pass 4 KB.

    DynamoDB rejects an expression over 4 KB (moto does not; the ``aws`` fixture checks every call),
    so the folds are split over writes that each fit, and every old bucket is still folded once."""
    from shared.adapters.contact_items import record_from_item
    from shared.scoring.decay import Decay

    hundred_tags(send, rules_api)
    stream.drain()
    before = record_from_item(profile_item(aws)).scores
    assert len(before) == 101  # global and 100 tags
    clock.advance(timedelta(days=500))  # every dimension's buckets are now old: all of them fold
    send("/v1/track", {"userId": "ann", "event": "Webinar Attended", "messageId": "w1"})
    stream.drain()
    assert stream.dead_letters == []

    item = profile_item(aws)
    decay = Decay()
    for memory in decay.memories:
        now_bucket = memory.bucket(clock.now())
        stale = [
            name
            for name in item
            if name.startswith("score:")
            and f":{memory.key}:" in name
            and int(name.rsplit(":", 1)[1]) < now_bucket - 1
        ]
        assert stale == [], stale[:5]
    after = record_from_item(item).scores
    for dimension, score in before.items():
        if dimension == "global":
            continue
        assert after[dimension].total == score.total
        for recent in (False, True):
            assert after[dimension].value(decay, clock.now(), recent=recent) == pytest.approx(
                score.value(decay, clock.now(), recent=recent), rel=1e-9
            )
    assert after["global"].total == before["global"].total + 10


def test_a_fold_written_apart_is_skipped_when_a_merge_added_to_its_buckets(
    aws, send, stream, rules_api, clock
) -> None:
    """Between the stage write and the folds written after it, a merge adds to a bucket being folded:
    that write's conditions on the exact values read fail and it is skipped (the points stay, folded
    on a later stage write); the other writes apply, and no value changes."""
    from shared.adapters.contact_items import record_from_item
    from shared.scoring.decay import Decay

    hundred_tags(send, rules_api)
    stream.drain()
    clock.advance(timedelta(days=500))
    before = record_from_item(profile_item(aws)).scores
    table = os.environ["CONTACTS_TABLE_NAME"]
    raced: list[list[str]] = []

    def merge_meanwhile(params: dict[str, Any], **_: Any) -> None:
        """Just before the first write of folds apart, a merge adds a point to its first old bucket."""
        if raced or "REMOVE" not in params.get("UpdateExpression", ""):
            return
        names = params["ExpressionAttributeNames"]
        removed = [names[a] for a in params["UpdateExpression"].split("REMOVE ")[1].split(",")]
        raced.append(removed)
        aws.update_item(
            TableName=table,
            Key=params["Key"],
            UpdateExpression="ADD #b :one",
            ExpressionAttributeNames={"#b": removed[0]},
            ExpressionAttributeValues={":one": {"N": "1"}},
        )

    aws.meta.events.register("before-parameter-build.dynamodb.UpdateItem", merge_meanwhile)
    send("/v1/track", {"userId": "ann", "event": "Webinar Attended", "messageId": "w1"})
    stream.drain()
    aws.meta.events.unregister("before-parameter-build.dynamodb.UpdateItem", merge_meanwhile)
    assert stream.dead_letters == [] and len(raced) == 1
    (skipped,) = raced

    item = profile_item(aws)
    decay = Decay()
    stale = {
        name
        for memory in decay.memories
        for name in item
        if name.startswith("score:")
        and f":{memory.key}:" in name
        and int(name.rsplit(":", 1)[1]) < memory.bucket(clock.now()) - 1
    }
    assert stale == set(skipped), "only the raced write's folds are left for later"
    after = record_from_item(item).scores
    dimension, memory_key, bucket = skipped[0].removeprefix("score:").rsplit(":", 2)
    memory = next(m for m in decay.memories if m.key == memory_key)
    for name, score in before.items():
        if name == "global":
            continue
        for recent in (False, True):
            expected = score.value(decay, clock.now(), recent=recent)
            if name == dimension and recent == (memory == decay.recent):
                expected += 2.0 ** (-(clock.now() - memory.anchor(int(bucket))) / memory.half_life)
            assert after[name].value(decay, clock.now(), recent=recent) == pytest.approx(expected, rel=1e-9)


@pytest.fixture
def lead_subscriber(aws):
    """An SQS queue subscribed to the lead topic, raw delivery off: the notices a subscriber receives."""
    import json as _json

    from shared.adapters import aws as clients

    sqs = clients.client("sqs")
    queue = sqs.create_queue(QueueName="lead-subscriber")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    clients.client("sns").subscribe(TopicArn=os.environ["LEAD_TOPIC_ARN"], Protocol="sqs", Endpoint=arn)

    def _read() -> list[dict[str, Any]]:
        found = []
        while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                found.append(_json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return found

    return _read


@pytest.fixture
def lead_email(aws, redeploy):
    """Lead emails on (``SENDER_EMAIL``, not verified yet), the functions redeployed with it; the tests'
    SES client (hooks on it see the functions' calls)."""
    from shared.adapters import aws as clients

    redeploy(SENDER_EMAIL="leads@shop.example")
    return clients.client("ses")


def route_ann(send, stream, clock) -> None:
    """Six webinars: Ann is sales-ready and routed to the first salesperson."""
    for j in range(6):
        clock.advance(timedelta(minutes=1))
        send("/v1/track", {"userId": "ann", "event": "Webinar Attended", "messageId": f"w{j}"})
    stream.drain()


def routed_entry(aws) -> dict[str, Any]:
    """Ann's outbox entry for her LeadRouted announcement (announcements other than stage moves are under
    ``ANNOUNCED#``)."""
    items = aws.query(
        TableName=os.environ["CONTACTS_TABLE_NAME"],
        KeyConditionExpression="pk = :pk AND begins_with(sk, :h)",
        ExpressionAttributeValues={":pk": {"S": "C#user_id:ann"}, ":h": {"S": "ANNOUNCED#"}},
        ConsistentRead=True,
    )["Items"]
    (entry,) = [i for i in items if i["type"]["S"] == "LeadRouted"]
    return entry


def test_lead_topic_subscribers_receive_the_leads_fields(send, stream, team, lead_subscriber, clock) -> None:
    """SNS keeps only protocol keys of a JSON message structure: the lead must travel in them."""
    import json as _json

    route_ann(send, stream, clock)
    (notice,) = lead_subscriber()
    lead = _json.loads(notice["Message"])
    assert lead["contact_id"] == "user_id:ann" and lead["event_id"].endswith("#routed")
    assert (lead["salesperson_id"], lead["salesperson_email"], lead["stage"]) == (
        "ann-s",
        "ann.s@example.com",
        "sql",
    )
    assert notice["Subject"] == "New lead assigned"
    assert notice["MessageAttributes"]["salesperson"]["Value"] == "ann-s"


def test_a_refused_lead_email_is_recorded_and_never_retried(
    aws, lead_email, send, stream, team, lead_subscriber, bus_events, clock
) -> None:
    """The sender is not verified (as in the SES sandbox): SES refuses the email for good. The refusal is
    recorded on the outbox entry, the other channels are marked, and later events notify nobody again."""
    route_ann(send, stream, clock)
    for j in range(4):
        clock.advance(timedelta(minutes=1))
        send("/v1/track", {"userId": "ann", "event": "Liked", "messageId": f"l{j}"})
        stream.drain()
    assert stream.dead_letters == []
    assert len(lead_subscriber()) == 1, "the salesperson is notified on SNS once"
    assert len([e for e in bus_events() if e["detail-type"] == "LeadRouted"]) == 1
    assert lead_email.get_send_quota()["SentLast24Hours"] == 0
    entry = routed_entry(aws)
    assert entry["published"] == {"BOOL": True}
    assert set(entry["delivered"]["SS"]) == {"events", "sns"}
    assert entry["refused:ses"] == {"S": "MessageRejected"}
    assert "pendingOutputs" not in profile_item(aws) or profile_item(aws)["pendingOutputs"] == {"N": "0"}


def test_a_throttled_lead_email_goes_later_without_repeating_the_other_channels(
    aws, lead_email, send, stream, team, lead_subscriber, bus_events, clock
) -> None:
    """SES throttles the first send (a transient error): only the email is retried, and it goes once."""
    from botocore.exceptions import ClientError

    lead_email.verify_email_identity(EmailAddress="leads@shop.example")
    throttled: list[str] = []

    def throttle(**_: Any) -> None:
        if not throttled:
            throttled.append("SendEmail")
            raise ClientError(
                {
                    "Error": {"Code": "Throttling", "Message": "Maximum sending rate exceeded."},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "SendEmail",
            )

    lead_email.meta.events.register("before-call.ses.SendEmail", throttle)
    route_ann(send, stream, clock)
    send("/v1/track", {"userId": "ann", "event": "Liked", "messageId": "l0"})
    stream.drain()
    assert throttled and stream.dead_letters == []
    assert len(lead_subscriber()) == 1
    assert len([e for e in bus_events() if e["detail-type"] == "LeadRouted"]) == 1
    assert lead_email.get_send_quota()["SentLast24Hours"] == 1
    entry = routed_entry(aws)
    assert entry["published"] == {"BOOL": True} and set(entry["delivered"]["SS"]) == {"events", "sns", "ses"}
    assert not any(name.startswith("refused:") for name in entry)


def test_deliveries_marked_while_another_completed_one_of_them_are_each_counted_once(
    aws, send, stream, monkeypatch
) -> None:
    """The due job and the stream can deliver one contact's outbox at once: an entry the other completed
    first is skipped, the others' progress is still recorded, and the pending count stays exact."""
    from shared import runtime
    from shared.adapters.publisher import AwsPublisher
    from shared.contacts.identity import ContactId
    from shared.usecases.engagement import Delivery
    from shared.errors import DependencyUnavailable

    def down(self, pending):
        raise DependencyUnavailable("EventBridge refused the events; retry")

    monkeypatch.setattr(AwsPublisher, "publish", down)
    send("/v1/track", {"userId": "ann", "event": "Order Completed", "properties": {"revenue": 5}})
    stream.drain()
    with as_function("stage_transition"):
        store = runtime.engagement().stages
    ann = ContactId.user("ann")
    first, second, third = (p.key for p in store.pending(ann))
    store.mark_delivered(ann, [Delivery(first, sent=frozenset({"events"}))])  # the other delivery
    store.mark_delivered(
        ann,
        [
            Delivery(first, sent=frozenset({"events"})),
            Delivery(second, sent=frozenset({"events"})),
            Delivery(third, refused={"sns": "AuthorizationError"}, retry=frozenset({"events"})),
        ],
    )
    (left,) = store.pending(ann)
    assert (left.key, left.done) == (third, {"sns"})
    assert profile_item(aws)["pendingOutputs"] == {"N": "1"}
