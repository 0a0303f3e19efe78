"""What the local stack's providers did with what delivery handed them, read back from moto: the emails
SES sent (the raw MIME, its tags), the texts SNS sent; and the events SES would publish about an email.

moto keeps every raw email the SES v2 API sent (in its SES backend's ``sent_messages``) and every text
SNS sent (``sms_messages``), by the message id it answered; it keeps no ``EmailTags``, so the delivery
function's SES client is watched for them (``SentEmailTags``).
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from shared.delivery.feedback import EMAIL_BOUNCED, EMAIL_CLICKED, EMAIL_COMPLAINT, EMAIL_OPENED
from shared.tracking.timestamps import format_time

#: what ``POST /_local/feedback`` can report about a sent email
FeedbackKind = Literal["open", "click", "bounce", "soft_bounce", "complaint"]
FEEDBACK_KINDS: tuple[str, ...] = ("open", "click", "bounce", "soft_bounce", "complaint")
#: the detail type SES publishes each kind under (source ``aws.ses``), and its ``eventType``
DETAIL_TYPES = {
    "open": (EMAIL_OPENED, "Open"),
    "click": (EMAIL_CLICKED, "Click"),
    "bounce": (EMAIL_BOUNCED, "Bounce"),
    "soft_bounce": (EMAIL_BOUNCED, "Bounce"),
    "complaint": (EMAIL_COMPLAINT, "Complaint"),
}
LOCAL_USER_AGENT = "Lifecycle local stack (POST /_local/feedback)"


class SentEmailTags:
    """The ``EmailTags`` of every email the watched SES v2 clients sent, by the message id SES answered.

    ``hook`` is a client hook for ``infra.local.permissions.function_scope``: it sees each client the
    function builds."""

    def __init__(self) -> None:
        self._tags: dict[str, dict[str, list[str]]] = {}
        self._lock = threading.Lock()

    def hook(self, service: str, client: Any) -> None:
        if service != "sesv2":
            return
        client.meta.events.register("provide-client-params.sesv2.SendEmail", self._requested)
        client.meta.events.register("after-call.sesv2.SendEmail", self._answered)

    def _requested(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["local_email_tags"] = [dict(tag) for tag in params.get("EmailTags") or []]

    def _answered(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        message_id = parsed.get("MessageId")
        if not message_id:
            return
        tags: dict[str, list[str]] = {}
        for tag in context.get("local_email_tags", []):
            tags.setdefault(tag["Name"], []).append(tag["Value"])
        with self._lock:
            self._tags[message_id] = tags

    def tags(self, message_id: str) -> dict[str, list[str]]:
        with self._lock:
            return dict(self._tags.get(message_id, {}))


@dataclass(frozen=True)
class SentEmail:
    """An email as SES sent it."""

    message_id: str
    raw: bytes
    source: str
    message: EmailMessage = field(repr=False)

    @property
    def headers(self) -> dict[str, str]:
        """Each header, name -> value (decoded), as the message carries it."""
        return {name: str(value) for name, value in self.message.items()}

    @property
    def recipients(self) -> list[str]:
        return [address for _, address in getaddresses(self.message.get_all("to", [])) if address]

    def part(self, subtype: Literal["plain", "html"]) -> str | None:
        body = self.message.get_body(preferencelist=(subtype,))
        if body is None or body.get_content_subtype() != subtype:
            return None
        return str(body.get_content()).replace("\r\n", "\n")  # as sent over SMTP: CRLF line ends


def sent_email(account: str, region: str, message_id: str) -> SentEmail | None:
    """The raw email SES (moto) sent under ``message_id``, parsed; None if it sent none."""
    from moto.ses.models import ses_backends

    for sent in reversed(ses_backends[account][region].sent_messages):
        if getattr(sent, "id", None) == message_id and hasattr(sent, "raw_data"):
            raw = sent.raw_data.encode("utf-8") if isinstance(sent.raw_data, str) else bytes(sent.raw_data)
            message = BytesParser(policy=policy.default).parsebytes(raw)
            return SentEmail(message_id, raw, sent.source, message)  # type: ignore[arg-type]
    return None


def sent_text(account: str, region: str, message_id: str) -> tuple[str, str] | None:
    """(phone number, text) of the SMS SNS (moto) sent under ``message_id``; None if it sent none."""
    from moto.sns.models import sns_backends

    return sns_backends[account][region].sms_messages.get(message_id)


def eml_path(folder: Path, request_id: str, sent_at: datetime) -> Path:
    """Where the local stack writes a sent email: ``<sent time>-<hash of the request id>.eml``, so the
    folder lists them in order and a request's file is always the same one."""
    digest = hashlib.sha256(request_id.encode()).hexdigest()[:12]
    return folder / f"{sent_at.strftime('%Y%m%dT%H%M%SZ')}-{digest}.eml"


def write_once(path: Path, raw: bytes) -> Path:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(raw)
        temporary.replace(path)
    return path


class InvalidFeedback(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class FeedbackRequest:
    """``POST /_local/feedback``: what happened to the email a delivery request sent."""

    id: str
    kind: FeedbackKind
    link: str | None = None

    @classmethod
    def parse(cls, body: bytes) -> FeedbackRequest:
        try:
            data = json.loads(body or b"null")
        except ValueError as exc:
            raise InvalidFeedback("body", f"not JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise InvalidFeedback("body", 'send {"id": "<delivery request id>", "kind": "open"}')
        unknown = sorted(set(data) - {"id", "kind", "link"})
        if unknown:
            raise InvalidFeedback(unknown[0], "unknown field (id, kind and link are)")
        request_id, kind, link = data.get("id"), data.get("kind"), data.get("link")
        if not isinstance(request_id, str) or not request_id:
            raise InvalidFeedback(
                "id", "the delivery request's id is required (GET /_local/outbox lists them)"
            )
        if kind not in FEEDBACK_KINDS:
            raise InvalidFeedback("kind", f"one of {', '.join(FEEDBACK_KINDS)}")
        if kind == "click":
            if not isinstance(link, str) or urlsplit(link).scheme not in ("http", "https"):
                raise InvalidFeedback("link", "a click needs the http(s) link that was clicked")
        elif link is not None:
            raise InvalidFeedback("link", "only a click has a link")
        return cls(request_id, kind, link)


def ses_event(
    feedback: FeedbackRequest,
    sent: SentEmail,
    *,
    tags: dict[str, list[str]],
    sent_at: datetime,
    now: datetime,
    account: str,
    region: str,
    configuration_set: str,
) -> dict[str, Any]:
    """The ``PutEvents`` entry for the event SES publishes to EventBridge (the default bus) about the
    email: its detail is SES's event record (``eventType``, ``mail`` and the kind's own object), as in
    the SES developer guide's "Examples of event data that Amazon SES publishes"."""
    detail_type, event_type = DETAIL_TYPES[feedback.kind]
    at = format_time(now)
    recipients = sent.recipients
    sender_domain = sent.source.rpartition("@")[2]
    mail = {
        "timestamp": format_time(sent_at),
        "source": sent.source,
        "sourceArn": f"arn:aws:ses:{region}:{account}:identity/{sent.source}",
        "sendingAccountId": account,
        "messageId": sent.message_id,
        "destination": recipients,
        "headersTruncated": False,
        "headers": [{"name": name, "value": value} for name, value in sent.headers.items()],
        "commonHeaders": {
            "from": [str(sent.message["from"])],
            "to": recipients,
            "messageId": sent.message_id,
            "subject": str(sent.message["subject"] or ""),
        },
        "tags": {
            "ses:configuration-set": [configuration_set],
            "ses:source-ip": ["127.0.0.1"],
            "ses:from-domain": [sender_domain],
            "ses:caller-identity": ["lifecycle-delivery"],
            **tags,
        },
    }
    detail: dict[str, Any] = {"eventType": event_type, "mail": mail}
    feedback_id = f"local-{uuid.uuid4()}"
    if feedback.kind in ("bounce", "soft_bounce"):
        permanent = feedback.kind == "bounce"
        detail["bounce"] = {
            "bounceType": "Permanent" if permanent else "Transient",
            "bounceSubType": "General" if permanent else "MailboxFull",
            "bouncedRecipients": [
                {
                    "emailAddress": address,
                    "action": "failed",
                    "status": "5.1.1" if permanent else "4.2.2",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown"
                    if permanent
                    else "smtp; 452 4.2.2 mailbox full",
                }
                for address in recipients
            ],
            "timestamp": at,
            "feedbackId": feedback_id,
            "reportingMTA": "dsn; localhost",
        }
    elif feedback.kind == "complaint":
        detail["complaint"] = {
            "complainedRecipients": [{"emailAddress": address} for address in recipients],
            "timestamp": at,
            "feedbackId": feedback_id,
            "userAgent": LOCAL_USER_AGENT,
            "complaintFeedbackType": "abuse",
            "arrivalDate": at,
        }
    elif feedback.kind == "open":
        detail["open"] = {"ipAddress": "127.0.0.1", "timestamp": at, "userAgent": LOCAL_USER_AGENT}
    else:
        detail["click"] = {
            "ipAddress": "127.0.0.1",
            "timestamp": at,
            "userAgent": LOCAL_USER_AGENT,
            "link": feedback.link,
            "linkTags": {},
        }
    return {
        "Source": "aws.ses",
        "DetailType": detail_type,
        "Detail": json.dumps(detail),
        "Resources": [f"arn:aws:ses:{region}:{account}:configuration-set/{configuration_set}"],
        "Time": now,
        "EventBusName": "default",
    }
