"""Preferences: the public unsubscribe (RFC 8058 one-click) and consent confirmation links, and (issue 15)
the NPS survey's answer links.

``GET`` and ``POST`` ``/unsubscribe``, ``/consent/confirm`` and ``/nps``, the signed token in the query
(``t``); the NPS form's POST sends ``score`` and ``comment`` as a form.
A GET shows a page whose button POSTs back; the POST acts. Every answer is an HTML page, errors included
(a forged link 400, an expired one 410, a failure 500 or 503): never JSON, never a stack trace.
"""

import base64
import binascii
from typing import Any
from urllib.parse import parse_qs

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from shared import runtime
from shared.delivery import pages
from shared.delivery.links import TOKEN_PARAMETER
from shared.http import HttpRequest, html_response
from shared.observability import logger, metrics, tracer
from shared.settings import PreferencesSettings, env_model
from shared.usecases.preferences import LinkRequest, serve

#: a form's body, at most (the NPS form: a score and a comment of at most 1,000 characters)
MAX_FORM_BYTES = 16 * 1024


def link_request(request: HttpRequest) -> LinkRequest:
    """The part of the request the links read: the method, the route's path, the token, a POST's form."""
    path = request.route.split(" ", 1)[1] if " " in request.route else request.path
    return LinkRequest(
        method=request.method, path=path, token=request.query.get(TOKEN_PARAMETER), form=form_fields(request)
    )


def form_fields(request: HttpRequest) -> dict[str, str]:
    """A POST's ``application/x-www-form-urlencoded`` fields (the first of each name); none otherwise."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if request.method != "POST" or not request.body or content_type != "application/x-www-form-urlencoded":
        return {}
    try:
        raw = base64.b64decode(request.body, validate=True) if request.is_base64 else request.body.encode()
        fields = parse_qs(raw[:MAX_FORM_BYTES].decode("utf-8", errors="replace"), max_num_fields=20)
    except (binascii.Error, ValueError):  # not base64, or too many fields
        return {}
    return {name: values[0] for name, values in fields.items() if values}


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
