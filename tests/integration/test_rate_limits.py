"""Rate limits through the tracking handler on moto: 429 with Retry-After, per key and per address."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from tests.conftest import BROWSER_KEY, NOW, SERVER_KEY, http_event, invoke

#: 5 requests per 1 s window; the fixed clock stands at the start of one (NOW is a whole second)
SMALL = {"KEY_RATE_PER_SECOND": "5", "KEY_BURST": "5"}




def track(
    key: str = SERVER_KEY, ip: str = "203.0.113.9", message: str | None = None
) -> tuple[int, Any, dict]:
    from functions.tracking.handler import handler

    call = {"userId": "ann", "event": "Liked", **({"messageId": message} if message else {})}
    event = http_event("POST", "/v1/track", body=call, key=key)
    event["requestContext"]["http"]["sourceIp"] = ip
    return invoke(handler, event)


def stored(aws, message_id: str) -> bool:
    items = aws.scan(TableName=os.environ["EVENTS_TABLE_NAME"])["Items"]
    return any(message_id in item["sk"]["S"] for item in items)


def rate_counters(aws) -> list[dict[str, Any]]:
    return aws.scan(TableName=os.environ["RATES_TABLE_NAME"])["Items"]


def test_past_its_burst_a_key_gets_429_with_retry_after_and_a_json_body(aws, redeploy, metrics) -> None:
    redeploy(**SMALL)
    assert [track()[0] for _ in range(5)] == [200] * 5
    status, body, headers = track(message="over")
    assert status == 429 and headers["retry-after"] == "1"
    assert body["code"] == "rate_limited" and "write key" in body["message"] and SERVER_KEY not in str(body)
    assert not stored(aws, "over"), "a refused request writes nothing"
    assert metrics["RequestsRateLimited"] == 1
    counters = rate_counters(aws)
    assert [int(c["count"]["N"]) for c in counters] == [5]
    assert SERVER_KEY not in str(counters) and "203.0.113.9" not in str(counters), "hashes only"


def test_refusals_after_the_limit_write_nothing(aws, redeploy) -> None:
    redeploy(**SMALL)
    for _ in range(5):
        track()
    writes: list[str] = []
    aws.meta.events.register("before-parameter-build.dynamodb", lambda model, **_: writes.append(model.name))
    assert {track()[0] for _ in range(20)} == {429}
    assert [w for w in writes if w != "GetItem"] == []


def test_a_limited_key_leaves_another_key_served(aws, redeploy) -> None:
    redeploy(**SMALL)
    for _ in range(5):
        track(SERVER_KEY)
    assert track(SERVER_KEY)[0] == 429
    assert [track(BROWSER_KEY)[0] for _ in range(5)] == [200] * 5


def test_the_address_limit_counts_browser_keys_together_and_not_server_keys(aws, redeploy) -> None:
    from shared.adapters.write_keys import DynamoWriteKeys
    from shared.tracking.trust import Trust

    redeploy(IP_RATE_PER_SECOND="1", IP_BURST="4")
    DynamoWriteKeys(aws, table=os.environ["CONFIG_TABLE_NAME"]).register(
        "other-site-key", "other-site", Trust.BROWSER, NOW
    )
    assert [track(BROWSER_KEY, ip="198.51.100.1")[0] for _ in range(2)] == [200, 200]
    assert [track("other-site-key", ip="198.51.100.1")[0] for _ in range(2)] == [200, 200]
    status, body, headers = track(BROWSER_KEY, ip="198.51.100.1")
    assert (status, body["code"], headers["retry-after"]) == (429, "rate_limited", "4")
    assert "address" in body["message"] and "198.51.100.1" not in body["message"]
    assert track("other-site-key", ip="198.51.100.1")[0] == 429, "counted over all browser keys"
    assert track(BROWSER_KEY, ip="198.51.100.2")[0] == 200, "another address"
    assert [track(SERVER_KEY, ip="198.51.100.1")[0] for _ in range(10)] == [200] * 10, "not server keys"
    assert "198.51.100.1" not in str(rate_counters(aws))


def test_a_counter_failure_admits_and_the_instance_still_counts(aws, redeploy, metrics) -> None:
    from botocore.exceptions import ClientError

    def throttled(model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == "UpdateItem" and params["TableName"] == os.environ["RATES_TABLE_NAME"]:
            error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "injected"}}
            raise ClientError(error, "UpdateItem")

    redeploy(**SMALL)
    aws.meta.events.register_first("before-parameter-build.dynamodb", throttled)
    try:
        assert [track(message=f"m{i}")[0] for i in range(5)] == [200] * 5
        assert all(stored(aws, f"m{i}") for i in range(5))
        assert metrics["RateLimitUnavailable"] == 1, "one flush failed; the instance then counts in memory"
        assert track()[0] == 429, "what this instance admitted itself still counts"
    finally:
        aws.meta.events.unregister("before-parameter-build.dynamodb", throttled)
    assert rate_counters(aws) == []


def test_moving_the_clock_past_the_window_admits_again(aws, redeploy, clock) -> None:
    redeploy(**SMALL)
    for _ in range(5):
        track()
    assert track()[0] == 429
    clock.advance(timedelta(milliseconds=999))
    assert track()[0] == 429
    clock.advance(timedelta(milliseconds=1))
    assert [track()[0] for _ in range(5)] == [200] * 5
    assert track()[0] == 429


def test_a_key_of_its_own_limit_is_held_to_it(aws, redeploy) -> None:
    from shared.adapters.write_keys import DynamoWriteKeys
    from shared.tracking.rates import RateLimit
    from shared.tracking.trust import Trust

    keys = DynamoWriteKeys(aws, table=os.environ["CONFIG_TABLE_NAME"])
    keys.register("tight-key", "partner", Trust.SERVER, NOW, limit=RateLimit(rate=1, burst=2))
    assert [track("tight-key")[0] for _ in range(3)] == [200, 200, 429]
    status, _, headers = track("tight-key")
    assert status == 429 and headers["retry-after"] == "2", "a 2 s window"
    assert track(SERVER_KEY)[0] == 200, "the others keep the default (1000 per 2 s)"
