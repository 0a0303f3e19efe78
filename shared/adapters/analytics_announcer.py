"""Announcing the nightly pass's changes (``SegmentChanged``, ``ChurnRiskChanged``) on the event bus.

PutEvents, ten entries a call, source ``lifecycle``; each entry ends sent, refused for good, or failed
for now, classified as the stage function's announcements are (``shared.adapters.publisher``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.adapters.publisher import NOT_NOW, refusal
from shared.analytics.events import AnalyticsOutput
from shared.engagement.events import SOURCE
from shared.usecases.analytics import Outcome

#: PutEvents takes ten entries.
BATCH = 10
_IN_DOUBT = "InternalFailure"


class EventBridgeAnnouncer:
    def __init__(self, events: Any, *, bus: str) -> None:
        self._events = events
        self._bus = bus

    def announce(self, outputs: Sequence[AnalyticsOutput]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for start in range(0, len(outputs), BATCH):
            outcomes += self._put(outputs[start : start + BATCH])
        return outcomes

    def _put(self, chunk: Sequence[AnalyticsOutput]) -> list[Outcome]:
        entries = [
            {
                "Source": SOURCE,
                "DetailType": output.detail_type,
                "Detail": output.model_dump_json(by_alias=True),
                "EventBusName": self._bus,
                "Time": output.at,
            }
            for output in chunk
        ]
        try:
            answer = self._events.put_events(Entries=entries)
        except Exception as exc:  # noqa: BLE001  (``refusal`` raises what is not an AWS error again)
            return [Outcome(refused=refusal(exc))] * len(chunk)
        results = answer.get("Entries") or []
        if len(results) != len(chunk):  # no word per entry: all went, or all are in doubt
            results = [{"ErrorCode": _IN_DOUBT} if answer.get("FailedEntryCount") else {}] * len(chunk)
        outcomes = []
        for entry in results:
            failed = entry.get("ErrorCode")
            if not failed:
                outcomes.append(Outcome(sent=True))
            else:  # refused for now (throttled, internal) or for good (malformed, denied)
                outcomes.append(Outcome(refused=None if failed in NOT_NOW else failed))
        return outcomes
