"""The templates admin API through the real admin handler on moto: validation naming the part and line,
versions, If-Match, history, deletion with its tombstone, the built-in consent confirmation, and a
preview for a contact."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import NOW
from tests.integration.conftest import call_admin

BIRTHDAY: dict[str, Any] = {
    "description": "A child's birthday, with a coupon",
    "subject": "{{ contact.traits.first_name | default('Hello') }}, {{ age }} candles!",
    "text": "Happy birthday! {{ coupon.value }}% off with {{ coupon.code }}.\n{{ unsubscribe_url }}\n",
    "html": "<p>Hi {{ contact.traits.first_name }}: {{ coupon.value }}% off, code <b>{{ coupon.code }}</b></p>",
}


@pytest.fixture
def templates_api(aws):
    """templates_api("PUT", "birthday", body, headers); templates_api("POST", "birthday", body, action="preview")."""

    def _call(
        method: str,
        template_id: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        action: str | None = None,
    ):
        if template_id is None:
            return call_admin(method, "/admin/templates", None, body, headers)
        route_path = "/admin/templates/{templateId}" + (f"/{action}" if action else "")
        return call_admin(method, route_path, {"templateId": template_id}, body, headers)

    return _call


def test_a_template_is_stored_as_version_one_and_listed_with_the_built_in_ones(templates_api) -> None:
    status, stored, _ = templates_api("PUT", "birthday", BIRTHDAY)
    assert status == 200, stored
    assert (stored["id"], stored["version"], stored["origin"]) == ("birthday", 1, "stored")
    assert stored["updated_at"].startswith(NOW.date().isoformat())
    status, listing, _ = templates_api("GET")
    assert status == 200
    assert [(t["id"], t["origin"]) for t in listing["templates"]] == [
        ("birthday", "stored"),
        ("consent-confirmation", "built_in"),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**BIRTHDAY, "html": "<p>\n{% if age %}\n{{ age }</p>"}, "html: line 3: unexpected '}'"),
        ({**BIRTHDAY, "text": "{% for x in y %}"}, "text: line 1: Unexpected end of template"),
        ({**BIRTHDAY, "subject": "{{ x | safe }}"}, "subject: line 1: No filter named 'safe'"),
        ({"subject": "Hi"}, "template: give text, html or both"),
        ({**BIRTHDAY, "colour": "blue"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_an_invalid_template_is_a_400_naming_the_part_and_line(templates_api, body, message) -> None:
    status, error, _ = templates_api("PUT", "birthday", body)
    assert status == 400 and error["code"] == "invalid_template"
    assert error["message"].startswith(message), error["message"]
    assert templates_api("GET", "birthday")[0] == 404, "nothing was stored"


def test_if_match_makes_a_change_conditional_and_the_history_keeps_every_version(templates_api) -> None:
    assert templates_api("PUT", "birthday", BIRTHDAY, {"if-match": "1"})[0] == 409, "none stored yet"
    assert templates_api("PUT", "birthday", BIRTHDAY, {"if-match": "0"})[1]["version"] == 1
    status, second, _ = templates_api("PUT", "birthday", {**BIRTHDAY, "subject": "Second"}, {"if-match": "1"})
    assert status == 200 and second["version"] == 2
    status, body, _ = templates_api("PUT", "birthday", {**BIRTHDAY, "subject": "Lost"}, {"if-match": "1"})
    assert status == 409 and body["code"] == "conflict"
    assert templates_api("DELETE", "birthday", headers={"if-match": "1"})[0] == 409
    status, detail, _ = templates_api("GET", "birthday")
    assert detail["template"]["subject"] == "Second"
    assert [(v["version"], v["subject"]) for v in detail["history"]] == [
        (2, "Second"),
        (1, BIRTHDAY["subject"]),
    ]
    assert templates_api("PUT", "birthday", detail["template"], {"if-match": "2"})[1]["version"] == 3, (
        "what a GET shows can be PUT back"
    )


def test_a_deletion_leaves_a_tombstone_and_a_built_in_template_applies_again(templates_api) -> None:
    templates_api("PUT", "birthday", BIRTHDAY)
    status, deleted, _ = templates_api("DELETE", "birthday", headers={"if-match": "1"})
    assert status == 200 and deleted == {"deleted": "birthday", "version": 1, "built_in_applies": False}
    assert templates_api("GET", "birthday")[0] == 404
    assert templates_api("DELETE", "birthday")[0] == 404

    built_in = templates_api("GET", "consent-confirmation")[1]["template"]
    assert (built_in["origin"], built_in["version"]) == ("built_in", 1)
    assert templates_api("PUT", "consent-confirmation", {**BIRTHDAY, "text": "{{ confirm_url }}"})[0] == 200
    assert templates_api("GET", "consent-confirmation")[1]["template"]["version"] == 2
    status, deleted, _ = templates_api("DELETE", "consent-confirmation")
    assert deleted["built_in_applies"] is True
    assert templates_api("GET", "consent-confirmation")[1]["template"]["origin"] == "built_in"


def test_a_preview_renders_for_a_contact_with_its_traits_and_the_values_given(send, templates_api) -> None:
    send("/v1/identify", {"userId": "ann", "traits": {"first_name": "<Ann>", "email": "ann@example.com"}})
    templates_api("PUT", "birthday", BIRTHDAY)
    values = {"age": 7, "coupon": {"code": "BDAY-K3X9Q", "value": 15}}
    status, preview, _ = templates_api(
        "POST", "birthday", {"contact_id": "user_id:ann", "values": values}, action="preview"
    )
    assert status == 200, preview
    assert (preview["template"], preview["version"], preview["contact_id"]) == ("birthday", 1, "user_id:ann")
    assert preview["subject"] == "<Ann>, 7 candles!"
    assert preview["text"] == (
        "Happy birthday! 15% off with BDAY-K3X9Q.\nhttps://preview.invalid/unsubscribe?t=preview\n"
    )
    assert preview["html"] == "<p>Hi &lt;Ann&gt;: 15% off, code <b>BDAY-K3X9Q</b></p>"
    assert preview["context"]["contact"]["traits"]["email"] == "ann@example.com"


def test_a_preview_without_a_contact_uses_a_sample_one(templates_api) -> None:
    templates_api("PUT", "birthday", BIRTHDAY)
    status, preview, _ = templates_api("POST", "birthday", None, action="preview")
    assert status == 200 and preview["subject"] == "Ann, 7 candles!"
    status, preview, _ = templates_api("POST", "consent-confirmation", {}, action="preview")
    assert status == 200 and "https://preview.invalid/consent/confirm?t=preview" in preview["text"]


def test_a_preview_for_an_unknown_contact_or_template_is_a_404_and_a_failing_one_a_400(templates_api) -> None:
    templates_api("PUT", "birthday", BIRTHDAY)
    assert templates_api("POST", "birthday", {"contact_id": "user_id:nobody"}, action="preview")[0] == 404
    assert templates_api("POST", "nothing", {}, action="preview")[0] == 404
    assert templates_api("POST", "birthday", {"colour": "blue"}, action="preview")[0] == 400
    templates_api("PUT", "escape", {"subject": "x", "text": "{{ contact.__class__ }}"})
    status, error, _ = templates_api("POST", "escape", {}, action="preview")
    assert status == 400 and error["code"] == "template_render_failed"
    assert error["message"] == "text: line 1: '__class__' is not available to templates"
