"""What the mailbox providers tell us, as SES publishes it to EventBridge, read into models; and the
reputation alarms' state changes. Pure: the feedback use case (``shared.usecases.feedback``) acts on them.

SES event publishing puts one event per bounce, complaint, delivery, open and click on the account's
default bus (``source`` ``aws.ses``, a detail type per kind: ``shared.delivery.feedback``); its
``detail`` is the SES event record (``eventType``, ``mail``, and one of ``bounce``, ``complaint``,
``delivery``, ``open``, ``click``). ``mail.tags`` carries the message tags delivery set, each as a list of
values: ``CONTACT_TAG`` and ``SEND_TAG`` (base64url, ``decode_tag``) tie the event to the contact and
the send. CloudWatch publishes its alarms' state changes on the same bus (``aws.cloudwatch``).

Fields this code does not read are ignored; addresses are read only to be suppressed (hashed).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.delivery.feedback import CONTACT_TAG, SEND_TAG, decode_tag

#: SES bounce types: only a permanent bounce suppresses the address
BounceType = Literal["Permanent", "Transient", "Undetermined"]
#: The reputation metrics SES publishes (namespace ``AWS/SES``) that the stack's alarms watch
SES_NAMESPACE = "AWS/SES"
REPUTATION_METRICS: dict[str, str] = {
    "Reputation.ComplaintRate": "complaint_rate",
    "Reputation.BounceRate": "bounce_rate",
}


class _Read(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class MailHeaders(_Read):
    """``mail``: the email the event is about, as SES sent it."""

    message_id: str = Field(alias="messageId", min_length=1, max_length=512)
    timestamp: datetime
    destination: tuple[str, ...] = ()
    #: message tags, each name with its values (SES adds its own ``ses:*`` tags)
    tags: dict[str, tuple[str, ...]] = Field(default_factory=dict)


class MailRecipient(_Read):
    email_address: str = Field(alias="emailAddress", min_length=1)

    @property
    def address(self) -> str:
        """The bare address (SES may give ``Name <address>``)."""
        return parseaddr(self.email_address)[1] or self.email_address


class BounceDetail(_Read):
    bounce_type: BounceType = Field(alias="bounceType")
    bounce_sub_type: str | None = Field(None, alias="bounceSubType")
    bounced_recipients: tuple[MailRecipient, ...] = Field(alias="bouncedRecipients")
    timestamp: datetime


class ComplaintDetail(_Read):
    complained_recipients: tuple[MailRecipient, ...] = Field(alias="complainedRecipients")
    timestamp: datetime
    complaint_feedback_type: str | None = Field(None, alias="complaintFeedbackType")


class OpenDetail(_Read):
    timestamp: datetime


class ClickDetail(_Read):
    timestamp: datetime
    link: str = Field(min_length=1, max_length=2048)


class DeliveryDetail(_Read):
    timestamp: datetime


class MailEvent(_Read):
    """The SES event record (the EventBridge event's ``detail``)."""

    event_type: str = Field(alias="eventType")
    mail: MailHeaders
    bounce: BounceDetail | None = None
    complaint: ComplaintDetail | None = None
    open: OpenDetail | None = None
    click: ClickDetail | None = None
    delivery: DeliveryDetail | None = None

    def tag(self, name: str) -> str | None:
        """A tag delivery set, decoded; None when absent or not one of ours."""
        values = self.mail.tags.get(name) or ()
        if not values:
            return None
        try:
            return decode_tag(values[0]) or None
        except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
            return None

    @property
    def contact_id(self) -> str | None:
        return self.tag(CONTACT_TAG)

    @property
    def send_id(self) -> str | None:
        return self.tag(SEND_TAG)


class MetricName(_Read):
    namespace: str = ""
    name: str = ""


class MetricStat(_Read):
    metric: MetricName = Field(default_factory=MetricName)


class AlarmMetric(_Read):
    metric_stat: MetricStat | None = Field(None, alias="metricStat")


class AlarmConfiguration(_Read):
    metrics: tuple[AlarmMetric, ...] = ()


class AlarmState(_Read):
    #: ``OK``, ``ALARM`` or ``INSUFFICIENT_DATA``
    value: str
    timestamp: datetime


class AlarmChange(_Read):
    """A ``CloudWatch Alarm State Change`` event's detail."""

    alarm_name: str = Field(alias="alarmName", min_length=1, max_length=255)
    state: AlarmState
    configuration: AlarmConfiguration = Field(default_factory=AlarmConfiguration)

    @property
    def reputation(self) -> str | None:
        """``complaint_rate`` or ``bounce_rate`` when the alarm watches one of SES's reputation metrics."""
        for metric in self.configuration.metrics:
            if metric.metric_stat is None:
                continue
            found = metric.metric_stat.metric
            if found.namespace == SES_NAMESPACE and found.name in REPUTATION_METRICS:
                return REPUTATION_METRICS[found.name]
        return None

    @property
    def firing(self) -> bool:
        return self.state.value == "ALARM"


class BusEvent(_Read):
    """The EventBridge envelope, as the rule hands it to the function."""

    source: str
    detail_type: str = Field(alias="detail-type")
    detail: dict[str, Any]


def feedback_message_id(ses_message_id: str, event_type: str, at: datetime, link: str | None = None) -> str:
    """The messageId an open or click is recorded under: the same for every copy of one SES event (a
    redelivery, a retried invocation), different for another open or click of the same email."""
    moment = at.astimezone(UTC)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    text = "\n".join((ses_message_id, event_type, stamp, link or ""))
    return "ses-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


def automation_of(send_id: str, contact_id: str) -> str | None:
    """The automation a send belongs to, from its request id ``<contact>#<automation>#<occurrence>#<step>``."""
    prefix = contact_id + "#"
    if not send_id.startswith(prefix):
        return None
    automation = send_id[len(prefix) :].split("#", 1)[0]
    return automation or None
