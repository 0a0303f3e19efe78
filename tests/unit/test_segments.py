"""Segments, pure: the filter language's validation messages, evaluation over what is known of a contact,
and the next moment time alone could change the answer (decay, days passing)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import TypeAdapter

from shared.analytics.facts import Analytics, ChurnFacts, RfmFacts
from shared.contacts.model import ContactRecord
from shared.delivery.consent import ConsentFact, ConsentRecord
from shared.errors import InvalidRequest
from shared.scoring.decay import Decay
from shared.scoring.model import DimensionScore
from shared.segments.book import SegmentBook
from shared.segments.filters import CHANGE_MARGIN, Facts, Filter, matches
from shared.segments.model import MAX_CONDITIONS, parse_segment, stored_segment

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DECAY = Decay(timedelta(days=30))
H = DECAY.half_life
FILTER: TypeAdapter[Any] = TypeAdapter(Filter)


def scored(points: float, at: datetime = NOW, total: float | None = None) -> DimensionScore:
    sums = {}
    for memory in DECAY.memories:
        bucket = memory.bucket(at)
        sums[memory.key] = {bucket: memory.scaled(points, at, bucket)}
    return DimensionScore(total=Decimal(str(points if total is None else total)), sums=sums)


def contact(**fields: Any) -> ContactRecord:
    return ContactRecord(contact_id="user_id:ann", user_id="ann", **fields)


def verdict(condition: dict[str, Any], record: ContactRecord, now: datetime = NOW, **facts: Any):
    return FILTER.validate_python(condition).verdict(Facts(record, now, DECAY, **facts))


def holds(condition: dict[str, Any], record: ContactRecord, now: datetime = NOW) -> bool:
    return matches(FILTER.validate_python(condition), record, now, DECAY)


# --- validation -------------------------------------------------------------------------------------------


def segment(filter_: Any, **fields: Any) -> dict[str, Any]:
    return {"name": "Some", "filter": filter_, **fields}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            segment({"all": [{"trait": "plan", "eq": "pro", "colour": "red"}]}),
            "filter.all.0.colour: Extra inputs are not permitted",
        ),
        (
            segment({"any": [{"tag": "vip"}, {"colour": "red"}]}),
            "filter.any.1: not a condition (it has 'colour'); a condition starts with one of all, any, not, ",
        ),
        (segment({"trait": "plan"}), "filter: trait 'plan': compare it with one of eq, ne, in, contains, "),
        (
            segment({"trait": "plan", "eq": None}),
            "filter: eq: null is not a value to compare with (test for a value with exists)",
        ),
        (segment({"score": "global"}), "filter: compare it with one of eq, gt, gte, lt, lte"),
        (segment({"score": "mood", "gt": 1}), "filter.score: String should match pattern"),
        (segment({"count": "purchases", "gt": 1}), "filter.count: 'purchases' is not a behaviour; they are"),
        (segment({"last": "visit", "within": 3}), "filter.within: Extra inputs are not permitted"),
        (
            segment({"last": "visit", "before": "last week"}),
            "filter.before: 'last week' is not a date (2026-01-31) or a time",
        ),
        (
            segment({"trait": "born", "after": {"days": 3}}),
            "filter.after.days: Extra inputs are not permitted",
        ),
        (
            segment({"trait": "born", "after": {"days_ago": 3, "days_from_now": 1}}),
            "filter.after: give days_ago or days_from_now (one of them)",
        ),
        (segment({"field": "quarter", "eq": "hot"}), "filter: 'hot' is not a quarter; they are nurturing, "),
        (segment({"field": "rfm", "in": ["champs"]}), "filter: 'champs' is not an RFM segment; they are "),
        (segment({"field": "mood", "eq": "x"}), "filter.field: Input should be 'stage', 'quarter', "),
        (segment({"consent": "fax", "eq": "granted"}), "filter.consent: Input should be 'email' or 'sms'"),
        (segment({"consent": "email", "eq": "yes"}), "filter.eq: Input should be 'granted', 'pending', "),
        (segment({"revenue": "total", "gt": "lots"}), "filter.gt: Input should be a valid number"),
        (segment({"all": []}), "filter.all: Tuple should have at least 1 item"),
        (segment([{"tag": "vip"}]), "filter: a condition is an object starting with one of all, any, not,"),
        (
            segment({"not": {"not": {"not": {"not": {"not": {"not": {"tag": "a"}}}}}}}),
            "filter: groups nested 6",
        ),
        (
            segment({"any": [{"tag": f"t{n}"} for n in range(MAX_CONDITIONS + 1)]}),
            "filter.any: Tuple should have at most 50 items",
        ),
        (segment({"tag": "vip"}, colour="red"), "colour: Extra inputs are not permitted"),
        ({"filter": {"tag": "vip"}}, "name: Field required"),
        (segment({"tag": "vip"}, id="other"), "id: 'other' does not match the path ('vip')"),
        ([{"tag": "vip"}], "the segment must be a JSON object"),
    ],
)
def test_a_bad_segment_is_refused_naming_the_field_as_written(body: Any, message: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_segment("vip", body)
    assert refused.value.code == "invalid_segment"
    assert refused.value.message.startswith(message), refused.value.message


def test_more_conditions_than_allowed_in_nested_groups_are_refused() -> None:
    groups = [{"any": [{"tag": f"t{g}-{n}"} for n in range(20)]} for g in range(3)]
    with pytest.raises(InvalidRequest, match="filter: 60 conditions; at most 50"):
        parse_segment("many", segment({"all": groups}))


def test_a_bad_segment_id_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="id: String should match pattern"):
        parse_segment("rfm:champions", segment({"tag": "vip"}))


def test_a_stored_segment_reads_back_as_written_and_can_be_put_back() -> None:
    written = {
        "all": [
            {"trait": "plan", "in": ["pro", "team"]},
            {"not": {"tag": "churned"}},
            {"last": "visit", "more_than_days_ago": 30},
            {"trait": "renewal", "before": {"days_from_now": 14}},
            {"score": "tag:kids", "gte": 20, "lifetime": True},
        ]
    }
    stored = stored_segment(parse_segment("lapsed", segment(written)), 3, NOW)
    shown = stored.model_dump(mode="json")
    assert shown["filter"] == {
        "all": [
            {"trait": "plan", "in": ["pro", "team"]},
            {"not": {"tag": "churned", "has": True}},
            {"last": "visit", "more_than_days_ago": 30},
            {"trait": "renewal", "before": {"days_from_now": 14}},
            {"score": "tag:kids", "gte": 20.0, "lifetime": True},
        ]
    }
    assert parse_segment("lapsed", shown).filter == stored.filter, "a GET can be PUT back as it is"


# --- evaluation -------------------------------------------------------------------------------------------


def test_traits_compare_text_without_case_numbers_by_value_and_true_only_with_true() -> None:
    ann = contact(
        traits={"plan": "Pro", "seats": 12, "beta": True, "langs": ["en", "FR"], "address": {"city": "Oslo"}}
    )
    assert holds({"trait": "plan", "eq": "pro"}, ann)
    assert holds({"trait": "plan", "ne": "team"}, ann)
    assert holds({"trait": "plan", "in": ["team", "PRO"]}, ann)
    assert holds({"trait": "seats", "eq": 12.0}, ann) and not holds({"trait": "seats", "eq": "12"}, ann)
    assert holds({"trait": "seats", "gt": 10, "lte": 12}, ann), "several comparisons: all of them"
    assert not holds({"trait": "seats", "gt": 10, "lt": 12}, ann)
    assert holds({"trait": "beta", "eq": True}, ann) and not holds({"trait": "beta", "eq": 1}, ann)
    assert holds({"trait": "langs", "contains": "fr"}, ann) and holds({"trait": "plan", "contains": "R"}, ann)
    assert holds({"trait": "address.city", "eq": "oslo"}, ann)
    assert holds({"trait": "phone", "exists": False}, ann) and holds({"trait": "plan", "exists": True}, ann)
    assert holds({"trait": "phone", "ne": "x"}, ann), "no value is not equal to anything"
    assert not holds({"trait": "phone", "eq": "x"}, ann) and not holds({"trait": "plan", "gt": 1}, ann)


def test_groups_combine_conditions() -> None:
    ann = contact(tags={"vip": NOW}, counts={"purchase": 3}, revenue_total=Decimal("120.50"))
    assert holds({"all": [{"tag": "vip"}, {"count": "purchase", "gte": 3}]}, ann)
    assert not holds({"all": [{"tag": "vip"}, {"tag": "trial"}]}, ann)
    assert holds({"any": [{"tag": "trial"}, {"revenue": "total", "gt": 100}]}, ann)
    assert holds({"not": {"tag": "trial"}}, ann) and holds({"tag": "trial", "has": False}, ann)
    assert holds({"count": "events", "eq": 0}, ann) and holds({"count": "refund", "lt": 1}, ann)


def test_scores_current_decay_and_lifetime_does_not() -> None:
    ann = contact(scores={"global": scored(80, NOW - 2 * H), "tag:kids": scored(30, NOW, total=90)})
    assert holds({"score": "global", "gte": 19.9, "lt": 20.1}, ann), "80 two half-lives ago: 20 now"
    assert holds({"score": "global", "gt": 79, "lifetime": True}, ann)
    assert holds({"score": "tag:kids", "gte": 90, "lifetime": True}, ann)
    assert holds({"score": "stage", "gt": 19}, ann), "without a stage baseline, the stage score is global"
    entered = ann.model_copy(update={"stage_baseline": scored(40, NOW - 2 * H)})
    assert holds({"score": "stage", "gte": 9.9, "lt": 10.1}, entered), "since entering: (80 - 40) / 4"


def test_a_decaying_score_says_when_it_falls_below_its_bound() -> None:
    ann = contact(scores={"global": scored(80)})
    above = verdict({"score": "global", "gte": 10}, ann)
    assert above.holds and above.changes_at == NOW + 3 * H + CHANGE_MARGIN, "80 -> 10 in three half-lives"
    below = verdict({"score": "global", "lt": 20}, ann)
    assert not below.holds and below.changes_at == NOW + 2 * H + CHANGE_MARGIN
    assert verdict({"score": "global", "gt": 100}, ann).changes_at is None, "never rises without points"
    assert verdict({"score": "global", "gt": 10, "lifetime": True}, ann).changes_at is None
    then = ann.scores["global"].value(DECAY, above.changes_at)
    assert then < 10 and math.isclose(then, 10, rel_tol=1e-4)
    assert not holds({"score": "global", "gte": 10}, ann, above.changes_at)


def test_last_times_pass_their_days() -> None:
    visited = NOW - timedelta(days=20)
    ann = contact(
        last_times={"visit": visited},
        last_seen_at=NOW - timedelta(days=2),
        last_purchase_at=NOW - timedelta(days=100),
        first_seen_at=NOW - timedelta(days=3),
    )
    lapsed = verdict({"last": "visit", "more_than_days_ago": 30}, ann)
    assert not lapsed.holds and lapsed.changes_at == visited + timedelta(days=30) + CHANGE_MARGIN
    assert holds({"last": "visit", "more_than_days_ago": 30}, ann, lapsed.changes_at)
    recent = verdict({"last": "visit", "within_days": 30}, ann)
    assert recent.holds and recent.changes_at == lapsed.changes_at
    assert verdict({"last": "visit", "within_days": 10}, ann).changes_at is None, "past it already: for good"
    assert holds({"last": "purchase", "more_than_days_ago": 90}, ann)
    assert holds({"last": "activity", "within_days": 7}, ann) and holds(
        {"first": "activity", "within_days": 7}, ann
    )
    assert holds({"last": "visit", "after": "2026-10-01", "before": "2026-11-23T00:00:00Z"}, ann)
    never = verdict({"last": "product_viewed", "more_than_days_ago": 30}, ann)
    assert not never.holds and never.changes_at is None, "never done: neither recently nor long ago"
    assert holds({"last": "product_viewed", "exists": False}, ann)


def test_date_traits_against_moments_relative_to_now() -> None:
    ann = contact(traits={"renewal": "2026-12-01", "born": "1990-05-17T00:00:00Z", "note": "soon"})
    renewal = datetime(2026, 12, 1, tzinfo=UTC)
    due = verdict({"trait": "renewal", "before": {"days_from_now": 7}}, ann)
    assert not due.holds and due.changes_at == renewal - timedelta(days=7) + CHANGE_MARGIN
    soon = verdict({"trait": "renewal", "before": {"days_from_now": 14}}, ann)
    assert soon.holds and soon.changes_at is None, "once within the window, always (the bound only moves on)"
    assert holds({"trait": "born", "before": {"days_ago": 365 * 18}}, ann)
    assert holds({"trait": "renewal", "after": "2026-11-30"}, ann)
    assert not holds({"trait": "note", "before": "2030-01-01"}, ann), "not a date: no answer but no"


def test_consent_per_channel_with_double_opt_in() -> None:
    grant = ConsentFact(source="signup-form", at=NOW - timedelta(days=1))
    ann = contact(consent={"email": ConsentRecord(granted=grant), "sms": ConsentRecord(revoked=grant)})
    email = {"consent": "email", "eq": "granted"}
    assert verdict(email, ann).holds
    assert not verdict(email, ann, double_opt_in=frozenset({"signup-form"})).holds, "pending confirmation"
    assert verdict({"consent": "email", "eq": "pending"}, ann, double_opt_in=frozenset({"signup-form"})).holds
    assert holds({"consent": "sms", "eq": "revoked"}, ann) and holds({"consent": "sms", "ne": "granted"}, ann)
    assert holds({"consent": "email", "in": ["granted", "pending"]}, ann)
    assert holds({"consent": "email", "eq": "none"}, contact())


def test_fields_stage_quarter_rfm_churn_and_owner() -> None:
    analytics = Analytics(
        day=NOW.date(),
        rfm=RfmFacts(r=5, f=4, m=5, segment="champions"),
        churn=ChurnFacts(p_no_purchase=0.2, churn_risk=0.7, level="high"),
    )
    ann = contact(stage="customer", quarter="retention", owner="sam", analytics=analytics)
    assert holds({"field": "stage", "in": ["customer", "loyal"]}, ann)
    assert holds({"field": "quarter", "eq": "retention"}, ann)
    assert holds({"field": "rfm", "eq": "champions"}, ann) and holds(
        {"field": "churn_risk", "eq": "high"}, ann
    )
    assert holds({"field": "owner", "exists": True}, ann) and holds({"field": "owner", "ne": "kim"}, ann)
    assert holds({"field": "rfm", "exists": False}, contact()), "never scored: no RFM segment"
    assert not holds({"field": "rfm", "eq": "champions"}, contact())


def test_direction_and_when_it_next_changes() -> None:
    ann = contact(scores={"global": scored(40)})
    rising = verdict({"field": "direction", "eq": "rising"}, ann)
    assert rising.holds and rising.changes_at is not None
    later = rising.changes_at
    assert holds({"field": "direction", "eq": "steady"}, ann, later), "just after, rising no longer"
    assert not holds({"field": "direction", "eq": "steady"}, ann, later - 2 * CHANGE_MARGIN)
    steady = verdict({"field": "direction", "eq": "steady"}, ann, later)
    assert holds({"field": "direction", "eq": "falling"}, ann, steady.changes_at)
    assert verdict({"field": "direction", "eq": "falling"}, ann, steady.changes_at).changes_at is None


def test_groups_know_when_time_alone_can_change_them() -> None:
    ann = contact(scores={"global": scored(80)}, tags={"vip": NOW})
    decaying = {"score": "global", "gte": 10}
    assert verdict({"all": [{"tag": "trial"}, decaying]}, ann).changes_at is None, "fails for good"
    assert verdict({"any": [{"tag": "vip"}, decaying]}, ann).changes_at is None, "holds for good"
    at = NOW + 3 * H + CHANGE_MARGIN
    assert verdict({"all": [{"tag": "vip"}, decaying]}, ann).changes_at == at
    assert verdict({"not": {"any": [{"tag": "trial"}, decaying]}}, ann) == verdict({"not": decaying}, ann)


# --- the book: memberships ------------------------------------------------------------------------------


def book(*segments: tuple[str, dict[str, Any]], paused: frozenset[str] = frozenset()) -> SegmentBook:
    return SegmentBook(
        stored_segment(parse_segment(sid, segment(f, paused=sid in paused)), 1, NOW) for sid, f in segments
    )


def test_the_book_places_a_contact_in_its_segments_and_says_what_changed() -> None:
    segments = book(
        ("vip", {"tag": "vip"}),
        ("engaged", {"score": "global", "gte": 10}),
        ("trial", {"tag": "trial"}),
        ("frozen", {"tag": "vip"}),
        paused=frozenset({"frozen"}),
    )
    ann = contact(tags={"vip": NOW}, scores={"global": scored(80)}, segments=frozenset({"trial", "gone"}))
    membership = segments.evaluate(ann, NOW, DECAY, authoritative=True)
    assert membership.segments == {"vip", "engaged"}
    assert membership.entered == ("engaged", "vip") and membership.left == ("gone", "trial")
    cached = segments.evaluate(ann, NOW, DECAY)
    assert cached.segments == {"vip", "engaged", "gone"} and cached.left == ("trial",), (
        "a book that may be a stale copy leaves memberships of ids it does not know as they are"
    )
    assert membership.changes_at == NOW + 3 * H + CHANGE_MARGIN
    kept = segments.evaluate(ann.model_copy(update={"segments": frozenset({"frozen"})}), NOW, DECAY)
    assert "frozen" in kept.segments, "a paused segment keeps its members as they are"
    assert "frozen" not in membership.segments, "and takes no new ones"


def test_the_book_names_the_last_times_its_segments_read() -> None:
    segments = book(
        ("lapsed", {"last": "visit", "more_than_days_ago": 30}),
        (
            "viewers",
            {"any": [{"last": "product_viewed", "within_days": 7}, {"last": "activity", "exists": True}]},
        ),
        ("buyers", {"last": "purchase", "within_days": 30}),
    )
    assert segments.last_times() == {"visit", "product_viewed"}, "activity and purchases are always kept"


# --- the admin's limits over all segments ------------------------------------------------------------------


def put(deps: Any, segment_id: str, body: dict[str, Any]) -> Any:
    from shared.admin.segments import put_segment
    from shared.http import HttpRequest

    request = HttpRequest(
        method="PUT",
        path=f"/admin/segments/{segment_id}",
        route="PUT /admin/segments/{segmentId}",
        path_parameters={"segmentId": segment_id},
        body=json.dumps(body),
    )
    return put_segment(request, deps)


def test_segments_together_stay_within_their_limits() -> None:
    from types import SimpleNamespace

    from shared.clock import FixedClock
    from shared.segments.model import MAX_SEGMENTS, MAX_TOTAL_CONDITIONS
    from tests.fakes import MemoryBackfills, MemorySegmentRepository

    backfills = MemoryBackfills()
    deps = SimpleNamespace(segments=MemorySegmentRepository(), clock=FixedClock(NOW), backfills=backfills)
    wide = {"any": [{"tag": f"t{n}"} for n in range(MAX_CONDITIONS)]}
    for n in range(MAX_TOTAL_CONDITIONS // MAX_CONDITIONS):
        put(deps, f"wide{n}", segment(wide))
    with pytest.raises(InvalidRequest, match=f"1001 conditions in all; at most {MAX_TOTAL_CONDITIONS}"):
        put(deps, "one-more", segment({"tag": "vip"}))
    assert put(deps, "wide0", segment({"tag": "vip"})).version == 2, "an edit counts its new filter only"
    assert ("contacts_backfill", "seg-wide0-v2") in backfills.runs, "each version saved starts its back-fill"
    assert len(backfills.runs) == MAX_TOTAL_CONDITIONS // MAX_CONDITIONS + 1, "a refused one starts none"
    for n in range(1, MAX_TOTAL_CONDITIONS // MAX_CONDITIONS):
        deps.segments.remove(f"wide{n}", NOW, None)
    for n in range(MAX_SEGMENTS - len(deps.segments.stored())):
        put(deps, f"small{n}", segment({"tag": "vip"}))
    with pytest.raises(InvalidRequest, match=f"{MAX_SEGMENTS} segments are stored already"):
        put(deps, "too-many", segment({"tag": "vip"}))
    assert len(deps.segments.stored()) == MAX_SEGMENTS


# --- the back-fill a change starts, in the admin's answer ------------------------------------------------------


def admin_deps() -> Any:
    from types import SimpleNamespace

    from shared.clock import FixedClock
    from tests.fakes import MemoryBackfills, MemorySegmentRepository

    return SimpleNamespace(
        segments=MemorySegmentRepository(), clock=FixedClock(NOW), backfills=MemoryBackfills()
    )


def change(deps: Any, method: str, segment_id: str, action: str = "", if_match: str | None = None) -> Any:
    from shared.admin.segments import delete_segment, pause_segment, resume_segment
    from shared.http import HttpRequest

    route = f"{method} /admin/segments/{{segmentId}}{action}"
    request = HttpRequest(
        method=method,
        path=f"/admin/segments/{segment_id}{action}",
        route=route,
        path_parameters={"segmentId": segment_id},
        headers={"if-match": if_match} if if_match else {},
    )
    operation = {"DELETE": delete_segment, "/pause": pause_segment, "/resume": resume_segment}
    return operation[action or method](request, deps)


def test_a_change_answers_the_backfill_it_started() -> None:
    deps = admin_deps()
    saved = put(deps, "vip", segment({"tag": "vip"}))
    assert saved.model_dump(mode="json")["backfill"] == {
        "workflow": "contacts_backfill",
        "name": "seg-vip-v1",
        "started": True,
        "status": "/admin/backfills/contacts_backfill/seg-vip-v1",
        "error": None,
    }
    assert change(deps, "POST", "vip", "/pause").backfill is None, "paused: nobody moves"
    resumed = change(deps, "POST", "vip", "/resume")
    assert resumed.version == 3 and resumed.backfill.name == "seg-vip-v3" and resumed.backfill.started
    deleted = change(deps, "DELETE", "vip")
    assert deleted.backfill.name == "seg-vip-v4" and deleted.backfill.started, "its back-fill empties it"


def test_a_name_or_description_edit_starts_no_backfill() -> None:
    deps = admin_deps()
    put(deps, "vip", segment({"tag": "vip"}))
    renamed = put(deps, "vip", {**segment({"tag": "vip"}), "name": "VIPs", "description": "the best"})
    assert renamed.version == 2 and renamed.backfill is None
    assert list(deps.backfills.runs) == [("contacts_backfill", "seg-vip-v1")]
    edited = put(deps, "vip", segment({"tag": "gold"}))
    assert edited.backfill is not None and edited.backfill.name == "seg-vip-v3", "a new filter moves people"
    change(deps, "DELETE", "vip")
    again = put(deps, "vip", segment({"tag": "gold"}))
    assert again.backfill is not None, "the same filter as before its deletion: its members were emptied"


def test_a_save_whose_backfill_fails_to_start_stands_and_says_how_to_start_it() -> None:
    from shared.admin.backfills import start_backfill
    from shared.errors import DependencyUnavailable
    from shared.http import HttpRequest

    deps = admin_deps()
    starting = deps.backfills.start

    def down(workflow: str, name: str) -> bool:
        raise DependencyUnavailable("Step Functions is unavailable; retry later")

    deps.backfills.start = down
    saved = put(deps, "vip", segment({"tag": "vip"}))
    assert saved.version == 1 and deps.segments.stored()[0].version == 1, "the version is stored"
    assert saved.backfill.model_dump() == {
        "workflow": "contacts_backfill",
        "name": "seg-vip-v1",
        "started": None,
        "status": "/admin/backfills/contacts_backfill/seg-vip-v1",
        "error": "DependencyUnavailable: Step Functions is unavailable; retry later",
    }
    deps.backfills.start = starting  # the operator starts it by its name
    request = HttpRequest(
        method="POST",
        path="/admin/backfills/contacts_backfill",
        route="POST /admin/backfills/{workflow}",
        path_parameters={"workflow": "contacts_backfill"},
        body=json.dumps({"name": saved.backfill.name}),
    )
    assert start_backfill(request, deps).started is True
    assert list(deps.backfills.runs) == [("contacts_backfill", "seg-vip-v1")]


def test_a_stage_not_in_the_funnel_is_a_400_naming_it_and_saves_nothing() -> None:
    from shared.segments.model import check_stages, parse_segment
    from tests.fakes import MemoryEngagementConfig

    deps = admin_deps()
    deps.funnels = MemoryEngagementConfig()
    stages = [s.id for s in deps.funnels.stored_funnel()[0].stages]
    assert "lead" in stages and "leed" not in stages
    for typo in (
        {"field": "stage", "eq": "leed"},
        {"not": {"field": "stage", "in": ["lead", "leed"]}},
        {"any": [{"tag": "vip"}, {"all": [{"field": "stage", "ne": "leed"}]}]},
    ):
        with pytest.raises(
            InvalidRequest, match="stage 'leed' is not in the funnel; its stages are subscriber"
        ):
            put(deps, "typo", segment(typo))
    assert deps.segments.stored() == [] and deps.backfills.runs == {}
    assert put(deps, "leads", segment({"field": "stage", "in": ["lead", "mql"]})).version == 1
    with pytest.raises(InvalidRequest, match="stage 'a', 'b' are not in the funnel"):
        check_stages(parse_segment("x", segment({"field": "stage", "in": ["b", "a"]})), stages)
    check_stages(parse_segment("x", segment({"field": "quarter", "eq": "sales"})), [])  # not a stage
    with pytest.raises(InvalidRequest, match="'salse' is not a quarter"):
        parse_segment("x", segment({"field": "quarter", "eq": "salse"}))
    with pytest.raises(InvalidRequest, match="'up' is not a direction"):
        parse_segment("x", segment({"field": "direction", "eq": "up"}))
