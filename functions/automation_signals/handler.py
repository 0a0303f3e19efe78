"""Automations triggered by lifecycle signals: an EventBridge rule on the bus (stage, quarter, score,
routing, segment and churn-risk events) invokes this asynchronously with the event itself."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.observability import logger, metrics, tracer
from shared.settings import AutomationSettings, env_model


@env_model(AutomationSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> None:
    pass  # the automation use case plugs in here
