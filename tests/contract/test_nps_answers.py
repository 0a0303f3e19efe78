"""Issue 15: NPS answers (``AnswerStore``): the first answer per survey and contact, with the contact's
``nps_*`` traits, never on a missing or merged-away profile; ``done`` marks its effects done. The same
assertions on the fake and on moto; and ``NpsAnswered`` as the bus receives it (moto's EventBridge)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from shared.contacts.identity import ContactId
from shared.errors import DependencyUnavailable
from shared.nps.answers import answer_event_id
from shared.nps.submissions import Answer
from tests.contract.helpers import NOW, change
from tests.fakes import MemoryAnswerStore, MemoryContactStore

ANN, BOB = ContactId.user("ann"), ContactId.user("bob")


def answer(score: int = 3, survey: str = "nps-q2", contact: ContactId = ANN, comment: str = "Slow") -> Answer:
    category = "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"
    return Answer(
        survey_id=survey,
        contact_id=str(contact),
        score=score,
        category=category,
        comment=comment,
        source="link",
        at=NOW,
    )


@pytest.fixture
def ports(implementation, contact_tables):
    """(contacts with their log, answer store)."""
    if implementation == "fake":
        contacts = MemoryContactStore()
        return contacts, MemoryAnswerStore(contacts)
    from shared.adapters.nps_answers import DynamoAnswerStore

    tables = contact_tables()
    return tables.stores(), DynamoAnswerStore(tables.db, contacts_table=tables.contacts, sleep=lambda _: None)


def known(contacts, contact: ContactId = ANN, message: str = "i1") -> None:
    call = {"type": "identify", "userId": contact.value, "messageId": message, "traits": {"plan": "pro"}}
    assert contacts.commit([change(contact, call)])[0].committed


def test_an_answer_is_recorded_with_the_contacts_traits(ports):
    contacts, answers = ports
    known(contacts)
    recorded = answers.record(ANN, answer(3))
    assert (recorded.new, recorded.done, recorded.answer) == (True, False, answer(3))
    traits = contacts.profile(ANN).traits
    assert traits["nps_category"] == "detractor" and traits["nps_score"] == 3
    assert traits["nps_comment"] == "Slow" and traits["nps_answered_at"] == NOW.isoformat()
    assert traits["plan"] == "pro", "the rest of the profile is kept"
    assert answers.answer(ANN, "nps-q2") == answer(3)
    assert answers.answer(ANN, "another") is None


def test_the_first_answer_wins_and_a_later_one_changes_nothing(ports):
    contacts, answers = ports
    known(contacts)
    answers.record(ANN, answer(3))
    again = answers.record(ANN, answer(10, comment=""))
    assert (again.new, again.answer.score, again.answer.comment) == (False, 3, "Slow")
    assert contacts.profile(ANN).traits["nps_score"] == 3
    # another survey is another answer: the traits are the latest answer's (no comment: none kept)
    later = answer(10, survey="nps-q3", comment="").model_copy(update={"at": NOW + timedelta(days=90)})
    assert answers.record(ANN, later).new
    traits = contacts.profile(ANN).traits
    assert (traits["nps_category"], traits["nps_score"]) == ("promoter", 10) and "nps_comment" not in traits


def test_done_marks_the_effects_done_for_a_retry_to_see(ports):
    contacts, answers = ports
    known(contacts)
    answers.record(ANN, answer(3))
    assert not answers.record(ANN, answer(3)).done, "a retry after a crash does the effects again"
    answers.done(ANN, "nps-q2")
    assert answers.record(ANN, answer(3)).done
    answers.done(BOB, "nps-q2")  # nothing to mark: nothing happens


def test_no_profile_or_a_merged_away_one_takes_no_answer(ports):
    contacts, answers = ports
    with pytest.raises(DependencyUnavailable):
        answers.record(BOB, answer(contact=BOB))
    assert contacts.profile(BOB) is None and answers.answer(BOB, "nps-q2") is None
    known(contacts, ANN)
    known(contacts, BOB, "i2")
    assert contacts.claim(BOB, ANN, NOW).owner == ANN  # bob is merged into ann
    with pytest.raises(DependencyUnavailable):
        answers.record(BOB, answer(contact=BOB))
    assert answers.answer(BOB, "nps-q2") is None


def test_the_bus_receives_nps_answered_as_the_contract_says():
    from moto import mock_aws

    from shared.adapters import aws
    from shared.adapters.nps_answers import EventBridgeNpsAnnouncer

    with mock_aws():
        aws.reset()
        events, sqs = aws.client("events"), aws.client("sqs")
        url = sqs.create_queue(QueueName="contract-nps")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.create_event_bus(Name="contract-bus")
        pattern = json.dumps({"source": ["lifecycle"], "detail-type": ["NpsAnswered"]})
        events.put_rule(Name="nps", EventBusName="contract-bus", EventPattern=pattern)
        events.put_targets(Rule="nps", EventBusName="contract-bus", Targets=[{"Id": "q", "Arn": arn}])
        EventBridgeNpsAnnouncer(events, bus="contract-bus").announce(answer(3).announced("customer", {"vip"}))
        (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        body = json.loads(message["Body"])
        assert (body["source"], body["detail-type"]) == ("lifecycle", "NpsAnswered")
        assert body["detail"] == {
            "event_id": answer_event_id("nps-q2", "user_id:ann"),
            "contact_id": "user_id:ann",
            "at": NOW.isoformat().replace("+00:00", "Z"),
            "survey_id": "nps-q2",
            "score": 3,
            "category": "detractor",
            "source": "link",
            "has_comment": True,
            "stage": "customer",
            "segments": ["vip"],
        }
        aws.reset()


def test_an_older_answer_is_recorded_but_keeps_the_newer_answers_traits(ports):
    """Answers may arrive out of order (a late server call, an import): the traits stay the latest's."""
    contacts, answers = ports
    known(contacts)
    assert answers.record(ANN, answer(9, survey="nps-q3", comment="")).new
    older = answer(2, survey="nps-q2").model_copy(update={"at": NOW - timedelta(days=10)})
    recorded = answers.record(ANN, older)
    assert recorded.new and answers.answer(ANN, "nps-q2") == older, "the older answer is recorded"
    traits = contacts.profile(ANN).traits
    assert (traits["nps_score"], traits["nps_answered_at"]) == (9, NOW.isoformat()), "the newer's traits"
    assert "nps_comment" not in traits
    newer = answer(4, survey="nps-q4").model_copy(update={"at": NOW + timedelta(days=1)})
    assert answers.record(ANN, newer).new
    traits = contacts.profile(ANN).traits
    assert (traits["nps_score"], traits["nps_comment"]) == (4, "Slow")
    # an answer at the same time as the stored one updates them (not later: it may)
    same = answer(7, survey="nps-q5", comment="").model_copy(update={"at": NOW + timedelta(days=1)})
    assert answers.record(ANN, same).new
    assert contacts.profile(ANN).traits["nps_score"] == 7


def test_an_older_answer_still_needs_its_contact_not_merged_away(ports):
    contacts, answers = ports
    known(contacts, ANN)
    known(contacts, BOB, "i2")
    assert answers.record(BOB, answer(9, survey="nps-q3", contact=BOB)).new
    assert contacts.claim(BOB, ANN, NOW).owner == ANN  # bob is merged into ann
    older = answer(2, contact=BOB).model_copy(update={"at": NOW - timedelta(days=1)})
    with pytest.raises(DependencyUnavailable):
        answers.record(BOB, older)
    assert answers.answer(BOB, "nps-q2") is None
