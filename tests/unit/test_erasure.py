"""The erasure use case on the fakes: who is erased (the person an identity belongs to, with every
identity merged into it, however deep), in which order, and within a budget per request."""

from __future__ import annotations

from shared.contacts.identity import ContactId
from shared.tracking.proofs import unverified_visitor
from shared.usecases.erasure import Erasure, erase, erasure_order
from shared.usecases.recording import link
from tests.contract.helpers import DECAY, NOW, entries
from tests.fakes import CountingTelemetry, MemoryContactErasure, MemoryContactStore

ANN, OLD, BOB = ContactId.user("ann"), ContactId.user("old-ann"), ContactId.user("bob")
A1, A2 = ContactId.anonymous("a1"), ContactId.anonymous("a2")
VISITOR = ContactId.anonymous(unverified_visitor("ann"))


def visits(contact: ContactId, *ids: str) -> list:
    who = {"userId": contact.value} if contact.kind == "user_id" else {"anonymousId": contact.value}
    return entries(contact, *({"type": "page", **who, "messageId": i} for i in ids))


def world() -> tuple[MemoryContactStore, Erasure]:
    """A2 merged into Old Ann, who was then aliased to Ann, as was the visitor A1; Bob alone."""
    store = MemoryContactStore()
    store.append(visits(ANN, "ann-1") + visits(OLD, "old-1") + visits(A1, "a1-1") + visits(A2, "a2-1"))
    store.append(visits(BOB, "bob-1") + visits(VISITOR, "claimed-1"))
    store.deliver_events()
    assert link(A2, OLD, store, NOW, DECAY)
    assert link(OLD, ANN, store, NOW, DECAY)
    assert link(A1, ANN, store, NOW, DECAY)
    erasure = MemoryContactErasure(store)
    erasure.others[ANN] = {"RUN#thanks#o-1#00", "SEND#thanks#o-1#00", "STAGE#00000001#00", "TIMER#kids#o-1#0"}
    return store, Erasure(contacts=store, erasure=erasure, telemetry=CountingTelemetry())


def test_merged_identities_go_deepest_first_and_the_one_asked_for_last():
    _, deps = world()
    order = erasure_order(ANN, ANN, deps.erasure)
    assert order[-1] == ANN and set(order) == {ANN, OLD, A1, A2, VISITOR}
    for position, identity in enumerate(order[:-1]):  # a crash anywhere leaves a way to what is left
        later = order[position + 1 :]
        assert identity == VISITOR or any(identity in deps.erasure.merged_identities(c) for c in later)
    asked_by_visitor = erasure_order(ANN, A1, deps.erasure)
    assert asked_by_visitor[-2:] == [ANN, A1], "the pointer asked for outlives the contact it leads to"


def test_erasing_by_any_identity_erases_the_whole_person_and_only_them():
    store, deps = world()
    result = erase(A2, deps)  # A2 -> Old Ann -> Ann
    assert result.erased == str(ANN) and result.complete and result.identities == 5
    for contact in (ANN, OLD, A1, A2, VISITOR):
        assert store.profile(contact) is None and contact not in store.log
    assert deps.erasure.others[ANN] == set()
    assert store.profile(BOB) is not None and BOB in store.log
    assert deps.telemetry.counts["ContactsErased"] == 1
    again = erase(ANN, deps)
    assert (again.erased, again.items, again.complete) == (str(ANN), 0, True)


def test_a_budget_spreads_the_erasure_over_requests_that_pick_up_where_the_last_stopped():
    store, deps = world()
    small = Erasure(contacts=store, erasure=deps.erasure, telemetry=deps.telemetry, items_per_request=3)
    results = [erase(A1, small)]
    while not results[-1].complete:
        assert len(results) < 30
        results.append(erase(A1, small))
    assert len(results) > 3 and all(r.items <= 3 and r.erased == str(ANN) for r in results)
    for contact in (ANN, OLD, A1, A2, VISITOR):
        assert store.profile(contact) is None and contact not in store.log
