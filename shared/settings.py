"""Function settings from the environment: the only module that reads it.

Each function declares a pydantic model; ``env_model`` validates it before the
handler runs, so a misconfigured function fails loudly on its first call.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from shared.adapters.tables import CONFIG, CONTACTS, EVENTS

M = TypeVar("M", bound=BaseModel)
_loaded: dict[type[BaseModel], BaseModel] = {}


class _Settings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class ContactStoreSettings(_Settings):
    contacts_table_name: str = Field(alias=CONTACTS.env, min_length=3)
    events_table_name: str = Field(alias=EVENTS.env, min_length=3)
    event_retention_days: int = Field(395, alias="EVENT_RETENTION_DAYS", ge=1, le=36500)
    purchase_retention_days: int = Field(3650, alias="PURCHASE_RETENTION_DAYS", ge=1, le=36500)


class MergeSettings(ContactStoreSettings):
    """The merge function: the contact store, and the decay that scored the events it retracts."""

    #: half-life of current engagement; changing it restarts decayed engagement (lifetime totals stay)
    score_half_life_days: float = Field(30, alias="SCORE_HALF_LIFE_DAYS", gt=0, le=3650)


class ScoringSettings(MergeSettings):
    config_table_name: str = Field(alias=CONFIG.env, min_length=3)
    #: how long a function keeps the compiled rule book before reloading it
    rules_cache_seconds: float = Field(30, alias="RULES_CACHE_SECONDS", ge=0, le=3600)


class EngagementSettings(ScoringSettings):
    """The stage function, the due-time job and the admin API (which can move a lead to SAL)."""

    # Built when first used: the tracking function imports this module but never needs it.
    model_config = ConfigDict(defer_build=True)

    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)
    lead_topic_arn: str | None = Field(None, alias="LEAD_TOPIC_ARN")
    sender_email: str | None = Field(None, alias="SENDER_EMAIL")
    due_shards: int = Field(8, alias="DUE_SHARDS", ge=1, le=256)
    sales_threshold: float = Field(50, alias="SALES_THRESHOLD", gt=0)
    exit_threshold: float = Field(10, alias="EXIT_THRESHOLD", ge=0)


#: The tracking function reads the scoring settings; the others read the engagement settings
#: (one model each: one schema to build at import).
TrackingSettings = ScoringSettings
AdminSettings = StageSettings = DueSettings = EngagementSettings


def load(model: type[M]) -> M:
    if model not in _loaded:
        _loaded[model] = model.model_validate(dict(os.environ))
    return _loaded[model]  # type: ignore[return-value]


def env_model(model: type[BaseModel]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Validate the function's settings before the handler body runs."""

    def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(handler)
        def wrapper(event: Any, context: Any) -> Any:
            load(model)
            return handler(event, context)

        return wrapper

    return decorate


def reset() -> None:
    _loaded.clear()
