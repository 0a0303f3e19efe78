"""What the event log keeps of a call, and what the product reads back from it.

The event log stores each call without what the product never reads (docs/tracking.md, "What the
event log keeps"):

- what the event item already holds (``type``, ``messageId``, the client's ``timestamp`` and
  ``originalTimestamp``) and delivery plumbing (``writeKey``, ``sentAt``, ``integrations``,
  analytics.js's ``_metadata``), and top-level fields of the call sent as ``null``;
- ``context.library`` and ``context.userAgent``; ``context.userAgentData`` keeps ``mobile`` and
  ``platform`` only;
- the fields of ``context.page`` that ``properties`` repeats with the same value (analytics.js sends
  the page twice in every page call): they are named in ``"_page"`` and restored on reading.

``kept(call)`` is what the product reads (rules, classification, the admin view): the call without
the dropped fields, ``context.page`` whole. ``compact(call)`` is the stored form, and
``expanded(stored)`` turns it (or a body stored in full before this form) back into ``kept``:
``expanded(compact(call)) == kept(call)``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from shared.tracking.proofs import Provenance

#: Names the ``context.page`` fields taken from ``properties``; reserved, so dropped from a call.
PAGE_MARK = "_page"
#: How far the call's identity is trusted (absent: a browser call, not checked) and the ``userId`` it
#: claimed without proof; reserved, so a call cannot set them.
TRUST_MARK, CLAIM_MARK = "_trust", "_claimedUserId"
#: Top-level fields the event item holds elsewhere, or that only carry the call to us.
DROPPED_FIELDS = frozenset(
    {
        "writeKey",
        "sentAt",
        "type",
        "messageId",
        "timestamp",
        "originalTimestamp",
        "integrations",
        "_metadata",
        PAGE_MARK,
        TRUST_MARK,
        CLAIM_MARK,
    }
)
#: Top-level fields whose ``null`` means the same as their absence.
NULLABLE_FIELDS = frozenset(
    {"userId", "anonymousId", "previousId", "groupId", "event", "name", "properties", "traits", "context"}
)
#: Context fields nothing reads: the SDK's name and version, the browser's user-agent string.
DROPPED_CONTEXT = frozenset({"library", "userAgent"})
#: What ``context.userAgentData`` keeps: whether the browser is a phone's, and its OS.
USER_AGENT_DATA_KEPT = ("mobile", "platform")


def kept(call: Mapping[str, Any]) -> dict[str, Any]:
    """The call as the product reads it: without the dropped fields. Idempotent."""
    out = {
        key: value
        for key, value in call.items()
        if key not in DROPPED_FIELDS and not (value is None and key in NULLABLE_FIELDS)
    }
    context = out.get("context")
    if isinstance(context, Mapping) and any(
        key in DROPPED_CONTEXT or key == "userAgentData" for key in context
    ):
        out["context"] = _kept_context(context)
    return out


def _kept_context(context: Mapping[str, Any]) -> dict[str, Any]:
    out = {key: value for key, value in context.items() if key not in DROPPED_CONTEXT}
    agent = out.pop("userAgentData", None)
    if isinstance(agent, Mapping):
        short = {key: agent[key] for key in USER_AGENT_DATA_KEPT if key in agent}
        if short:
            out["userAgentData"] = short
    return out


def compact(call: Mapping[str, Any]) -> dict[str, Any]:
    """The call as the event log stores it: ``kept``, and ``context.page`` without what
    ``properties`` repeats."""
    out = kept(call)
    context, properties = out.get("context"), out.get("properties")
    page = context.get("page") if isinstance(context, Mapping) else None
    if not (isinstance(page, Mapping) and page and isinstance(properties, Mapping)):
        return out
    repeated = [key for key, value in page.items() if key in properties and _same(value, properties[key])]
    if not repeated:
        return out
    rest = {key: value for key, value in page.items() if key not in repeated}
    context = {key: value for key, value in context.items() if key != "page"}
    if rest:
        context["page"] = rest
    out["context"] = context
    out[PAGE_MARK] = repeated
    return out


def expanded(stored: Mapping[str, Any]) -> dict[str, Any]:
    """What the product reads of a stored body: ``context.page`` whole again, dropped fields gone
    (bodies stored in full, before the compact form, read the same)."""
    names = stored.get(PAGE_MARK)
    properties = stored.get("properties")
    context = stored.get("context")
    if (
        isinstance(names, list)
        and isinstance(properties, Mapping)
        and (context is None or isinstance(context, Mapping))
        and all(isinstance(name, str) and name in properties for name in names)
    ):
        context = dict(context or {})
        page = context.get("page")
        context["page"] = {
            **{name: properties[name] for name in names},
            **(page if isinstance(page, Mapping) else {}),
        }
        stored = {**stored, "context": context}
    return kept(stored)


def with_provenance(
    stored: dict[str, Any], provenance: Provenance, claimed_user_id: str | None
) -> dict[str, Any]:
    """The stored form with how far its identity is trusted (nothing for an unchecked browser call)."""
    if provenance is not Provenance.BROWSER:
        stored[TRUST_MARK] = provenance.value
    if claimed_user_id is not None:
        stored[CLAIM_MARK] = claimed_user_id
    return stored


def provenance_of(stored: Mapping[str, Any]) -> tuple[Provenance, str | None]:
    """How far a stored call's identity is trusted, and its unproven claim. A body stored before
    provenance was kept reads as an unchecked browser call: the least a trusted fact can be."""
    try:
        provenance = Provenance(stored.get(TRUST_MARK, Provenance.BROWSER))
    except ValueError:
        provenance = Provenance.BROWSER
    claimed = stored.get(CLAIM_MARK)
    return provenance, claimed if isinstance(claimed, str) else None


def dumps(body: Mapping[str, Any]) -> str:
    """A body as stored JSON text: compact separators, UTF-8 kept as is."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON, types included (``1``, ``1.0`` and ``true`` differ), so restoring is exact."""
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if type(a) is not type(b):
        return False
    return dumps(a) == dumps(b)
