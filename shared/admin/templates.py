"""Admin operations on email templates under ``/admin/templates``: list, read with history, store a new
version, delete, and preview one rendered for a contact (or for a sample contact).
``If-Match: <version>`` makes a change conditional (409 otherwise)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.admin.dependencies import Admin
from shared.contacts.identity import ContactId
from shared.delivery.links import CONFIRM_PATH, TOKEN_PARAMETER, UNSUBSCRIBE_PATH
from shared.delivery.ports import RenderFailed
from shared.delivery.surveys import preview_context
from shared.delivery.templates import (
    CONSENT_CONFIRMATION,
    INVALID,
    CompiledTemplate,
    StoredTemplate,
    TemplateRendering,
    built_in,
    effective,
    parse_template,
    template_context,
)
from shared.errors import InvalidRequest, NotFound, invalid_field
from shared.http import if_match_version, json_body
from shared.recommendations.model import RecentProduct
from shared.usecases.recommendations import FOR_TEMPLATES, bought_by, for_contact
from shared.usecases.recording import resolve

if TYPE_CHECKING:
    from shared.http import HttpRequest

#: the links a preview shows in place of signed ones (the admin API does not sign links)
PREVIEW_BASE_URL = "https://preview.invalid"
#: the contact a preview without ``contact_id`` renders for, and the values it gets
SAMPLE_CONTACT = {
    "contact_id": "user_id:sample",
    "traits": {"first_name": "Ann", "last_name": "Example", "email": "ann@example.com", "plan": "pro"},
    "tags": ("newsletter",),
    "stage": "lead",
}
SAMPLE_VALUES: dict[str, Any] = {
    "age": 7,
    "coupon": {"code": "LC-SAMPLE", "value": 15, "unit": "percent"},
}


class TemplateList(BaseModel):
    #: the templates in force: the built-in ones, each replaced by a stored one with its id
    templates: list[StoredTemplate]


class TemplateDetail(BaseModel):
    template: StoredTemplate
    #: every stored version, newest first (a deletion is marked by a newer tombstone)
    history: list[StoredTemplate]


class Deleted(BaseModel):
    deleted: str
    version: int
    #: a built-in template with this id applies again
    built_in_applies: bool


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the contact to render for (``user_id:ann``, ``anonymous_id:a-1``, a contact id); none: a sample one
    contact_id: str | None = Field(None, min_length=1, max_length=600)
    #: the values an automation would compute (``age``, ``coupon``...); none with no contact: sample ones
    values: dict[str, Any] | None = None


class Preview(BaseModel):
    template: str
    version: int
    origin: str
    contact_id: str
    subject: str
    text: str | None
    html: str | None
    #: what the template could name, as rendered
    context: dict[str, Any]


def list_templates(request: HttpRequest, deps: Admin) -> TemplateList:
    return TemplateList(templates=effective(deps.templates.stored()))


def get_template(request: HttpRequest, deps: Admin) -> TemplateDetail:
    template = _current(request, deps)
    return TemplateDetail(template=template, history=deps.templates.history(template.id))


def put_template(request: HttpRequest, deps: Admin) -> StoredTemplate:
    template_id = _template_id(request)
    template = parse_template(template_id, json_body(request))
    default = built_in(template_id)
    return deps.templates.save(
        template, deps.clock.now(), if_match_version(request), default.version if default else 0
    )


def delete_template(request: HttpRequest, deps: Admin) -> Deleted:
    template_id = _template_id(request)
    removed = deps.templates.remove(template_id, deps.clock.now(), if_match_version(request))
    return Deleted(
        deleted=template_id, version=removed.version, built_in_applies=built_in(template_id) is not None
    )


def preview_template(request: HttpRequest, deps: Admin) -> Preview:
    """The template in force rendered as delivery would render it, for the contact (404 if unknown) or a
    sample one; links point at ``preview.invalid`` (real ones are signed when the email is sent). A
    template that cannot be rendered for this contact is a 400 with the part, line and reason."""
    template = _current(request, deps)
    asked = _preview_request(request)
    compiled = _compiled(template, deps)
    recent: tuple[RecentProduct, ...] = ()
    if asked.contact_id is None:
        contact_id, traits = str(SAMPLE_CONTACT["contact_id"]), dict(SAMPLE_CONTACT["traits"])
        tags, stage = tuple(SAMPLE_CONTACT["tags"]), str(SAMPLE_CONTACT["stage"])
        values = SAMPLE_VALUES if asked.values is None else asked.values
    else:
        contact = resolve(ContactId.parse(asked.contact_id), deps.contacts)
        record = deps.contacts.profile(contact)
        if record is None:
            raise NotFound(f"no contact {asked.contact_id}")
        contact_id, traits, tags, stage = record.contact_id, record.traits, tuple(record.tags), record.stage
        values = asked.values or {}
        recent = record.recent_products
    context = template_context(
        contact_id,
        traits,
        tags,
        stage,
        {"traits": traits, "stage": stage, **values},  # as an automation's request carries them
        unsubscribe_url=f"{PREVIEW_BASE_URL}{UNSUBSCRIBE_PATH}?{TOKEN_PARAMETER}=preview",
        confirm_url=(
            f"{PREVIEW_BASE_URL}{CONFIRM_PATH}?{TOKEN_PARAMETER}=preview"
            if template.id == CONSENT_CONFIRMATION
            else None
        ),
        postal_address=deps.postal_address,
        # issue 15: as delivery computes them, for a template that names them (a sample contact: the popular
        # products, as for a contact new to the shop)
        recommendations=(
            [
                r.for_template()
                for r in for_contact(
                    recent,
                    FOR_TEMPLATES,
                    deps.recommendations,
                    bought_by(contact_id, deps.purchases) if recent else frozenset(),
                    deps.recommendation_settings,
                )
            ]
            if deps.recommendations is not None and "recommendations" in compiled.names
            else []
        ),
    )
    if template.survey is not None:  # issue 15: an NPS survey's answer links, unsigned
        context["survey"] = preview_context(
            PREVIEW_BASE_URL, survey=template.id, question=template.survey.question
        )
    try:
        rendered = compiled.render(context)
    except RenderFailed as exc:
        raise InvalidRequest(exc.reason, code="template_render_failed") from None
    return Preview(
        template=template.id,
        version=template.version,
        origin=template.origin,
        contact_id=contact_id,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        context=context,
    )


def _compiled(template: StoredTemplate, deps: Admin) -> CompiledTemplate:
    try:
        return TemplateRendering(deps.templates).compiled(template)
    except RenderFailed as exc:
        raise InvalidRequest(exc.reason, code="template_render_failed") from None


def _preview_request(request: HttpRequest) -> PreviewRequest:
    body = json_body(request) if (request.body or "").strip() else {}
    try:
        return PreviewRequest.model_validate(body)
    except ValidationError as exc:
        raise invalid_field(exc.errors(include_url=False)[0], code=INVALID, whole="preview") from None


def _template_id(request: HttpRequest) -> str:
    return request.path_parameters.get("templateId", "")


def _current(request: HttpRequest, deps: Admin) -> StoredTemplate:
    """The template in force, read afresh (not through a delivery function's cache)."""
    template_id = _template_id(request)
    found = next((t for t in effective(deps.templates.stored()) if t.id == template_id), None)
    if found is None:
        raise NotFound(f"no template {template_id}")
    return found


ROUTES = {
    "GET /admin/templates": list_templates,
    "GET /admin/templates/{templateId}": get_template,
    "PUT /admin/templates/{templateId}": put_template,
    "DELETE /admin/templates/{templateId}": delete_template,
    "POST /admin/templates/{templateId}/preview": preview_template,
}
