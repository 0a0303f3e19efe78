"""Issue 15: a contact's recent products, kept on its profile by the aggregation (the contact store's
port) and by merges (the merge store's), the same on the fake and on the DynamoDB adapters.

The products an order bought and the products viewed, one entry per product, newest first, at most 50;
a product bought stays a purchase; a redelivered event changes nothing; a merge keeps the union.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.contacts.identity import ContactId
from shared.recommendations.recent import MAX_RECENT
from shared.usecases.recording import Absorbed, merge_plan
from tests.contract.helpers import NOW, change, entries, positioned
from tests.fakes import MemoryContactStore

ANN, A1 = ContactId.user("ann"), ContactId.anonymous("a1")


@pytest.fixture
def store(implementation, contact_tables):
    if implementation == "fake":
        return MemoryContactStore()
    return contact_tables().stores()


def _who(contact: ContactId) -> dict:
    return {"userId": contact.value} if contact.kind == "user_id" else {"anonymousId": contact.value}


def order(contact: ContactId, message_id: str, *products: str, hours_ago: float = 1) -> dict:
    return {
        "type": "track",
        **_who(contact),
        "event": "Order Completed",
        "messageId": message_id,
        "timestamp": (NOW - timedelta(hours=hours_ago)).isoformat(),
        "properties": {"revenue": 10, "products": [{"product_id": p, "category": "c"} for p in products]},
    }


def viewed(contact: ContactId, message_id: str, product: str, hours_ago: float = 1) -> dict:
    return {
        "type": "track",
        **_who(contact),
        "event": "Product Viewed",
        "messageId": message_id,
        "timestamp": (NOW - timedelta(hours=hours_ago)).isoformat(),
        "properties": {"product_id": product},
    }


def commit(store, contact: ContactId, *calls: dict) -> None:
    """The calls recorded for the contact, and folded into its profile by the aggregation."""
    assert store.append(entries(contact, *calls)) == frozenset()
    folded = store.deliver_events()
    assert folded.failed_from is None and folded.events == len(calls)


def products(store, contact: ContactId) -> list[tuple[str, str]]:
    return [(p.product_id, p.kind) for p in store.profile(contact).recent_products]


def test_an_orders_basket_and_the_products_viewed_are_kept_newest_first_one_entry_each(store):
    commit(
        store,
        ANN,
        viewed(ANN, "v1", "shoes", hours_ago=5),
        order(ANN, "o1", "shoes", "socks", hours_ago=4),
        viewed(ANN, "v2", "hat", hours_ago=3),
        viewed(ANN, "v3", "shoes", hours_ago=2),
        {"type": "page", **_who(ANN), "messageId": "p1"},
    )
    recent = store.profile(ANN).recent_products
    assert [(p.product_id, p.kind) for p in recent] == [
        ("shoes", "purchase"),  # bought, then viewed again: still a purchase, at its last interaction
        ("hat", "view"),
        ("socks", "purchase"),
    ]
    assert recent[0].at == NOW - timedelta(hours=2)
    assert recent[2].at == NOW - timedelta(hours=4)


def test_later_batches_add_to_the_products_and_a_view_never_makes_a_purchase_a_view(store):
    commit(store, ANN, order(ANN, "o1", "shoes", hours_ago=3))
    commit(store, ANN, viewed(ANN, "v1", "hat", hours_ago=2), viewed(ANN, "v2", "shoes", hours_ago=1))
    assert products(store, ANN) == [("shoes", "purchase"), ("hat", "view")]
    commit(store, ANN, order(ANN, "o2", "hat", hours_ago=0.5))
    assert products(store, ANN) == [("hat", "purchase"), ("shoes", "purchase")]


def test_a_change_delivered_again_adds_no_products(store):
    first = positioned(change(ANN, viewed(ANN, "v1", "hat"), order(ANN, "o1", "shoes")), 1, 2)
    assert store.commit([first])[0].committed
    assert not store.commit([first])[0].committed, "folded in before: refused by its stream position"
    later = positioned(change(ANN, viewed(ANN, "v2", "scarf", hours_ago=0.5)), 3)
    assert store.commit([later])[0].committed
    assert products(store, ANN) == [("scarf", "view"), ("hat", "view"), ("shoes", "purchase")]


def test_the_profile_keeps_the_newest_products_only(store):
    total = 3 * MAX_RECENT + 7
    calls = [viewed(ANN, f"v{i}", f"p{i:03d}", hours_ago=(total - i) / 10) for i in range(total)]
    for start in range(0, total, 30):  # in batches, as the stream delivers them
        commit(store, ANN, *calls[start : start + 30])
    kept = products(store, ANN)
    assert len(kept) == MAX_RECENT
    assert kept == [(f"p{i:03d}", "view") for i in reversed(range(total - MAX_RECENT, total))]


def test_a_merge_keeps_the_union_of_both_contacts_products_once(store):
    commit(store, A1, viewed(A1, "v1", "hat", hours_ago=5), order(A1, "o1", "socks", hours_ago=4))
    commit(store, ANN, viewed(ANN, "v2", "socks", hours_ago=1), viewed(ANN, "v3", "shoes", hours_ago=2))
    assert store.claim(A1, ANN, NOW).owner == ANN
    store.move_events(A1, ANN, 100)
    plan = merge_plan(A1, store.profile(A1), store.profile(ANN))
    assert store.absorb(ANN, plan, NOW) is Absorbed.DONE
    assert store.absorb(ANN, plan, NOW) is Absorbed.ALREADY
    assert products(store, ANN) == [("socks", "purchase"), ("shoes", "view"), ("hat", "view")]
    assert store.profile(ANN).recent_products[0].at == NOW - timedelta(hours=1)


def test_the_stored_list_is_written_back_folded_once_it_grows_past_its_bound(contact_tables):
    """The adapter appends blindly: past ``COMPACT_AT`` entries it writes the list back folded, as a
    writer neither the stage function nor the merge function listens to."""
    from infra.wiring import PROFILE_WRITERS_EVALUATED
    from shared.adapters.contact_items import COMPACT_AT, COMPACTION_WRITER, RECENT_PRODUCTS, profile_key

    tables = contact_tables()
    store = tables.stores()
    lengths, writers = [], []
    for i in range(COMPACT_AT // 2 + 5):  # the same two products viewed again and again: duplicates
        hours_ago = (1000 - i) / 10
        commit(
            store,
            ANN,
            viewed(ANN, f"v{i}a", "p0", hours_ago=hours_ago),
            viewed(ANN, f"v{i}b", "p1", hours_ago=hours_ago - 0.01),
        )
        item = tables.db.get_item(TableName=tables.contacts, Key=profile_key(ANN))["Item"]
        lengths.append(len(item[RECENT_PRODUCTS]["L"]))
        writers.append(item["lastWriter"]["S"])
    assert lengths[: COMPACT_AT // 2] == list(range(2, COMPACT_AT + 1, 2)), "appended blindly up to the bound"
    assert lengths[COMPACT_AT // 2 :] == [2, 4, 6, 8, 10], "past it, written back folded: one entry each"
    assert products(store, ANN) == [("p1", "view"), ("p0", "view")]
    assert writers[COMPACT_AT // 2] == COMPACTION_WRITER and writers[-1] == "tracking"
    assert COMPACTION_WRITER not in PROFILE_WRITERS_EVALUATED, "the stage function ignores it"


def test_a_write_back_that_fails_leaves_the_change_committed_and_the_next_fold_does_it(contact_tables):
    """The change is committed before the list is written back: a throttled write-back fails nothing."""
    from botocore.exceptions import ClientError

    from shared.adapters.contact_items import RECENT_PRODUCTS, profile_key
    from shared.adapters.contact_store import DynamoContactStore

    tables = contact_tables()

    class Throttled:
        """The table's client, whose write-backs (the list alone, on condition of ``rev``) are throttled
        while ``refusing``."""

        refusing = True

        def __getattr__(self, name: str):
            return getattr(tables.db, name)

        def update_item(self, **request):
            if self.refusing and request.get("ConditionExpression") == "#v = :v":
                error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}
                raise ClientError(error, "UpdateItem")
            return tables.db.update_item(**request)

    client = Throttled()
    store = DynamoContactStore(
        client, contacts_table=tables.contacts, events_table=tables.events, sleep=lambda _: None
    )

    def stored() -> int:
        item = tables.db.get_item(TableName=tables.contacts, Key=profile_key(ANN))["Item"]
        return len(item[RECENT_PRODUCTS]["L"])

    for n in range(3):  # 50 distinct products a change: 150 stored, past the bound
        views = [viewed(ANN, f"v{n}-{i}", f"p{n}-{i:02d}", hours_ago=10 - n - i / 100) for i in range(50)]
        assert store.commit([positioned(change(ANN, *views), n + 1)])[0].committed
    assert stored() == 150, "the write-back was throttled: the list stays longer"
    assert len(store.profile(ANN).recent_products) == MAX_RECENT
    client.refusing = False
    assert store.commit([positioned(change(ANN, viewed(ANN, "late", "kite", hours_ago=0.1)), 4)])[0].committed
    assert stored() == MAX_RECENT
    assert store.profile(ANN).recent_products[0].product_id == "kite"
