"""Tracking endpoint: the Segment HTTP Tracking API (POST /v1/...)."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import runtime
from shared.http import HttpRequest, respond
from shared.observability import logger, metrics, tracer
from shared.settings import TrackingSettings, env_model
from shared.usecases.tracking import TrackingRequest, track


def tracking_request(request: HttpRequest) -> TrackingRequest:
    """The part of the HTTP request that tracking reads (the use case takes no HTTP type)."""
    return TrackingRequest(
        path=request.path,
        body=request.body,
        is_base64=request.is_base64,
        content_type=request.headers.get("content-type"),
        content_encoding=request.headers.get("content-encoding"),
        authorization=request.headers.get("authorization"),
        client_ip=request.source_ip,
    )


@env_model(TrackingSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return respond(event, lambda request: track(tracking_request(request), runtime.tracking()))
