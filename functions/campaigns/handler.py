"""Campaigns: a schedule (every minute) advances the live campaigns, each throttled to its send rate,
from its saved cursor; what it plans goes to delivery through the delivery queue."""

from dataclasses import asdict

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import runtime
from shared.observability import logger, metrics, tracer
from shared.settings import CampaignSettings, env_model
from shared.usecases.campaigns import advance_campaigns


@env_model(CampaignSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return asdict(
        advance_campaigns(
            runtime.campaigning(), time_left=lambda: context.get_remaining_time_in_millis() / 1000
        )
    )
