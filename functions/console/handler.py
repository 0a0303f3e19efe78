"""The console: the web page marketers and salespeople use (``GET /`` and ``GET /console/<file>``).

Its files are public, as any site's are; everything it shows comes from the admin API, which the page
calls signed in (Cognito in the cloud, loopback locally).
"""

from pathlib import Path

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import runtime
from shared.console import answer
from shared.observability import logger, metrics, tracer
from shared.settings import ConsoleSettings, env_model

#: The page, its scripts and styles, and the charting library's browser build (copied there by ``make``).
STATIC = Path(__file__).parent / "static"


@env_model(ConsoleSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return answer(event.get("rawPath", "/"), STATIC, runtime.console())
