"""Delivery feedback: an EventBridge rule on the account's default bus invokes this asynchronously with
one event: SES's bounces, complaints, deliveries, opens and clicks (through the stack's configuration
set), and the reputation alarms' state changes. A failure is retried by Lambda, then sent with its
event to the function's dead-letter queue; every effect is idempotent (``shared.usecases.feedback``)."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import runtime
from shared.observability import logger, metrics, tracer
from shared.settings import FeedbackSettings, env_model
from shared.usecases.feedback import on_feedback


@env_model(FeedbackSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return {"outcome": on_feedback(event, runtime.feedback())}
