"""Property tests: no input makes the tracking endpoint fail with a 5xx, rejected input writes nothing,
and whatever it accepts the aggregation folds into profiles, each call once."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.tracking.handler import tracking_request
from shared.clock import FixedClock
from shared.http import respond
from shared.scoring.decay import Decay
from shared.tracking.proofs import user_hash
from shared.tracking.trust import Source, Trust
from shared.usecases.tracking import Tracking, track
from tests.conftest import NOW, http_event
from tests.fakes import (
    CountingTelemetry,
    MemoryContactStore,
    MemoryIdentitySecrets,
    StaticRules,
    StaticWriteKeys,
)

PERMANENT = {400, 401, 403, 404, 413, 415}
PATHS = [
    "/v1/track",
    "/v1/identify",
    "/v1/page",
    "/v1/screen",
    "/v1/group",
    "/v1/alias",
    "/v1/batch",
    "/v1/b",
    "/v1/t",
    "/v1/m",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=15,
)
timestamps = st.one_of(
    st.datetimes(timezones=st.just(__import__("datetime").timezone.utc)).map(lambda d: d.isoformat()),
    st.text(max_size=30),
    scalars,
)
ids = st.one_of(
    st.none(), st.text(max_size=12), st.integers(), st.booleans(), st.text(min_size=500, max_size=600)
)
message = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["track", "identify", "page", "screen", "group", "alias", "purchase", ""])
        | scalars,
        "userId": ids,
        "anonymousId": ids,
        "previousId": ids,
        "groupId": ids,
        "messageId": ids,
        "event": st.sampled_from(["Order Completed", "Product Viewed", "Email Opened", "Consent Updated"])
        | scalars,
        "properties": json_values,
        "traits": st.one_of(
            json_values,
            st.fixed_dictionaries({"tags": json_values, "email": json_values}),
            st.fixed_dictionaries({"unsubscribed": st.booleans()}),
        ),
        "context": st.one_of(
            json_values,
            st.fixed_dictionaries({"traits": json_values, "page": json_values, "timezone": scalars}),
        ),
        "timestamp": timestamps,
        "sentAt": timestamps,
        "writeKey": st.sampled_from(["server", "browser", "nope"]) | scalars,
    },
)
words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=16)
iso = st.datetimes(timezones=st.just(__import__("datetime").timezone.utc)).map(lambda d: d.isoformat())
#: Well-formed calls with arbitrary content, so that most bodies get through to the store.
valid_message = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.just("track"),
            "userId": words,
            "event": words | st.sampled_from(["Order Completed", "Email Opened"]),
        },
        optional={
            "properties": st.dictionaries(words, json_values, max_size=4),
            "messageId": words,
            "timestamp": iso,
        },
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["page", "screen"]), "anonymousId": words},
        optional={
            "properties": st.dictionaries(words, json_values, max_size=4),
            "context": st.fixed_dictionaries(
                {"page": st.fixed_dictionaries({"url": words, "referrer": words})}
            ),
            "sentAt": iso,
            "timestamp": iso,
        },
    ),
    st.fixed_dictionaries(
        {"type": st.just("identify"), "userId": words},
        optional={
            "anonymousId": words,
            "traits": st.dictionaries(words, json_values, max_size=5)
            | st.fixed_dictionaries({"tags": st.lists(words, max_size=4)}),
            "messageId": words,
        },
    ),
    st.fixed_dictionaries({"type": st.just("alias"), "userId": words, "previousId": words}),
    st.fixed_dictionaries(
        {"type": st.just("group"), "userId": words, "groupId": words},
        optional={"traits": st.dictionaries(words, json_values, max_size=3)},
    ),
)
bodies = st.one_of(
    valid_message,
    st.fixed_dictionaries(
        {"batch": st.lists(valid_message, min_size=1, max_size=6)}, optional={"sentAt": iso}
    ),
    st.fixed_dictionaries(
        {"batch": st.lists(valid_message | message, max_size=6)}, optional={"sentAt": timestamps}
    ),
    message,
    st.fixed_dictionaries({"batch": json_values}),
    json_values,
)


PROOF_SECRET = "property-identity-secret-0123"


def deps() -> tuple[Tracking, MemoryContactStore]:
    store = MemoryContactStore()
    keys = StaticWriteKeys()
    keys.keys["verified"] = Source("verified-website", Trust.BROWSER, requires_proof=True)
    secrets = MemoryIdentitySecrets()
    secrets.adopt("verified-website", PROOF_SECRET)
    tracking = Tracking(
        clock=FixedClock(NOW),
        write_keys=keys,
        identity_secrets=secrets,
        log=store,
        rules=StaticRules(),
        decay=Decay(),
        telemetry=CountingTelemetry(),
    )
    return tracking, store


def call(event: dict[str, Any]) -> tuple[int, MemoryContactStore, dict[str, Any]]:
    tracking, store = deps()
    response = respond(event, lambda request: track(tracking_request(request), tracking))
    return response["statusCode"], store, json.loads(response["body"])


def check(status: int, store: MemoryContactStore, body: dict[str, Any]) -> None:
    assert status == 200 or status in PERMANENT, body
    if status == 200:
        assert body == {"success": True}
        assert store.writes == 0, "the request path writes no profile"
        appended = len(store.stream)
        telemetry = CountingTelemetry()
        folded = store.deliver_events(telemetry=telemetry)
        assert (folded.failed_from, folded.errors) == (None, ()), folded.errors
        assert folded.events == appended and "EventsNotFolded" not in telemetry.counts
        assert sum(p.event_count for p in store.profiles.values()) == appended
        assert store.deliver_events().events == 0
        # the merges the calls asked for move every event once: none lost, none counted twice
        store.deliver_merges(NOW)
        assert not store.merge_requests, "no merge is left waiting"
        assert sum(p.event_count for p in store.profiles.values() if not p.merged_into) == appended
        assert sum(store.count_events(c) for c, p in store.profiles.items() if not p.merged_into) == appended
    else:
        assert set(body) - {"field"} == {"code", "message"} and body["message"]
        assert store.appends == 0 and not store.log and not store.stream


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from(PATHS),
    body=bodies,
    key=st.sampled_from(["server", "server", "server", "browser", "nope", None]),
    gz=st.booleans(),
)
def test_structured_input_never_5xx_and_rejections_write_nothing(path, body, key, gz) -> None:
    check(*call(http_event("POST", path, body=body, key=key, gzip_body=gz)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), body=bodies, proven=st.sets(words, max_size=2))
def test_a_key_requiring_proof_records_nothing_under_a_user_it_did_not_prove(path, body, proven) -> None:
    """Whatever the calls, a userId reaches the log (and its merges) only with its own valid proof."""

    def with_proofs(value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("userId"), str) and value["userId"] in proven:
            return {
                **value,
                "integrations": {"Lifecycle": {"userHash": user_hash(PROOF_SECRET, value["userId"])}},
            }
        if isinstance(value, dict) and isinstance(value.get("batch"), list):
            return {**value, "batch": [with_proofs(item) for item in value["batch"]]}
        return value

    status, store, answer = call(http_event("POST", path, body=with_proofs(body), key="verified"))
    check(status, store, answer)
    users = {str(contact) for contact in store.log if str(contact).startswith("user_id:")}
    assert users <= {f"user_id:{user}" for user in proven}


@settings(max_examples=300, deadline=None)
@given(
    path=st.sampled_from(PATHS),
    raw=st.binary(max_size=300),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "application/octet-stream", "text/plain; charset=utf-8"]
    ),
    encoding=st.sampled_from([None, "gzip", "deflate", ""]),
    b64=st.booleans(),
)
def test_arbitrary_bytes_never_5xx(path, raw, content_type, encoding, b64) -> None:
    event = http_event("POST", path, key="server", headers={"content-type": content_type})
    if encoding is not None:
        event["headers"]["content-encoding"] = encoding
    if b64:
        event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
    else:
        event["body"] = raw.decode("latin-1")
    check(*call(event))


@settings(max_examples=150, deadline=None)
@given(batch=st.lists(message, min_size=1, max_size=4))
def test_gzip_of_valid_json_is_the_same_as_plain(batch) -> None:
    plain = call(http_event("POST", "/v1/batch", body={"batch": batch}, key="server"))
    zipped = call(http_event("POST", "/v1/batch", body={"batch": batch}, key="server", gzip_body=True))
    assert (plain[0], plain[2]) == (zipped[0], zipped[2])
    assert plain[1].log.keys() == zipped[1].log.keys()
    plain[1].deliver_events()
    zipped[1].deliver_events()
    assert plain[1].profiles.keys() == zipped[1].profiles.keys()
    assert {c: p.event_count for c, p in plain[1].profiles.items()} == {
        c: p.event_count for c, p in zipped[1].profiles.items()
    }


@pytest.mark.usefixtures("aws")
@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(PATHS), body=bodies, key=st.sampled_from(["local-server-key", "local-browser-key"])
)
def test_on_dynamodb_no_input_yields_5xx_or_a_partial_write(aws, path, body, key) -> None:
    """The same property against the real adapter on moto: DynamoDB's own limits never surface as 5xx."""
    from functions.tracking.handler import handler
    from tests.conftest import invoke
    from tests.integration.conftest import dump

    before = dump(aws, "CONTACTS_TABLE_NAME"), dump(aws, "EVENTS_TABLE_NAME")
    status, response, _ = invoke(handler, http_event("POST", path, body=body, key=key))
    assert status == 200 or status in PERMANENT, response
    if status != 200:
        assert (dump(aws, "CONTACTS_TABLE_NAME"), dump(aws, "EVENTS_TABLE_NAME")) == before
