"""``GET /_local/outbox``: what delivery did with each request it received, oldest first.

The local stack's queue trigger tells the outbox of every batch it hands the delivery function
(``received``); the outbox keeps each request once, as requested, and reads what became of it when
asked: its send ledger entry (status and reason), and for a sent email what SES sent (headers, html,
text, and the ``.eml`` file written for a person to open), for a sent SMS what SNS sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from infra.local.mail import eml_path, sent_email, sent_text, write_once
from shared.delivery.requests import DeliveryRequest

#: the outbox keeps the most recent requests only
KEPT = 1000


class Outbox:
    def __init__(
        self,
        *,
        ledger: Callable[[], Any],
        account: Callable[[], str],
        region: str,
        mail_dir: Path | None,
    ) -> None:
        #: the send ledger (``SendLedger``: ``record(request_id)``), built when first needed
        self._ledger = ledger
        self._account = account
        self._region = region
        #: where sent emails are written as .eml files (None: not written)
        self.mail_dir = mail_dir
        self._lock = threading.Lock()
        #: request id -> (its ``at``, arrival number, the request, its ``at`` as it was sent)
        self._requests: dict[str, tuple[datetime, int, DeliveryRequest, str]] = {}

    def received(self, records: list[dict[str, Any]], failed: set[str]) -> None:
        """A batch the delivery function was handed (``QueuePump``'s ``on_batch``): each request kept
        once, and the emails it sent written out."""
        arrived = []
        for record in records:
            try:
                request = DeliveryRequest.model_validate_json(record["body"])
            except ValidationError:
                continue  # not a delivery request: the function fails it, and it reaches the DLQ
            at = json.loads(record["body"]).get("at", "")
            with self._lock:
                if request.id not in self._requests:
                    self._requests[request.id] = (request.at, len(self._requests), request, at)
                    self._forget_oldest()
            arrived.append(request)
        if self.mail_dir is not None:
            for request in arrived:
                self.entry(request, self._ledger().record(request.id), at="")

    def _forget_oldest(self) -> None:
        if len(self._requests) > KEPT:
            oldest = min(self._requests.items(), key=lambda item: item[1][:2])[0]
            del self._requests[oldest]

    def messages(self) -> list[dict[str, Any]]:
        """Every request kept, oldest first (by ``at``, then arrival), with what became of it."""
        with self._lock:
            kept = sorted(self._requests.values(), key=lambda kept: kept[:2])
        ledger = self._ledger()
        return [self.entry(request, ledger.record(request.id), at=at) for _, _, request, at in kept]

    def entry(self, request: DeliveryRequest, record: Any, *, at: str) -> dict[str, Any]:
        """One request as the outbox lists it: as requested, its ledger status (``queued`` while it has no
        entry) and reason, and what the provider sent."""
        entry: dict[str, Any] = {
            "id": request.id,
            "contact_id": request.contact_id,
            "automation": request.automation,
            "channel": request.channel,
            "at": at,
            "status": record.status if record is not None else request.status,
            "reason": request.reason if record is None else _reason(record, request),
            "subject": request.subject,
            "text": request.text,
        }
        if record is None or record.status != "sent" or not record.provider_id:
            return entry
        entry["sent_at"] = record.sent_at.isoformat() if record.sent_at else None
        if request.channel == "email":
            entry.update(self._email(request.id, record.provider_id, record.sent_at or record.at))
        elif request.channel == "sms":
            sent = sent_text(self._account(), self._region, record.provider_id)
            if sent is not None:
                entry.update(to=sent[0], text=sent[1])
        return entry

    def _email(self, request_id: str, message_id: str, sent_at: datetime) -> dict[str, Any]:
        sent = sent_email(self._account(), self._region, message_id)
        if sent is None:
            return {}
        path = None
        if self.mail_dir is not None:
            path = str(write_once(eml_path(self.mail_dir, request_id, sent_at), sent.raw))
        return {
            "to": ", ".join(sent.recipients),
            "subject": str(sent.message["subject"] or ""),
            "headers": sent.headers,
            "html": sent.part("html"),
            "text": sent.part("plain"),
            "eml": path,
        }


def _reason(record: Any, request: DeliveryRequest) -> str | None:
    """The ledger's reason; for a request settled as the automation decided (held out), the automation's
    reason where the ledger keeps none."""
    if record.reason is None and record.status == request.status:
        return request.reason
    return record.reason
