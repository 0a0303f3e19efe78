"""Issue 15: NPS answers on the contacts table (``AnswerStore``), and ``NpsAnswered`` on the bus.

An answer is an item under its contact, ``sk = NPS#<survey>``, put on condition that there is none (the
first answer wins), in one transaction with the contact's ``nps_*`` traits on its profile (on condition
that the profile exists and was not merged away meanwhile: the caller then follows the merge and
retries). The traits are the latest answer's: the profile's ``npsAnsweredAt`` is its time, and an older
answer (a late server call, an import) is recorded with a check of the profile instead, its traits
left as they are. ``lastWriter = automation``, so the stage function re-evaluates the contact's segments, which
may filter on those traits. ``done`` marks the answer's effects done (the outbox). Erasure deletes the
contact's partition, answers included.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shared.adapters.contact_items import TRAIT, TRAIT_BYTES, partition, profile_key
from shared.adapters.dynamodb import error_code, failure, js, n, retried, s, transact
from shared.adapters.expressions import Expression
from shared.adapters.publisher import NOT_NOW, refusal
from shared.contacts.changes import trait_bytes
from shared.contacts.identity import ContactId
from shared.engagement.events import SOURCE
from shared.errors import DependencyUnavailable, LifecycleError
from shared.nps.answers import NpsAnswered
from shared.nps.submissions import Answer
from shared.tracking.timestamps import format_time, parse_time
from shared.usecases.nps import Recorded

STORE = "the contact store"
BUS = "the event bus"
#: the profile writer the stage function evaluates (segments may filter on the ``nps_*`` traits)
WRITER = "automation"
ANSWER = "NPS#"
#: the profile's time of the answer its ``nps_*`` traits hold: an older answer leaves them as they are
ANSWERED_AT = "npsAnsweredAt"


def answer_key(contact: ContactId, survey_id: str) -> dict[str, Any]:
    return {"pk": partition(contact), "sk": s(ANSWER + survey_id)}


def answer_item(contact: ContactId, answer: Answer) -> dict[str, Any]:
    item = {
        **answer_key(contact, answer.survey_id),
        "surveyId": s(answer.survey_id),
        "contactId": s(answer.contact_id),
        "score": n(answer.score),
        "category": s(answer.category),
        "source": s(answer.source),
        "at": s(format_time(answer.at)),
    }
    if answer.comment:
        item["comment"] = s(answer.comment)
    return item


def answer_from_item(item: dict[str, Any]) -> Answer:
    return Answer(
        survey_id=item["surveyId"]["S"],
        contact_id=item["contactId"]["S"],
        score=int(item["score"]["N"]),
        category=item["category"]["S"],
        comment=item.get("comment", {}).get("S", ""),
        source=item["source"]["S"],
        at=parse_time(item["at"]["S"]),
    )


def traits_update(table: str, contact: ContactId, answer: Answer) -> dict[str, Any]:
    """The profile's ``nps_*`` traits (a comment-less answer removes the last one's comment); the trait
    cap's running bound grows by what they weigh, as the aggregation's own writes do."""
    x = Expression()
    traits = answer.traits()
    for name, value in traits.items():
        if value is None:
            x.remove(TRAIT + name)
        else:
            x.set(TRAIT + name, js(value))
    x.add(TRAIT_BYTES, n(trait_bytes({k: v for k, v in traits.items() if v is not None})))
    x.set("lastWriter", s(WRITER))
    at = s(format_time(answer.at))
    x.set(ANSWERED_AT, at)
    answered = x.name(ANSWERED_AT)
    return x.update(
        table,
        profile_key(contact),
        f"attribute_exists({x.name('pk')}) AND attribute_not_exists({x.name('mergedInto')})"
        f" AND (attribute_not_exists({answered}) OR {answered} <= {x.value(at)})",
    )


def profile_check(table: str, contact: ContactId) -> dict[str, Any]:
    """The profile exists and was not merged away (an older answer's transaction: its traits stay)."""
    return {
        "TableName": table,
        "Key": profile_key(contact),
        "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(#m)",
        "ExpressionAttributeNames": {"#m": "mergedInto"},
    }


class DynamoAnswerStore:
    """``AnswerStore`` on the contacts table."""

    def __init__(
        self, client: Any, *, contacts_table: str, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._db = client
        self._contacts = contacts_table
        self._sleep = sleep

    def record(self, contact: ContactId, answer: Answer) -> Recorded:
        put = {
            "Put": {
                "TableName": self._contacts,
                "Item": answer_item(contact, answer),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        cancelled = transact(
            self._db,
            [put, {"Update": traits_update(self._contacts, contact, answer)}],
            STORE,
            sleep=self._sleep,
        )
        if cancelled is None:
            return Recorded(new=True, answer=answer)
        answered, profile = (cancelled.codes + [None, None])[:2]
        if (
            answered != "ConditionalCheckFailed"
            and profile == "ConditionalCheckFailed"
            and self._newer_answer(contact, answer)
        ):
            # the profile holds a newer answer's traits: this one is recorded, they stay
            check = {"ConditionCheck": profile_check(self._contacts, contact)}
            cancelled = transact(self._db, [put, check], STORE, sleep=self._sleep)
            if cancelled is None:
                return Recorded(new=True, answer=answer)
        answered, profile = (cancelled.codes + [None, None])[:2]
        if answered == "ConditionalCheckFailed":
            found = self._read(contact, answer.survey_id)
            if found is None:  # deleted meanwhile (an erasure): nothing to record for it
                raise DependencyUnavailable("the answer changed while it was recorded; retry")
            return Recorded(new=False, answer=found[0], done=found[1])
        if profile == "ConditionalCheckFailed":
            raise DependencyUnavailable(
                "the contact was merged away or erased while its answer was recorded; retry"
            )
        raise failure(cancelled.error, STORE) from cancelled.error

    def _newer_answer(self, contact: ContactId, answer: Answer) -> bool:
        """Whether the profile exists, was not merged away, and holds a later answer's traits."""
        try:
            item = retried(
                lambda: self._db.get_item(
                    TableName=self._contacts,
                    Key=profile_key(contact),
                    ConsistentRead=True,
                    ProjectionExpression="pk, #m, #a",
                    ExpressionAttributeNames={"#m": "mergedInto", "#a": ANSWERED_AT},
                ),
                STORE,
                sleep=self._sleep,
            ).get("Item")
        except LifecycleError:
            raise
        except Exception as exc:
            raise failure(exc, STORE) from exc
        if not item or "mergedInto" in item:
            return False
        return item.get(ANSWERED_AT, {}).get("S", "") > format_time(answer.at)

    def done(self, contact: ContactId, survey_id: str) -> None:
        request = {
            "TableName": self._contacts,
            "Key": answer_key(contact, survey_id),
            "UpdateExpression": "SET #d = :d",
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeNames": {"#d": "done"},
            "ExpressionAttributeValues": {":d": {"BOOL": True}},
        }
        try:
            retried(lambda: self._db.update_item(**request), STORE, sleep=self._sleep)
        except LifecycleError:
            raise
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":  # erased meanwhile: nothing to mark
                raise failure(exc, STORE) from exc

    def answer(self, contact: ContactId, survey_id: str) -> Answer | None:
        found = self._read(contact, survey_id)
        return found[0] if found is not None else None

    def _read(self, contact: ContactId, survey_id: str) -> tuple[Answer, bool] | None:
        try:
            item = retried(
                lambda: self._db.get_item(
                    TableName=self._contacts, Key=answer_key(contact, survey_id), ConsistentRead=True
                ),
                STORE,
                sleep=self._sleep,
            ).get("Item")
        except LifecycleError:
            raise
        except Exception as exc:
            raise failure(exc, STORE) from exc
        if not item:
            return None
        return answer_from_item(item), bool(item.get("done", {}).get("BOOL"))


class EventBridgeNpsAnnouncer:
    """``NpsAnnouncer``: one PutEvents entry, source ``lifecycle``, detail type ``NpsAnswered``. Refused
    for now or for good, it raises (the stream's record is retried, and at last set aside)."""

    def __init__(self, events: Any, *, bus: str) -> None:
        self._events = events
        self._bus = bus

    def announce(self, answered: NpsAnswered) -> None:
        entry = {
            "Source": SOURCE,
            "DetailType": answered.detail_type,
            "Detail": answered.model_dump_json(by_alias=True),
            "EventBusName": self._bus,
            "Time": answered.at,
        }
        try:
            answer = self._events.put_events(Entries=[entry])
        except Exception as exc:  # ``refusal`` raises what is not an AWS error again
            code = refusal(exc)
            raise DependencyUnavailable(
                f"{BUS} did not take the answer ({code or 'for now'}); retry"
            ) from exc
        failed = (answer.get("Entries") or [{}])[0].get("ErrorCode") or (
            "InternalFailure" if answer.get("FailedEntryCount") else None
        )
        if failed:
            reason = "for now" if failed in NOT_NOW else failed
            raise DependencyUnavailable(f"{BUS} did not take the answer ({reason}); retry")
