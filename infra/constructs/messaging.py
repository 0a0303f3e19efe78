"""Announcements: the EventBridge bus for stage events, and the SNS topic (and SES sender) for lead routing."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_ses as ses
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import DeploymentConfig


class Messaging(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        configuration_set: ses.IConfigurationSet | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(
            self, "Bus", event_bus_name="lifecycle", description="Lifecycle stage events"
        )
        self.lead_topic = sns.Topic(
            self,
            "LeadTopic",
            display_name="Lifecycle: leads routed to salespeople",
            master_key=kms.Alias.from_alias_name(self, "SnsKey", "alias/aws/sns"),
            enforce_ssl=True,
        )
        self.sender: ses.EmailIdentity | None = None
        if config.sender_email:
            # every email from the sender goes through the configuration set unless a call names another,
            # so SES publishes its bounces and complaints (lead emails' too)
            self.sender = ses.EmailIdentity(
                self,
                "Sender",
                identity=ses.Identity.email(config.sender_email),
                configuration_set=configuration_set,
            )

    @property
    def names(self) -> dict[str, str]:
        """What the functions' environment calls each service."""
        return {"events": self.bus.event_bus_name, "sns": self.lead_topic.topic_arn}
