"""Preferences: the public unsubscribe (RFC 8058 one-click) and consent confirmation links.

``GET`` and ``POST`` ``/unsubscribe`` and ``/consent/confirm``, the signed token in the query (``t``).
A GET shows a page whose button POSTs back; the POST acts. Every answer is an HTML page, errors included
(a forged link 400, an expired one 410, a failure 500 or 503): never JSON, never a stack trace.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from shared import runtime
from shared.delivery import pages
from shared.delivery.links import TOKEN_PARAMETER
from shared.http import HttpRequest, html_response
from shared.observability import logger, metrics, tracer
from shared.settings import PreferencesSettings, env_model
from shared.usecases.preferences import LinkRequest, serve


def link_request(request: HttpRequest) -> LinkRequest:
    """The part of the request the links read: the method, the route's path, the token."""
    path = request.route.split(" ", 1)[1] if " " in request.route else request.path
    return LinkRequest(method=request.method, path=path, token=request.query.get(TOKEN_PARAMETER))


def answer(event: dict[str, Any]) -> dict[str, Any]:
    try:
        page = serve(link_request(HttpRequest.from_api_gateway(event)), runtime.preferences())
    except ValidationError:  # not an API Gateway event as the routes send
        page = pages.invalid_link()
    except Exception:  # noqa: BLE001 - logged (no PII: the token is not), and a page instead of a trace
        logger.exception("unhandled error", extra={"route": event.get("routeKey")})
        page = pages.failed()
    return html_response(page.status, page.html(), page.headers())


@env_model(PreferencesSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return answer(event)
