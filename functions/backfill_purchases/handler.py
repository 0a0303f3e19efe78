"""Back-fill of the purchase index, one scan segment (a Distributed Map run of the ``purchases_backfill``
workflow): the segment's purchases without ``purchasedAt`` put in the index, once."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import runtime
from shared.observability import logger, metrics, tracer
from shared.settings import BackfillPurchasesSettings, env_model
from shared.usecases.backfills import backfill_purchases


@env_model(BackfillPurchasesSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return backfill_purchases(event, runtime.backfill_purchases())
