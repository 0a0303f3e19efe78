"""Delivery: an SQS trigger on the delivery queue; each message one request, sent at most once.

A message that fails is retried on its own (partial batch response) and, after the queue's maximum
receives, moves to its dead-letter queue; a body that is not a delivery request goes the same way
(logged by the fields at fault, never their values). A failing webhook's message is hidden for its
backoff before it is reported failed (its visibility is extended).
"""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import runtime
from shared.observability import logger, metrics, tracer
from shared.settings import DeliverySettings, env_model
from shared.usecases.delivery import deliver_message

# a batch whose every message failed is reported as such (each retried on its own), not raised
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    deliver_message(
        record.body,
        record.receipt_handle,
        runtime.delivering(),
        time_left=lambda: lambda_context.get_remaining_time_in_millis() / 1000,
    )


@env_model(DeliverySettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
