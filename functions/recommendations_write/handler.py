"""Nightly recommendations, step 3 (one per part of the model, in a Distributed Map): the part's neighbour
items (and the popularity item) put into the config table."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import runtime
from shared.observability import logger, metrics, tracer
from shared.settings import RecommendationsWriteSettings, env_model
from shared.usecases.recommendation_nightly import write


@env_model(RecommendationsWriteSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return write(event, runtime.recommendations_write())
