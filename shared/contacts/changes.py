"""What a group of events does to one contact, computed without reading it.

Every effect is expressed as something the store can apply blindly in a single
conditional write: set or remove a trait, add or remove a tag, add to a
counter, keep the earliest first-seen time. That keeps the hot path to one
write per contact per batch, with no read-modify-write. Identity merges the
events declare are only asked for in that write (``merge_from``); the
contacts table's stream carries them out.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.contacts.consent import ConsentKind, latest_consent
from shared.contacts.identity import ContactId
from shared.delivery.consent import ConsentChannel, ConsentFact
from shared.recommendations.model import RecentProduct
from shared.recommendations.recent import recent_products
from shared.scoring.engine import NOTHING, TAG_PREFIX, Scored, ScoringContext, awarded, combined, score
from shared.tracking.behaviours import LEDGER_CALL, Behaviour
from shared.tracking.messages import TrackedEvent
from shared.tracking.proofs import Provenance
from shared.tracking.trust import server_made_trait

TAGS_TRAIT = "tags"
TIMEZONE_TRAIT = "timezone"
#: The traits one contact may hold, names and JSON values together. Without a cap, many small identify
#: calls grow a profile until it passes DynamoDB's 400 KB item limit and every later write fails; 64 KB
#: leaves the rest of the item to tags, counters and scores.
MAX_PROFILE_TRAIT_BYTES = 64 * 1024


def trait_bytes(traits: Mapping[str, Any]) -> int:
    """What traits weigh as stored: UTF-8 names and compact JSON values."""
    return sum(
        len(name.encode()) + len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
        for name, value in traits.items()
    )


@dataclass(frozen=True, slots=True)
class ContactChange:
    contact: ContactId
    events: tuple[TrackedEvent, ...]
    anonymous_ids: frozenset[str]
    traits_set: Mapping[str, Any]
    traits_unset: frozenset[str]
    tags_add: frozenset[str]
    tags_remove: frozenset[str]
    counts: Mapping[str, int]
    groups: frozenset[str]
    first_seen: datetime
    last_seen: datetime
    revenue: Decimal
    last_purchase_at: datetime | None
    #: behaviour (and ``visit``: any page view) -> its latest time in the change; the aggregation keeps
    #: on the profile only those that inactivity automations count from
    last_times: Mapping[str, datetime] = field(default_factory=dict)
    timezone_hint: str | None = None
    scored: Scored = NOTHING
    #: identities to merge into this contact (identify, alias), done off the request path
    merge_from: frozenset[ContactId] = frozenset()
    #: where the events sit in the stream that delivered them (text in stream order): the profile keeps
    #: the last position folded in, so the change applies once however often it is delivered
    first_position: str = ""
    last_position: str = ""
    #: the events were recorded for this contact, merged into this one since: re-routed here
    origin: ContactId | None = None
    #: per channel and kind (``granted``, ``revoked``) the latest consent fact the events state
    #: (``shared.contacts.consent``), set blindly on the profile
    consent: Mapping[tuple[ConsentChannel, ConsentKind], ConsentFact] = field(default_factory=dict)
    #: issue 15: the products the events bought or viewed (one entry per product, newest first, at most
    #: 50), added blindly to the profile's recent products (``shared.recommendations.recent``)
    recent_products: tuple[RecentProduct, ...] = ()

    @property
    def activity(self) -> tuple[TrackedEvent, ...]:
        """The contact's own calls: not the points automations awarded (``LEDGER_CALL``)."""
        return tuple(e for e in self.events if e.call != LEDGER_CALL)

    @property
    def message_ids(self) -> frozenset[str]:
        return frozenset(e.message_id for e in self.events)

    @property
    def trait_bytes(self) -> int:
        """The most this change can add to the profile's traits (a trait it replaces may weigh less)."""
        hint = {TIMEZONE_TRAIT: self.timezone_hint} if self.timezone_hint else {}
        return trait_bytes({**self.traits_set, **hint})

    def traits_after(self, traits: Mapping[str, Any]) -> dict[str, Any]:
        """A profile's traits once this change is applied to them."""
        after = {k: v for k, v in traits.items() if k not in self.traits_unset}
        after.update(self.traits_set)
        if self.timezone_hint:
            after.setdefault(TIMEZONE_TRAIT, self.timezone_hint)
        return after


def plan_change(
    contact: ContactId, events: Sequence[TrackedEvent], scoring: ScoringContext | None = None
) -> ContactChange:
    """Fold one contact's new events, oldest first, into a blind update, scores included.

    Points an automation awarded (``LEDGER_CALL``) count in the scores, with their ledger, and nowhere
    else: not as activity (the visit times, the event and behaviour counts), so a win-back's points never
    end the lapse it reacts to; ``first_seen`` and ``last_seen`` are then the activity's, if any.
    """
    everything = sorted(events, key=lambda e: e.timestamp)
    ordered = [e for e in everything if e.call != LEDGER_CALL]
    awards = [e for e in everything if e.call == LEDGER_CALL]
    at = max(e.received_at for e in everything)
    scored = score(ordered, scoring, at) if scoring else NOTHING
    if awards and scoring:
        scored = combined(scored, awarded(awards, scoring.decay, at))
    seen = ordered or everything
    traits: dict[str, Any] = {}
    tags: dict[str, bool] = {}
    for event in everything:
        for change in scored.ledger.get(event.message_id, ()):
            if change.dimension.startswith(TAG_PREFIX):  # a rule credited a tag: the contact gets it
                tags[change.dimension.removeprefix(TAG_PREFIX)] = True
        if event.call != "identify":
            continue
        for name, value in event.traits.items():
            if event.provenance is not Provenance.SERVER and server_made_trait(name):
                continue  # the latest NPS answer's traits: set by the product (or a server key) only
            if name == TAGS_TRAIT:
                for tag, present in tag_changes(value):
                    tags[tag] = present
            else:
                traits[name] = value
    counts = Counter(e.behaviour.value for e in ordered)
    purchases = [e for e in ordered if e.behaviour is Behaviour.PURCHASE]
    revenue = sum((e.revenue or Decimal(0) for e in purchases), Decimal(0)) - sum(
        (e.revenue or Decimal(0) for e in ordered if e.behaviour is Behaviour.REFUND), Decimal(0)
    )
    hint = next((e.context_timezone for e in reversed(ordered) if e.context_timezone), None)
    return ContactChange(
        contact=contact,
        events=tuple(everything),
        anonymous_ids=frozenset(e.anonymous_id for e in ordered if e.anonymous_id),
        traits_set={k: v for k, v in traits.items() if v is not None},
        traits_unset=frozenset(k for k, v in traits.items() if v is None),
        tags_add=frozenset(t for t, present in tags.items() if present),
        tags_remove=frozenset(t for t, present in tags.items() if not present),
        counts=dict(counts),
        groups=frozenset(e.group_id for e in ordered if e.call == "group" and e.group_id),
        first_seen=seen[0].timestamp,
        last_seen=max(e.received_at for e in seen),
        revenue=revenue,
        last_purchase_at=purchases[-1].timestamp if purchases else None,
        last_times=latest_times(ordered),
        timezone_hint=None if TIMEZONE_TRAIT in traits else hint,
        scored=scored,
        merge_from=frozenset(source for source, _ in identity_links(ordered) if source != contact),
        consent=latest_consent(ordered),
        recent_products=recent_products(ordered),
    )


#: what counts as a visit: a page view, however the visitor came
VISITS = frozenset({Behaviour.VISIT, Behaviour.VISIT_FROM_ADS, Behaviour.VISIT_FROM_SEARCH})


def latest_times(events: Iterable[TrackedEvent]) -> dict[str, datetime]:
    """Each behaviour's latest time among the events, and ``visit``'s (any page view)."""
    found: dict[str, datetime] = {}
    for event in events:
        for name in (
            (event.behaviour.value, "visit") if event.behaviour in VISITS else (event.behaviour.value,)
        ):
            if name not in found or event.timestamp > found[name]:
                found[name] = event.timestamp
    return found


def identity_links(events: Iterable[TrackedEvent]) -> list[tuple[ContactId, ContactId]]:
    """Identify joins the anonymous visitor to the user; alias joins the previous id to the user."""
    links: list[tuple[ContactId, ContactId]] = []
    for event in events:
        if event.call == "identify" and event.user_id and event.anonymous_id:
            links.append((ContactId.anonymous(event.anonymous_id), ContactId.user(event.user_id)))
        elif event.call == "alias" and event.user_id and event.previous_id:
            target = ContactId.user(event.user_id)
            for source in (ContactId.user(event.previous_id), ContactId.anonymous(event.previous_id)):
                if source != target:
                    links.append((source, target))
    return list(dict.fromkeys(links))


def tag_changes(value: Any) -> Iterable[tuple[str, bool]]:
    """``["vip", "-trial"]`` adds ``vip`` and removes ``trial`` (Mautic's convention)."""
    for raw in value or ():
        tag = raw.strip()
        if tag.startswith("-") and len(tag) > 1:
            yield tag[1:].strip(), False
        elif tag:
            yield tag, True
