"""Identity merges: a DynamoDB Streams trigger on the contacts table (profile writes that ask for one)."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import runtime
from shared.adapters.contact_items import merge_request_from_stream
from shared.observability import logger, metrics, tracer
from shared.settings import MergeSettings, env_model
from shared.usecases.merging import on_merge_requested

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(record: DynamoDBRecord) -> None:
    request = merge_request_from_stream(record.raw_event)
    if request is not None:
        on_merge_requested(request, runtime.merging())


@env_model(MergeSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
