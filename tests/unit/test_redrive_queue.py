"""The redrive's hold on a dead letter: a long run re-hides each letter before its range, and a letter it
no longer holds is skipped and kept, never deleted or crashed on."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from infra.redrive import DeadLetter, Redrive
from infra.redrive.aws import SqsDeadLetters


class Sqs:
    def __init__(self, lost: set[str]) -> None:
        self.lost, self.calls = lost, []

    def change_message_visibility(self, **request: Any) -> None:
        self.calls.append(("visibility", request["ReceiptHandle"], request["VisibilityTimeout"]))
        if request["ReceiptHandle"] in self.lost:
            raise ClientError({"Error": {"Code": "ReceiptHandleIsInvalid"}}, "ChangeMessageVisibility")

    def delete_message(self, **request: Any) -> None:
        self.calls.append(("delete", request["ReceiptHandle"], None))


def test_a_letter_no_longer_held_is_skipped_and_kept() -> None:
    sqs = Sqs(lost={"r-lost"})
    queue = SqsDeadLetters(sqs, "https://queue", visibility_seconds=900)
    held, lost = DeadLetter("m1", "{}", "r-held"), DeadLetter("m2", "{}", "r-lost")
    assert queue.hold(held) and not queue.hold(lost)
    queue.release(lost)  # tolerated: the message is visible again already
    assert sqs.calls == [
        ("visibility", "r-held", 900),
        ("visibility", "r-lost", 900),
        ("visibility", "r-lost", 0),
    ]


def test_each_letter_is_held_again_just_before_its_range_is_redriven() -> None:
    class Queue:
        def __init__(self) -> None:
            self.log: list[str] = []

        def receive(self) -> list[DeadLetter]:
            return [DeadLetter("m1", "not a batch record", "r1"), DeadLetter("m2", "{}", "r2")]

        def hold(self, letter: DeadLetter) -> bool:
            self.log.append(f"hold {letter.message_id}")
            return letter.message_id != "m2"

        def delete(self, letter: DeadLetter) -> None:
            self.log.append(f"delete {letter.message_id}")

        def release(self, letter: DeadLetter) -> None:
            self.log.append(f"release {letter.message_id}")

    queue = Queue()
    results = Redrive(queue=queue, ranges=None, invoker=None, passes=lambda _: True).run()
    assert {r.message_id: r.outcome for r in results} == {"m1": "unreadable", "m2": "skipped"}
    assert "delete m2" not in queue.log and "release m2" not in queue.log
    assert queue.log.index("hold m1") < queue.log.index("release m1")
