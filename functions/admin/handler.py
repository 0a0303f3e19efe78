"""Admin API (IAM-authorised in the cloud, loopback-only locally): contacts, ledgers, rules, automations."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import runtime
from shared.admin import dispatch
from shared.http import respond
from shared.observability import logger, metrics, tracer
from shared.settings import AdminSettings, env_model


@env_model(AdminSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return respond(event, lambda request: dispatch(request, runtime.admin()))
