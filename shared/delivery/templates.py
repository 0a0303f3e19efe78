"""Email templates: what marketers write under ``/admin/templates``, and how it is rendered. Pure.

A template has a subject, a text part and an HTML part (at least one of the two), in Jinja syntax
(``{{ contact.traits.first_name }}``, ``{% if coupon %}``, ``{{ age }}``). Marketers write them, so
rendering is sandboxed (``jinja2.sandbox.ImmutableSandboxedEnvironment``):

- a template reads only its context (``template_context``): no attribute or key starting with ``_``,
  no method that changes a list or a dict, no globals but ``range``, ``dict`` and ``namespace``, no
  filesystem (``include``, ``import`` and ``extends`` are refused when it is stored);
- the work it may do is bounded: every loop iteration, call, operator result and output counts against
  a budget per render (a loop over ``range(10**9)``, a string doubled in a recursive macro, ``'x' * 10**9``
  or ``10 ** 10 ** 10`` are refused, not attempted), and each rendered part is at most 400 KB;
- values are escaped in the HTML part (a trait holding ``<script>`` arrives as text), never in the
  subject or the text part; the subject is one line;
- a name with no value renders empty, as marketers expect from Liquid and Mailchimp
  (``{{ contact.traits.nickname | default("friend") }}`` gives a fallback).

Whatever goes wrong while rendering (the sandbox refusing, a type error, the budget) is ``RenderFailed``
with a reason naming the part and line, never the values: the send is skipped with that reason.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol

from jinja2 import ChainableUndefined, TemplateError, TemplateSyntaxError, meta, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.environment import Template
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import Namespace
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from shared.delivery.ports import RenderedEmail, RenderFailed
from shared.delivery.surveys import MAX_QUESTION_CHARS
from shared.errors import InvalidRequest, invalid_field

#: a template's id: the same pattern as rules' and automations' (``RuleId``), so a step can name it
TemplateId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.:-]{0,63}$")]
#: a template as stored, at most (JSON), and each of its parts as written
MAX_TEMPLATE_BYTES = 64 * 1024
MAX_SUBJECT_CHARS = 500
#: what one rendered part may weigh (SES takes 40 MB, but an email this big is a template's mistake)
MAX_OUTPUT_CHARS = 400 * 1024
#: a rendered subject, at most (RFC 5322's line limit)
MAX_RENDERED_SUBJECT_CHARS = 998
#: the work one render may do: loop iterations (with the text each one writes), calls, and the characters
#: of every value built and written
MAX_WORK = 1_000_000
#: what one call (a macro, a method, ``range``) weighs against it, beyond the values it takes and gives
CALL_COST = 50
#: the largest number a ``**`` may raise to, and the widest a ``%`` or ``format`` width or an int argument
#: to a padding filter may be
MAX_EXPONENT = 1000
MAX_WIDTH = 10_000
#: the most numbers a ``range`` may give (the sandbox's own limit)
MAX_MEMBERS = 100_000
PARTS = ("subject", "text", "html")
INVALID = "invalid_template"
BUILT_IN_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Survey(_Model):
    """Issue 15: a template with a survey is an NPS survey (its id is the survey's id): its context gets
    ``survey`` (the question and one signed answer link per score, 0 to 10)."""

    #: the 0-10 question, as the email shows it ("How likely are you to recommend us to a friend?"); the
    #: answer page asks it too (it reads the survey's current template: ``shared.delivery.surveys``)
    question: Annotated[str, StringConstraints(min_length=1, max_length=MAX_QUESTION_CHARS)]


class EmailTemplate(_Model):
    """A template as a marketer writes it (``PUT /admin/templates/{templateId}``)."""

    id: TemplateId
    description: str = Field("", max_length=2000)
    subject: Annotated[str, StringConstraints(min_length=1, max_length=MAX_SUBJECT_CHARS)]
    text: Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEMPLATE_BYTES)] | None = None
    html: Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEMPLATE_BYTES)] | None = None
    #: issue 15: set, the template is an NPS survey
    survey: Survey | None = None

    @model_validator(mode="after")
    def _a_body(self) -> EmailTemplate:
        if self.text is None and self.html is None:
            raise ValueError("give text, html or both")
        return self


class StoredTemplate(EmailTemplate):
    """A template with its version; ``origin`` says whether it is built in or stored by an administrator
    (a stored one replaces the built-in one with its id)."""

    version: int = Field(ge=1)
    origin: Literal["built_in", "stored"] = "stored"
    updated_at: datetime | None = None


class TemplateSource(Protocol):
    def template(self, template_id: str) -> StoredTemplate | None:
        """The current stored version (None: none stored, or deleted)."""
        ...


class TemplateRepository(TemplateSource, Protocol):
    def stored(self) -> list[StoredTemplate]:
        """The current version of every stored template, by id."""
        ...

    def history(self, template_id: str) -> list[StoredTemplate]:
        """Every version of one template, newest first (a deletion's tombstone included)."""
        ...

    def save(
        self, template: EmailTemplate, at: datetime, expected_version: int | None, base_version: int = 0
    ) -> StoredTemplate:
        """Store the next version; ``expected_version`` other than the one in force (``base_version``, a
        built-in's, when none is stored) is a Conflict."""
        ...

    def remove(self, template_id: str, at: datetime, expected_version: int | None) -> StoredTemplate:
        """Delete the current version (NotFound if none), leaving a tombstone; returns what was deleted."""
        ...


# -- built-in templates -------------------------------------------------------------------------------

CONSENT_CONFIRMATION = "consent-confirmation"

_CONFIRMATION_TEXT = """\
Hello{{ " " ~ contact.traits.first_name if contact.traits.first_name }},

please confirm that you want to receive our emails by opening this link:

{{ confirm_url }}

If you did not ask for them, ignore this email: we will not write to you again.
{% if postal_address %}

{{ postal_address }}
{% endif %}
"""

_CONFIRMATION_HTML = """\
<!doctype html>
<html><body style="font-family: sans-serif">
<p>Hello{{ " " ~ contact.traits.first_name if contact.traits.first_name }},</p>
<p>please confirm that you want to receive our emails:</p>
<p><a href="{{ confirm_url }}">Yes, subscribe me</a></p>
<p>If you did not ask for them, ignore this email: we will not write to you again.</p>
{% if postal_address %}<p style="color: #666; font-size: small">{{ postal_address }}</p>{% endif %}
</body></html>
"""

BUILT_IN: dict[str, StoredTemplate] = {
    CONSENT_CONFIRMATION: StoredTemplate(
        id=CONSENT_CONFIRMATION,
        description="Double opt-in: the link that makes a consent effective (confirm_url)",
        subject="Please confirm your subscription",
        text=_CONFIRMATION_TEXT,
        html=_CONFIRMATION_HTML,
        version=BUILT_IN_VERSION,
        origin="built_in",
    )
}


def built_in(template_id: str) -> StoredTemplate | None:
    return BUILT_IN.get(template_id)


def effective(stored: Iterable[StoredTemplate]) -> list[StoredTemplate]:
    """The templates in force, by id: the built-in ones, each replaced by a stored one with its id."""
    found = {**BUILT_IN, **{t.id: t for t in stored}}
    return [found[k] for k in sorted(found)]


# -- parsing ------------------------------------------------------------------------------------------


def parse_template(template_id: str, body: Any) -> EmailTemplate:
    """Validate a marketer's template; a bad one is a 400 naming the field, a Jinja syntax error naming
    the part and line (``html: line 3: unexpected '}'``).

    ``id`` may be left out (the path names it); ``version``, ``origin`` and ``updated_at``, as a GET shows
    them, are ignored, so what a GET returns can be PUT back as it is.
    """
    if not isinstance(body, Mapping):
        raise InvalidRequest("the template must be a JSON object", code=INVALID)
    if len(json.dumps(body, separators=(",", ":"), default=str).encode()) > MAX_TEMPLATE_BYTES:
        raise InvalidRequest(f"template: over {MAX_TEMPLATE_BYTES // 1024} KB", code=INVALID)
    if "id" in body and body["id"] != template_id:
        raise InvalidRequest(
            f"id: {body['id']!r} does not match the path ({template_id!r})", code=INVALID, field="id"
        )
    fields = {k: v for k, v in body.items() if k not in ("version", "origin", "updated_at")}
    try:
        template = EmailTemplate.model_validate({**fields, "id": template_id})
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        path = ".".join(str(p) for p in error["loc"]) or "template"
        message = f"{path}: {str(error['msg']).removeprefix('Value error, ')}"
        raise invalid_field(error, code=INVALID, message=message) from None
    for part in PARTS:
        source = getattr(template, part)
        if source is not None:
            try:
                _environment(part).from_string(source)
            except TemplateSyntaxError as exc:
                raise InvalidRequest(
                    f"{part}: line {exc.lineno}: {exc.message}", code=INVALID, field=part
                ) from None
    return template


def stored_template(template: EmailTemplate, version: int, at: datetime) -> StoredTemplate:
    """A marketer's template as stored at ``version``."""
    return StoredTemplate(**template.model_dump(), version=version, origin="stored", updated_at=at)


# -- the rendering context ----------------------------------------------------------------------------

#: the names the context always has; a request's value with one of these names is under ``values`` only
RESERVED = (
    "contact",
    "values",
    "unsubscribe_url",
    "confirm_url",
    "postal_address",
    "recommendations",
    "survey",
)


def template_context(
    contact_id: str,
    traits: Mapping[str, Any],
    tags: Sequence[str],
    stage: str | None,
    values: Mapping[str, Any],
    *,
    unsubscribe_url: str | None,
    confirm_url: str | None,
    postal_address: str,
    recommendations: Sequence[Any] = (),
) -> dict[str, Any]:
    """What a template can name: ``contact`` (``id``, ``traits``, ``tags``, ``stage``, read when the
    email is sent), each of the request's values at the top level (``age``, ``coupon.code``,
    ``coupon.value``, and the ``traits`` and ``stage`` the automation saw), all of them again under
    ``values``, the links (``unsubscribe_url``: marketing emails; ``confirm_url``: the consent
    confirmation), the sender's ``postal_address`` and ``recommendations`` (issue 15: the products
    recommended to the contact, each ``id``, ``name``, ``category``, ``price``, ``url``, ``image_url``,
    ``reason`` and ``because``; computed only for a template that names it, else empty). Plain JSON data
    only: the sandbox sees nothing else."""
    plain_values = _plain(dict(values))
    return {
        **plain_values,
        "contact": {
            "id": contact_id,
            "traits": _plain(dict(traits)),
            "tags": sorted(tags),
            "stage": stage,
        },
        "values": plain_values,
        "unsubscribe_url": unsubscribe_url,
        "confirm_url": confirm_url,
        "postal_address": postal_address,
        "recommendations": _plain(list(recommendations)),
        # issue 15: a survey template's question and answer links, added by delivery (``surveys``)
        "survey": None,
    }


def _plain(value: Any) -> Any:
    """JSON data (times as text, decimals as numbers): what a template may see of the values."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
    if hasattr(value, "__float__"):
        number = float(value)
        return int(number) if number.is_integer() else number
    return str(value)


# -- the sandbox --------------------------------------------------------------------------------------


class TemplateRefused(SecurityError):
    """The sandbox's limits: the template does too much, or reaches for what is not its."""


@dataclass
class _Budget:
    left: int = MAX_WORK

    def charge(self, units: int) -> None:
        self.left -= units
        if self.left < 0:
            raise TemplateRefused("the template does too much work (loops, calls or text)")


_budget: ContextVar[_Budget | None] = ContextVar("template_budget", default=None)


def _charge(units: int) -> None:
    budget = _budget.get()
    if budget is not None:
        budget.charge(units)


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple | dict) else 0


class _Blank(ChainableUndefined):
    """A name with no value: empty, whatever is asked of it (``default`` still replaces it)."""

    __slots__ = ()


class _Generator(CodeGenerator):
    """Jinja's code generator, with every ``~`` join weighed against the budget."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.weighed(")
        super().visit_Concat(node, frame)
        self.write(")")


_WIDTH = re.compile(r"%[-#0 +]*(\*|\d{5,})|%[-#0 +]*\d*\.(\*|\d{5,})|\{[^{}]*:[^{}]*\d{5,}[^{}]*\}")
_FILTERS = frozenset(
    {
        *("abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape"),
        *("filesizeformat", "first", "float", "format", "groupby", "indent", "int", "items", "join", "last"),
        *("length", "list", "lower", "map", "max", "min", "reject", "rejectattr", "replace", "reverse"),
        *("round", "select", "selectattr", "slice", "sort", "string", "striptags", "sum", "title", "tojson"),
        *("trim", "truncate", "unique", "upper", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr"),
    }
)
#: filters whose int arguments size what they build, or whose output may far outgrow their input
_SIZING_FILTERS = {"center", "indent", "wordwrap", "truncate", "format", "replace", "batch", "slice"}


class _Sandbox(ImmutableSandboxedEnvironment):
    code_generator_class = _Generator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, *, autoescape: bool) -> None:
        super().__init__(
            autoescape=autoescape,
            undefined=_Blank,
            finalize=self._shown,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,
            cache_size=0,
        )
        self.globals.clear()
        self.globals.update(range=_range, dict=dict, namespace=Namespace)
        self.filters = {name: self._guarded(name, self.filters[name]) for name in _FILTERS}
        self.tests = dict(self.tests)

    # what the template may reach: nothing named with ``_``, whatever the object
    def getattr(self, obj: Any, attribute: str) -> Any:
        _refuse_private(attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(argument, str):
            _refuse_private(argument)
        return super().getitem(obj, argument)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise TemplateRefused(f"{attribute!r} of a {type(obj).__name__} is not available to templates")

    # the work it may do
    def call(self, context: Any, function: Any, /, *args: Any, **kwargs: Any) -> Any:
        _charge(CALL_COST + sum(_size(a) for a in args) + sum(_size(v) for v in kwargs.values()))
        _check_string_method(function, args)
        result = super().call(context, function, *args, **kwargs)
        _charge(_size(result))
        return result

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise TemplateRefused(f"an exponent over {MAX_EXPONENT} is not allowed")
        if operator == "*" and (
            _size(left) and isinstance(right, int) or _size(right) and isinstance(left, int)
        ):
            count = right if _size(left) else left
            if (_size(left) or _size(right)) * count > MAX_OUTPUT_CHARS:
                raise TemplateRefused("repeating a value this often is not allowed")
        if operator == "%" and isinstance(left, str):
            _check_format(left, right)
        result = super().call_binop(context, operator, left, right)
        if (
            isinstance(result, int)
            and not isinstance(result, bool)
            and result.bit_length() > 4 * MAX_EXPONENT
        ):
            raise TemplateRefused("a number this large is not allowed")
        _charge(1 + _size(result))
        return result

    def weighed(self, joined: str) -> str:
        _charge(1 + len(joined))
        return joined

    def counted(self, iterable: Any, cost: int) -> Iterator[Any]:
        """A loop's items, each charged ``cost`` (the text its body writes, at least)."""
        for item in iterable:
            _charge(cost)
            yield item

    @staticmethod
    def _shown(value: Any) -> Any:
        """How a value is written: nothing for None, whole numbers without ``.0``."""
        if value is None:
            return ""
        if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
            value = int(value)
        _charge(len(str(value)) if isinstance(value, str | int | float) else 1)
        return value

    def _guarded(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        if name not in _SIZING_FILTERS:
            return function

        def guarded(*args: Any, **kwargs: Any) -> Any:
            numbers = [a for a in (*args, *kwargs.values()) if isinstance(a, int) and not isinstance(a, bool)]
            if any(abs(n) > MAX_WIDTH for n in numbers):
                raise TemplateRefused(f"{name}: a number over {MAX_WIDTH} is not allowed")
            if name == "format":
                _check_format(next((a for a in args if isinstance(a, str)), ""), args)
            if name == "replace" and len(args) >= 3 and all(isinstance(a, str) for a in args[-3:]):
                _check_replace(*(str(a) for a in args[-3:]))
            result = function(*args, **kwargs)
            if isinstance(result, str):
                _charge(len(result))
                if len(result) > MAX_OUTPUT_CHARS:
                    raise TemplateRefused(f"{name}: the result is over {MAX_OUTPUT_CHARS // 1024} KB")
            return result

        for attribute in ("jinja_pass_arg",):  # keep Jinja's calling convention (context, eval context)
            if hasattr(function, attribute):
                setattr(guarded, attribute, getattr(function, attribute))
        return guarded

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for node in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
            raise TemplateSyntaxError(
                "a template cannot include, import or extend another", node.lineno, name, filename
            )
        for loop in list(tree.find_all(nodes.For)):
            if loop.recursive:
                raise TemplateSyntaxError("recursive loops are not allowed", loop.lineno, name, filename)
            cost = 1 + sum(len(d.data) for d in loop.find_all(nodes.TemplateData))
            loop.iter = _counted_call(loop, cost)
        tree.set_environment(self)
        return tree


def _counted_call(loop: nodes.For, cost: int) -> nodes.Expr:
    original = loop.iter
    return nodes.Call(
        nodes.EnvironmentAttribute("counted", lineno=loop.lineno),
        [original, nodes.Const(cost, lineno=loop.lineno)],
        [],
        None,
        None,
        lineno=loop.lineno,
    )


def _range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_MEMBERS:
        raise TemplateRefused(f"range: over {MAX_MEMBERS:,} numbers is not allowed")
    return numbers


def _check_string_method(function: Any, args: Sequence[Any]) -> None:
    """A string's methods that build more than they are given: their sizes are checked before the call."""
    target = getattr(function, "__wrapped__", function)  # the sandbox wraps str.format
    owner, name = getattr(target, "__self__", None), getattr(target, "__name__", "")
    if not isinstance(owner, str):
        return
    if name in ("format", "format_map"):
        _check_format(owner, args)
    elif name in ("center", "ljust", "rjust", "zfill", "expandtabs"):
        if any(isinstance(a, int) and abs(a) > MAX_WIDTH for a in args):
            raise TemplateRefused(f"{name}: a width over {MAX_WIDTH} is not allowed")
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        _check_replace(owner, args[0], args[1])


def _check_replace(text: str, old: str, new: str) -> None:
    times = text.count(old) if old else len(text) + 1
    if len(text) + times * len(new) > MAX_OUTPUT_CHARS:
        raise TemplateRefused(f"replace: the result would be over {MAX_OUTPUT_CHARS // 1024} KB")


def _refuse_private(name: str) -> None:
    if name.startswith("_"):
        raise TemplateRefused(f"{name!r} is not available to templates")


def _check_format(pattern: str, arguments: Any) -> None:
    if _WIDTH.search(pattern):
        raise TemplateRefused(f"a format width over {MAX_WIDTH} (or given by an argument) is not allowed")


_ENVIRONMENTS: dict[str, _Sandbox] = {}


def _environment(part: str) -> _Sandbox:
    """The sandbox for a part: the HTML part escapes values, the subject and the text part do not."""
    escaping = part == "html"
    key = "html" if escaping else "plain"
    found = _ENVIRONMENTS.get(key)
    if found is None:
        found = _ENVIRONMENTS[key] = _Sandbox(autoescape=escaping)
    return found


# -- rendering ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompiledTemplate:
    """A template's parts compiled once, for its (id, version)."""

    template_id: str
    version: int
    subject: Template
    text: Template | None
    html: Template | None
    #: issue 15: the top-level names its parts read (``recommendations`` is computed only when read)
    names: frozenset[str] = frozenset()

    @classmethod
    def of(cls, template: StoredTemplate) -> CompiledTemplate:
        try:
            return cls(
                template.id,
                template.version,
                _environment("subject").from_string(template.subject),
                _environment("text").from_string(template.text) if template.text else None,
                _environment("html").from_string(template.html) if template.html else None,
                frozenset(
                    name
                    for part in PARTS
                    if getattr(template, part)
                    for name in meta.find_undeclared_variables(
                        _environment(part).parse(getattr(template, part))
                    )
                ),
            )
        except TemplateSyntaxError as exc:  # stored before these rules, or built in wrongly
            raise RenderFailed(f"template {template.id}: line {exc.lineno}: {exc.message}") from None

    def render(self, context: Mapping[str, Any]) -> RenderedEmail:
        token = _budget.set(_Budget())
        try:
            subject = " ".join(_render(self.subject, "subject", context).split())
            text = _render(self.text, "text", context) if self.text else None
            html = _render(self.html, "html", context) if self.html else None
        finally:
            _budget.reset(token)
        if not subject:
            raise RenderFailed(f"template {self.template_id}: subject: renders empty")
        return RenderedEmail(subject=subject[:MAX_RENDERED_SUBJECT_CHARS], text=text, html=html)


def _render(template: Template, part: str, context: Mapping[str, Any]) -> str:
    written, size = [], 0
    try:
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise TemplateRefused(f"the rendered {part} is over {MAX_OUTPUT_CHARS // 1024} KB")
            written.append(chunk)
    except RenderFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the template does wrong, for this contact: the send is skipped
        raise RenderFailed(_reason(part, exc)) from None
    return "".join(written)


def _reason(part: str, exc: BaseException) -> str:
    """The part, the template's line, and what went wrong: the sandbox's and Jinja's own words, only the
    kind of error otherwise (a Python error's message may quote a contact's values)."""
    line = _template_line(exc)
    where = f"{part}: line {line}" if line else part
    if isinstance(exc, TemplateRefused | SecurityError | TemplateError):
        what = exc.message if isinstance(exc, TemplateError) and exc.message else str(exc)
        what = what or type(exc).__name__
    elif isinstance(exc, RecursionError):
        what = "too deeply nested (a macro calling itself?)"
    else:
        what = type(exc).__name__
    return f"{where}: {what}"[:300]


def _template_line(exc: BaseException) -> int | None:
    line = None
    trace = exc.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == "<template>":
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


class TemplateRendering:
    """The ``EmailRenderer`` port: a stored template (else a built-in one) rendered in its sandbox, each
    (id, version) compiled once per instance."""

    def __init__(self, source: TemplateSource, *, cache_size: int = 128) -> None:
        self._source = source
        self._compiled: OrderedDict[tuple[str, int, str], CompiledTemplate] = OrderedDict()
        self._cache_size = cache_size

    def template(self, template_id: str) -> StoredTemplate | None:
        """The template in force under this id: the stored one, else the built-in one."""
        return self._source.template(template_id) or built_in(template_id)

    def survey(self, template_id: str) -> Survey | None:
        """Issue 15: the template's survey, if it is one (its context then needs the answer links)."""
        template = self.template(template_id)
        return template.survey if template is not None else None

    def render(self, template_id: str, context: Mapping[str, Any]) -> RenderedEmail:
        template = self.template(template_id)
        if template is None:
            raise RenderFailed(f"unknown template {template_id}")
        return self.compiled(template).render(context)

    def names(self, template_id: str) -> frozenset[str]:
        """issue 15: the top-level names the template in force reads (empty for an unknown one)."""
        template = self.template(template_id)
        return self.compiled(template).names if template is not None else frozenset()

    def compiled(self, template: StoredTemplate) -> CompiledTemplate:
        key = (template.id, template.version, template.origin)
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = CompiledTemplate.of(template)
            while len(self._compiled) > self._cache_size:
                self._compiled.popitem(last=False)
        else:
            self._compiled.move_to_end(key)
        return found


__all__ = [
    "BUILT_IN",
    "CONSENT_CONFIRMATION",
    "CompiledTemplate",
    "EmailTemplate",
    "StoredTemplate",
    "Survey",
    "TemplateRefused",
    "TemplateRendering",
    "TemplateRepository",
    "TemplateSource",
    "built_in",
    "effective",
    "parse_template",
    "stored_template",
    "template_context",
]
