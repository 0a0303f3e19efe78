"""Nightly recommendations, step 2: the item-to-item model fitted on every staged segment (numpy and scipy,
this function's layer), staged in parts for the write step."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import runtime
from shared.observability import logger, metrics, tracer
from shared.settings import RecommendationsFitSettings, env_model
from shared.usecases.recommendation_nightly import fit


@env_model(RecommendationsFitSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return fit(event, runtime.recommendations_fit())
