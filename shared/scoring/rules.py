"""Scoring rules are data: validated by pydantic, indexed by behaviour for matching.

A **general** rule gives points for a behaviour. A **detailed** rule (one with ``match``) gives or
takes points for specific behaviour: a URL or URL pattern, an email or campaign, a referrer or search
phrase, a product, property predicates. Either kind may credit a tag (and add the tag to the
contact), be limited per contact or per day, and have a validity window.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.tracking.behaviours import Behaviour, event_key
from shared.tracking.messages import TrackedEvent
from shared.tracking.trust import counts_as_server_fact

RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.:-]{0,63}$")]
TagName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Path = Annotated[str, StringConstraints(pattern=r"^(properties|context|traits)(\.[^.\s]+)+$")]
MAX_POINTS = 10_000

Operator = Literal[
    "eq",
    "ne",
    "in",
    "not_in",
    "contains",
    "starts_with",
    "ends_with",
    "like",
    "gt",
    "gte",
    "lt",
    "lte",
    "exists",
    "missing",
]
_ORDERED = {"gt", "gte", "lt", "lte"}


class Predicate(BaseModel):
    """A test on a value of the call: ``{"path": "properties.price", "op": "gte", "value": 100}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path
    op: Operator
    value: Any = None

    @model_validator(mode="after")
    def _value_fits_operator(self) -> Predicate:
        if self.op in ("exists", "missing"):
            return self
        if self.value is None:
            raise ValueError(f"operator {self.op!r} needs a value")
        if self.op in ("in", "not_in") and not isinstance(self.value, list):
            raise ValueError(f"operator {self.op!r} needs a list value")
        if self.op in _ORDERED and (isinstance(self.value, bool) or not isinstance(self.value, int | float)):
            raise ValueError(f"operator {self.op!r} needs a number")
        if self.op in ("contains", "starts_with", "ends_with", "like") and not isinstance(self.value, str):
            raise ValueError(f"operator {self.op!r} needs a string")
        return self

    def holds(self, found: Any) -> bool:
        op, value = self.op, self.value
        if op == "exists":
            return found is not None
        if op == "missing":
            return found is None
        if found is None:
            return op in ("ne", "not_in")
        if op == "eq":
            return found == value
        if op == "ne":
            return found != value
        if op == "in":
            return found in value
        if op == "not_in":
            return found not in value
        if op in _ORDERED:
            if isinstance(found, bool) or not isinstance(found, int | float):
                return False
            return {"gt": found > value, "gte": found >= value, "lt": found < value, "lte": found <= value}[
                op
            ]
        text = str(found)
        if op == "contains":
            return value in text
        if op == "starts_with":
            return text.startswith(value)
        if op == "ends_with":
            return text.endswith(value)
        return fnmatchcase(text.lower(), value.lower())  # like: * and ? wildcards, any case


class Match(BaseModel):
    """What a detailed rule looks for. Every given field must match. Patterns use ``*`` and ``?``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = Field(None, min_length=1, max_length=2048)
    campaign_id: str | None = Field(None, min_length=1)
    email_id: str | None = Field(None, min_length=1)
    #: a search engine (``google``) or a referrer host pattern (``*.facebook.com``)
    referrer: str | None = Field(None, min_length=1)
    search_phrase: str | None = Field(None, min_length=1)
    #: product id or SKU, in ``properties`` or any of ``properties.products``
    product: str | None = Field(None, min_length=1)
    #: the track event's name (for custom behaviours)
    event: str | None = Field(None, min_length=1)
    properties: tuple[Predicate, ...] = ()

    @model_validator(mode="after")
    def _not_empty(self) -> Match:
        if not any(getattr(self, name) for name in type(self).model_fields):
            raise ValueError("match needs at least one condition; leave it out for a general rule")
        return self


class Limit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: at most this many times per contact, ever
    per_contact: int | None = Field(None, ge=1, le=1_000_000)
    #: at most once per calendar day (UTC) of the event
    once_per_day: bool = False


class Rule(BaseModel):
    """A scoring rule as an administrator writes it (``PUT /admin/rules/{id}``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: RuleId
    behaviour: Behaviour
    points: int = Field(ge=-MAX_POINTS, le=MAX_POINTS)
    description: str = Field("", max_length=500)
    match: Match | None = None
    #: credit this tag's score too, and add the tag to the contact
    tag: TagName | None = None
    #: or take the tag from the call, e.g. ``properties.category``
    tag_from: Path | None = None
    limit: Limit = Limit()
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    enabled: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if self.tag and self.tag_from:
            raise ValueError("give either tag or tag_from, not both")
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        for moment in (self.valid_from, self.valid_to):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("valid_from and valid_to need a time zone (e.g. Z)")
        return self

    @property
    def general(self) -> bool:
        return self.match is None


class StoredRule(Rule):
    """A rule with its version; ``origin`` says whether it is a shipped default or stored by an admin."""

    version: int = Field(ge=1)
    origin: Literal["default", "stored"] = "stored"
    updated_at: datetime | None = None


# --- matching ---------------------------------------------------------------------------------------------


def lookup(event: TrackedEvent, path: str) -> Any:
    root, *rest = path.split(".")
    value: Any = {"properties": event.properties, "context": event.context, "traits": event.traits}.get(root)
    for part in rest:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _products(event: TrackedEvent) -> set[str]:
    found = set()
    items = [event.properties, *(p for p in event.properties.get("products") or () if isinstance(p, Mapping))]
    for item in items:
        for key in ("product_id", "sku", "id"):
            if isinstance(item.get(key), str | int) and not isinstance(item.get(key), bool):
                found.add(str(item[key]))
    return found


def _referrer_matches(pattern: str, event: TrackedEvent) -> bool:
    attributes = event.attributes
    if attributes.get("search_engine") == pattern.lower():
        return True
    host = re.sub(r"^[a-z]+://", "", attributes.get("referrer", "")).split("/", 1)[0].lower()
    return bool(host) and fnmatchcase(host, pattern.lower())


def _campaigns(event: TrackedEvent) -> set[str]:
    values = {event.attributes.get("campaign_id"), event.attributes.get("utm_name")}
    if event.properties.get("campaign_id") is not None:
        values.add(str(event.properties["campaign_id"]))
    return {v for v in values if v}


def matches(rule: Rule, event: TrackedEvent) -> bool:
    """Does the rule apply to this event (behaviour, conditions and validity window)?"""
    if rule.behaviour is not event.behaviour or not rule.enabled:
        return False
    if rule.valid_from and event.timestamp < rule.valid_from:
        return False
    if rule.valid_to and event.timestamp >= rule.valid_to:
        return False
    m = rule.match
    if m is None:
        return True
    if m.url is not None and not fnmatchcase(event.attributes.get("url", ""), m.url):
        return False
    if m.campaign_id is not None and m.campaign_id not in _campaigns(event):
        return False
    if m.email_id is not None and str(event.properties.get("email_id", "")) != m.email_id:
        return False
    if m.referrer is not None and not _referrer_matches(m.referrer, event):
        return False
    if m.search_phrase is not None and not fnmatchcase(
        event.attributes.get("search_phrase", "").lower(), m.search_phrase.lower()
    ):
        return False
    if m.product is not None and m.product not in _products(event):
        return False
    if m.event is not None and event_key(m.event) != event_key(event.event or ""):
        return False
    return all(p.holds(lookup(event, p.path)) for p in m.properties)


_WILDCARDS = "*?["


class _PrefixIndex:
    """URL patterns filed under their literal prefix (``https://shop.example/pricing*``), in a
    character trie: finding the candidates for a URL walks the URL once, whatever the rule count."""

    def __init__(self) -> None:
        self._root: dict[str, Any] = {}

    def add(self, prefix: str, rule: StoredRule) -> None:
        node = self._root
        for char in prefix:
            node = node.setdefault(char, {})
        node.setdefault("", []).append(rule)

    def candidates(self, url: str) -> list[StoredRule]:
        found: list[StoredRule] = []
        node = self._root
        for char in url:
            found.extend(node.get("", ()))
            node = node.get(char)
            if node is None:
                return found
        found.extend(node.get("", ()))
        return found


class _ThresholdIndex:
    """Rules whose test is ``path >= value`` (or ``>``, ``<=``, ``<``), sorted by value: the rules an
    event passes are a prefix or suffix of the list, found by bisection."""

    def __init__(self) -> None:
        self._lists: dict[tuple[str, bool], list[tuple[float, str, StoredRule]]] = {}

    def add(self, path: str, lower: bool, value: float, rule: StoredRule) -> None:
        entries = self._lists.setdefault((path, lower), [])
        insort(entries, (value, rule.id, rule))

    def candidates(self, event: TrackedEvent) -> list[StoredRule]:
        found: list[StoredRule] = []
        for (path, lower), entries in self._lists.items():
            value = lookup(event, path)
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if lower:  # path >= v: every rule with v <= value may pass
                found.extend(rule for _, _, rule in entries[: bisect_right(entries, (value, "\uffff"))])
            else:  # path <= v: every rule with v >= value may pass
                found.extend(rule for _, _, rule in entries[bisect_left(entries, (value, "")) :])
        return found


@dataclass
class _Bucket:
    """The rules of one behaviour: general ones, detailed ones reachable by an exact key or a URL
    prefix, and the rest (checked one by one)."""

    always: list[StoredRule] = field(default_factory=list)
    exact: dict[tuple[str, str], list[StoredRule]] = field(default_factory=dict)
    urls: _PrefixIndex = field(default_factory=_PrefixIndex)
    thresholds: _ThresholdIndex = field(default_factory=_ThresholdIndex)
    #: property paths some rule tests for equality (``{"path": ..., "op": "eq"}``)
    paths: set[str] = field(default_factory=set)


def _exact_key(rule: Rule) -> tuple[str, str] | None:
    """The most selective condition that can be looked up by equality, if any."""
    m = rule.match
    if m is None:
        return None
    if m.product:
        return ("product", m.product)
    if m.email_id:
        return ("email_id", m.email_id)
    if m.campaign_id:
        return ("campaign", m.campaign_id)
    if m.event:
        return ("event", event_key(m.event))
    if m.url and not any(c in m.url for c in _WILDCARDS):
        return ("url", m.url)
    for predicate in m.properties:
        if (
            predicate.op == "eq"
            and isinstance(predicate.value, str | int)
            and not isinstance(predicate.value, bool)
        ):
            return (f"path:{predicate.path}", str(predicate.value))
    return None


def _threshold(rule: Rule) -> tuple[str, bool, float] | None:
    """A numeric bound the rule needs (``properties.price >= 100``): path, lower bound?, value."""
    for predicate in rule.match.properties if rule.match else ():
        if predicate.op in _ORDERED:
            return predicate.path, predicate.op in ("gt", "gte"), float(predicate.value)
    return None


def _url_prefix(rule: Rule) -> str | None:
    """The literal start of a URL pattern, when long enough to narrow the search."""
    if rule.match is None or not rule.match.url:
        return None
    pattern = rule.match.url
    cut = min((pattern.index(c) for c in _WILDCARDS if c in pattern), default=len(pattern))
    return pattern[:cut] if cut >= 8 else None


def _event_keys(event: TrackedEvent) -> Iterable[tuple[str, str]]:
    for product in _products(event):
        yield ("product", product)
    if event.properties.get("email_id") is not None:
        yield ("email_id", str(event.properties["email_id"]))
    for campaign in _campaigns(event):
        yield ("campaign", campaign)
    if event.event:
        yield ("event", event_key(event.event))
    if event.attributes.get("url"):
        yield ("url", event.attributes["url"])


class RuleBook:
    """Enabled rules indexed by behaviour, then by an exact key where a rule has one.

    Matching an event looks at its behaviour's general rules, the detailed rules filed under the
    event's own keys (its product, campaign, email, event name, exact URL, a property tested for
    equality) and the URL patterns
    whose literal prefix starts the event's URL, and the numeric thresholds the event passes. Only
    rules with none of these (a search phrase, a ``contains`` test...) are checked one by one, so the
    cost follows the rules that can apply, not the size of the rule book.
    """

    def __init__(self, rules: Sequence[StoredRule]) -> None:
        self.rules = {r.id: r for r in rules}
        self._by_behaviour: dict[Behaviour, _Bucket] = {}
        for rule in rules:
            if not rule.enabled or rule.points == 0:
                continue
            bucket = self._by_behaviour.setdefault(rule.behaviour, _Bucket())
            key = _exact_key(rule)
            prefix = _url_prefix(rule) if key is None else None
            bound = _threshold(rule) if key is None and prefix is None else None
            if key is not None:
                bucket.exact.setdefault(key, []).append(rule)
                if key[0].startswith("path:"):
                    bucket.paths.add(key[0].removeprefix("path:"))
            elif prefix is not None:
                bucket.urls.add(prefix, rule)
            elif bound is not None:
                bucket.thresholds.add(*bound, rule)
            else:
                bucket.always.append(rule)

    def matching(self, event: TrackedEvent) -> list[StoredRule]:
        bucket = self._by_behaviour.get(event.behaviour)
        if bucket is None or not counts_as_server_fact(event):  # a browser's "NPS Answered" scores nothing
            return []
        candidates = list(bucket.always)
        if bucket.exact:
            for key in dict.fromkeys(_event_keys(event)):
                candidates.extend(bucket.exact.get(key, ()))
            for path in bucket.paths:
                value = lookup(event, path)
                if isinstance(value, str | int) and not isinstance(value, bool):
                    candidates.extend(bucket.exact.get((f"path:{path}", str(value)), ()))
        url = event.attributes.get("url")
        if url:
            candidates.extend(bucket.urls.candidates(url))
        candidates.extend(bucket.thresholds.candidates(event))
        found = [rule for rule in candidates if matches(rule, event)]
        found.sort(key=lambda r: r.id)
        return found

    def __len__(self) -> int:
        return len(self.rules)
