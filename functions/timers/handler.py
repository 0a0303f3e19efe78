"""Timers: an hourly schedule runs what is due in the due index, and only that: contacts whose decay
or automations (lapses, anniversaries) need a look, series, waits and follow-ups, runs left pending."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import runtime
from shared.observability import logger, metrics, tracer
from shared.settings import AutomationSettings, env_model
from shared.usecases.automation import run_timers


@env_model(AutomationSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return {
        "done": run_timers(
            runtime.automating(),
            runtime.stage_reevaluation(),
            time_left=lambda: context.get_remaining_time_in_millis() / 1000,
        )
    }
