"""Recording NPS answers (issue 15): once per survey and contact, with exactly-once effects.

Answers reach the event log two ways: an ``NPS Submitted`` track call from a server key, or the survey's
signed answer link, whose POST writes the same event there (``link_answer_event``; the preferences
function). The events trigger (``automation_events``, the log's second stream reader) records each one
here; the tracking request stays a single put.

Recording, for a server's (or the link's) answer:

1. the profile holding the contact, once the aggregation has folded the event in (so it exists, and
   merges are followed);
2. ``AnswerStore.record``: the answer item (``NPS#<survey>`` under the contact), written on condition
   that there is none, with the contact's ``nps_*`` traits, in one transaction. The first answer wins: a
   later one (another call, another score) changes nothing;
3. the answer's effects, each idempotent: an ``NPS Answered`` event in the contact's log, keyed by the
   answer (what scoring rules match: the answer scores once, whatever the path), and ``NpsAnswered`` on
   the bus, with its stable ``event_id`` (the consumers deduplicate on it);
4. the answer item marked done.

The answer item is the outbox: a crash or a failed publish between 2 and 4 leaves it not done, and the
stream's retry (or any later duplicate) finds it so and does 3 and 4 again. No comment, score or
contact id is logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from shared.clock import Clock
from shared.contacts.identity import ContactId
from shared.contacts.model import ContactRecord
from shared.errors import DependencyUnavailable
from shared.nps.answers import NPS_SUBMITTED, NpsAnswered
from shared.nps.submissions import (
    NPS_ANSWERED_EVENT,
    Answer,
    answer_of,
    answered_properties,
    is_submission,
    link_message_id,
    submission_of,
)
from shared.tracking.messages import TrackedEvent, rebuild_event
from shared.tracking.proofs import Provenance
from shared.tracking.stored import dumps, with_provenance
from shared.usecases.recording import EventLog, NewEntry

#: how long the events trigger waits for the aggregation to fold the answer's event in (seconds, in turn)
FOLD_WAITS = (0.2, 0.5, 1.0, 2.0)
#: how far a contact's merges are followed to the contact that holds its profile
MAX_MERGE_HOPS = 4

Outcome = Literal["recorded", "duplicate", "ignored"]


@dataclass(frozen=True, slots=True)
class Recorded:
    """What ``AnswerStore.record`` found: ``new`` (this call wrote it), the answer stored (the first,
    also when this one was not), and whether its effects were all done."""

    new: bool
    answer: Answer
    done: bool = False


class AnswerStore(Protocol):
    def record(self, contact: ContactId, answer: Answer) -> Recorded:
        """Write the answer and the contact's ``nps_*`` traits in one transaction, unless the contact has
        answered the survey already (then nothing is written, and the stored answer is returned)."""
        ...

    def done(self, contact: ContactId, survey_id: str) -> None:
        """Mark the answer's effects done (a retry then does them no more)."""
        ...

    def answer(self, contact: ContactId, survey_id: str) -> Answer | None:
        """The contact's answer to the survey, if any."""
        ...


class NpsAnnouncer(Protocol):
    def announce(self, answered: NpsAnswered) -> None:
        """Put ``NpsAnswered`` on the bus; raises DependencyUnavailable if it did not go."""
        ...


class ProfileReader(Protocol):
    def profile(self, contact: ContactId) -> ContactRecord | None: ...


class Telemetry(Protocol):
    def count(self, name: str, value: int) -> None: ...


@dataclass(frozen=True, slots=True)
class NpsRecording:
    clock: Clock
    contacts: ProfileReader
    answers: AnswerStore
    log: EventLog
    announcer: NpsAnnouncer
    telemetry: Telemetry
    #: how the events trigger waits for the aggregation (``time.sleep``; tests pass a no-op)
    pause: Callable[[float], object] = time.sleep


# --- the events -------------------------------------------------------------------------------------------


def _server_event(
    contact: ContactId, message_id: str, name: str, properties: dict, at: datetime
) -> TrackedEvent:
    """A track call for the contact's log, as a server fact, untimed (its key is ``M#<message_id>``, so
    the same message id is one event)."""
    identity = {"userId": contact.value} if contact.kind == "user_id" else {"anonymousId": contact.value}
    body = with_provenance({**identity, "event": name, "properties": properties}, Provenance.SERVER, None)
    return rebuild_event(dumps(body), message_id=message_id, call="track", timestamp=at, received_at=at)


def link_answer_event(
    contact: ContactId, *, survey: str, score: int, comment: str, at: datetime
) -> TrackedEvent:
    """The answer link's ``NPS Submitted`` event: one per survey and contact (the first POST wins)."""
    properties: dict = {"survey_id": survey, "score": score, "source": "link"}
    if comment:
        properties["comment"] = comment
    return _server_event(contact, link_message_id(survey, str(contact)), NPS_SUBMITTED, properties, at)


def answered_event(contact: ContactId, answer: Answer) -> TrackedEvent:
    """The log's ``NPS Answered`` event of a recorded answer, keyed by it: what scoring rules match."""
    return _server_event(
        contact, answer.event_id, NPS_ANSWERED_EVENT, dict(answered_properties(answer)), answer.at
    )


# --- recording --------------------------------------------------------------------------------------------


def record_answer(
    contact: ContactId, event: TrackedEvent, deps: NpsRecording, position: str | None = None
) -> Outcome:
    """Record the answer an event of the log gives, once (see the module). ``ignored``: not an answer (a
    browser key's ``NPS Submitted``, properties that are no answer, another event)."""
    if not is_submission(event):
        return "ignored"
    submission = submission_of(event)
    if submission is None:
        deps.telemetry.count("NpsSubmissionsIgnored", 1)
        return "ignored"
    record = _folded(contact, position, deps)
    if record is None:  # erased meanwhile
        deps.telemetry.count("NpsSubmissionsIgnored", 1)
        return "ignored"
    holder = ContactId.parse(record.contact_id)
    recorded = deps.answers.record(holder, answer_of(submission, str(holder), event.timestamp))
    if recorded.done:
        deps.telemetry.count("NpsAnswersRepeated", 1)
        return "duplicate"
    _effects(holder, recorded.answer, record, deps)
    if recorded.new:
        deps.telemetry.count("NpsAnswersRecorded", 1)
        return "recorded"
    deps.telemetry.count("NpsAnswersRepeated", 1)
    return "duplicate"


def _effects(holder: ContactId, answer: Answer, record: ContactRecord, deps: NpsRecording) -> None:
    """The answer's event in the log and on the bus (each idempotent), then the answer marked done."""
    deps.log.append([NewEntry(holder, answered_event(holder, answer), ())])
    deps.announcer.announce(answer.announced(record.stage, record.segments))
    deps.answers.done(holder, answer.survey_id)


def _folded(contact: ContactId, position: str | None, deps: NpsRecording) -> ContactRecord | None:
    """The profile holding the contact once it holds the event at ``position`` (its own stream position)."""
    for wait in (*FOLD_WAITS, None):
        record = deps.contacts.profile(contact)
        if record is not None and record.merged_into:
            return _holder(ContactId.parse(record.merged_into), deps)
        if record is not None and (position is None or (record.aggregated_through or "") >= position):
            return record
        if wait is None:
            break
        deps.pause(wait)
    raise DependencyUnavailable("the answer is not folded into its contact yet; retry")


def _holder(contact: ContactId, deps: NpsRecording) -> ContactRecord | None:
    for _ in range(MAX_MERGE_HOPS):
        record = deps.contacts.profile(contact)
        if record is None or not record.merged_into:
            return record
        contact = ContactId.parse(record.merged_into)
    return None
