"""What ``make run`` reads from the environment: more write keys, some with their own limits, and the
default rate limits, passed to the functions as a deployment passes them."""

from __future__ import annotations

import pytest

from infra.config import DeploymentConfig, environment
from infra.local.stack import LocalSettings, SeededKey
from infra.wiring import function
from shared.tracking.rates import RateLimit
from shared.tracking.trust import Trust


def test_extra_write_keys_and_rate_limits_from_the_environment() -> None:
    settings = LocalSettings.from_env(
        {"LOCAL_WRITE_KEYS": "a:server:5:10, b:browser", "KEY_BURST": "7", "IP_RATE_PER_SECOND": "0.5"}
    )
    assert settings.write_keys == (
        SeededKey("a", Trust.SERVER, RateLimit(rate=5, burst=10)),
        SeededKey("b", Trust.BROWSER),
    )
    config = DeploymentConfig(**settings.rate_limits)
    env = environment(function("tracking"), {t: t for t in ("events", "config", "rates")}, config)
    assert (env["KEY_RATE_PER_SECOND"], env["KEY_BURST"], env["IP_RATE_PER_SECOND"], env["IP_BURST"]) == (
        "500",
        "7",
        "0.5",
        "100",
    )


@pytest.mark.parametrize("wrong", ["a", "a:admin", "a:server:5", ":server", "a:server:0:5"])
def test_a_malformed_extra_key_is_refused(wrong: str) -> None:
    with pytest.raises(ValueError):
        LocalSettings.from_env({"LOCAL_WRITE_KEYS": wrong})
