from datetime import UTC, datetime

import pytest

from shared.errors import Forbidden
from shared.tracking.messages import parse_calls
from shared.tracking.trust import Source, Trust, authorise
from shared.tracking.wire import Limits

BROWSER = Source("website", Trust.BROWSER)
SERVER = Source("backend", Trust.SERVER)


def events(path, payload):
    return parse_calls(path, payload, received_at=datetime(2026, 11, 23, tzinfo=UTC), limits=Limits())


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/v1/track", {"userId": "u", "event": "Order Completed"}),
        ("/v1/track", {"userId": "u", "event": "Order Refunded"}),
        ("/v1/track", {"userId": "u", "event": "Consent Updated"}),
        ("/v1/alias", {"userId": "u", "previousId": "old"}),
        ("/v1/identify", {"userId": "u", "traits": {"email_opt_in": True}}),
        ("/v1/identify", {"userId": "u", "context": {"traits": {"Unsubscribed": False}}}),
    ],
)
def test_server_only_facts(path, payload) -> None:
    calls = events(path, payload)
    with pytest.raises(Forbidden):
        authorise(BROWSER, calls)
    authorise(SERVER, calls)


def test_browser_may_report_behaviour_and_identify() -> None:
    authorise(
        BROWSER,
        events(
            "/v1/batch",
            {
                "batch": [
                    {"type": "page", "anonymousId": "a"},
                    {
                        "type": "identify",
                        "userId": "u",
                        "anonymousId": "a",
                        "traits": {"email": "a@example.com"},
                    },
                    {"type": "track", "userId": "u", "event": "Product Viewed"},
                    {"type": "group", "userId": "u", "groupId": "g", "traits": {"consent": "company field"}},
                ]
            },
        ),
    )


def test_one_forbidden_call_rejects_the_batch() -> None:
    calls = events(
        "/v1/batch",
        {
            "batch": [
                {"type": "page", "anonymousId": "a"},
                {"type": "track", "userId": "u", "event": "Order Completed"},
            ]
        },
    )
    with pytest.raises(Forbidden, match="Order Completed"):
        authorise(BROWSER, calls)
