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
