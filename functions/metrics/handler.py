"""Lifecycle metrics: an EventBridge rule on the bus hands this each ``ContactStageChanged`` and
``ContactRemoved`` asynchronously; it counts the move (or the removal from the funnel) once (a marker of the
event's id is written with the counters). Issue 15: and each ``NpsAnswered``, counted once into the net
promoter score's counter. A failing run is retried by Lambda, then sent with its event to the function's
dead-letter queue."""

from typing import Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from shared import runtime
from shared.engagement.events import ContactRemoved, ContactStageChanged
from shared.nps.answers import NpsAnswered
from shared.observability import logger, metrics, tracer
from shared.settings import MetricsSettings, env_model
from shared.usecases.nps_metrics import count_metric_signal


class StageHistoryEvent(BaseModel):
    """The EventBridge envelope of a stage move, a removal from the funnel or (issue 15) an NPS answer, as
    the rule hands it on."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    detail_type: Literal["ContactStageChanged", "ContactRemoved", "NpsAnswered"] = Field(alias="detail-type")
    detail: dict[str, Any]

    def entry(self) -> ContactStageChanged | ContactRemoved | NpsAnswered:
        kinds = {"ContactRemoved": ContactRemoved, "NpsAnswered": NpsAnswered}
        return kinds.get(self.detail_type, ContactStageChanged).model_validate(self.detail)


@env_model(MetricsSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return {
        "counted": count_metric_signal(
            StageHistoryEvent.model_validate(event).entry(), runtime.stage_metering()
        )
    }
