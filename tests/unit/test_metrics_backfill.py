"""The metrics back-fill's step on the shared fakes: the stage history counted into the lifecycle counters
with the live counting's own markers, so moves counted live are found counted, moves from before the
counting (or lost) are added, and a second run adds nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.clock import FixedClock
from shared.contacts.identity import ContactId
from shared.engagement.events import (
    ContactRemoved,
    ContactStageChanged,
    Output,
    SegmentMembershipChanged,
    removal_id,
)
from shared.errors import InvalidRequest
from shared.metrics.ranges import metric_range
from shared.usecases.backfills import (
    BACKFILL_STEPS,
    BACKFILLS,
    METRICS_BACKFILL,
    MetricsBackfilling,
    SegmentIncomplete,
    backfill_metrics,
    summary,
)
from shared.usecases.metrics import MetricReading, StageMetering, count_stage_move, stage_distribution
from tests.fakes import (
    CountingTelemetry,
    MemoryContactStore,
    MemoryEngagementConfig,
    MemoryMetricStore,
    MemoryOutboxEntry,
    MemoryStageHistoryScan,
    MemoryStageStore,
)

#: the metrics function was deployed then: moves before it were never counted live
DEPLOYED = datetime(2026, 11, 1, tzinfo=UTC)
TODAY = datetime(2026, 12, 31, 12, tzinfo=UTC)
SEGMENTS = 3


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T10:00:00+00:00")


@dataclass
class History:
    """Stage histories as the stage function keeps them, each entry counted live if it happened after
    ``DEPLOYED``; ``everything`` counts every entry (what the counters would hold had counting always run)."""

    stages: MemoryStageStore = field(default_factory=lambda: MemoryStageStore(MemoryContactStore()))
    live: MemoryMetricStore = field(default_factory=MemoryMetricStore)
    everything: MemoryMetricStore = field(default_factory=MemoryMetricStore)
    telemetry: CountingTelemetry = field(default_factory=CountingTelemetry)
    current: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    seq: dict[str, int] = field(default_factory=dict)

    def keep(self, who: str, output: Output) -> str:
        contact = ContactId.user(who)
        self.seq[who] = self.seq.get(who, 0) + 1
        key = f"STAGE#{self.seq[who]:08d}#00"
        self.stages.outbox.setdefault(contact, {})[key] = MemoryOutboxEntry(output)
        return key

    def count(self, event: ContactStageChanged | ContactRemoved) -> None:
        assert count_stage_move(event, StageMetering(self.everything, CountingTelemetry()))
        if event.at >= DEPLOYED:
            assert count_stage_move(event, StageMetering(self.live, CountingTelemetry()))

    def move(self, who: str, to: str, when: datetime) -> str:
        contact = ContactId.user(who)
        was = self.current.get(who)
        event = ContactStageChanged(
            event_id=f"{contact}#{self.seq.get(who, 0) + 1}#0", contact_id=str(contact), at=when,
            from_stage=was[0] if was else None, to_stage=to, phase="acquisition", reason="test",
            engagement=1.0, index=0.1, direction="steady", from_entered_at=was[1] if was else None,
        )  # fmt: skip
        self.current[who] = (to, when)
        self.count(event)
        return self.keep(who, event)

    def remove(self, who: str, when: datetime, reason: str = "merged") -> str:
        contact = ContactId.user(who)
        stage, entered = self.current.pop(who)
        event = ContactRemoved(
            event_id=removal_id(str(contact), entered), contact_id=str(contact), at=when, stage=stage,
            entered_at=entered, reason=reason,
        )  # fmt: skip
        self.count(event)
        return self.keep(who, event)

    def legacy(self, who: str, when: datetime) -> None:
        """An announcement other than a move, stored under ``STAGE#`` before issue 13 (not counted)."""
        contact = ContactId.user(who)
        self.keep(
            who,
            SegmentMembershipChanged(
                event_id=f"{contact}#legacy#{when:%j}", contact_id=str(contact), at=when, segment="vip",
                change="entered",
            ),
        )  # fmt: skip

    def deps(self, scan: MemoryStageHistoryScan | None = None) -> MetricsBackfilling:
        return MetricsBackfilling(
            history=scan or MemoryStageHistoryScan(self.stages),
            metering=StageMetering(self.live, self.telemetry),
            telemetry=self.telemetry,
        )


def history() -> History:
    """c1..c3 placed in October (before the counting), c1 moved on in November; c2 merged away in
    December (its removal counted live), c4 placed and erased in October (never counted), c5 placed in
    December (counted live); c1 and c3 also hold a segment entry from before issue 13 under ``STAGE#``."""
    h = History()
    for who in ("c1", "c2", "c3"):
        h.move(who, "subscriber", at("2026-10-05"))
    h.legacy("c1", at("2026-10-06"))
    h.move("c1", "lead", at("2026-10-20"))
    h.move("c4", "subscriber", at("2026-10-07"))
    h.remove("c4", at("2026-10-25"), reason="erased")
    h.move("c1", "customer", at("2026-11-10"))
    h.legacy("c3", at("2026-11-11"))
    h.remove("c2", at("2026-12-02"))
    h.move("c5", "subscriber", at("2026-12-03"))
    return h


def run(deps: MetricsBackfilling, segments: int = SEGMENTS) -> list[dict[str, Any]]:
    step = {"time": "2026-12-31T12:00:00Z", "run": "seed-1", "segments": segments}
    return [backfill_metrics({**step, "segment": s}, deps) for s in range(segments)]


def populations(store: MemoryMetricStore) -> dict[str, dict[str, int]]:
    reading = MetricReading(store=store, funnels=MemoryEngagementConfig(), clock=FixedClock(TODAY))
    span = metric_range({"period": "month", "from": "2026-10-01", "to": "2026-12-31"}, TODAY.date())
    return {
        p.period: {s: n for s, n in p.population.items() if n}
        for p in stage_distribution(span, reading).periods
    }


def test_the_history_adds_what_was_never_counted_and_finds_the_rest_counted() -> None:
    h = history()
    before = populations(h.live)
    assert before["2026-12"] == {"customer": 1, "lead": -1}, (
        "c1 left a lead it never entered; c2 a subscriber"
    )
    answers = run(h.deps())
    total = summary({"backfill_metrics": answers})
    # 9 entries: c1 3 moves, c2 move and removal, c3 move, c4 move and removal, c5 move
    assert total == {"segments": 3, "entries": 9, "read": 11, "counted": 6, "unreadable": 0}
    assert h.live.counters == h.everything.counters, "as if counting had always run"
    assert populations(h.live) == {
        "2026-10": {"subscriber": 2, "lead": 1},
        "2026-11": {"subscriber": 2, "customer": 1},
        "2026-12": {"subscriber": 2, "customer": 1},
    }
    assert h.telemetry.counts["BackfillStageMovesCounted"] == 6
    assert h.telemetry.counts["BackfillHistoryRead"] == 11


def test_moves_written_before_issue_13_get_their_time_in_stage_from_the_move_before() -> None:
    """History written before issue 13 carries no ``from_entered_at``: the back-fill takes it from the
    contact's previous move, so seeded moves count their time in stage and conversion as live ones do."""
    h = history()
    for contact, entries in h.stages.outbox.items():
        for entry in entries.values():
            if isinstance(entry.output, ContactStageChanged):
                entry.output = entry.output.model_copy(update={"from_entered_at": None})
    h.live = MemoryMetricStore()  # nothing was counted live: everything is seeded from the old history
    run(h.deps())
    assert h.live.counters == h.everything.counters
    october = h.live.counters[("stages", "M#2026-10")]
    assert (october["h:subscriber:15"], october["conv:subscriber>lead"]) == (1, 1)


def test_a_second_run_adds_nothing() -> None:
    h = history()
    run(h.deps())
    counters = {key: dict(values) for key, values in h.live.counters.items()}
    writes = h.live.requests
    again = summary({"backfill_metrics": run(h.deps())})
    assert again is not None and again["entries"] == 9 and again["counted"] == 0
    assert h.live.counters == counters
    assert h.live.requests - writes == 9, "one conditional write per entry, each refused"


def test_the_segments_divide_the_history_between_them_whatever_their_number() -> None:
    for segments in (1, 2, 7):
        h = history()
        answers = run(h.deps(), segments)
        assert [a["segment"] for a in answers] == list(range(segments))
        assert sum(a["entries"] for a in answers) == 9 and sum(a["counted"] for a in answers) == 6
        assert h.live.counters == h.everything.counters


def test_an_entry_that_does_not_parse_is_counted_as_unreadable_and_the_others_are_counted() -> None:
    h = history()
    scan = MemoryStageHistoryScan(h.stages, page_size=1)
    scan.damage(ContactId.user("c4"), "STAGE#00000001#00")
    total = summary({"backfill_metrics": run(h.deps(scan))})
    assert total is not None and (total["entries"], total["counted"], total["unreadable"]) == (8, 5, 1)
    assert scan.requests >= 11, "page by page"


def test_an_entry_whose_count_fails_leaves_the_others_counted_and_the_retry_counts_it_once() -> None:
    h = history()
    h.live.fail_next = 1
    with pytest.raises(SegmentIncomplete, match="1 of 9 history entries"):
        run(h.deps(), 1)
    assert h.telemetry.counts["back-fill of a stage history entry"] == 1
    (answer,) = run(h.deps(), 1)
    assert answer["counted"] == 1
    assert h.live.counters == h.everything.counters


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({"time": "2026-12-31T12:00:00Z", "segment": 3, "segments": 3}, "segment 3 is not one of 0 to 2"),
        ({"segment": 0, "segments": 3}, "time"),
    ],
)
def test_a_wrong_step_input_is_refused_before_anything_is_read(event, problem) -> None:
    h = history()
    scan = MemoryStageHistoryScan(h.stages)
    with pytest.raises(InvalidRequest, match=problem):
        backfill_metrics(event, h.deps(scan))
    assert scan.requests == 0


def test_the_metrics_backfill_is_a_backfill_whose_step_answers_are_summed() -> None:
    assert METRICS_BACKFILL == "metrics_backfill" and METRICS_BACKFILL in BACKFILLS
    assert "backfill_metrics" in BACKFILL_STEPS
