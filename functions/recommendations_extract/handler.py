"""Nightly recommendations, step 1 (one per scan segment, in a Distributed Map): a segment of the contacts'
profiles, their recent products only, staged in the bucket."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import runtime
from shared.observability import logger, metrics, tracer
from shared.settings import RecommendationsExtractSettings, env_model
from shared.usecases.recommendation_nightly import extract


@env_model(RecommendationsExtractSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return extract(event, runtime.recommendations_extract())
