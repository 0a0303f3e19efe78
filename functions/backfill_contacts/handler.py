"""Back-fill of every contact, one scan segment (a Distributed Map run of the ``contacts_backfill``
workflow): each profile of the segment re-evaluated by the stage function's use case."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import runtime
from shared.observability import logger, metrics, tracer
from shared.settings import BackfillContactsSettings, env_model
from shared.usecases.backfills import backfill_contacts


@env_model(BackfillContactsSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return backfill_contacts(event, runtime.backfill_contacts())
