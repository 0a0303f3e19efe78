"""EventBridge rules to Lambda, locally: a bus-triggered function gets the events its rule matches.

The function's bus (the stack's own, or the account's default bus where SES and CloudWatch publish: the
feedback function's) has, per bus-triggered function, a rule with the wiring's pattern whose target is an SQS
queue: moto puts each matching event there as the JSON EventBridge hands Lambda. The pump receives
them and invokes the handler asynchronously as Lambda does (the first attempt and Lambda's retries,
then the on-failure record with the event and error to the function's dead-letter queue), and deletes
each message once done with it, whatever the outcome.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from infra.local.asynchronous import invoke_asynchronously
from infra.wiring import BusTrigger

Handler = Callable[[dict[str, Any], Any], Any]


def rule_pattern(trigger: BusTrigger) -> dict[str, Any]:
    """The rule's event pattern, as CDK writes it for the deployed rule: the wiring's sources and detail
    types, and its detail filters (``$or``, which moto's rules match as EventBridge does)."""
    return trigger.event_pattern()


class BusPump:
    def __init__(
        self,
        *,
        name: str,
        sqs: Any,
        queue_url: str,
        trigger: BusTrigger,
        handler: Handler,
        context: Callable[[], Any],
        on_failure: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        self.name = name
        self._sqs = sqs
        self._queue_url = queue_url
        self._trigger = trigger
        self._handler = handler
        self._context = context
        self._on_failure = on_failure
        self._lock = threading.Lock()
        #: on-failure records of events whose every attempt failed
        self.dead_letters: list[dict[str, Any]] = []
        self.invocations = 0

    def drain(self) -> int:
        """Hand the function every event matched so far; returns how many it was given."""
        handled = 0
        with self._lock:
            while True:
                messages = self._sqs.receive_message(
                    QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
                ).get("Messages", [])
                if not messages:
                    return handled
                for message in messages:
                    self._deliver(self._as_delivered(json.loads(message["Body"])))
                    self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
                    handled += 1

    def _as_delivered(self, event: dict[str, Any]) -> dict[str, Any]:
        """The event as EventBridge hands it to Lambda: moto's queue target leaves out ``account``."""
        account = urlsplit(self._queue_url).path.strip("/").split("/")[0]
        return {"version": "0", "account": account, **event}

    def _deliver(self, event: dict[str, Any]) -> None:
        def invoke(event: dict[str, Any]) -> Any:
            self.invocations += 1
            return self._handler(event, self._context())

        _, failure = invoke_asynchronously(
            self.name, invoke, event, retry_attempts=self._trigger.invoke_retry_attempts
        )
        if failure is not None:
            self.dead_letters.append(failure)
            if self._on_failure is not None:
                self._on_failure(failure)

    def run(self, stop: threading.Event, every: float = 0.2) -> None:
        """Poll until stopped (the local stack's background thread)."""
        while not stop.wait(every):
            try:
                self.drain()
            except Exception as exc:  # noqa: BLE001 - keep the local stack alive; the next poll retries
                print(f"[local] bus pump {self.name}: {exc!r}")
                time.sleep(1)
