"""Issue 15: NPS surveys: a survey template, its signed answer links, and the answer page (a GET shows
the form and records nothing; the POST records the answer once; a forged or expired link records nothing)."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest

from shared.delivery.links import NPS_PATH, PREFERENCE_ROUTES
from shared.delivery.pages import CONTENT_SECURITY_POLICY
from shared.delivery.surveys import answer_link
from shared.delivery.templates import EmailTemplate, parse_template
from shared.delivery.tokens import ExpiredToken, InvalidToken, LinkClaims, sign, verify
from shared.errors import InvalidRequest
from shared.nps.answers import NPS_SUBMITTED
from shared.tracking.proofs import Provenance
from shared.usecases.preferences import LinkRequest, serve
from tests.conftest import ROOT
from tests.unit.test_delivery_use_case import NOON, SECRET, World, request
from tests.unit.test_preferences import ANN, NOW
from tests.unit.test_preferences import World as LinksWorld

SURVEY = json.loads((ROOT / "examples/nps/nps-survey.json").read_text())


def nps_token(score: int = 3, survey: str = "nps-q2", contact: str = "user_id:ann", days: int = 60) -> str:
    claims = LinkClaims(
        "nps", contact, "email", NOW + timedelta(days=days), issued=NOW, survey=survey, score=score
    )
    return sign(SECRET, claims)


# --- the token and the template ----------------------------------------------------------------------


def test_an_answer_token_carries_the_survey_and_the_score_and_serves_nothing_else() -> None:
    token = nps_token(score=9)
    claims = verify(SECRET, token, "nps", NOW)
    assert (claims.survey, claims.score, claims.contact_id) == ("nps-q2", 9, "user_id:ann")
    with pytest.raises(InvalidToken):
        verify(SECRET, token, "unsubscribe", NOW)  # not an unsubscribe link
    with pytest.raises(InvalidToken):
        verify(b"another secret", token, "nps", NOW)
    with pytest.raises(ExpiredToken):
        verify(SECRET, token, "nps", NOW + timedelta(days=61))
    # an unsubscribe token has no survey: the old format is unchanged
    plain = verify(
        SECRET,
        sign(SECRET, LinkClaims("unsubscribe", "user_id:ann", "email", NOW + timedelta(1))),
        "unsubscribe",
        NOW,
    )
    assert (plain.survey, plain.score) == (None, None)


def test_a_survey_template_is_a_template_with_a_question() -> None:
    template = parse_template("nps-survey", SURVEY)
    assert template.survey is not None and template.survey.question.startswith("How likely")
    with pytest.raises(InvalidRequest) as refused:
        parse_template("nps-survey", {**SURVEY, "survey": {"question": ""}})
    assert refused.value.field == "survey.question"
    with pytest.raises(InvalidRequest):
        parse_template("nps-survey", {**SURVEY, "survey": {"question": "?", "scale": 5}})
    assert parse_template("plain", {"subject": "Hi", "text": "x"}).survey is None


def test_the_answer_routes_are_public_preference_routes() -> None:
    assert f"GET {NPS_PATH}" in PREFERENCE_ROUTES and f"POST {NPS_PATH}" in PREFERENCE_ROUTES


def test_a_survey_email_carries_one_signed_link_per_score() -> None:
    world = World()
    world.ann()
    world.templates.save(EmailTemplate.model_validate(SURVEY), NOON, None)
    sent = world.deliver(request(template="nps-survey", subject=None, text=None, html=None))
    assert sent.status == "sent"
    (context,) = world.contexts
    links = context["survey"]["links"]
    assert len(links) == 11 and context["survey"]["id"] == "nps-survey"
    assert [s["score"] for s in context["survey"]["scores"]] == list(range(11))
    for score, url in enumerate(links):
        parsed = urlparse(url)
        assert url.startswith("https://api.shop.example/nps?t=") and parsed.path == NPS_PATH
        claims = verify(SECRET, parse_qs(parsed.query)["t"][0], "nps", NOON)
        assert (claims.survey, claims.score, claims.contact_id) == ("nps-survey", score, "user_id:ann")
        assert claims.expires == NOON + timedelta(days=60)
    (email,) = world.mailer.sent
    assert email.html is not None and all(f'href="{url}"' in email.html for url in links)
    assert email.text is not None and f"10: {links[10]}" in email.text


def test_a_template_that_is_no_survey_has_no_links() -> None:
    world = World()
    world.ann()
    world.templates.save(EmailTemplate(id="hello", subject="Hi", text="x{{ survey }}y"), NOON, None)
    world.deliver(request(template="hello", subject=None, text=None, html=None))
    (context,) = world.contexts
    assert context["survey"] is None
    assert world.mailer.sent[0].text.startswith("xy")


def test_an_answer_link_is_a_url_with_its_token() -> None:
    url = answer_link(
        SECRET,
        "https://x.example/",
        survey="s",
        contact_id="user_id:ann",
        channel="email",
        score=0,
        issued=NOW,
        expires=NOW + timedelta(days=1),
    )
    assert url.startswith("https://x.example/nps?t=")
    assert verify(SECRET, url.split("t=", 1)[1], "nps", NOW).score == 0


# --- the answer page ---------------------------------------------------------------------------------


@pytest.fixture
def links() -> LinksWorld:
    world = LinksWorld()
    world.deps = world.deps.__class__(
        **{**{f: getattr(world.deps, f) for f in world.deps.__dataclass_fields__}, "contacts": world.store}
    )
    return world


def answers(world: LinksWorld) -> list:
    return [i.event for i in world.store.log.get(ANN, {}).values() if i.event.event == NPS_SUBMITTED]


def post(world: LinksWorld, token: str, **form: str):
    return serve(LinkRequest("POST", NPS_PATH, token, form), world.deps)


def test_a_get_shows_the_form_with_the_links_score_and_records_nothing(links) -> None:
    links.known()
    page = serve(LinkRequest("GET", NPS_PATH, nps_token(score=7)), links.deps)
    assert page.status == 200
    html = page.html()
    assert '<input type="radio" name="score" value="7" checked>' in html
    assert html.count(" checked") == 1 and html.count('name="score"') == 11
    assert '<label for="comment">' in html and '<textarea id="comment" name="comment"' in html
    assert '<form method="post" action="?t=' in html and "<script" not in html and "ann" not in html
    assert page.headers()["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert answers(links) == []


def test_a_post_records_the_answer_once_and_a_second_one_changes_nothing(links) -> None:
    links.known()
    token = nps_token(score=3)
    page = post(links, token, score="4", comment="  Slow delivery  ")
    assert (page.status, page.title) == (200, "Thank you")
    (event,) = answers(links)
    assert event.properties == {
        "survey_id": "nps-q2",
        "score": 4,
        "source": "link",
        "comment": "Slow delivery",
    }
    assert event.provenance is Provenance.SERVER and event.call == "track"
    # the same link, or another score's, again: the same page, still one answer (the first wins)
    again = post(links, nps_token(score=10), score="10")
    assert (again.status, again.title) == (200, "Thank you")
    (still,) = answers(links)
    assert still.properties["score"] == 4
    assert (
        links.telemetry.counts["NpsLinkAnswers"] == 1
        and links.telemetry.counts["NpsLinkAnswersRepeated"] == 1
    )


def test_a_forged_or_expired_link_records_nothing(links) -> None:
    links.known()
    forged = nps_token(score=0)[:-3] + "abc"
    assert post(links, forged, score="0").status == 400
    assert serve(LinkRequest("GET", NPS_PATH, forged), links.deps).status == 400
    other_secret = sign(
        b"not ours", LinkClaims("nps", "user_id:ann", "email", NOW + timedelta(days=1), survey="s", score=0)
    )
    assert post(links, other_secret, score="0").status == 400
    unsubscribe = sign(SECRET, LinkClaims("unsubscribe", "user_id:ann", "email", NOW + timedelta(days=1)))
    assert post(links, unsubscribe, score="0").status == 400, "an unsubscribe token answers no survey"
    assert post(links, nps_token(days=-1), score="0").status == 410
    assert post(links, "", score="0").status == 400
    assert answers(links) == []


def test_a_bad_score_or_a_long_comment_shows_the_form_again(links) -> None:
    links.known()
    token = nps_token(score=5)
    for score in ("11", "-1", "", "five", "7.5"):
        page = post(links, token, score=score, comment="kept")
        assert page.status == 400
        assert 'id="score-error"' in page.html() and ">kept</textarea>" in page.html()
    page = post(links, token, score="5", comment="x" * 1001)
    assert page.status == 400 and 'id="comment-error"' in page.html()
    assert answers(links) == []


def test_a_contact_that_is_gone_gets_the_page_and_nothing_is_written(links) -> None:
    page = post(links, nps_token(), score="9")
    assert (page.status, page.title) == (200, "Thank you")
    assert links.store.log == {}


def test_the_handler_reads_the_forms_fields_plain_or_base64_and_nothing_else() -> None:
    import base64

    from functions.preferences.handler import form_fields
    from shared.http import HttpRequest

    def request(
        body: str | None, content_type: str = "application/x-www-form-urlencoded", **kw
    ) -> HttpRequest:
        return HttpRequest(
            method=kw.get("method", "POST"),
            path=NPS_PATH,
            route=f"POST {NPS_PATH}",
            headers={"content-type": content_type},
            body=body,
            is_base64=kw.get("is_base64", False),
        )

    assert form_fields(request("score=7&comment=Caf%C3%A9+ok")) == {"score": "7", "comment": "Café ok"}
    encoded = base64.b64encode(b"score=2&comment=a%26b").decode()
    assert form_fields(request(encoded, is_base64=True)) == {"score": "2", "comment": "a&b"}
    assert form_fields(request("score=7", "application/x-www-form-urlencoded; charset=UTF-8")) == {
        "score": "7"
    }
    assert form_fields(request('{"score": 7}', "application/json")) == {}
    assert form_fields(request("score=7", method="GET")) == {}
    assert form_fields(request("not base64!", is_base64=True)) == {}
    assert form_fields(request("&".join(f"f{n}=1" for n in range(50)))) == {}, "too many fields"


def test_a_score_of_other_digits_shows_the_form_again(links) -> None:
    """``"²".isdigit()`` is true, but ``int("²")`` raises: superscripts, other scripts' digits and padding
    are no score (a 400 page, never a 500)."""
    links.known()
    token = nps_token(score=5)
    for score in ("²", "٣", "১০", "05", "+5", "5\n5"):
        page = post(links, token, score=score)
        assert page.status == 400 and 'id="score-error"' in page.html(), score
    assert answers(links) == []
    assert post(links, token, score=" 10 ").status == 200, "surrounding spaces are trimmed"
