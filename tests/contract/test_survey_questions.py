"""Issue 15: a survey's question for its answer page (``SurveyQuestions``), read from the template stored
under the survey's id: the fake and the DynamoDB adapter (on moto) keep the same contract. The templates
are written by the template repository (the fake's, or ``DynamoTemplateStore`` on the same moto table)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.delivery.templates import EmailTemplate, Survey
from tests.fakes import MemorySurveyQuestions, MemoryTemplateRepository

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
QUESTION = 'How likely are you to recommend <Shop & Co> to a "friend"?'


def template(template_id: str = "nps-q4", question: str | None = QUESTION) -> EmailTemplate:
    return EmailTemplate(
        id=template_id,
        subject="A question",
        text="{{ survey.question }} {% for s in survey.scores %}{{ s.url }}{% endfor %}",
        survey=Survey(question=question) if question is not None else None,
    )


@pytest.fixture
def ports(implementation, config_table) -> tuple[Any, Any]:
    """(the template repository that stores templates, the survey questions that read them)."""
    if implementation == "fake":
        templates = MemoryTemplateRepository()
        return templates, MemorySurveyQuestions(templates)
    from shared.adapters.survey_questions import DynamoSurveyQuestions
    from shared.adapters.template_store import DynamoTemplateStore

    db, table = config_table()
    return (
        DynamoTemplateStore(db, table=table, cache_seconds=0),
        DynamoSurveyQuestions(db, table=table, cache_seconds=0),
    )


def test_a_survey_templates_question_is_read_as_written(ports) -> None:
    templates, surveys = ports
    templates.save(template(), AT, None)
    assert surveys.question("nps-q4") == QUESTION
    templates.save(template(question="Would you recommend us?"), AT + timedelta(hours=1), 1)
    assert surveys.question("nps-q4") == "Would you recommend us?", "its current version"


def test_a_template_without_a_survey_or_no_template_has_no_question(ports) -> None:
    templates, surveys = ports
    templates.save(template("welcome", question=None), AT, None)
    assert surveys.question("welcome") is None
    assert surveys.question("never-stored") is None
    templates.save(template("nps-q4"), AT, None)
    assert surveys.question("nps-q4-other") is None, "another id, however alike"


def test_a_deleted_template_has_no_question(ports) -> None:
    templates, surveys = ports
    templates.save(template(), AT, None)
    templates.remove("nps-q4", AT + timedelta(days=1), 1)
    assert surveys.question("nps-q4") is None, "its tombstone is history, not a question"
    templates.save(template(question="Back again?"), AT + timedelta(days=2), None)
    assert surveys.question("nps-q4") == "Back again?"


# --- the adapter alone: one GetItem of the current template, its cache, its failures ---------------------


def test_the_adapter_reads_the_template_stores_partition() -> None:
    from shared.adapters.survey_questions import CURRENT_TEMPLATES
    from shared.adapters.template_store import DynamoTemplateStore

    assert DynamoTemplateStore.current_partition == CURRENT_TEMPLATES


def test_the_adapter_keeps_a_question_for_its_cache_seconds(config_table) -> None:
    from shared.adapters.survey_questions import DynamoSurveyQuestions
    from shared.adapters.template_store import DynamoTemplateStore

    db, table = config_table()
    now = [0.0]
    surveys = DynamoSurveyQuestions(db, table=table, cache_seconds=30, monotonic=lambda: now[0])
    templates = DynamoTemplateStore(db, table=table, cache_seconds=0)  # the admin function's
    assert surveys.question("nps-q4") is None
    templates.save(template(), AT, None)
    assert surveys.question("nps-q4") is None, "within cache_seconds the template is not read again"
    now[0] = 30.0
    assert surveys.question("nps-q4") == QUESTION
    templates.save(template(question="Changed?"), AT, 1)
    assert surveys.question("nps-q4") == QUESTION
    now[0] = 60.0
    assert surveys.question("nps-q4") == "Changed?"


class Failing:
    """A DynamoDB client whose reads fail (a denied role, a network down), counting them."""

    def __init__(self, error: Exception) -> None:
        self.error, self.calls = error, 0

    def get_item(self, **_: Any) -> Any:
        self.calls += 1
        raise self.error


def test_a_failed_read_raises_and_is_not_kept() -> None:
    from botocore.exceptions import ClientError

    from shared.adapters.survey_questions import DynamoSurveyQuestions
    from shared.errors import DependencyUnavailable

    throttled = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "GetItem")
    client = Failing(throttled)
    surveys = DynamoSurveyQuestions(client, table="t-config", cache_seconds=30, monotonic=lambda: 0.0)
    with pytest.raises(DependencyUnavailable):
        surveys.question("nps-q4")
    calls = client.calls
    assert calls > 1, "a throttle is retried"
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetItem")
    client.error = denied
    with pytest.raises(ClientError):
        surveys.question("nps-q4")
    assert client.calls == calls + 1, "a failure is not kept: the next page reads again, once"


def test_a_stored_body_without_a_valid_question_is_a_failed_read(config_table) -> None:
    from pydantic import ValidationError

    from shared.adapters.survey_questions import DynamoSurveyQuestions

    db, table = config_table()
    item = {"pk": {"S": "TEMPLATES"}, "sk": {"S": "nps-q4"}, "version": {"N": "1"}}
    db.put_item(TableName=table, Item={**item, "body": {"S": '{"survey": {"question": ""}}'}})
    with pytest.raises(ValidationError):
        DynamoSurveyQuestions(db, table=table, cache_seconds=0).question("nps-q4")
