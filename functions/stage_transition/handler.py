"""Stage transitions: a DynamoDB Streams trigger on the contacts table (profile changes by tracked events).

Issue 14: it also keeps the contacts' search terms (a change of the searched traits only)."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import runtime
from shared.adapters.contact_search import terms_change_from_stream
from shared.adapters.stage_store import profile_from_stream
from shared.observability import logger, metrics, tracer
from shared.settings import StageSettings, env_model
from shared.usecases.engagement import on_change
from shared.usecases.search import keep_terms

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(record: DynamoDBRecord) -> None:
    terms = terms_change_from_stream(record.raw_event)
    if terms is not None:
        keep_terms(terms, runtime.search_terms())
    image = profile_from_stream(record.raw_event)
    if image is not None:
        on_change(image, runtime.engagement())


@env_model(StageSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
