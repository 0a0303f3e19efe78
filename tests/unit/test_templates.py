"""Email templates: what a marketer may write, how it renders, and what the sandbox refuses."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest

from shared.delivery.ports import RenderFailed
from shared.delivery.templates import (
    CONSENT_CONFIRMATION,
    MAX_OUTPUT_CHARS,
    EmailTemplate,
    StoredTemplate,
    TemplateRendering,
    effective,
    parse_template,
    stored_template,
    template_context,
)
from shared.errors import InvalidRequest
from tests.conftest import ROOT
from tests.fakes import MemoryTemplateRepository

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def context(traits: dict | None = None, **values) -> dict:
    return template_context(
        "user_id:ann",
        {"first_name": "Ann", **(traits or {})},
        ["kids", "newsletter"],
        "customer",
        {"age": 7, "coupon": {"code": "BDAY-K3X9Q", "value": 15.0, "unit": "percent"}, **values},
        unsubscribe_url="https://links.example/unsubscribe?t=abc",
        confirm_url=None,
        postal_address="1 Market Street, Springfield",
    )


def rendering(**parts) -> tuple[TemplateRendering, str]:
    templates = MemoryTemplateRepository()
    fields = {"subject": "Hello", "text": "text", **parts}
    templates.save(EmailTemplate(id="t", **fields), AT, None)
    return TemplateRendering(templates), "t"


def render(text: str, values: dict | None = None, traits: dict | None = None) -> str:
    renderer, template_id = rendering(text=text)
    return renderer.render(template_id, context(traits, **(values or {}))).text


def refused(text: str, part: str = "text") -> str:
    renderer, template_id = rendering(**{part: text})
    with pytest.raises(RenderFailed) as failed:
        renderer.render(template_id, context())
    return failed.value.reason


def test_a_template_shows_traits_the_childs_age_and_a_coupon() -> None:
    renderer, template_id = rendering(
        subject="{{ contact.traits.first_name }}, {{ age }} already!",
        text=(
            "Hello {{ contact.traits.first_name }},\n"
            "{% if age >= 7 %}big kids' books{% endif %}: {{ coupon.value }}% off with {{ coupon.code }}.\n"
            "{{ unsubscribe_url }} / {{ postal_address }}\n"
        ),
        html="<p>{{ coupon.value }}% off: <b>{{ coupon.code }}</b></p>{% for tag in contact.tags %}[{{ tag }}]{% endfor %}",
    )
    email = renderer.render(template_id, context())
    assert email.subject == "Ann, 7 already!"
    assert email.text == (
        "Hello Ann,\nbig kids' books: 15% off with BDAY-K3X9Q.\n"
        "https://links.example/unsubscribe?t=abc / 1 Market Street, Springfield\n"
    )
    assert email.html == "<p>15% off: <b>BDAY-K3X9Q</b></p>[kids][newsletter]"


def test_the_context_holds_the_contact_the_values_and_the_links() -> None:
    built = context()
    assert built["contact"] == {
        "id": "user_id:ann",
        "traits": {"first_name": "Ann"},
        "tags": ["kids", "newsletter"],
        "stage": "customer",
    }
    assert built["age"] == built["values"]["age"] == 7
    assert built["recommendations"] == [] and built["confirm_url"] is None
    # a value named like the context's own names stays under ``values`` only
    clash = template_context(
        "c",
        {},
        [],
        None,
        {"contact": {"id": "other"}},
        unsubscribe_url=None,
        confirm_url=None,
        postal_address="",
    )
    assert clash["contact"]["id"] == "c" and clash["values"]["contact"] == {"id": "other"}


def test_a_name_without_a_value_renders_empty_and_default_gives_a_fallback() -> None:
    assert render("[{{ nickname }}][{{ contact.traits.missing.deeper }}][{{ none }}]") == "[][][]"
    assert render("Hi {{ contact.traits.nickname | default('friend') }}") == "Hi friend"
    assert render("{{ 'yes' if contact.traits.vip else 'no' }}") == "no"


def test_values_are_escaped_in_html_but_not_in_the_text_or_the_subject() -> None:
    renderer, template_id = rendering(
        subject="{{ contact.traits.first_name }}",
        text="{{ contact.traits.first_name }}",
        html="<p>{{ contact.traits.first_name }}</p>",
    )
    email = renderer.render(template_id, context({"first_name": "<script>alert(1)</script> & co"}))
    assert email.html == "<p>&lt;script&gt;alert(1)&lt;/script&gt; &amp; co</p>"
    assert email.text == "<script>alert(1)</script> & co"
    assert email.subject == "<script>alert(1)</script> & co"


def test_the_subject_is_one_line_whatever_a_trait_holds() -> None:
    renderer, template_id = rendering(subject="Hi {{ contact.traits.first_name }}")
    email = renderer.render(template_id, context({"first_name": "Ann\r\nBcc: all@example.com"}))
    assert email.subject == "Hi Ann Bcc: all@example.com"


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "'__class__' is not available"),
        ("{{ cycler.__init__.__globals__ }}", "'__init__' is not available"),
        ("{{ self.__init__ }}", "'__init__' is not available"),
        ("{{ contact.__class__ }}", "'__class__' is not available"),
        ("{{ contact['__class__'] }}", "'__class__' is not available"),
        ("{{ contact.traits | attr('__class__') }}", "'__class__' is not available"),
        ("{{ lipsum.__globals__ }}", "'__globals__' is not available"),
        ("{{ lipsum() }}", "'lipsum' is undefined"),
        ("{{ '{0.__class__}'.format(contact) }}", "'__class__' is not available"),
        ("{% set x = contact.traits.update({'vip': true}) %}", "'update' of a dict is not available"),
        ("{{ contact.tags.append('x') }}", "'append' of a list is not available"),
        ("{% for i in range(10**9) %}x{% endfor %}", "range: over 100,000 numbers"),
        ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "too much work"),
        (
            "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(60) }}",
            "too much work",
        ),
        ("{% macro f(s) %}{{ f(s ~ s) }}{% endmacro %}{{ f('x') }}", "too much work"),
        ("{{ 'x' * 10**9 }}", "repeating a value this often"),
        ("{{ 2 ** 100000 }}", "an exponent over 1000"),
        ("{{ 'x' | center(10**9) }}", "center: a number over 10000"),
        ("{{ 'x'.ljust(10**9) }}", "ljust: a width over 10000"),
        ("{{ '%0999999999d' % 1 }}", "a format width over 10000"),
        ("{{ '{:>999999999}'.format(1) }}", "a format width over 10000"),
        (
            (
                "{% set s = 'xxxxxxxxxx' %}{% set s = s.replace('x', s) %}{% set s = s.replace('x', s) %}"
                "{% set s = s.replace('x', s) %}{% set s = s.replace('x', s) %}"
            ),
            "replace: the result would be over",
        ),
        ("{% for i in range(100000) %}{{ contact.traits.first_name * 100 }}{% endfor %}", "over 400 KB"),
        ("{{ 1 + 'a' }}", "TypeError"),
    ],
)
def test_the_sandbox_refuses_escapes_and_runaway_work(source: str, reason: str) -> None:
    assert reason in refused(source)


def test_huge_output_is_refused_not_sent() -> None:
    reason = refused("{% for i in range(20000) %}" + "x" * 30 + "{% endfor %}", part="html")
    assert reason.startswith("html") and f"over {MAX_OUTPUT_CHARS // 1024} KB" in reason


def test_a_failure_names_the_part_and_line_but_not_the_values() -> None:
    reason = refused("line one\n{{ contact.traits.first_name | int / 0 }}")
    assert reason == "text: line 2: ZeroDivisionError"
    assert "Ann" not in refused("{{ contact.traits.first_name + 1 }}")


def test_templates_get_only_the_globals_and_filters_allowed() -> None:
    assert (
        render(
            "{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}"
        )
        == "6"
    )
    assert render("{{ dict(a=1).a }} {{ '{:,}'.format(1234567) }} {{ 'ann' | title }}") == "1 1,234,567 Ann"
    for source in ("{{ x | safe }}", "{{ 'ab' | random }}"):
        with pytest.raises(InvalidRequest, match="No filter named"):
            parse_template("t", {"subject": "s", "text": source})


def test_unknown_template_is_a_render_failure() -> None:
    renderer = TemplateRendering(MemoryTemplateRepository())
    with pytest.raises(RenderFailed, match="unknown template nope"):
        renderer.render("nope", context())


def test_the_consent_confirmation_is_built_in_and_a_stored_one_replaces_it() -> None:
    templates = MemoryTemplateRepository()
    renderer = TemplateRendering(templates)
    values = template_context(
        "user_id:ann",
        {"first_name": "Ann"},
        [],
        None,
        {},
        unsubscribe_url=None,
        confirm_url="https://links.example/consent/confirm?t=xyz",
        postal_address="1 Market Street",
    )
    email = renderer.render(CONSENT_CONFIRMATION, values)
    assert email.subject == "Please confirm your subscription"
    assert "Hello Ann," in email.text and "https://links.example/consent/confirm?t=xyz" in email.text
    assert 'href="https://links.example/consent/confirm?t=xyz"' in email.html
    assert "1 Market Street" in email.text
    templates.save(
        EmailTemplate(
            id=CONSENT_CONFIRMATION,
            subject="Confirm, {{ contact.traits.first_name }}",
            text="{{ confirm_url }}",
        ),
        AT,
        1,
        1,
    )
    assert renderer.render(CONSENT_CONFIRMATION, values).subject == "Confirm, Ann"
    assert [t.origin for t in effective(templates.stored())] == ["stored"]


def test_compiled_templates_are_kept_per_version() -> None:
    templates = MemoryTemplateRepository()
    renderer = TemplateRendering(templates)
    first = templates.save(EmailTemplate(id="t", subject="one", text="x"), AT, None)
    assert renderer.render("t", context()).subject == "one"
    assert renderer.compiled(first) is renderer.compiled(first)
    templates.save(EmailTemplate(id="t", subject="two", text="x"), AT, 1)
    assert renderer.render("t", context()).subject == "two"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"subject": "Hi", "html": "<p>\n\n{{ name }</p>"}, "html: line 3: unexpected '}'"),
        ({"subject": "Hi {% if x %}", "text": "t"}, "subject: line 1: Unexpected end of template"),
        ({"subject": "Hi", "text": "{% include 'other.html' %}"}, "text: line 1: a template cannot include"),
        (
            {"subject": "Hi", "text": "{% for x in y recursive %}{% endfor %}"},
            "text: line 1: recursive loops",
        ),
        ({"subject": "Hi"}, "template: give text, html or both"),
        ({"text": "t"}, "subject: Field required"),
        ({"subject": "", "text": "t"}, "subject: String should have at least 1 character"),
        ({"subject": "Hi", "text": "t", "colour": "blue"}, "colour: Extra inputs are not permitted"),
        ({"id": "other", "subject": "Hi", "text": "t"}, "id: 'other' does not match the path ('welcome')"),
        ({"subject": "Hi", "text": "x" * 70_000}, "template: over 64 KB"),
        ([], "the template must be a JSON object"),
    ],
)
def test_a_bad_template_is_a_400_naming_the_field(body, message: str) -> None:
    with pytest.raises(InvalidRequest) as invalid:
        parse_template("welcome", body)
    assert invalid.value.message.startswith(message), invalid.value.message
    assert invalid.value.code == "invalid_template"


def test_what_a_get_shows_can_be_put_back() -> None:
    template = parse_template("welcome", {"subject": "Hi", "text": "t"})
    shown = stored_template(template, 3, AT).model_dump(mode="json")
    assert parse_template("welcome", shown) == template
    with pytest.raises(InvalidRequest):
        parse_template("Bad Id", {"subject": "Hi", "text": "t"})
    assert StoredTemplate.model_validate(shown).version == 3


def test_the_tracking_hot_path_does_not_import_the_template_engine() -> None:
    """Cold starts of the tracking and aggregation functions must not pay for Jinja."""
    probe = (
        "import sys, functions.tracking.handler, functions.aggregation.handler, functions.merge.handler;"
        "print(sorted(m for m in sys.modules if m == 'jinja2' or m == 'shared.delivery.templates'))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "[]"
