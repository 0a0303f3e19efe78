"""What the local stack reads back from moto's SES (the raw email, the tags the sender gave it) and the
SES events ``POST /_local/feedback`` publishes about it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from infra.local.mail import FeedbackRequest, SentEmailTags, eml_path, sent_email, ses_event, write_once
from shared.delivery.feedback import CONTACT_TAG, EMAIL_BOUNCED, EMAIL_CLICKED, SEND_TAG, encode_tag

REGION = "eu-west-1"
SENT_AT = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 2, 11, 30, tzinfo=UTC)


@pytest.fixture
def ses() -> Iterator[tuple[Any, str]]:
    """A SES v2 client watched as the delivery function's is, the sender verified; and the account."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress="shop@example.com")
        account = boto3.client("sts", region_name=REGION).get_caller_identity()["Account"]
        yield boto3.client("sesv2", region_name=REGION), account


def send(client: Any, tags: dict[str, str]) -> str:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "shop@example.com", "ann@example.com", "Hello Ann"
    message["List-Unsubscribe"] = "<https://api.example/unsubscribe?t=abc>"
    message.set_content("Hi\n")
    message.add_alternative("<p>Hi</p>", subtype="html")
    return client.send_email(
        FromEmailAddress="shop@example.com",
        Destination={"ToAddresses": ["ann@example.com"]},
        Content={"Raw": {"Data": message.as_bytes()}},
        EmailTags=[{"Name": k, "Value": v} for k, v in tags.items()],
        ConfigurationSetName="lifecycle-local",
    )["MessageId"]


def test_the_sent_email_and_its_tags_are_read_back(ses) -> None:
    client, account = ses
    watched = SentEmailTags()
    watched.hook("sesv2", client)
    contact, send_id = encode_tag("user_id:ann"), encode_tag("user_id:ann#welcome#o1#0")
    message_id = send(client, {CONTACT_TAG: contact, SEND_TAG: send_id})
    assert watched.tags(message_id) == {CONTACT_TAG: [contact], SEND_TAG: [send_id]}
    assert watched.tags("another") == {}
    sent = sent_email(account, REGION, message_id)
    assert sent is not None and sent.recipients == ["ann@example.com"]
    assert sent.headers["List-Unsubscribe"] == "<https://api.example/unsubscribe?t=abc>"
    assert (sent.part("plain"), sent.part("html")) == ("Hi\n", "<p>Hi</p>\n")
    assert sent_email(account, REGION, "unknown") is None


def test_a_click_and_a_hard_bounce_as_ses_publishes_them(ses) -> None:
    client, account = ses
    message_id = send(client, {})
    sent = sent_email(account, REGION, message_id)
    assert sent is not None
    tags = {CONTACT_TAG: ["dXNlcl9pZDphbm4"]}
    common: dict[str, Any] = {
        "tags": tags,
        "sent_at": SENT_AT,
        "now": NOW,
        "account": account,
        "region": REGION,
        "configuration_set": "cs",
    }

    click = ses_event(FeedbackRequest("x", "click", "https://shop.example/a"), sent, **common)
    assert (click["Source"], click["DetailType"], click["EventBusName"]) == (
        "aws.ses",
        EMAIL_CLICKED,
        "default",
    )
    detail = json.loads(click["Detail"])
    assert detail["eventType"] == "Click"
    assert detail["click"]["link"] == "https://shop.example/a"
    assert detail["click"]["timestamp"] == "2026-12-02T11:30:00.000Z"
    mail = detail["mail"]
    assert (mail["messageId"], mail["destination"], mail["timestamp"]) == (
        message_id,
        ["ann@example.com"],
        "2026-12-02T10:00:00.000Z",
    )
    assert mail["tags"][CONTACT_TAG] == tags[CONTACT_TAG] and mail["tags"]["ses:configuration-set"] == ["cs"]
    assert mail["commonHeaders"]["subject"] == "Hello Ann"

    hard = json.loads(ses_event(FeedbackRequest("x", "bounce"), sent, **common)["Detail"])
    soft = json.loads(ses_event(FeedbackRequest("x", "soft_bounce"), sent, **common)["Detail"])
    assert hard["eventType"] == soft["eventType"] == "Bounce"
    assert (hard["bounce"]["bounceType"], soft["bounce"]["bounceType"]) == ("Permanent", "Transient")
    assert hard["bounce"]["bouncedRecipients"][0]["emailAddress"] == "ann@example.com"
    assert ses_event(FeedbackRequest("x", "bounce"), sent, **common)["DetailType"] == EMAIL_BOUNCED
    complaint = json.loads(ses_event(FeedbackRequest("x", "complaint"), sent, **common)["Detail"])
    assert complaint["complaint"]["complainedRecipients"] == [{"emailAddress": "ann@example.com"}]


def test_each_email_is_written_once_under_its_time_and_a_hash_of_its_request(tmp_path: Path) -> None:
    path = eml_path(tmp_path / "mail", "user_id:ann#welcome#o1#0", SENT_AT)
    assert path.name.startswith("20261202T100000Z-") and path.suffix == ".eml"
    assert "ann" not in path.name, "no address or id in the file name"
    assert eml_path(tmp_path / "mail", "user_id:ann#welcome#o1#0", SENT_AT) == path
    write_once(path, b"first")
    write_once(path, b"second")
    assert path.read_bytes() == b"first"
