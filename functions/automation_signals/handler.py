"""Automations triggered by lifecycle signals: an EventBridge rule on the bus (stage, quarter, score,
routing, segment and churn-risk events) invokes this asynchronously with the event itself; a failing
run is retried by Lambda, then sent with its event to the function's dead-letter queue."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from shared import runtime
from shared.automations.engine import Signal
from shared.observability import logger, metrics, tracer
from shared.settings import AutomationSettings, env_model
from shared.usecases.automation import on_signal


class SignalDetail(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    event_id: str = Field(min_length=1)
    contact_id: str = Field(min_length=1)


class BusEvent(BaseModel):
    """The EventBridge envelope, as a rule hands it to its target."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    detail_type: str = Field(alias="detail-type")
    detail: SignalDetail

    def signal(self) -> Signal:
        detail: dict[str, Any] = self.detail.model_dump()
        return Signal(self.detail_type, self.detail.event_id, self.detail.contact_id, detail)


@env_model(AutomationSettings)
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: LambdaContext) -> dict:
    return {"started": on_signal(BusEvent.model_validate(event).signal(), runtime.automating())}
