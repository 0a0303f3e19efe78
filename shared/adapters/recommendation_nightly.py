"""The nightly recommendations pass's AWS side (issue 15): the parallel Scan of the contacts' profiles
(their key and recent products only), the staging bucket's files, and the model's items in the config
table (``shared.recommendations.stored``).

The Scan is a whole-population read, made once a night by the extract step, segment by segment, page by
page; the filter keeps profiles with recent products that were not merged away (a Scan is billed by what
it reads, the filter does not lower that: ``read`` reports it). The write step puts items with
BatchWriteItem, 25 a request, sending again what DynamoDB left unprocessed (and deletes the items of
products without neighbours any more, in the same requests); a put replaces the item, so a part written
twice leaves the same items.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import date
from typing import Any

from shared.adapters.analytics_staging import S3Staging
from shared.adapters.contact_items import PROFILE, RECENT_PRODUCTS, recent_products_of
from shared.adapters.dynamodb import batch_write, n, plain_item, s, scan_pages
from shared.recommendations.stored import POPULAR_KEY, neighbours_key
from shared.usecases.recommendation_nightly import (
    ScannedPage,
    ScannedProfile,
    StagedInteractions,
    StagedModelPart,
    StoredModelItem,
    interactions_key,
    model_key,
)

WHAT_SCAN = "the contacts table"
WHAT_WRITE = "the config table"
#: A BatchWriteItem request holds at most this many puts.
BATCH = 25


class DynamoRecentProductScan:
    """``ProfileScan``: a parallel-scan segment of the contacts table's profiles with recent products."""

    def __init__(self, client: Any, *, contacts_table: str, page_size: int | None = None) -> None:
        self._db = client
        self._table = contacts_table
        #: items read per page (None: DynamoDB's 1 MB pages)
        self._page_size = page_size

    def scan(self, segment: int, segments: int) -> Iterator[ScannedPage]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "Segment": segment,
            "TotalSegments": segments,
            "ProjectionExpression": "#k, #r",
            "FilterExpression": "#s = :profile AND attribute_exists(#r) AND attribute_not_exists(#m)",
            "ExpressionAttributeNames": {"#k": "pk", "#s": "sk", "#r": RECENT_PRODUCTS, "#m": "mergedInto"},
            "ExpressionAttributeValues": {":profile": s(PROFILE)},
        }
        for items, read in scan_pages(self._db, request, WHAT_SCAN, self._page_size):
            profiles = []
            for item in items:
                data = plain_item(item)
                recent = recent_products_of(data.get(RECENT_PRODUCTS) or ())
                if recent:
                    profiles.append(ScannedProfile(str(data["pk"]).removeprefix("C#"), recent))
            yield ScannedPage(profiles=profiles, read=read)


class S3RecommendationStaging(S3Staging):
    """``Staging`` of the pass: gzipped JSON under ``analytics/recommendations/<day>/``."""

    def save_interactions(self, staged: StagedInteractions) -> str:
        return self._put(interactions_key(staged.day, staged.segment, staged.segments), staged)

    def interactions(self, day: date, segment: int, segments: int) -> StagedInteractions | None:
        return self._get(interactions_key(day, segment, segments), StagedInteractions)

    def save_model(self, staged: StagedModelPart) -> str:
        return self._put(model_key(staged.day, staged.part), staged)

    def model(self, key: str) -> StagedModelPart | None:
        return self._get(key, StagedModelPart)

    def model_keys(self, day: date) -> list[str]:
        prefix = model_key(day, 0).rsplit("/", 1)[0] + "/"
        keys: list[str] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix):
            keys += [found["Key"] for found in page.get("Contents", [])]
        return sorted(keys)


def model_item(item: StoredModelItem) -> dict[str, Any]:
    """A neighbours item or the popularity item, as the config table stores it."""
    key = POPULAR_KEY if item.product_id is None else neighbours_key(item.product_id)
    return {
        **{name: s(value) for name, value in key.items()},
        "entries": {"L": [{"M": {"p": s(p), "s": n(score)}} for p, score in item.entries]},
        "fittedOn": s(item.fitted_on.isoformat()),
    }


class DynamoModelStore:
    """``ModelStore``: the night's items put into the config table."""

    def __init__(
        self, client: Any, *, config_table: str, sleep: Callable[[float], None] | None = None
    ) -> None:
        self._db = client
        self._table = config_table
        self._sleep = sleep

    def put(self, items: Sequence[StoredModelItem], gone: Sequence[str] = ()) -> int:
        requests = [{"PutRequest": {"Item": model_item(item)}} for item in items]
        requests += [
            {"DeleteRequest": {"Key": {k: s(v) for k, v in neighbours_key(p).items()}}} for p in gone
        ]
        extra = {} if self._sleep is None else {"sleep": self._sleep}
        batch_write(self._db, self._table, requests, WHAT_WRITE, **extra)
        return -(-len(requests) // BATCH)
