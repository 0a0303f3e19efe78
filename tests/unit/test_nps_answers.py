"""Issue 15: recording NPS answers (``shared.usecases.nps``) on the fakes, end to end from the log:
an answer by link or by a server's track call is recorded once per survey and contact (the first wins),
sets the contact's traits, scores once through ``NPS Answered``, and announces ``NpsAnswered`` once,
also after a crash between the write and the publish. A browser key's call is no answer."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.clock import FixedClock
from shared.contacts.consent import consent_message_id
from shared.contacts.identity import ContactId
from shared.delivery.mail_events import feedback_message_id
from shared.errors import DependencyUnavailable, InvalidRequest
from shared.nps.answers import NPS_SUBMITTED, answer_event_id, category_of
from shared.nps.submissions import NPS_ANSWERED_EVENT, is_submission, link_message_id
from shared.scoring.catalogue import parse_rule, stored_rule
from shared.tracking.messages import parse_calls
from shared.tracking.proofs import Provenance
from shared.tracking.wire import Limits
from shared.usecases.nps import NpsRecording, link_answer_event, record_answer
from shared.usecases.recording import NewEntry
from tests.fakes import CountingTelemetry, MemoryAnswerStore, MemoryContactStore, MemoryNpsAnnouncer

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ANN = ContactId.user("ann")
#: a detractor loses 10 points, a promoter earns 15: rules on the log's ``NPS Answered``
RULES = [
    stored_rule(
        parse_rule(
            "nps.detractor",
            {
                "behaviour": "custom",
                "points": -10,
                "match": {
                    "event": NPS_ANSWERED_EVENT,
                    "properties": [{"path": "properties.category", "op": "eq", "value": "detractor"}],
                },
            },
        ),
        1,
        NOW,
    ),
    stored_rule(
        parse_rule(
            "nps.promoter",
            {
                "behaviour": "custom",
                "points": 15,
                "match": {
                    "event": NPS_ANSWERED_EVENT,
                    "properties": [{"path": "properties.score", "op": "gte", "value": 9}],
                },
            },
        ),
        1,
        NOW,
    ),
]


class World:
    def __init__(self) -> None:
        self.clock = FixedClock(NOW)
        self.store = MemoryContactStore()
        self.answers = MemoryAnswerStore(self.store)
        self.bus = MemoryNpsAnnouncer()
        self.telemetry = CountingTelemetry()
        self.deps = NpsRecording(
            clock=self.clock,
            contacts=self.store,
            answers=self.answers,
            log=self.store,
            announcer=self.bus,
            telemetry=self.telemetry,
            pause=lambda _: None,
        )

    def track(self, *calls: dict, server: bool = True) -> None:
        events = parse_calls(
            "/v1/batch", {"batch": list(calls)}, received_at=self.clock.now(), limits=Limits()
        )
        provenance = Provenance.SERVER if server else Provenance.BROWSER
        self.store.append([NewEntry(ANN, replace(e, provenance=provenance), ()) for e in events])

    def link(self, score: int, survey: str = "nps-q2", comment: str = "") -> None:
        """What the answer link's POST writes (``shared.usecases.preferences``)."""
        event = link_answer_event(ANN, survey=survey, score=score, comment=comment, at=self.clock.now())
        self.store.append([NewEntry(ANN, event, ())])

    def run(self) -> list[str]:
        """The log's stream, to both readers: the aggregation folds, then the events trigger records;
        what it did with each ``NPS Submitted`` (anything else it ignores)."""
        news = list(self.store.stream)
        self.store.deliver_events(rules=RULES)
        outcomes = [(is_submission(n.event), record_answer(n.contact, n.event, self.deps)) for n in news]
        assert all(o == "ignored" for submitted, o in outcomes if not submitted)
        return [o for submitted, o in outcomes if submitted]

    def score(self) -> float:
        found = self.store.profile(ANN).scores.get("global")
        return float(found.total) if found is not None else 0.0

    def answered_events(self) -> list:
        return [i.event for i in self.store.log.get(ANN, {}).values() if i.event.event == NPS_ANSWERED_EVENT]


@pytest.fixture
def world() -> World:
    w = World()
    w.track({"type": "identify", "userId": "ann", "messageId": "i1", "traits": {"first_name": "Ann"}})
    w.run()
    return w


def test_the_categories_and_their_boundaries() -> None:
    assert [category_of(s) for s in range(11)] == ["detractor"] * 7 + ["passive"] * 2 + ["promoter"] * 2
    for outside in (-1, 11):
        with pytest.raises(ValueError):
            category_of(outside)


def test_a_link_answer_is_recorded_scored_and_announced(world) -> None:
    before = world.score()
    world.link(3, comment="Slow delivery")
    assert world.run() == ["recorded"]
    traits = world.store.profile(ANN).traits
    assert (traits["nps_category"], traits["nps_score"], traits["nps_comment"]) == (
        "detractor",
        3,
        "Slow delivery",
    )
    assert traits["nps_answered_at"] == NOW.isoformat()
    (announced,) = world.bus.sent
    assert announced.event_id == answer_event_id("nps-q2", "user_id:ann")
    assert (announced.survey_id, announced.score, announced.category, announced.source) == (
        "nps-q2",
        3,
        "detractor",
        "link",
    )
    assert announced.has_comment and "Slow" not in announced.model_dump_json(), (
        "the comment is not on the bus"
    )
    (answered,) = world.answered_events()
    assert answered.properties["category"] == "detractor" and answered.provenance is Provenance.SERVER
    assert world.run() == []  # the aggregation folds NPS Answered: the detractor rule takes 10 points
    assert world.score() == before - 10


def test_a_server_track_call_is_an_answer_and_a_duplicate_changes_nothing(world) -> None:
    before = world.score()
    call = {
        "type": "track",
        "userId": "ann",
        "event": NPS_SUBMITTED,
        "properties": {"survey_id": "nps-q2", "score": 10},
    }
    world.track({**call, "messageId": "n1"})
    assert world.run() == ["recorded"]
    world.run()
    assert world.score() == before + 15
    # the server sends it again (another messageId, another score), and the link is followed too
    world.track({**call, "messageId": "n2", "properties": {"survey_id": "nps-q2", "score": 2}})
    world.link(0)
    assert world.run() == ["duplicate", "duplicate"]
    world.run()
    assert world.store.profile(ANN).traits["nps_score"] == 10, "the first answer wins"
    assert len(world.bus.sent) == 1 and len(world.answered_events()) == 1
    assert world.score() == before + 15, "scored once"
    assert world.telemetry.counts["NpsAnswersRepeated"] == 2


def test_a_crash_between_the_write_and_the_publish_still_publishes_once(world) -> None:
    world.link(6)
    news = list(world.store.stream)
    world.store.deliver_events(rules=RULES)
    world.bus.unavailable = 1
    with pytest.raises(DependencyUnavailable):
        record_answer(ANN, news[0].event, world.deps)
    assert world.answers.answer(ANN, "nps-q2") is not None and world.bus.sent == []
    # the stream's retry: the answer is there, not done: its effects are done now
    assert record_answer(ANN, news[0].event, world.deps) == "duplicate"
    assert len(world.bus.sent) == 1
    # a crash after the publish, before it was marked done: announced again with the same id (deduplicated
    # by the consumers), and the log's event is still one
    world.answers.answers[(ANN, "nps-q2")] = (world.answers.answer(ANN, "nps-q2"), False)
    world.answers.failing_done = 1
    with pytest.raises(DependencyUnavailable):
        record_answer(ANN, news[0].event, world.deps)
    record_answer(ANN, news[0].event, world.deps)
    assert {a.event_id for a in world.bus.sent} == {answer_event_id("nps-q2", "user_id:ann")}
    assert len(world.answered_events()) == 1
    assert record_answer(ANN, news[0].event, world.deps) == "duplicate"
    assert len(world.bus.sent) == 3, "done: no more announcements"


def test_a_browser_keys_call_or_a_bad_one_is_no_answer(world) -> None:
    call = {
        "type": "track",
        "userId": "ann",
        "event": "nps_submitted",
        "properties": {"survey_id": "s", "score": 9},
    }
    world.track({**call, "messageId": "b1"}, server=False)
    for n, properties in enumerate(
        (
            {"survey_id": "s", "score": 11},
            {"survey_id": "s", "score": "9"},
            {"score": 9},
            {"survey_id": "s", "score": 8.5},
            {"survey_id": "s", "score": True},
        )
    ):
        world.track({**call, "messageId": f"x{n}", "properties": properties})
    assert set(world.run()) == {"ignored"}
    assert world.bus.sent == [] and "nps_score" not in world.store.profile(ANN).traits
    assert world.telemetry.counts["NpsSubmissionsIgnored"] == 6
    # a whole number sent as 9.0 is 9
    world.track({**call, "messageId": "ok", "properties": {"survey_id": "s", "score": 9.0}})
    assert world.run() == ["recorded"]


def test_another_survey_is_another_answer_and_sets_the_latest_traits(world) -> None:
    world.link(3, comment="Slow")
    world.run()
    world.clock.advance(timedelta(days=90))
    world.link(9, survey="nps-q3")
    assert world.run() == ["recorded"]
    traits = world.store.profile(ANN).traits
    assert (traits["nps_category"], traits["nps_score"]) == ("promoter", 9) and "nps_comment" not in traits
    assert [a.survey_id for a in world.bus.sent] == ["nps-q2", "nps-q3"]


def test_an_answer_waits_for_its_contact_to_be_folded_in() -> None:
    w = World()
    w.link(8)
    news = list(w.store.stream)
    with pytest.raises(DependencyUnavailable):  # the aggregation has not folded it yet: retried
        record_answer(ANN, news[0].event, w.deps)
    w.store.deliver_events(rules=RULES)
    assert record_answer(ANN, news[0].event, w.deps) == "recorded"
    assert w.bus.sent[0].category == "passive"


# --- what a browser key cannot do (review of issue 15) -----------------------------------------------------


def tracked(world: World, key: str, *calls: dict) -> None:
    """Calls through the tracking use case with a write key (``browser`` or ``server``), as the tracking
    function takes them."""
    from shared.scoring.decay import Decay
    from shared.usecases.tracking import Tracking, TrackingRequest, track
    from tests.fakes import MemoryIdentitySecrets, StaticRules, StaticWriteKeys

    deps = Tracking(
        clock=world.clock,
        write_keys=StaticWriteKeys(),
        identity_secrets=MemoryIdentitySecrets(),
        log=world.store,
        rules=StaticRules(list(RULES)),
        decay=Decay(),
        telemetry=CountingTelemetry(),
    )
    body = json.dumps({"writeKey": key, "batch": [{"type": "track", "userId": "ann", **c} for c in calls]})
    track(TrackingRequest(path="/v1/batch", body=body, content_type="application/json"), deps)


def test_a_browser_keys_nps_answered_is_kept_but_scores_nothing(world) -> None:
    before = world.score()
    promoter = {"event": NPS_ANSWERED_EVENT, "properties": {"category": "promoter", "score": 10}}
    tracked(world, "browser", *({**promoter, "messageId": f"fake{n}"} for n in range(3)))
    world.run()
    assert world.score() == before, "a browser's NPS Answered scores nothing"
    assert len(world.answered_events()) == 3, "it is kept in the log as any custom event"
    # the same from a server key scores (a back-end may record answers of its own)
    tracked(world, "server", {**promoter, "messageId": "srv1"})
    world.run()
    assert world.score() == before + 15


@pytest.mark.parametrize(
    "reserved",
    [
        link_message_id("nps-q2", "user_id:ann"),
        answer_event_id("nps-q2", "user_id:ann"),
        consent_message_id("unsubscribe", "token"),
        consent_message_id("confirm", "token"),
        consent_message_id("admin-consent", "user_id:ann"),
        consent_message_id("admin-tag", "user_id:ann"),
        feedback_message_id("ses-1", "Open", NOW),
        "automation:win-back#user_id:ann",
    ],
)
@pytest.mark.parametrize("key", ["browser", "server"])
def test_a_call_cannot_take_a_server_made_message_id(world, reserved, key) -> None:
    call = {"event": "Page Viewed", "messageId": reserved}
    before = len(world.store.stream)
    with pytest.raises(InvalidRequest) as refused:
        tracked(world, key, {"event": "Page Viewed", "messageId": "ok"}, call)
    assert (refused.value.code, refused.value.field) == ("reserved_message_id", "batch[1].messageId")
    assert len(world.store.stream) == before, "nothing was written"
    # ids that merely start alike are a client's own
    tracked(
        world,
        key,
        {"event": "Page Viewed", "messageId": "nps-bob"},
        {"event": "Page Viewed", "messageId": "confirm:1"},
    )
    assert len(world.store.stream) == before + 2


def test_a_browser_cannot_take_the_link_answers_key_before_the_contact_answers(world) -> None:
    stolen = link_message_id("nps-q2", "user_id:ann")
    with pytest.raises(InvalidRequest):
        tracked(world, "browser", {"event": NPS_SUBMITTED, "messageId": stolen, "properties": {}})
    world.link(4)  # the contact's own POST
    assert world.run() == ["recorded"]
    assert world.store.profile(ANN).traits["nps_score"] == 4


def test_a_browser_cannot_take_the_answers_key_and_spoil_its_scoring(world) -> None:
    before = world.score()
    stolen = answer_event_id("nps-q2", "user_id:ann")
    fake = {
        "event": NPS_ANSWERED_EVENT,
        "messageId": stolen,
        "properties": {"category": "promoter", "score": 10},
    }
    with pytest.raises(InvalidRequest):
        tracked(world, "browser", fake)
    world.link(2)
    assert world.run() == ["recorded"]
    world.run()
    assert world.score() == before - 10, "the real answer (a detractor's) is what scores"


def test_a_browser_key_cannot_set_the_nps_traits(world) -> None:
    identify = {
        "type": "identify",
        "userId": "ann",
        "messageId": "b-nps",
        "traits": {"nps_category": "promoter", "nps_score": 10, "first_name": "Annie"},
    }
    world.track(identify, server=False)
    world.run()
    traits = world.store.profile(ANN).traits
    assert "nps_category" not in traits and "nps_score" not in traits, "ignored from a browser"
    assert traits["first_name"] == "Annie", "the rest of the call is kept"
    world.track({**identify, "messageId": "s-nps"}, server=True)
    world.run()
    assert world.store.profile(ANN).traits["nps_score"] == 10, "a server key may set them"


def test_a_survey_id_is_named_as_automations_name_surveys(world) -> None:
    """A survey id an ``nps`` trigger could not name (``RuleId``: lower-case letters, digits, ``_.:-``, up
    to 64) is no answer."""
    from pydantic import TypeAdapter, ValidationError

    from shared.scoring.rules import RuleId

    call = {"type": "track", "userId": "ann", "event": NPS_SUBMITTED}
    refused = ("In-App", "in app", "ümfrage", "-q4", "q" * 65, "nps/q4")
    for n, survey in enumerate(refused):
        with pytest.raises(ValidationError):
            TypeAdapter(RuleId).validate_python(survey)
        world.track({**call, "messageId": f"x{n}", "properties": {"survey_id": survey, "score": 9}})
    assert set(world.run()) == {"ignored"} and "nps_score" not in world.store.profile(ANN).traits
    world.track({**call, "messageId": "ok", "properties": {"survey_id": "in-app.q4:2026", "score": 9}})
    assert world.run() == ["recorded"]
