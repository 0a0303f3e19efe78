"""Nightly analytics, step 3 (one per part of the scores, in a Distributed Map): the scores written onto
the contacts once per day, segment and risk changes recorded and announced on the bus."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import runtime
from shared.observability import logger, metrics, tracer
from shared.settings import AnalyticsApplySettings, env_model
from shared.usecases.analytics import apply


@env_model(AnalyticsApplySettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return apply(event, runtime.analytics_apply())
