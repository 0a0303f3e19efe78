"""The local IAM check: a function's calls are allowed exactly as its role (from the wiring) allows them."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from infra.config import DeploymentConfig, environment
from infra.local.permissions import LocalPolicy
from infra.permissions import grants
from infra.wiring import FUNCTIONS, function
from shared.adapters.tables import TABLES as ALL_TABLES

#: every table of the stack, by id
NAMES = {table.id: f"t-{table.id}" for table in ALL_TABLES}
TOPIC = "arn:aws:sns:eu-west-1:123456789012:leads"
SENDER = "leads@example.com"
DELIVERY_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/t-delivery"
QUEUE_URLS = {"delivery": DELIVERY_URL}
BUCKET_NAMES = {"analytics": "t-analytics"}


def policy(name: str, sender: str | None = SENDER) -> LocalPolicy:
    env = environment(
        function(name),
        NAMES,
        DeploymentConfig(sender_email=sender),
        {"events": "bus", "sns": TOPIC},
        QUEUE_URLS,
        BUCKET_NAMES,
    )
    return LocalPolicy(function(name), env)


def denied(policy: LocalPolicy, service: str, operation: str, **params) -> str:
    with pytest.raises(ClientError) as raised:
        policy.check(service, operation, params)
    error = raised.value.response["Error"]
    assert "not authorized to perform" in error["Message"]
    return error["Code"]


def test_granted_table_actions_pass_and_others_are_denied() -> None:
    tracking = policy("tracking")
    tracking.check("dynamodb", "GetItem", {"TableName": "t-config"})
    tracking.check("dynamodb", "PutItem", {"TableName": "t-events"})
    tracking.check("dynamodb", "UpdateItem", {"TableName": "t-rates"})
    denied(tracking, "dynamodb", "GetItem", TableName="t-rates")  # counters are added to, never read
    denied(tracking, "dynamodb", "Query", TableName="t-events")  # merges read the log, not the request path
    assert denied(tracking, "dynamodb", "Scan", TableName="t-contacts") == "AccessDeniedException"
    denied(tracking, "dynamodb", "PutItem", TableName="t-config")
    denied(tracking, "dynamodb", "GetItem", TableName="another-table")
    denied(policy("stage_transition"), "dynamodb", "PutItem", TableName="t-events")


def test_transactions_are_authorised_item_by_item() -> None:
    merge = policy("merge")
    put = {"Put": {"TableName": "t-contacts", "Item": {}}}
    check = {"ConditionCheck": {"TableName": "t-contacts", "Key": {}, "ConditionExpression": "x"}}
    merge.check("dynamodb", "TransactWriteItems", {"TransactItems": [put, check]})
    delete = {"Delete": {"TableName": "t-contacts", "Key": {}}}
    denied(merge, "dynamodb", "TransactWriteItems", TransactItems=[put, delete])
    denied(policy("admin"), "dynamodb", "TransactWriteItems", TransactItems=[check])


def test_a_query_by_index_needs_query_on_the_index() -> None:
    policy("stage_transition").check("dynamodb", "Query", {"TableName": "t-contacts", "IndexName": "byDue"})
    admin = policy("admin")
    admin.check("dynamodb", "Query", {"TableName": "t-contacts"})
    denied(admin, "dynamodb", "Query", TableName="t-contacts", IndexName="byDue")
    admin.check("dynamodb", "Query", {"TableName": "t-events"})
    denied(admin, "dynamodb", "Query", TableName="t-events", IndexName="byTime")


def test_index_grants_are_query_only_but_the_nightly_scan_of_one_named_index() -> None:
    named = set()
    for spec in FUNCTIONS:
        for grant in grants(spec):
            if grant.resource == "index" and grant.index is None:
                assert grant.actions == ("dynamodb:Query",), spec.name
            elif grant.resource == "index":
                named.add((spec.name, grant.actions, grant.index))
    # the nightly extract Scans the purchase index; the readers of segments' members (the admin, issue 13)
    # Query the segment index alone
    assert ("analytics_extract", ("dynamodb:Scan",), "byPurchase") in named
    assert ("admin", ("dynamodb:Query",), "bySegment") in named
    # issue 14: the admin Queries the look-up index too (a salesperson's leads, contact search)
    assert ("admin", ("dynamodb:Query",), "byLookup") in named
    others = named - {("analytics_extract", ("dynamodb:Scan",), "byPurchase")}
    assert all(actions == ("dynamodb:Query",) for _, actions, _ in others)
    assert {index for _, _, index in others} == {"bySegment", "byLookup", "byPurchase"}
    assert {name for name, _, index in others if index == "byLookup"} == {"admin"}
    # issue 15: serving Queries one contact's purchases (what it bought), the admin and delivery alone
    assert {name for name, _, index in others if index == "byPurchase"} == {"admin", "delivery"}


def test_services_only_where_wired_and_only_on_their_resource() -> None:
    stage = policy("stage_transition")
    stage.check("events", "PutEvents", {"Entries": [{"EventBusName": "bus"}]})
    stage.check("sns", "Publish", {"TopicArn": TOPIC})
    stage.check("ses", "SendEmail", {"Source": f"Lifecycle <{SENDER}>"})
    denied(stage, "events", "PutEvents", Entries=[{"EventBusName": "default"}])
    assert denied(stage, "sns", "Publish", TopicArn=TOPIC + "-other") == "AuthorizationError"
    assert denied(stage, "ses", "SendEmail", Source="someone@else.example") == "AccessDenied"
    denied(policy("stage_transition", sender=None), "ses", "SendEmail", Source=SENDER)
    tracking = policy("tracking")
    denied(tracking, "events", "PutEvents", Entries=[{"EventBusName": "bus"}])
    denied(tracking, "sns", "Publish", TopicArn=TOPIC)
    denied(tracking, "sqs", "SendMessage", QueueUrl="q")


def test_queues_take_the_wired_actions_on_their_arn_only() -> None:
    """Automations send to the delivery queue (one message or a batch); nothing else on it, no other
    queue, and no function without the wiring's grant."""
    for name in ("automation_events", "automation_signals", "timers"):
        automation = policy(name)
        automation.check("sqs", "SendMessage", {"QueueUrl": DELIVERY_URL, "MessageBody": "{}"})
        automation.check("sqs", "SendMessageBatch", {"QueueUrl": DELIVERY_URL, "Entries": []})
        assert denied(automation, "sqs", "ReceiveMessage", QueueUrl=DELIVERY_URL) == "AccessDenied"
        denied(automation, "sqs", "DeleteMessage", QueueUrl=DELIVERY_URL, ReceiptHandle="r")
        other = DELIVERY_URL.replace("t-delivery", "t-delivery-dead-letters")
        message = denied_message(automation, "sqs", "SendMessage", QueueUrl=other, MessageBody="{}")
        assert (
            "sqs:SendMessage on resource: arn:aws:sqs:eu-west-1:123456789012:t-delivery-dead-letters"
            in message
        )
        denied(automation, "sqs", "PurgeQueue", QueueUrl=DELIVERY_URL)
    for name in ("tracking", "aggregation", "stage_transition", "admin"):
        denied(policy(name), "sqs", "SendMessage", QueueUrl=DELIVERY_URL, MessageBody="{}")


def denied_message(policy: LocalPolicy, service: str, operation: str, **params) -> str:
    with pytest.raises(ClientError) as raised:
        policy.check(service, operation, params)
    return raised.value.response["Error"]["Message"]


# --- delivery: SES v2 email, SMS, the delivery secret ---------------------------------------------------

CONFIGURATION_SET = "lifecycle-mail"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:delivery-AbCdEf"
DELIVERY_SERVICES = {
    "events": "bus",
    "sns": TOPIC,
    "email": CONFIGURATION_SET,
    "delivery_secret": SECRET_ARN,
    "links": "https://links.example",
}
PHONE = "+48600100200"


def delivery_policy(name: str, sender: str | None = SENDER) -> LocalPolicy:
    env = environment(
        function(name), NAMES, DeploymentConfig(sender_email=sender), DELIVERY_SERVICES, QUEUE_URLS
    )
    return LocalPolicy(function(name), env)


def send_email(policy: LocalPolicy, sender: str = SENDER, configuration_set: str | None = CONFIGURATION_SET):
    """An SES v2 SendEmail as the delivery function's client makes it (signed as ``ses``)."""
    params = {"FromEmailAddress": f"Shop <{sender}>", "Content": {"Raw": {"Data": b"..."}}}
    if configuration_set is not None:
        params["ConfigurationSetName"] = configuration_set
    policy.check("ses", "SendEmail", params)


def test_emails_go_from_the_sender_through_the_configuration_set_only() -> None:
    delivery = delivery_policy("delivery")
    send_email(delivery)
    send_email(delivery, configuration_set=None)  # the identity's default set applies: only the identity
    with pytest.raises(ClientError) as raised:
        send_email(delivery, sender="someone@else.example")
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"  # SES v2's own word
    assert "configuration-set" not in raised.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as raised:
        send_email(delivery, configuration_set="another-set")
    assert (
        "ses:SendEmail on resource: arn:aws:ses:local:000000000000:configuration-set/another-set"
        in (raised.value.response["Error"]["Message"])
    )
    # no sender configured: nothing to send from, the function skips emails
    with pytest.raises(ClientError):
        send_email(delivery_policy("delivery", sender=None))
    # functions without the email service may not send through the configuration set
    for name in ("preferences", "feedback", "tracking"):
        with pytest.raises(ClientError):
            send_email(delivery_policy(name))


def test_sms_to_phone_numbers_only_where_wired() -> None:
    delivery = delivery_policy("delivery")
    delivery.check("sns", "Publish", {"PhoneNumber": PHONE, "Message": "Hi"})
    delivery.check("sns", "CheckIfPhoneNumberIsOptedOut", {"phoneNumber": PHONE})
    # the lead topic is the lead functions' (sns), not delivery's
    assert denied(delivery, "sns", "Publish", TopicArn=TOPIC, Message="x") == "AuthorizationError"
    stage = delivery_policy("stage_transition")  # publishes to the lead topic, never to a phone
    stage.check("sns", "Publish", {"TopicArn": TOPIC, "Message": "lead"})
    assert denied(stage, "sns", "Publish", PhoneNumber=PHONE, Message="x") == "AuthorizationError"
    denied(stage, "sns", "CheckIfPhoneNumberIsOptedOut", phoneNumber=PHONE)
    denied(delivery_policy("preferences"), "sns", "Publish", PhoneNumber=PHONE, Message="x")


def test_the_delivery_secret_is_read_only_by_the_functions_that_sign() -> None:
    for name in ("delivery", "preferences"):
        delivery_policy(name).check("secretsmanager", "GetSecretValue", {"SecretId": SECRET_ARN})
        code = denied(delivery_policy(name), "secretsmanager", "GetSecretValue", SecretId=SECRET_ARN + "x")
        assert code == "AccessDeniedException"
        denied(delivery_policy(name), "secretsmanager", "PutSecretValue", SecretId=SECRET_ARN)
    for name in ("feedback", "admin", "tracking", "timers"):
        denied(delivery_policy(name), "secretsmanager", "GetSecretValue", SecretId=SECRET_ARN)


def test_every_service_grant_names_its_actions() -> None:
    """A service the wiring names is granted its actions (links: none, an environment variable)."""
    from infra.permissions import SERVICE_ACTIONS

    for spec in FUNCTIONS:
        granted = {grant.resource: grant.actions for grant in grants(spec)}
        for service in spec.services:
            assert granted.get(service, ()) == SERVICE_ACTIONS[service], (spec.name, service)
    assert SERVICE_ACTIONS["links"] == ()


# --- the nightly analytics functions: the one Scan, and the staging bucket -----------------------------


def test_the_extract_scans_the_purchase_index_and_never_the_table() -> None:
    extract = policy("analytics_extract")
    extract.check("dynamodb", "Scan", {"TableName": "t-events", "IndexName": "byPurchase", "Segment": 0})
    assert denied(extract, "dynamodb", "Scan", TableName="t-events") == "AccessDeniedException"
    denied(extract, "dynamodb", "Scan", TableName="t-events", IndexName="anotherIndex")
    denied(extract, "dynamodb", "Query", TableName="t-events", IndexName="byPurchase")
    denied(extract, "dynamodb", "GetItem", TableName="t-events")
    denied(extract, "dynamodb", "Scan", TableName="t-contacts", IndexName="byPurchase")
    for spec in FUNCTIONS:
        if spec.name != "analytics_extract":
            denied(policy(spec.name), "dynamodb", "Scan", TableName="t-events", IndexName="byPurchase")


def test_serving_queries_the_purchase_index_and_scans_nothing() -> None:
    """Issue 15: the admin and delivery read what a contact bought with a Query of the purchase index; no
    other function may Query it, and Scan stays the extract's."""
    for name in ("admin", "delivery"):
        serving = policy(name)
        serving.check("dynamodb", "Query", {"TableName": "t-events", "IndexName": "byPurchase"})
        denied(serving, "dynamodb", "Scan", TableName="t-events", IndexName="byPurchase")
        denied(serving, "dynamodb", "Query", TableName="t-events", IndexName="anotherIndex")
    for spec in FUNCTIONS:
        if spec.name not in ("admin", "delivery"):
            denied(policy(spec.name), "dynamodb", "Query", TableName="t-events", IndexName="byPurchase")


def test_each_step_reads_and_writes_only_what_its_wiring_grants_under_the_prefix() -> None:
    key = "analytics/2026-11-23/purchases/segment-0000-of-0016.jsonl"
    extract, fit, apply = policy("analytics_extract"), policy("analytics_fit"), policy("analytics_apply")
    extract.check("s3", "PutObject", {"Bucket": "t-analytics", "Key": key})
    extract.check("s3", "CreateMultipartUpload", {"Bucket": "t-analytics", "Key": key})
    assert denied(extract, "s3", "GetObject", Bucket="t-analytics", Key=key) == "AccessDenied"
    denied(extract, "s3", "PutObject", Bucket="t-analytics", Key="elsewhere/x")
    denied(extract, "s3", "PutObject", Bucket="another-bucket", Key=key)
    fit.check("s3", "GetObject", {"Bucket": "t-analytics", "Key": key})
    fit.check("s3", "HeadObject", {"Bucket": "t-analytics", "Key": key})
    fit.check(
        "s3", "PutObject", {"Bucket": "t-analytics", "Key": "analytics/2026-11-23/scores/part-00000.jsonl"}
    )
    fit.check("s3", "ListObjectsV2", {"Bucket": "t-analytics", "Prefix": "analytics/2026-11-23/purchases/"})
    denied(fit, "s3", "ListObjectsV2", Bucket="t-analytics")  # a listing names a prefix under its own
    denied(fit, "s3", "ListObjectsV2", Bucket="t-analytics", Prefix="other/")
    denied(fit, "s3", "DeleteObject", Bucket="t-analytics", Key=key)
    apply.check("s3", "GetObject", {"Bucket": "t-analytics", "Key": key})
    denied(apply, "s3", "PutObject", Bucket="t-analytics", Key=key)
    # the apply may list under the prefix (so a missing part is S3's 404), nothing else
    apply.check("s3", "ListObjectsV2", {"Bucket": "t-analytics", "Prefix": "analytics/2026-11-23/scores/"})
    denied(apply, "s3", "ListObjectsV2", Bucket="t-analytics", Prefix="other/")
    for spec in FUNCTIONS:
        if not spec.buckets:
            denied(policy(spec.name), "s3", "GetObject", Bucket="t-analytics", Key=key)


def test_the_apply_writes_profiles_in_transactions_and_announces() -> None:
    apply = policy("analytics_apply")
    update = {"Update": {"TableName": "t-contacts", "Key": {}, "UpdateExpression": "SET a = :a"}}
    check = {"ConditionCheck": {"TableName": "t-contacts", "Key": {}, "ConditionExpression": "x"}}
    put = {"Put": {"TableName": "t-contacts", "Item": {}}}
    apply.check("dynamodb", "TransactWriteItems", {"TransactItems": [update, put]})
    # no transaction of the apply checks an item: the grant is gone
    denied(apply, "dynamodb", "TransactWriteItems", TransactItems=[update, check, put])
    apply.check("dynamodb", "GetItem", {"TableName": "t-contacts"})
    apply.check("events", "PutEvents", {"Entries": [{"EventBusName": "bus"}]})
    denied(apply, "dynamodb", "TransactWriteItems", TransactItems=[{"Delete": {"TableName": "t-contacts"}}])
    denied(apply, "dynamodb", "Query", TableName="t-contacts")
    denied(apply, "dynamodb", "PutItem", TableName="t-events")


def test_the_nps_answer_page_reads_one_template_and_nothing_else_of_the_config_table() -> None:
    """Issue 15: the preferences function asks the survey template's question: GetItem on the config
    table, no Query of every template, no write."""
    preferences = policy("preferences")
    preferences.check("dynamodb", "GetItem", {"TableName": "t-config"})
    for operation in ("Query", "Scan", "PutItem", "UpdateItem", "DeleteItem"):
        denied(preferences, "dynamodb", operation, TableName="t-config")
    denied(preferences, "dynamodb", "BatchGetItem", RequestItems={"t-config": {"Keys": []}})
    denied(preferences, "dynamodb", "GetItem", TableName="t-rates")
