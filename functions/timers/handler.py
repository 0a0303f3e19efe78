"""Timers: an hourly schedule runs what is due (decay re-evaluations today; inactivity, delays,
anniversaries and programs as automations arrive)."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import runtime
from shared.observability import logger, metrics, tracer
from shared.settings import AutomationSettings, env_model
from shared.usecases.engagement import run_due


@env_model(AutomationSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return {"evaluated": run_due(runtime.engagement())}
