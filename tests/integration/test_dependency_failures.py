"""When DynamoDB throttles or fails, clients get 503 with Retry-After, and their resend counts once."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import http_event, invoke


class Flaky:
    """Wraps the real client; the chosen calls fail with a throttling error."""

    def __init__(
        self, client: Any, fail_calls: set[int], code: str = "ProvisionedThroughputExceededException"
    ):
        self._client = client
        self._fail = fail_calls
        self._code = code
        self.calls = 0

    def transact_write_items(self, **request: Any) -> Any:
        self.calls += 1
        if self.calls in self._fail:
            raise ClientError({"Error": {"Code": self._code, "Message": "slow down"}}, "TransactWriteItems")
        return self._client.transact_write_items(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.fixture
def flaky(aws):
    from shared import runtime
    from shared.adapters import aws as clients

    def install(fail_calls: set[int], code: str = "ProvisionedThroughputExceededException") -> Flaky:
        wrapper = Flaky(aws, fail_calls, code)
        runtime.reset()
        clients.use("dynamodb", wrapper)
        return wrapper

    yield install
    runtime.reset()


def test_throttling_after_retries_is_503_with_retry_after(flaky, admin) -> None:
    from functions.tracking.handler import handler

    flaky({1, 2, 3, 4})
    status, body, headers = invoke(
        handler, http_event("POST", "/v1/track", body={"userId": "ann", "event": "Liked", "messageId": "m1"})
    )
    assert status == 503 and body["code"] == "unavailable"
    assert int(headers["retry-after"]) > 0
    assert admin("ann")[0] == 404, "nothing was written"


def test_a_short_throttle_is_absorbed_by_retries(flaky, admin) -> None:
    from functions.tracking.handler import handler

    store = flaky({1})
    assert (
        invoke(handler, http_event("POST", "/v1/track", body={"userId": "ann", "event": "Liked"}))[0] == 200
    )
    assert store.calls == 2


def test_resend_after_a_half_written_batch_counts_every_event_once(flaky, admin) -> None:
    """100 contacts need two transactions; the second throttles; the client resends the whole batch."""
    from functions.tracking.handler import handler

    batch = {
        "batch": [
            {"type": "track", "userId": f"u{i}", "event": "Liked", "messageId": f"m{i}"} for i in range(100)
        ]
    }
    flaky({2, 3, 4, 5})
    assert invoke(handler, http_event("POST", "/v1/batch", body=batch))[0] == 503
    flaky(set())
    assert invoke(handler, http_event("POST", "/v1/batch", body=batch))[0] == 200
    for i in (0, 49, 50, 99):
        card = admin(f"u{i}")[1]
        assert card["counts"] == {"like": 1} and card["event_count"] == 1
