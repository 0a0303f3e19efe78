"""Issue 15: the NPS answer form asks the survey template's own question (``SurveyQuestions``), escaped;
without one to ask (no port, no such template, a template without a survey, or a failed read) it asks the
standard question, and the answer is recorded all the same."""

from __future__ import annotations

from dataclasses import replace
from html import escape

import pytest

from shared.delivery.links import NPS_PATH
from shared.delivery.pages import NPS_QUESTION
from shared.delivery.templates import EmailTemplate, Survey
from shared.errors import DependencyUnavailable
from shared.usecases.preferences import LinkRequest, serve
from tests.fakes import MemorySurveyQuestions
from tests.unit.test_nps_surveys import answers, nps_token
from tests.unit.test_preferences import NOW
from tests.unit.test_preferences import World as LinksWorld

#: marketer text, with what HTML must not take as markup
QUESTION = 'Would you recommend <b>Shop & Co</b> to a "friend"?'


class World(LinksWorld):
    """The links' world with the contact store as profiles, and survey templates to read questions from."""

    def __init__(self) -> None:
        super().__init__()
        self.surveys = MemorySurveyQuestions()
        self.deps = replace(self.deps, contacts=self.store, surveys=self.surveys)

    def survey(self, survey_id: str = "nps-q2", question: str | None = QUESTION) -> None:
        template = EmailTemplate(
            id=survey_id,
            subject="A question",
            text="{{ survey.question }}",
            survey=Survey(question=question) if question is not None else None,
        )
        self.surveys.templates.save(template, NOW, None)

    def get(self, token: str):
        return serve(LinkRequest("GET", NPS_PATH, token), self.deps)

    def post(self, token: str, **form: str):
        return serve(LinkRequest("POST", NPS_PATH, token, form), self.deps)


@pytest.fixture
def world() -> World:
    world = World()
    world.known()
    return world


def legend(html: str) -> str:
    return html.split("<legend>", 1)[1].split("</legend>", 1)[0]


def test_the_form_asks_the_survey_templates_question_escaped(world) -> None:
    world.survey()
    page = world.get(nps_token(score=8, survey="nps-q2"))
    assert page.status == 200
    html = page.html()
    assert legend(html) == f"{escape(QUESTION)} (0: not at all likely, 10: extremely likely)"
    assert "<b>" not in html and "&lt;b&gt;Shop &amp; Co&lt;/b&gt;" in html, "marketer text is text"
    assert NPS_QUESTION not in html
    assert '<input type="radio" name="score" value="8" checked>' in html
    assert world.surveys.reads == ["nps-q2"], "the link's survey"
    assert answers(world) == []


def test_the_form_shown_again_after_an_error_asks_it_too(world) -> None:
    world.survey()
    token = nps_token(score=5, survey="nps-q2")
    bad_score = world.post(token, score="11", comment="kept")
    assert bad_score.status == 400 and 'id="score-error"' in bad_score.html()
    assert legend(bad_score.html()).startswith(escape(QUESTION))
    long_comment = world.post(token, score="5", comment="x" * 1001)
    assert long_comment.status == 400 and 'id="comment-error"' in long_comment.html()
    assert legend(long_comment.html()).startswith(escape(QUESTION))
    assert answers(world) == []


def test_each_survey_asks_its_own_question(world) -> None:
    world.survey("nps-q2", "Would you recommend our shop?")
    world.survey("nps-q3", "Would you recommend our app?")
    assert legend(world.get(nps_token(survey="nps-q3")).html()).startswith("Would you recommend our app?")
    assert legend(world.get(nps_token(survey="nps-q2")).html()).startswith("Would you recommend our shop?")


@pytest.mark.parametrize("stored", ["none", "no survey", "deleted"])
def test_without_a_survey_template_the_form_asks_the_standard_question(world, stored) -> None:
    if stored == "no survey":
        world.survey(question=None)
    elif stored == "deleted":
        world.survey()
        world.surveys.templates.remove("nps-q2", NOW, 1)
    page = world.get(nps_token(survey="nps-q2"))
    assert page.status == 200
    assert legend(page.html()).startswith(escape(NPS_QUESTION))
    assert "NpsQuestionsUnread" not in world.telemetry.counts, "no failure: nothing to ask"


def test_without_the_port_the_form_asks_the_standard_question(world) -> None:
    world.survey()
    world.deps = replace(world.deps, surveys=None)
    page = world.get(nps_token(survey="nps-q2"))
    assert page.status == 200 and legend(page.html()).startswith(escape(NPS_QUESTION))


@pytest.mark.parametrize(
    "failure",
    [
        DependencyUnavailable("the survey questions: throttled"),
        RuntimeError("AccessDenied"),
        ValueError("body"),
    ],
    ids=["unavailable", "denied", "invalid"],
)
def test_a_failed_read_asks_the_standard_question_and_the_answer_is_still_recorded(world, failure) -> None:
    world.survey()
    world.surveys.failing = failure
    token = nps_token(score=3, survey="nps-q2")
    page = world.get(token)
    assert page.status == 200, "never a failed page for the wording"
    assert legend(page.html()).startswith(escape(NPS_QUESTION))
    assert world.telemetry.counts["NpsQuestionsUnread"] == 1
    again = world.post(token, score="", comment="kept")
    assert again.status == 400 and legend(again.html()).startswith(escape(NPS_QUESTION))
    assert world.telemetry.counts["NpsQuestionsUnread"] == 2
    reads = list(world.surveys.reads)
    done = world.post(token, score="4", comment="Slow")
    assert (done.status, done.title) == (200, "Thank you")
    (event,) = answers(world)
    assert (event.properties["survey_id"], event.properties["score"]) == ("nps-q2", 4)
    assert world.surveys.reads == reads, "the thank-you page asks nothing: it reads no question"


def test_a_forged_link_reads_no_question(world) -> None:
    world.survey()
    forged = nps_token(survey="nps-q2")[:-3] + "abc"
    assert world.get(forged).status == 400
    assert world.surveys.reads == []
