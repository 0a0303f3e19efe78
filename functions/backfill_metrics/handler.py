"""Back-fill of the lifecycle metrics, one scan segment (a Distributed Map run of the ``metrics_backfill``
workflow): the segment's stage history (moves, removals from the funnel) counted, each entry once ever."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import runtime
from shared.observability import logger, metrics, tracer
from shared.settings import BackfillMetricsSettings, env_model
from shared.usecases.backfills import backfill_metrics


@env_model(BackfillMetricsSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return backfill_metrics(event, runtime.backfill_metrics())
