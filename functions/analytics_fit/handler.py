"""Nightly analytics, step 2: every staged segment scored (RFM, churn, rhythm: numpy and scipy, this
function's layer), the scores staged in parts for the apply step."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import runtime
from shared.observability import logger, metrics, tracer
from shared.settings import AnalyticsFitSettings, env_model
from shared.usecases.analytics import fit


@env_model(AnalyticsFitSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return fit(event, runtime.analytics_fit())
