"""Issue 15, end to end on the local stack: an NPS survey email with a signed link per score; following a
link only shows the form; posting it records the answer once (the contact's traits, the scoring rule on
``NPS Answered``, ``NpsAnswered`` on the bus), and a detractor's answer starts the service-recovery
automation; a second answer and a forged link change nothing. A server key's ``NPS Submitted`` is an
answer too; a browser key's is not."""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import urlencode

from tests.conftest import ROOT
from tests.integration.test_local_delivery import SERVER, call, daytime, identify, outbox, request_delivery

EXAMPLES = ROOT / "examples" / "nps"
BROWSER = "Basic " + base64.b64encode(b"local-browser-key:").decode()
FORM = {"content-type": "application/x-www-form-urlencoded"}


def example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def card(stack: Any) -> dict[str, Any]:
    status, body = call(stack, "GET", "/admin/contacts/user_id:ann")
    assert status == 200, body
    return body


def recovery_emails(stack: Any) -> list[dict[str, Any]]:
    status, page = call(stack, "GET", "/_local/outbox")
    assert status == 200
    return [
        m
        for m in page["messages"]
        if m.get("automation") == "nps-service-recovery" and m["channel"] == "email"
    ]


def test_a_detractor_answers_by_link_once_and_service_recovery_starts(local_stack) -> None:
    stack = local_stack
    daytime(stack)
    identify(stack, "ann", email="ann@example.com", email_opt_in=True, first_name="Ann")
    assert call(stack, "PUT", "/admin/templates/nps-survey", example("nps-survey"))[0] == 200
    recovery = {k: v for k, v in example("service-recovery").items() if k != "steps"}
    recovery["steps"] = [s for s in example("service-recovery")["steps"] if s["action"] != "webhook"]
    assert call(stack, "PUT", "/admin/automations/nps-service-recovery", recovery)[0] == 200
    assert call(stack, "PUT", "/admin/rules/nps.detractor", example("detractor-points"))[0] == 200
    before = card(stack)

    survey = "user_id:ann#nps-q4#o1#0"
    request_delivery(stack, survey, template="nps-survey")
    sent = outbox(stack, survey)
    assert sent["status"] == "sent", sent
    links = re.findall(r"^(\d+): (\S+)$", sent["text"], re.MULTILINE)
    assert [int(score) for score, _ in links] == list(range(11))
    path = dict(links)["3"].removeprefix(stack.url)
    assert path.startswith("/nps?t=")

    # a mail scanner follows the link: the form, the score checked, nothing recorded
    status, page = call(stack, "GET", path, headers={"content-type": "text/html"})
    assert status == 200 and '<input type="radio" name="score" value="3" checked>' in page
    stack.drain_streams()
    assert "nps_score" not in card(stack)["traits"]

    # the contact changes the score to 2, adds a comment and sends it
    body = urlencode({"score": "2", "comment": "Late again"}).encode()
    status, page = call(stack, "POST", path, raw=body, headers=FORM)
    assert status == 200 and "Thank you" in page
    stack.drain_streams()
    answered = card(stack)
    traits = answered["traits"]
    assert (traits["nps_category"], traits["nps_score"], traits["nps_comment"]) == (
        "detractor",
        2,
        "Late again",
    )
    assert "nps-detractor" in answered["tags"]
    assert answered["scores"]["global"]["lifetime"] == before["scores"]["global"]["lifetime"] - 10
    (email,) = recovery_emails(stack)
    assert email["status"] == "sent" and "(2 out of 10)" in email["text"]

    # answering again (another score's link) and a forged link: the same pages, nothing changes
    again = dict(links)["10"].removeprefix(stack.url)
    status, page = call(stack, "POST", again, raw=urlencode({"score": "10"}).encode(), headers=FORM)
    assert status == 200 and "Thank you" in page
    forged = path.replace("t=", "t=x", 1)
    assert call(stack, "POST", forged, raw=body, headers=FORM)[0] == 400
    stack.drain_streams()
    assert card(stack)["traits"]["nps_score"] == 2
    assert card(stack)["scores"]["global"]["lifetime"] == answered["scores"]["global"]["lifetime"]
    assert len(recovery_emails(stack)) == 1


def test_a_server_keys_nps_submitted_is_an_answer_and_a_browser_keys_is_not(local_stack) -> None:
    stack = local_stack
    identify(stack, "ann", first_name="Ann")
    call_ = {"userId": "ann", "event": "NPS Submitted", "properties": {"survey_id": "in-app", "score": 9}}
    status, _ = call(stack, "POST", "/v1/track", {**call_, "messageId": "b1"}, {"authorization": BROWSER})
    assert status == 200
    stack.drain_streams()
    assert "nps_score" not in card(stack)["traits"], "a browser key's call is no answer"
    status, _ = call(stack, "POST", "/v1/track", {**call_, "messageId": "s1"}, {"authorization": SERVER})
    assert status == 200
    stack.drain_streams()
    traits = card(stack)["traits"]
    assert (traits["nps_category"], traits["nps_score"]) == ("promoter", 9)
    status, events = call(stack, "GET", "/admin/contacts/user_id:ann/events?limit=50")
    assert json.dumps(events).count('"NPS Answered"') == 1


def test_a_survey_template_is_stored_and_previewed_with_its_answer_links(aws) -> None:
    from tests.integration.conftest import call_admin

    route, ids = "/admin/templates/{templateId}", {"templateId": "nps-survey"}
    status, stored, _ = call_admin("PUT", route, ids, example("nps-survey"))
    assert status == 200 and stored["survey"] == example("nps-survey")["survey"]
    status, preview, _ = call_admin("POST", route + "/preview", ids, {})
    assert status == 200, preview
    links = preview["context"]["survey"]["links"]
    assert len(links) == 11 and links[7].endswith("/nps?t=preview-7")
    assert f"7: {links[7]}" in preview["text"] and f'href="{links[10]}"' in preview["html"]
    status, refused, _ = call_admin("PUT", route, ids, {**example("nps-survey"), "survey": {"question": ""}})
    assert (status, refused["code"], refused["field"]) == (400, "invalid_template", "survey.question")


def test_the_answer_page_asks_the_survey_templates_own_question(local_stack) -> None:
    """The email and its answer page ask the marketer's wording (escaped on the page); the answer is
    recorded as ever."""
    from html import escape

    from shared.delivery.pages import NPS_QUESTION

    stack = local_stack
    daytime(stack)
    identify(stack, "ann", email="ann@example.com", email_opt_in=True, first_name="Ann")
    question = "How likely are you to recommend Shop & Co's <delivery> to a friend?"
    survey = {**example("nps-survey"), "id": "nps-delivery", "survey": {"question": question}}
    assert call(stack, "PUT", "/admin/templates/nps-delivery", survey)[0] == 200

    sent_id = "user_id:ann#nps-q4#o1#0"
    request_delivery(stack, sent_id, template="nps-delivery")
    sent = outbox(stack, sent_id)
    assert sent["status"] == "sent" and question in sent["text"], sent
    path = dict(re.findall(r"^(\d+): (\S+)$", sent["text"], re.MULTILINE))["9"].removeprefix(stack.url)

    status, page = call(stack, "GET", path, headers={"content-type": "text/html"})
    assert status == 200 and '<input type="radio" name="score" value="9" checked>' in page
    assert f"<legend>{escape(question)} " in page and NPS_QUESTION not in page
    assert "<delivery>" not in page

    body = urlencode({"score": "9"}).encode()
    status, page = call(stack, "POST", path, raw=body, headers=FORM)
    assert status == 200 and "Thank you" in page
    stack.drain_streams()
    traits = card(stack)["traits"]
    assert (traits["nps_category"], traits["nps_score"]) == ("promoter", 9)
