"""Aggregation: a DynamoDB Streams trigger on the events table (events the tracking path recorded).

A whole batch at once, so each contact's events in it become one profile write. A contact that
fails is reported by its first stream position: Lambda resumes there (retrying until it succeeds:
the trigger never skips a record), and what was folded in since is recognised and skipped.
"""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import runtime
from shared.adapters.contact_items import POSITION_DIGITS, new_event_from_stream
from shared.observability import logger, metrics, tracer
from shared.settings import AggregationSettings, env_model
from shared.usecases.aggregation import Folded, NewEvent, aggregate


def new_events(event: dict[str, Any]) -> list[NewEvent]:
    """The batch's new events. A record that cannot be read is logged (its key, no content) and passed:
    the trigger retries until it succeeds, so one unreadable record must not hold the others back; the
    event stays in the log."""
    found: list[NewEvent] = []
    for record in event.get("Records", []):
        try:
            new = new_event_from_stream(record)
        except Exception:  # noqa: BLE001 - logged and counted, the others go on
            logger.exception("unreadable event record", extra={"eventID": record.get("eventID")})
            metrics.add_metric(name="EventsUnreadable", unit=MetricUnit.Count, value=1)
            continue
        if new is not None:
            found.append(new)
    return found


def response(folded: Folded, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Partial batch failure: Lambda retries from the earliest position reported (the record's own
    sequence number, as Lambda gave it)."""
    for error in folded.errors:
        logger.error("a contact's events were not folded in", extra={"error": type(error).__name__})
    if folded.failed_from is None:
        return {"batchItemFailures": []}
    sequence = next(
        r["dynamodb"]["SequenceNumber"]
        for r in records
        if str(r["dynamodb"]["SequenceNumber"]).zfill(POSITION_DIGITS) == folded.failed_from
    )
    return {"batchItemFailures": [{"itemIdentifier": sequence}]}


def fold(event: dict[str, Any]) -> dict[str, Any]:
    return response(aggregate(new_events(event), runtime.aggregation()), event.get("Records", []))


@env_model(AggregationSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return fold(event)
