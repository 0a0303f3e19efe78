"""What comes back from the mailbox providers, as SES publishes it to EventBridge (the default bus), and
the reputation alarms' state changes. The feedback function reads these; the wiring subscribes to them.
"""

from __future__ import annotations

#: SES event publishing to EventBridge: one detail type per event kind (source ``aws.ses``)
EMAIL_BOUNCED = "Email Bounced"
EMAIL_COMPLAINT = "Email Complaint Received"
EMAIL_OPENED = "Email Opened"
EMAIL_CLICKED = "Email Clicked"
EMAIL_DELIVERED = "Email Delivered"
#: CloudWatch alarms' state changes (source ``aws.cloudwatch``): the bounce and complaint rate alarms
ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"

FEEDBACK_SOURCES: tuple[str, ...] = ("aws.ses", "aws.cloudwatch")
FEEDBACK_DETAIL_TYPES: tuple[str, ...] = (
    EMAIL_BOUNCED,
    EMAIL_COMPLAINT,
    EMAIL_OPENED,
    EMAIL_CLICKED,
    EMAIL_DELIVERED,
    ALARM_STATE_CHANGE,
)
#: the mailbox providers' limits (Gmail and Yahoo's sender rules, SES's own review thresholds): past
#: either, the alarm pauses marketing sends
COMPLAINT_RATE_LIMIT = 0.001
BOUNCE_RATE_LIMIT = 0.05

#: SES message tags delivery sets on each email, and the feedback function reads back from SES's events
CONTACT_TAG = "lc_contact"
SEND_TAG = "lc_send"
#: SES tag values: at most 256 characters of [A-Za-z0-9_.-@]
TAG_VALUE_LIMIT = 256


def encode_tag(value: str) -> str | None:
    """A value as an SES tag can carry it (base64url, no padding); None if it would not fit."""
    import base64

    encoded = base64.urlsafe_b64encode(value.encode("utf-8")).rstrip(b"=").decode("ascii")
    return encoded if len(encoded) <= TAG_VALUE_LIMIT else None


def decode_tag(encoded: str) -> str:
    import base64

    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")


#: The reputation alarms (CloudWatch, ``AWS/SES``), named as the stack names them: one stack per account
#: and region (its event bus is "lifecycle"), so the names are fixed. The feedback function's rule
#: matches the state changes of these alarms only.
COMPLAINT_RATE_ALARM = "lifecycle-ses-complaint-rate"
BOUNCE_RATE_ALARM = "lifecycle-ses-bounce-rate"
REPUTATION_ALARMS: tuple[str, ...] = (COMPLAINT_RATE_ALARM, BOUNCE_RATE_ALARM)
