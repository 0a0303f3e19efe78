"""The send ledger (delivery's port): claims that make each send happen once, the transitions after a
provider call, deferrals on the due index that the run store hands back; the same on the fake and moto."""

from __future__ import annotations

from datetime import timedelta

import pytest
from botocore.exceptions import ClientError

from shared.contacts.identity import ContactId
from shared.delivery.ledger import CLAIM_LEASE_SECONDS
from shared.delivery.requests import DeliveryRequest
from shared.errors import DependencyUnavailable
from shared.usecases.automation import DueItem
from tests.contract.helpers import NOW
from tests.fakes import MemoryContactStore, MemoryRunStore, MemorySendLedger

ANN = ContactId.user("ann")
#: a user id holding a ``#``: the ledger still finds the entry by the request id alone
ODD = ContactId.user("a#b")
LEASE = timedelta(seconds=CLAIM_LEASE_SECONDS)


def request(
    contact: ContactId = ANN, occurrence: str = "E#2026-11-23T12:00:00.000Z#m-1", step: int = 0, **fields
) -> DeliveryRequest:
    return DeliveryRequest(
        id=f"{contact}#welcome#{occurrence}#{step}",
        contact_id=str(contact),
        automation="welcome",
        version=1,
        occurrence=occurrence,
        step=step,
        channel=fields.pop("channel", "email"),
        at=NOW,
        subject="Hi",
        text="Welcome",
        **fields,
    )


class Ledger:
    """The port under test, the run store reading the same due index, and a way to fail its writes."""

    def __init__(self, implementation: str, contact_tables) -> None:
        self.implementation = implementation
        if implementation == "fake":
            self.port = MemorySendLedger()
            self.runs = MemoryRunStore(MemoryContactStore(), ledger=self.port)
            return
        from shared.adapters.automation_runs import DynamoRunStore
        from shared.adapters.send_ledger import DynamoSendLedger

        tables = contact_tables()
        self.db, self.table = tables.db, tables.contacts
        self.port = DynamoSendLedger(tables.db, contacts_table=tables.contacts, due_shards=4)
        self.runs = DynamoRunStore(tables.db, contacts_table=tables.contacts, due_shards=4)

    def fail_writes(self) -> None:
        """Every UpdateItem throttled, as DynamoDB throttles it (the fake has no such failure)."""

        def throttled(model, **_) -> None:
            if model.name == "UpdateItem":
                error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "injected"}}
                raise ClientError(error, "UpdateItem")

        self.db.meta.events.register_first("before-parameter-build.dynamodb", throttled)


@pytest.fixture
def ledger(implementation, contact_tables) -> Ledger:
    return Ledger(implementation, contact_tables)


def test_a_new_entry_is_claimed_once_and_a_second_claim_finds_it_busy(ledger) -> None:
    port, sent = ledger.port, request()
    claim = port.claim(sent, NOW)
    assert (claim.outcome, claim.record) == ("claimed", None)
    again = port.claim(sent, NOW + timedelta(seconds=1))
    assert again.outcome == "busy"
    assert (again.record.status, again.record.claimed_at, again.record.attempts) == ("claimed", NOW, 1)
    record = port.record(sent.id)
    assert record.model_dump() == {
        "id": sent.id,
        "contact_id": "user_id:ann",
        "automation": "welcome",
        "channel": "email",
        "status": "claimed",
        "reason": None,
        "attempts": 1,
        "at": NOW,
        "claimed_at": NOW,
        "sent_at": None,
        "provider_id": None,
        "due_at": None,
        "caps_taken": False,
    }


def test_a_sent_entry_is_done_and_a_second_completion_changes_nothing(ledger) -> None:
    port, sent = ledger.port, request()
    port.claim(sent, NOW)
    port.complete(sent, "ses-1", NOW + timedelta(seconds=2))
    port.complete(sent, "ses-2", NOW + timedelta(seconds=3))  # a duplicate completion
    claim = port.claim(sent, NOW + timedelta(days=1))
    assert claim.outcome == "done"
    record = port.record(sent.id)
    assert (record.status, record.provider_id, record.sent_at, record.at) == (
        "sent",
        "ses-1",
        NOW + timedelta(seconds=2),
        NOW + timedelta(seconds=2),
    )
    assert claim.record == record
    port.release(sent, "late failure", NOW + timedelta(days=1))
    port.settle(sent, "skipped", "late check", NOW + timedelta(days=1))
    port.defer(sent, NOW + timedelta(days=2), "quiet hours", NOW + timedelta(days=1))
    assert port.record(sent.id) == record, "a final entry stays as it is"


def test_a_released_entry_is_claimable_again_and_counts_its_attempts(ledger) -> None:
    port, sent = ledger.port, request(channel="sms")
    port.claim(sent, NOW)
    port.release(sent, "provider unavailable", NOW + timedelta(seconds=1))
    record = port.record(sent.id)
    assert (record.status, record.reason, record.attempts) == ("failed", "provider unavailable", 1)
    claim = port.claim(sent, NOW + timedelta(seconds=5))
    assert claim.outcome == "claimed" and claim.record == record
    record = port.record(sent.id)
    assert (record.status, record.reason, record.attempts, record.channel) == ("claimed", None, 2, "sms")
    assert record.claimed_at == NOW + timedelta(seconds=5)


def test_a_release_or_completion_without_a_claim_writes_nothing(ledger) -> None:
    port, sent = ledger.port, request()
    port.release(sent, "x", NOW)
    port.complete(sent, "ses-1", NOW)
    assert port.record(sent.id) is None


def test_a_stale_claim_is_taken_over_and_the_claimer_sees_it_was_claimed(ledger) -> None:
    port, sent = ledger.port, request()
    port.claim(sent, NOW)
    assert port.claim(sent, NOW + LEASE - timedelta(milliseconds=1)).outcome == "busy"
    claim = port.claim(sent, NOW + LEASE)
    assert claim.outcome == "claimed"
    assert (claim.record.status, claim.record.claimed_at) == ("claimed", NOW), "a crashed attempt's claim"
    assert port.record(sent.id).attempts == 2


def test_settled_entries_are_final_with_their_reason(ledger) -> None:
    port = ledger.port
    skipped, held = request(step=1), request(step=2)
    port.claim(skipped, NOW)
    port.settle(skipped, "skipped", "no consent", NOW)
    port.settle(held, "held_out", "held out (control group)", NOW)  # no claim needed
    for entry, status, reason in (
        (skipped, "skipped", "no consent"),
        (held, "held_out", "held out (control group)"),
    ):
        record = port.record(entry.id)
        assert (record.status, record.reason) == (status, reason)
        assert port.claim(entry, NOW + timedelta(days=1)).outcome == "done"
    port.settle(held, "skipped", "another reason", NOW + timedelta(days=1))
    assert port.record(held.id).status == "held_out", "settled once"


def test_a_deferred_entry_is_busy_until_due_then_claimable(ledger) -> None:
    port, sent = ledger.port, request(best_hour=True)
    until = NOW + timedelta(hours=9)
    port.claim(sent, NOW)
    port.defer(sent, until, "quiet hours", NOW)
    record = port.record(sent.id)
    assert (record.status, record.reason, record.due_at, record.attempts) == (
        "deferred",
        "quiet hours",
        until,
        1,
    )
    busy = port.claim(sent, until - timedelta(milliseconds=1))
    assert busy.outcome == "busy" and busy.record.due_at == until
    claim = port.claim(sent, until)
    assert claim.outcome == "claimed" and claim.record.status == "deferred"
    record = port.record(sent.id)
    assert (record.status, record.reason, record.due_at, record.attempts) == ("claimed", None, None, 2)


def test_a_deferred_entry_is_on_the_due_index_and_is_taken_once_to_queue_again(ledger) -> None:
    port, runs, sent = ledger.port, ledger.runs, request(best_hour=True)
    until = NOW + timedelta(hours=9)
    key = sent.id.removeprefix("user_id:ann#")
    port.claim(sent, NOW)
    port.defer(sent, until, "best hour", NOW)
    assert [d for d in runs.due(until - timedelta(milliseconds=1)) if d.kind == "send"] == []
    assert runs.due(until) == [DueItem(ANN, "send", key)]
    retry = until + timedelta(minutes=5)
    assert runs.take_deferred_send(ANN, key, until - timedelta(seconds=1), retry) is None, "not due"
    assert runs.take_deferred_send(ANN, key, until, retry) == sent
    assert runs.take_deferred_send(ANN, key, until, retry) is None, "taken: a second timer run gets nothing"
    assert runs.due(retry - timedelta(milliseconds=1)) == []
    assert runs.due(retry) == [DueItem(ANN, "send", key)], "due again, in case the queueing failed"
    assert port.record(sent.id).status == "deferred"
    assert port.claim(sent, retry).outcome == "claimed"
    assert runs.due(retry + timedelta(days=30)) == [], "a claim takes it off the index"
    assert runs.take_deferred_send(ANN, key, retry + timedelta(days=30), retry) is None


def test_a_settled_deferral_leaves_the_due_index(ledger) -> None:
    port, runs, sent = ledger.port, ledger.runs, request()
    port.claim(sent, NOW)
    port.defer(sent, NOW + timedelta(hours=1), "quiet hours", NOW)
    port.claim(sent, NOW + timedelta(hours=1))
    port.settle(sent, "skipped", "consent revoked", NOW + timedelta(hours=1))
    assert runs.due(NOW + timedelta(days=1)) == []


def test_records_are_the_contacts_own_newest_first_up_to_the_limit(ledger) -> None:
    port = ledger.port
    for step in range(4):
        entry = request(step=step)
        port.claim(entry, NOW + timedelta(minutes=step))
        port.complete(entry, f"ses-{step}", NOW + timedelta(minutes=step))
    port.claim(request(step=0), NOW + timedelta(hours=1))  # done: changes nothing
    port.claim(request(ODD), NOW)
    port.settle(request(ODD), "skipped", "no address", NOW)
    assert [r.provider_id for r in port.records("user_id:ann", limit=3)] == ["ses-3", "ses-2", "ses-1"]
    assert len(port.records("user_id:ann")) == 4
    assert [r.status for r in port.records(str(ODD))] == ["skipped"]
    assert port.records("user_id:nobody") == []


def test_an_entry_is_found_by_its_request_id_even_when_the_user_id_holds_a_hash(ledger) -> None:
    port = ledger.port
    odd = request(ODD)
    port.claim(odd, NOW)
    port.settle(odd, "skipped", "no address", NOW)
    assert port.record(odd.id).contact_id == "user_id:a#b"
    assert port.record("user_id:zed#welcome#o#0") is None


def test_a_throttled_ledger_is_unavailable_not_claimed(ledger) -> None:
    if ledger.implementation == "fake":
        pytest.skip("the fake is never throttled")
    ledger.fail_writes()
    with pytest.raises(DependencyUnavailable):
        ledger.port.claim(request(), NOW)


# --- erasure between a claim and what follows it --------------------------------------------------------


def erase(ledger: Ledger, sent: DeliveryRequest) -> None:
    """The contact's erasure deleting the entry (as ``DynamoContactErasure`` deletes the partition)."""
    if ledger.implementation == "fake":
        del ledger.port.entries[sent.id]
        return
    from shared.adapters.send_ledger import send_key

    ledger.db.delete_item(TableName=ledger.table, Key=send_key(sent))


def partition_items(ledger: Ledger, sent: DeliveryRequest) -> list[dict]:
    if ledger.implementation == "fake":
        return [e for e in ledger.port.entries.values() if e.record.contact_id == sent.contact_id]
    from shared.adapters.send_ledger import send_key

    found = ledger.db.query(
        TableName=ledger.table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": send_key(sent)["pk"]},
    )
    return found["Items"]


def test_no_write_after_a_claim_recreates_an_entry_erased_meanwhile(ledger) -> None:
    port, sent = ledger.port, request(best_hour=True)
    port.claim(sent, NOW)
    erase(ledger, sent)
    port.settle(sent, "skipped", "no consent", NOW)
    port.defer(sent, NOW + timedelta(hours=9), "quiet hours", NOW)
    port.release(sent, "unavailable", NOW, caps_taken=True)
    port.complete(sent, "ses-1", NOW)
    port.drop_claim(sent)
    assert port.record(sent.id) is None
    assert partition_items(ledger, sent) == [], "nothing under the erased partition, least of all the request"
    assert [d for d in ledger.runs.due(NOW + timedelta(days=1)) if d.kind == "send"] == []


def test_a_claimed_entry_is_dropped_and_nothing_else_is(ledger) -> None:
    port, claimed, sent, failed = ledger.port, request(step=0), request(step=1), request(step=2)
    for entry in (claimed, sent, failed):
        port.claim(entry, NOW)
    port.complete(sent, "ses-1", NOW)
    port.release(failed, "unavailable", NOW)
    for entry in (claimed, sent, failed):
        port.drop_claim(entry)
    port.drop_claim(request(step=3))  # absent: nothing to do, nothing written
    assert port.record(claimed.id) is None
    assert port.record(sent.id).status == "sent" and port.record(failed.id).status == "failed"
    assert port.record(request(step=3).id) is None
    assert port.claim(claimed, NOW + timedelta(seconds=1)).outcome == "claimed", "a new entry after a drop"


def test_a_held_out_settlement_needs_no_claim_but_a_skip_does(ledger) -> None:
    port, held, unclaimed = ledger.port, request(step=1), request(step=2)
    port.settle(held, "held_out", "control group", NOW)
    port.settle(unclaimed, "skipped", "no consent", NOW)
    port.defer(unclaimed, NOW + timedelta(hours=1), "quiet hours", NOW)
    assert port.record(held.id).status == "held_out"
    assert port.record(unclaimed.id) is None


def test_the_caps_taken_are_recorded_on_release_and_kept_through_later_claims(ledger) -> None:
    port, sent = ledger.port, request()
    port.claim(sent, NOW)
    port.release(sent, "provider_unavailable", NOW)
    assert port.record(sent.id).caps_taken is False, "not said: not taken"
    port.claim(sent, NOW + timedelta(seconds=30))
    port.release(sent, "provider_unavailable", NOW + timedelta(seconds=31), caps_taken=True)
    assert port.record(sent.id).caps_taken is True
    claim = port.claim(sent, NOW + timedelta(minutes=1))
    assert claim.record.caps_taken is True, "the claimer sees the caps were taken"
    assert port.record(sent.id).caps_taken is True
    port.release(sent, "unavailable", NOW + timedelta(minutes=2))  # a later release does not clear it
    assert port.record(sent.id).caps_taken is True
    port.claim(sent, NOW + timedelta(minutes=3))
    port.complete(sent, "ses-1", NOW + timedelta(minutes=4))
    assert [r.caps_taken for r in port.records("user_id:ann")] == [True], "the card reads it too"


def test_a_claim_in_doubt_stays_claimed_for_its_lease_with_the_caps_it_took(ledger) -> None:
    port, sent = ledger.port, request()
    port.claim(sent, NOW)
    port.mark_in_doubt(sent, NOW + timedelta(seconds=8), caps_taken=True)
    record = port.record(sent.id)
    assert (record.status, record.reason, record.caps_taken) == ("claimed", "provider_in_doubt", True)
    assert record.claimed_at == NOW, "the lease runs from the claim"
    assert port.claim(sent, NOW + LEASE - timedelta(milliseconds=1)).outcome == "busy"
    claim = port.claim(sent, NOW + LEASE)
    assert claim.outcome == "claimed" and claim.record.caps_taken is True
    port.complete(sent, "ses-1", NOW + LEASE)
    port.mark_in_doubt(sent, NOW + LEASE, caps_taken=False)  # not claimed: left as it is
    port.mark_in_doubt(request(step=9), NOW)  # absent: nothing written
    assert port.record(sent.id).status == "sent" and port.record(request(step=9).id) is None
