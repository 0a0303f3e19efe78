"""Lifecycle metrics: an EventBridge rule on the bus hands this each ``ContactStageChanged`` and
``ContactRemoved`` asynchronously; it counts the move (or the removal from the funnel) once (a marker of the
event's id is written with the counters). A failing run is
retried by Lambda, then sent with its event to the function's dead-letter queue."""

from typing import Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from shared import runtime
from shared.engagement.events import ContactRemoved, ContactStageChanged
from shared.observability import logger, metrics, tracer
from shared.settings import MetricsSettings, env_model
from shared.usecases.metrics import count_stage_move


class StageHistoryEvent(BaseModel):
    """The EventBridge envelope of a stage move or a removal from the funnel, as the rule hands it on."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    detail_type: Literal["ContactStageChanged", "ContactRemoved"] = Field(alias="detail-type")
    detail: dict[str, Any]

    def entry(self) -> ContactStageChanged | ContactRemoved:
        kind = ContactRemoved if self.detail_type == "ContactRemoved" else ContactStageChanged
        return kind.model_validate(self.detail)


@env_model(MetricsSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return {
        "counted": count_stage_move(StageHistoryEvent.model_validate(event).entry(), runtime.stage_metering())
    }
