"""The nightly analytics pass's deployment settings (``cdk.json``, context ``lifecycle``), as the analytics
functions receive them, and only they."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infra.config import DeploymentConfig, environment
from infra.wiring import FUNCTIONS, function
from shared.adapters.tables import TABLES as ALL_TABLES

#: every table of the stack, by id
TABLES = {table.id: f"t-{table.id}" for table in ALL_TABLES}
QUEUES = {"delivery": "https://sqs.eu-west-1.amazonaws.com/1/t-delivery"}
BUCKETS = {"analytics": "t-analytics"}


def env(name: str, config: DeploymentConfig) -> dict[str, str]:
    return environment(function(name), TABLES, config, {"events": "bus"}, QUEUES, BUCKETS)


def test_the_defaults_and_no_risk_levels_unless_set() -> None:
    settings = DeploymentConfig().analytics_settings()
    assert settings == {
        "ANALYTICS_HORIZON_DAYS": "90",
        "ANALYTICS_LOOKBACK_DAYS": "1095",
        "ANALYTICS_PART_SIZE": "10000",
        "RFM_EDGES": "0.2,0.4,0.6,0.8",
    }
    assert DeploymentConfig().analytics_scan_segments == 16


def test_configured_values_reach_the_analytics_functions_only() -> None:
    config = DeploymentConfig.from_context(
        {
            "analyticsHorizonDays": 60,
            "analyticsLookbackDays": 730,
            "analyticsPartSize": 5000,
            "rfmEdges": "0.1, 0.3,0.7,0.9",
            "riskMedium": 0.4,
            "riskHigh": 0.75,
            "analyticsScanSegments": 4,
        }
    )
    applied = env("analytics_apply", config)
    assert {k: applied[k] for k in config.analytics_settings()} == {
        "ANALYTICS_HORIZON_DAYS": "60",
        "ANALYTICS_LOOKBACK_DAYS": "730",
        "ANALYTICS_PART_SIZE": "5000",
        "RFM_EDGES": "0.1,0.3,0.7,0.9",
        "RISK_MEDIUM": "0.4",
        "RISK_HIGH": "0.75",
    }
    assert (
        applied["ANALYTICS_BUCKET_NAME"] == "t-analytics" and applied["CONTACTS_TABLE_NAME"] == "t-contacts"
    )
    assert env("analytics_extract", config)["EVENTS_TABLE_NAME"] == "t-events"
    assert "ANALYTICS_SCAN_SEGMENTS" not in applied, "the state machine's setting"
    for spec in FUNCTIONS:
        if spec.capability != "analytics":
            assert not set(config.analytics_settings()) & set(env(spec.name, config)), spec.name
            assert "ANALYTICS_BUCKET_NAME" not in env(spec.name, config)


@pytest.mark.parametrize(
    "context",
    [
        {"rfmEdges": [0.2, 0.4, 0.6]},
        {"rfmEdges": [0.4, 0.2, 0.6, 0.8]},
        {"rfmEdges": "0,0.4,0.6,0.8"},
        {"rfmEdges": [0.2, 0.4, 0.6, 1.0]},
        {"riskMedium": 0.8, "riskHigh": 0.5},
        {"riskHigh": 1.5},
        {"analyticsScanSegments": 0},
        {"analyticsPartSize": 0},
        {"analyticsPartSize": 999},  # the state machine's state holds every part's key: 1,000 at least
    ],
)
def test_bad_settings_fail_the_synth_with_their_name(context: dict) -> None:
    with pytest.raises(ValidationError) as raised:
        DeploymentConfig.from_context(context)
    text = str(raised.value)
    assert any(key in text for key in context), text
