"""Automations triggered by behaviour: a DynamoDB Streams trigger on the event log (events recorded).

The log's second stream reader (the aggregation is the first; DynamoDB Streams serve two readers per
shard without throttling). Issue 15: it also records NPS answers (``NPS Submitted``). A record that fails is retried on its own (partial batch response); a run
it recorded before failing is finished by the retry or, at the latest, by the timer function.
"""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import runtime
from shared.adapters.contact_items import new_event_from_stream
from shared.nps.submissions import is_submission
from shared.observability import logger, metrics, tracer
from shared.settings import AutomationSettings, env_model
from shared.usecases.automation import on_event
from shared.usecases.campaigns import count_conversions
from shared.usecases.metrics import count_purchase
from shared.usecases.nps import record_answer

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(record: DynamoDBRecord) -> None:
    new = new_event_from_stream(record.raw_event)
    if new is not None:
        # issue 13: counted first, each once (idempotent), so an automation that keeps failing on this
        # record cannot take a conversion, an unsubscribe or a purchase's revenue with it
        count_conversions(new.contact, new.event, runtime.converting())
        count_purchase(new.contact, new.event, new.key, runtime.purchase_metering())
        if is_submission(new.event):  # issue 15: an NPS answer, recorded once before automations see it
            record_answer(new.contact, new.event, runtime.nps_recording(), position=new.position)
        on_event(new.contact, new.event, new.key, runtime.automating(), position=new.position)


@env_model(AutomationSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
