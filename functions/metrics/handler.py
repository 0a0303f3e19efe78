"""Lifecycle metrics: an EventBridge rule on the bus hands this each ``ContactStageChanged`` asynchronously;
it counts the move once (a marker of the event's id is written with the counters). A failing run is
retried by Lambda, then sent with its event to the function's dead-letter queue."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from shared import runtime
from shared.engagement.events import ContactStageChanged
from shared.observability import logger, metrics, tracer
from shared.settings import MetricsSettings, env_model
from shared.usecases.metrics import count_stage_move


class StageChangedEvent(BaseModel):
    """The EventBridge envelope of a stage move, as the rule hands it to its target."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    detail_type: str = Field(alias="detail-type")
    detail: ContactStageChanged


@env_model(MetricsSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return {
        "counted": count_stage_move(StageChangedEvent.model_validate(event).detail, runtime.stage_metering())
    }
