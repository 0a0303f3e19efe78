"""Issue 15: the nightly recommendations pass's ports, each fake against its adapter on moto: the Scan of
the contacts' profiles (recent products only; merged-away contacts left out), the staging bucket's files,
and the model's items in the config table (read back in ``shared.recommendations.stored``'s layout)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.contacts.identity import ContactId
from shared.recommendations.model import RecentProduct
from shared.recommendations.stored import POPULAR_KEY, StoredList, neighbours_key
from shared.usecases.recommendation_nightly import (
    ScannedProfile,
    StagedInteractions,
    StagedModelPart,
    StoredModelItem,
    interactions_key,
    model_key,
)
from shared.usecases.recording import merge_plan
from tests.contract.helpers import NOW, entries
from tests.fakes import (
    MemoryContactStore,
    MemoryModelStore,
    MemoryRecentProductScan,
    MemoryRecommendationStaging,
)

ANN, BOB, EVE = ContactId.user("ann"), ContactId.user("bob"), ContactId.user("eve")
A1 = ContactId.anonymous("a1")
DAY = date(2026, 11, 23)


def viewed(who: ContactId, message_id: str, product: str) -> dict[str, Any]:
    key = {"userId": who.value} if who.kind == "user_id" else {"anonymousId": who.value}
    return {"type": "track", "event": "Product Viewed", "messageId": message_id,
            "properties": {"product_id": product}, **key}  # fmt: skip


def commit(store: Any, contact: ContactId, *calls: dict[str, Any]) -> None:
    assert store.append(entries(contact, *calls)) == frozenset()
    assert store.deliver_events().failed_from is None


# --- the profiles' scan -----------------------------------------------------------------------------------


@pytest.fixture
def profiles(implementation, contact_tables):
    """(the contact stores, a scan of their profiles, the scan with pages of 2 items)."""
    if implementation == "fake":
        contacts = MemoryContactStore()
        return contacts, MemoryRecentProductScan(contacts), MemoryRecentProductScan(contacts, page_size=2)
    from shared.adapters.recommendation_nightly import DynamoRecentProductScan

    tables = contact_tables()
    return (
        tables.stores(),
        DynamoRecentProductScan(tables.db, contacts_table=tables.contacts),
        DynamoRecentProductScan(tables.db, contacts_table=tables.contacts, page_size=2),
    )


def everything(scan: Any, segments: int) -> list[ScannedProfile]:
    found = [p for segment in range(segments) for page in scan.scan(segment, segments) for p in page.profiles]
    return sorted(found, key=lambda p: p.contact_id)


def products_of(found: list[ScannedProfile]) -> dict[str, list[str]]:
    return {p.contact_id: [r.product_id for r in p.recent_products] for p in found}


def test_the_scan_finds_each_profile_with_recent_products_once_in_one_segment(profiles):
    store, scan, paged = profiles
    commit(store, ANN, viewed(ANN, "v1", "hat"), viewed(ANN, "v2", "shoes"))
    commit(store, BOB, viewed(BOB, "v3", "hat"))
    commit(store, EVE, {"type": "page", "userId": "eve", "messageId": "p1"})  # no products: left out
    expected = {"user_id:ann": ["hat", "shoes"], "user_id:bob": ["hat"]}
    for segments in (1, 3):
        assert products_of(everything(scan, segments)) == expected
        assert products_of(everything(paged, segments)) == expected, "however it is paged"
    (ann,) = [p for p in everything(scan, 1) if p.contact_id == "user_id:ann"]
    assert all(r.kind == "view" and r.at == NOW for r in ann.recent_products)
    read = sum(page.read for page in scan.scan(0, 1))
    assert read >= 3, "a Scan pays for every item it reads, filtered out or not"


def test_a_contact_merged_away_is_left_out_and_its_products_found_on_its_contact(profiles):
    store, scan, _ = profiles
    commit(store, A1, viewed(A1, "v1", "hat"))
    commit(store, ANN, viewed(ANN, "v2", "shoes"))
    assert store.claim(A1, ANN, NOW).owner == ANN
    store.move_events(A1, ANN, 100)
    store.absorb(ANN, merge_plan(A1, store.profile(A1), store.profile(ANN)), NOW)
    assert products_of(everything(scan, 2)) == {"user_id:ann": ["hat", "shoes"]}


# --- the staging bucket -------------------------------------------------------------------------------------


@pytest.fixture
def staging(implementation) -> Iterator[Any]:
    if implementation == "fake":
        yield MemoryRecommendationStaging()
        return
    from moto import mock_aws

    from shared.adapters import aws
    from shared.adapters.recommendation_nightly import S3RecommendationStaging

    with mock_aws():
        aws.reset()
        s3 = aws.client("s3")
        s3.create_bucket(
            Bucket="contract-analytics", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        yield S3RecommendationStaging(s3, bucket="contract-analytics")
        aws.reset()


def test_staged_files_are_read_back_as_written_under_the_contract_keys(staging):
    at = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
    interactions = StagedInteractions.of(
        DAY,
        1,
        4,
        [
            ScannedProfile("user_id:ann", (RecentProduct(product_id="hat", kind="purchase", at=at),)),
            ScannedProfile("user_id:bob", (RecentProduct(product_id="hat", kind="view", at=at),)),
        ],
    )
    key = staging.save_interactions(interactions)
    assert (
        key
        == interactions_key(DAY, 1, 4)
        == "analytics/recommendations/2026-11-23/interactions/segment-0001-of-0004.json.gz"
    )
    assert staging.interactions(DAY, 1, 4) == interactions
    assert [(i.contact_id, i.product_id, i.kind, i.at) for i in interactions.interactions()] == [
        ("user_id:ann", "hat", "purchase", at),
        ("user_id:bob", "hat", "view", at),
    ]
    assert staging.interactions(DAY, 2, 4) is None
    part = StagedModelPart(day=DAY, part=3, neighbours={"hat": [("shoes", 0.5)]}, popular=None)
    assert staging.save_model(part) == model_key(DAY, 3)
    assert staging.model(model_key(DAY, 3)) == part
    assert staging.model(model_key(DAY, 4)) is None
    assert staging.save_interactions(interactions) == key, "saved again: the same file"
    assert staging.model_keys(DAY) == [model_key(DAY, 3)]
    assert staging.save_model(part.model_copy(update={"part": 0})) == model_key(DAY, 0)
    assert staging.model_keys(DAY) == [model_key(DAY, 0), model_key(DAY, 3)], "in part order"
    assert staging.model_keys(DAY - timedelta(days=1)) == []


# --- the model's items --------------------------------------------------------------------------------------


class Models:
    def __init__(self, store: Any, read: Any) -> None:
        self.store, self.read = store, read


@pytest.fixture
def models(implementation, config_table) -> Models:
    if implementation == "fake":
        fake = MemoryModelStore()

        def read_fake(key: dict[str, str]) -> StoredList | None:
            found = fake.items.get((key["pk"], key["sk"]))
            return None if found is None else StoredList.model_validate(found)

        return Models(fake, read_fake)
    from shared.adapters.dynamodb import plain_item, s
    from shared.adapters.recommendation_nightly import DynamoModelStore

    db, table = config_table()

    def read(key: dict[str, str]) -> StoredList | None:
        item = db.get_item(TableName=table, Key={k: s(v) for k, v in key.items()}).get("Item")
        return None if item is None else StoredList.model_validate(plain_item(item))

    return Models(DynamoModelStore(db, config_table=table, sleep=lambda _: None), read)


def test_the_items_read_back_in_the_stored_layout_and_a_second_put_replaces_them(models):
    night = [
        StoredModelItem(None, (("hat", Decimal(12)), ("shoes", Decimal("7.5"))), DAY),
        *(StoredModelItem(f"p{i:02d}", (("hat", Decimal("0.25")),), DAY) for i in range(30)),
    ]
    assert models.store.put(night) == 2, "25 puts a request"
    popular = models.read(POPULAR_KEY)
    assert [(n.product_id, n.score) for n in popular.neighbours()] == [("hat", 12.0), ("shoes", 7.5)]
    assert popular.fitted_on == DAY
    assert models.read(neighbours_key("p29")).entries[0].s == Decimal("0.25")
    later = DAY + timedelta(days=1)
    assert models.store.put([StoredModelItem("p00", (("socks", Decimal("0.5")),), later)]) == 1
    replaced = models.read(neighbours_key("p00"))
    assert [n.product_id for n in replaced.neighbours()] == ["socks"] and replaced.fitted_on == later
    assert models.read(neighbours_key("unknown")) is None
    assert models.store.put([], gone=["p01", "p02", "unknown"]) == 1, "deleted in the same kind of request"
    assert models.read(neighbours_key("p01")) is None and models.read(neighbours_key("p02")) is None
    assert models.read(neighbours_key("p03")) is not None
