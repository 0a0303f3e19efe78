"""Who gets what: each contact's arm of a campaign, random but stable, decided by a hash.

The first 32 bits of ``sha256("campaign:<campaign>:<contact>")`` place the contact on 10,000 buckets:
the first ``holdout_percent`` x 100 of them are the holdout, the rest are shared among the variants in
proportion to their splits (cumulative, in the order written). The same contact always lands in the same
arm of the same campaign, whichever run plans it and however often; another campaign draws again
(the campaign id is in the hash), so a contact is not held out of every campaign. Automations hold out
with ``shared.automations.engine.held_out`` (the same scheme, its own salt).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from shared.campaigns.model import HOLDOUT, Variant

BUCKETS = 10_000


def bucket(campaign_id: str, contact_id: str) -> int:
    """The contact's bucket of the campaign, 0 to 9,999."""
    digest = hashlib.sha256(f"campaign:{campaign_id}:{contact_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % BUCKETS


def arm_of(campaign_id: str, contact_id: str, holdout_percent: float, variants: Sequence[Variant]) -> str:
    """The contact's arm: ``holdout`` or a variant's id."""
    position = bucket(campaign_id, contact_id)
    held = round(holdout_percent * 100)
    if position < held:
        return HOLDOUT
    # the treated buckets, scaled onto 0..(100 x (10,000 - held)) and cut by the cumulative splits
    scaled = (position - held) * 100
    span = BUCKETS - held
    edge = 0
    for variant in variants:
        edge += variant.split
        if scaled < edge * span:
            return variant.id
    return variants[-1].id
