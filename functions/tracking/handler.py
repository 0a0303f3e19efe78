"""Tracking endpoint: the Segment HTTP Tracking API (POST /v1/...)."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import runtime
from shared.http import respond
from shared.observability import logger, metrics, tracer
from shared.settings import TrackingSettings, env_model
from shared.usecases.tracking import track


@env_model(TrackingSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return respond(event, lambda request: track(request, runtime.tracking()))
