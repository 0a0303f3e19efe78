"""Delivery's own resources: the secret that signs links, the SES configuration set that publishes what
happens to each email, and the reputation alarms that pause marketing sends."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ses as ses
from constructs import Construct

from shared.delivery.feedback import (
    BOUNCE_RATE_ALARM,
    BOUNCE_RATE_LIMIT,
    COMPLAINT_RATE_ALARM,
    COMPLAINT_RATE_LIMIT,
)

#: What SES publishes to the default bus: sends and deliveries (counted), bounces and complaints
#: (suppressions, the alarms' rates), opens and clicks (scored behaviour).
PUBLISHED_EVENTS = (
    ses.EmailSendingEvent.SEND,
    ses.EmailSendingEvent.DELIVERY,
    ses.EmailSendingEvent.BOUNCE,
    ses.EmailSendingEvent.COMPLAINT,
    ses.EmailSendingEvent.OPEN,
    ses.EmailSendingEvent.CLICK,
)
#: SES publishes its reputation rates every few minutes over a long trailing window of sends; an hour's
#: highest value past the limit is enough to stop, one hour without a value (no sends) is no breach.
ALARM_PERIOD = Duration.hours(1)
#: The account's rates (``AWS/SES``, no dimension): what SES reviews and pauses the account on, lead
#: emails included, so the alarms watch the same numbers.
REPUTATION_METRICS = {
    COMPLAINT_RATE_ALARM: ("Reputation.ComplaintRate", COMPLAINT_RATE_LIMIT, "complaints"),
    BOUNCE_RATE_ALARM: ("Reputation.BounceRate", BOUNCE_RATE_LIMIT, "bounces"),
}


class Delivery(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.secret = secretsmanager.Secret(
            self,
            "Secret",
            description="Lifecycle: signs unsubscribe and confirmation links, and webhooks",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True
            ),
            # a new secret would invalidate every link in every email already sent
            removal_policy=RemovalPolicy.RETAIN,
        )
        Validations.of(self.secret).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SMG4",
                reason="The secret signs the unsubscribe links in emails already sent (valid for linkDays): "
                "rotating it would break every one of them, and RFC 8058 one-click unsubscribe must keep "
                "working. It never leaves AWS; only the delivery and preferences functions read it.",
            )
        )
        self.configuration_set = ses.ConfigurationSet(
            self,
            "ConfigurationSet",
            reputation_metrics=True,
            sending_enabled=True,
        )
        default_bus = events.EventBus.from_event_bus_name(self, "DefaultBus", "default")
        self.configuration_set.add_event_destination(
            "ToDefaultBus",
            destination=ses.EventDestination.event_bus(default_bus),
            events=list(PUBLISHED_EVENTS),
        )
        self.alarms = {
            name: cloudwatch.Alarm(
                self,
                name.title().replace("-", ""),
                alarm_name=name,
                alarm_description=f"SES {label} rate at or past the mailbox providers' limit ({limit:.1%}): "
                "marketing sends pause until an administrator resumes them",
                metric=cloudwatch.Metric(
                    namespace="AWS/SES", metric_name=metric, statistic="Maximum", period=ALARM_PERIOD
                ),
                threshold=limit,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                datapoints_to_alarm=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            for name, (metric, limit, label) in REPUTATION_METRICS.items()
        }

    @property
    def names(self) -> dict[str, str]:
        """What the functions' environment calls each delivery service."""
        return {
            "email": self.configuration_set.configuration_set_name,
            "delivery_secret": self.secret.secret_arn,
        }
