"""The admin API's 400s name the field (issue 14): ``field`` is the dotted path in the request body as the
client sent it (``steps.0.points``, ``filter.all.1.colour``), or a query parameter's name, so the console
shows the message next to that field. Through the real admin handler on moto."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import call_admin

KITES = {"behaviour": "product_viewed", "points": 4, "match": {"product": "kite-3"}, "tag": "kites"}
NURTURE: dict[str, Any] = {
    "name": "Nurture new leads",
    "trigger": {"type": "stage", "from": "visitor", "to": "lead"},
    "steps": [{"action": "wait", "for": {"days": 3}}, {"action": "tag", "add": "nurtured"}],
}
KIDS = {"name": "Kids", "filter": {"all": [{"tag": "kids"}]}}
CAMPAIGN: dict[str, Any] = {
    "name": "December sale",
    "segment": "newsletter",
    "template": "december",
    "variants": [{"id": "A", "split": 50}, {"id": "B", "split": 50}],
    "conversion": {"behaviour": "purchase", "days": 7},
}


@pytest.mark.parametrize(
    ("method", "route", "parameters", "body", "code", "field"),
    [
        (
            "PUT",
            "/admin/rules/{ruleId}",
            {"ruleId": "kites"},
            {**KITES, "points": "many"},
            "invalid_rule",
            "points",
        ),
        (
            "PUT",
            "/admin/rules/{ruleId}",
            {"ruleId": "kites"},
            {**KITES, "limit": {"per_day": 1}},
            "invalid_rule",
            "limit.per_day",
        ),
        ("PUT", "/admin/rules/{ruleId}", {"ruleId": "kites"}, {**KITES, "id": "other"}, "invalid_rule", "id"),
        (
            "PUT",
            "/admin/automations/{automationId}",
            {"automationId": "nurture"},
            {
                **NURTURE,
                "steps": [{"action": "wait", "for": {"days": "soon"}}, {"action": "tag", "add": "x"}],
            },
            "invalid_automation",
            "steps.0.for.days",
        ),
        (
            "PUT",
            "/admin/automations/{automationId}",
            {"automationId": "nurture"},
            {**NURTURE, "trigger": {"type": "lunar"}},
            "invalid_automation",
            "trigger.type",
        ),
        (
            "PUT",
            "/admin/automations/{automationId}",
            {"automationId": "nurture"},
            {**NURTURE, "trigger": {"type": "inactivity", "days": 0}},
            "invalid_automation",
            "trigger.days",
        ),
        (
            "PUT",
            "/admin/segments/{segmentId}",
            {"segmentId": "kids"},
            {
                **KIDS,
                "filter": {"all": [{"tag": "kids"}, {"last": "activity", "within_days": 30, "colour": 1}]},
            },
            "invalid_segment",
            "filter.all.1.colour",
        ),
        (
            "PUT",
            "/admin/campaigns/{campaignId}",
            {"campaignId": "dec"},
            {**CAMPAIGN, "variants": [{"id": "A", "split": 60}, {"id": "B", "split": 50}]},
            "invalid_campaign",
            "variants",
        ),
        (
            "PUT",
            "/admin/campaigns/{campaignId}",
            {"campaignId": "dec"},
            {**CAMPAIGN, "conversion": {"behaviour": "purchase", "days": "a week"}},
            "invalid_campaign",
            "conversion.days",
        ),
        (
            "PUT",
            "/admin/templates/{templateId}",
            {"templateId": "birthday"},
            {"subject": "Hi", "text": "Hello {{ name "},
            "invalid_template",
            "text",
        ),
        (
            "PUT",
            "/admin/salespeople/{salespersonId}",
            {"salespersonId": "sam"},
            {"name": "Sam", "email": "sam@example.com", "weight": 0},
            "invalid_salesperson",
            "weight",
        ),
        (
            "PUT",
            "/admin/contacts/{contactId}/consent",
            {"contactId": "user_id:ann"},
            {"email": "yes"},
            "invalid_consent",
            "email",
        ),
        (
            "POST",
            "/admin/contacts/{contactId}/accept",
            {"contactId": "user_id:ann"},
            {"salesperson": 7},
            "invalid_request",
            "salesperson",
        ),
    ],
)
def test_a_bad_admin_body_is_a_400_naming_the_field_as_sent(
    aws, method, route, parameters, body, code, field
) -> None:
    status, error, _ = call_admin(method, route, parameters, body)
    assert status == 400, error
    assert error["code"] == code
    assert error["field"] == field
    assert error["message"].startswith(f"{field}:"), "the message names the same field"


def test_a_bad_query_parameter_is_named_too(aws) -> None:
    from functions.admin.handler import handler
    from tests.conftest import http_event, invoke

    route = "GET /admin/contacts/{contactId}/events"
    event = http_event(
        "GET",
        "/admin/contacts/user_id:ann/events",
        route=route,
        key=None,
        path_parameters={"contactId": "user_id:ann"},
        query={"limit": "lots"},
    )
    status, error, _ = invoke(handler, event)
    assert (status, error["code"], error["field"]) == (400, "invalid_limit", "limit")


def test_an_error_about_no_one_field_has_no_field(aws) -> None:
    status, error, _ = call_admin("PUT", "/admin/rules/{ruleId}", {"ruleId": "kites"}, [KITES])
    assert (status, error["code"]) == (400, "invalid_rule")
    assert "field" not in error
    status, error, _ = call_admin("GET", "/admin/rules/{ruleId}", {"ruleId": "nothing-here"})
    assert status == 404 and "field" not in error
