"""Due-time job: a schedule re-evaluates contacts whose engagement decay may have moved them."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import runtime
from shared.observability import logger, metrics, tracer
from shared.settings import DueSettings, env_model
from shared.usecases.engagement import run_due


@env_model(DueSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return {"evaluated": run_due(runtime.engagement())}
