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


#: issue 15: metrics too (delivery counts the surveys it sends)
TABLES = {t: t for t in ("contacts", "events", "config", "rates", "metrics")}


def test_sent_emails_go_to_the_repositorys_local_folder_unless_local_mail_dir_says_otherwise(
    tmp_path,
) -> None:
    from infra.local.stack import DEFAULT_MAIL_DIR

    assert LocalSettings.from_env({}).mail_dir == DEFAULT_MAIL_DIR
    assert DEFAULT_MAIL_DIR.parts[-2:] == (".local", "mail")
    assert LocalSettings.from_env({"LOCAL_MAIL_DIR": str(tmp_path)}).mail_dir == tmp_path
    assert LocalSettings().mail_dir is None, "a stack started by code (the tests) writes no files unless told"


def test_double_opt_in_sources_reach_the_functions_as_a_deployment_passes_them() -> None:
    settings = LocalSettings.from_env({"DOUBLE_OPT_IN_SOURCES": "website, newsletter-form ,"})
    assert settings.double_opt_in_sources == ("website", "newsletter-form")
    assert LocalSettings.from_env({}).double_opt_in_sources == ()
    config = DeploymentConfig(double_opt_in_sources=settings.double_opt_in_sources)
    env = environment(function("delivery"), TABLES, config, queue_urls={"delivery": "https://queue"})
    assert env["DOUBLE_OPT_IN_SOURCES"] == "website,newsletter-form"


def test_only_the_local_stack_lets_webhooks_reach_this_machine_over_plain_http() -> None:
    from infra.local.stack import LOCAL_ENVIRONMENT
    from shared.settings import DeliverySettings

    local = LOCAL_ENVIRONMENT["delivery"]["WEBHOOK_PLAIN_HTTP_HOSTS"]
    assert {h for h in local.split(",")} == {"127.0.0.1", "localhost"}
    required = {
        "CONTACTS_TABLE_NAME": "contacts",
        "CONFIG_TABLE_NAME": "config",
        "EVENTS_TABLE_NAME": "events",
        "RATES_TABLE_NAME": "rates",
        "DELIVERY_QUEUE_URL": "https://q",
        "DELIVERY_SECRET_ARN": "arn:secret",
        "PUBLIC_BASE_URL": "https://api.example",
    }
    assert DeliverySettings.model_validate(required).plain_http_hosts == frozenset()
    hosts = DeliverySettings.model_validate({**required, "WEBHOOK_PLAIN_HTTP_HOSTS": local}).plain_http_hosts
    assert hosts == frozenset({"127.0.0.1", "localhost"})
    config = DeploymentConfig()
    env = environment(function("delivery"), TABLES, config, queue_urls={"delivery": "https://queue"})
    assert "WEBHOOK_PLAIN_HTTP_HOSTS" not in env, "deployed: HTTPS only"
