"""The nightly analytics workflow in the local stack: the same steps as the state machine, each function as
deployed (its own environment, only its grants), at 02:00 on the local clock and on
``POST /_local/analytics/run``.

The steps' real handlers are the nightly job's; here stand-ins under the handlers' own names do what the
steps do with AWS (Scan the purchase index, write and read the staging bucket), so the runner, the
environments, the bucket and the role checks are tested on their own.
"""

from __future__ import annotations

import json
import re
import sys
import types
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.wiring import function

Body = Callable[[dict[str, Any], dict[str, str]], Any]


def call(stack: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{stack.url}{path}",
        data=json.dumps(body or {}).encode(),
        method=method,
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def day_of(time: str) -> str:
    """The day a run scores: the last complete day before its time (the contract's ``analytics_day``)."""
    return (datetime.fromisoformat(time).astimezone(UTC).date() - timedelta(days=1)).isoformat()


class StandIns:
    """Modules under the three handlers' names whose handler runs in the function's hosted scope, as the
    real handlers' ``env_model`` makes them do, and records what each saw."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[dict[str, Any]] = []
        self.denied: list[str] = []
        self.failing: str | None = None
        for name, body in (
            ("analytics_extract", self.extract),
            ("analytics_fit", self.fit),
            ("analytics_apply", self.apply),
        ):
            module_name, _, attribute = function(name).handler.rpartition(".")
            module = types.ModuleType(module_name)
            setattr(module, attribute, self._handler(name, body))
            monkeypatch.setitem(sys.modules, module_name, module)

    def _handler(self, name: str, body: Body) -> Callable[[dict[str, Any], Any], Any]:
        from shared import scope

        def handler(event: dict[str, Any], context: Any) -> Any:
            hosted = scope.hosted(function(name).handler)
            assert hosted is not None, "the local stack hosts every function"
            with hosted.active():
                self.seen.append({"function": name, "event": event, "environ": dict(hosted.environ or {})})
                if self.failing == name:
                    raise RuntimeError(f"{name} failed")
                return body(event, hosted.environ or {})

        return handler

    def extract(self, event: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
        from shared.adapters import aws

        day, db = day_of(event["time"]), aws.client("dynamodb")
        try:  # the role allows the index alone
            db.scan(TableName=env["EVENTS_TABLE_NAME"], Limit=1)
        except ClientError as exc:
            self.denied.append(exc.response["Error"]["Code"])
        page = db.scan(
            TableName=env["EVENTS_TABLE_NAME"],
            IndexName="byPurchase",
            Segment=event["segment"],
            TotalSegments=event["segments"],
        )
        rows = [{"pk": i["pk"]["S"], "at": i["purchasedAt"]["S"]} for i in page["Items"]]
        key = f"analytics/{day}/purchases/segment-{event['segment']:04d}-of-{event['segments']:04d}.json"
        aws.client("s3").put_object(
            Bucket=env["ANALYTICS_BUCKET_NAME"], Key=key, Body=json.dumps(rows).encode()
        )
        return {"day": day, "segment": event["segment"], "purchases": len(rows), "read": page["ScannedCount"]}

    def fit(self, event: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
        from shared.adapters import aws

        day, s3, bucket = day_of(event["time"]), aws.client("s3"), env["ANALYTICS_BUCKET_NAME"]
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"analytics/{day}/purchases/")
        keys = [o["Key"] for o in listed.get("Contents", [])]
        assert len(keys) == event["segments"], "every segment is there"
        rows = [r for k in keys for r in json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read())]
        customers = sorted({r["pk"] for r in rows})
        part = f"analytics/{day}/scores/part-00000.json"
        s3.put_object(Bucket=bucket, Key=part, Body=json.dumps(customers).encode())
        return {"day": day, "customers": len(customers), "parts": [part]}

    def apply(self, event: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
        from shared.adapters import aws

        s3 = aws.client("s3")
        customers = json.loads(
            s3.get_object(Bucket=env["ANALYTICS_BUCKET_NAME"], Key=event["part"])["Body"].read()
        )
        try:  # the staging bucket is read-only to the apply step
            s3.put_object(Bucket=env["ANALYTICS_BUCKET_NAME"], Key=event["part"], Body=b"[]")
        except ClientError as exc:
            self.denied.append(exc.response["Error"]["Code"])
        return {"day": day_of(event["time"]), "customers": len(customers), "updated": 0, "announced": 0}


def purchase(stack: Any, contact: str, at: str) -> None:
    """A purchase as tracking records it: an event item that carries ``purchasedAt`` (the sparse index)."""
    from shared.adapters import aws

    aws.client("dynamodb").put_item(
        TableName=stack.table_names["events"],
        Item={
            "pk": {"S": f"C#{contact}"},
            "sk": {"S": f"E#{at}#m-{contact}"},
            "purchasedAt": {"S": at},
            "revenue": {"N": "10"},
        },
    )


@pytest.fixture
def stand_ins(monkeypatch: pytest.MonkeyPatch) -> StandIns:
    return StandIns(monkeypatch)


def test_a_run_now_goes_through_every_step_as_deployed(local_stack, stand_ins) -> None:
    for contact in ("user_id:ann", "user_id:bob", "user_id:cy"):
        purchase(local_stack, contact, "2026-11-20T10:00:00.000Z")
    before = local_stack.clock.now().replace(microsecond=0)
    status, state = call(local_stack, "POST", "/_local/analytics/run")
    assert status == 200, state
    # the run's time: the local clock's now, written as a scheduled event's
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", state["time"])
    assert before <= datetime.fromisoformat(state["time"]) <= local_stack.clock.now()
    segments = local_stack.config.analytics_scan_segments
    assert [s["function"] for s in stand_ins.seen] == (
        ["analytics_extract"] * segments + ["analytics_fit", "analytics_apply"]
    )
    assert sum(o["purchases"] for o in state["analytics_extract"]) == 3, "the segments cover the index once"
    assert state["analytics_fit"]["customers"] == 3 and state["analytics_apply"] == {"parts": 1}
    # each step ran with its own environment, and its role refused what the wiring does not grant
    environments = {s["function"]: s["environ"] for s in stand_ins.seen}
    assert "EVENTS_TABLE_NAME" in environments["analytics_extract"]
    assert "CONTACTS_TABLE_NAME" not in environments["analytics_extract"]
    assert {"CONTACTS_TABLE_NAME", "EVENT_BUS_NAME"} <= set(environments["analytics_apply"])
    assert "EVENTS_TABLE_NAME" not in environments["analytics_fit"]
    assert all(
        e["ANALYTICS_BUCKET_NAME"] == local_stack.bucket_names["analytics"] for e in environments.values()
    )
    assert stand_ins.denied == ["AccessDeniedException"] * segments + ["AccessDenied"]


def test_a_failing_step_stops_the_run_with_a_500_naming_it(local_stack, stand_ins) -> None:
    stand_ins.failing = "analytics_fit"
    status, report = call(local_stack, "POST", "/_local/analytics/run")
    assert status == 500
    assert (report["code"], report["step"], report["error"]) == (
        "workflow_failed",
        "analytics_fit",
        "RuntimeError",
    )
    assert "analytics_apply" not in [s["function"] for s in stand_ins.seen]
    assert local_stack.failed_runs == [report]


def test_the_schedule_runs_it_at_two_on_the_local_clock(local_stack, stand_ins) -> None:
    now = local_stack.clock.now()
    next_two = (now + timedelta(days=1)).replace(hour=2, minute=0, second=0, microsecond=0)
    if now.hour < 2:
        next_two -= timedelta(days=1)
    status, _ = call(
        local_stack, "POST", "/_local/clock", {"set": (next_two - timedelta(minutes=1)).isoformat()}
    )
    assert status == 200 and stand_ins.seen == []
    status, _ = call(local_stack, "POST", "/_local/clock", {"advance": "PT2H"})
    assert status == 200
    fits = [s["event"]["time"] for s in stand_ins.seen if s["function"] == "analytics_fit"]
    assert fits == [next_two.strftime("%Y-%m-%dT%H:%M:%SZ")], "once, with the schedule's time"
    assert {s["event"]["time"] for s in stand_ins.seen} == set(fits)
    assert "/_local/analytics/run" in local_stack.banner()
