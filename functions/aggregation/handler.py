"""Aggregation: a DynamoDB Streams trigger on the events table (events the tracking path recorded).

A whole batch at once, so each contact's events in it become one profile write. A contact that
fails is reported by its first stream position: Lambda resumes there, and what was folded in since
is recognised and skipped.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import runtime
from shared.adapters.contact_items import POSITION_DIGITS, new_event_from_stream
from shared.observability import logger, metrics, tracer
from shared.settings import AggregationSettings, env_model
from shared.usecases.aggregation import Folded, NewEvent, aggregate


def new_events(event: dict[str, Any]) -> tuple[list[NewEvent], str | None]:
    """The batch's new events, up to the first record that cannot be read (its position, or None)."""
    found: list[NewEvent] = []
    for record in event.get("Records", []):
        try:
            new = new_event_from_stream(record)
        except Exception:  # noqa: BLE001 - a record we cannot read goes back to the stream, then aside
            logger.exception("unreadable event record", extra={"eventID": record.get("eventID")})
            return found, str(record["dynamodb"]["SequenceNumber"]).zfill(POSITION_DIGITS)
        if new is not None:
            found.append(new)
    return found, None


def response(folded: Folded, unreadable: str | None) -> dict[str, Any]:
    """Partial batch failure: Lambda retries from the earliest position reported."""
    for error in folded.errors:
        logger.error("a contact's events were not folded in", extra={"error": type(error).__name__})
    first = min((p for p in (folded.failed_from, unreadable) if p), default=None)
    return {"batchItemFailures": [{"itemIdentifier": first.lstrip("0") or "0"}] if first else []}


def fold(event: dict[str, Any]) -> dict[str, Any]:
    news, unreadable = new_events(event)
    return response(aggregate(news, runtime.aggregation()), unreadable)


@env_model(AggregationSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return fold(event)
