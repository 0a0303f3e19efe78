"""Property tests: whatever the order of requests, stream deliveries (redeliveries included) and merges,
every call the tracking path took ends up counted once, in the profile of the contact that holds it.

A few identities and messageIds, so that replays, the same call sent under two identities, merges
(some cut short after their claim), re-routes and redeliveries all happen; small write capacity, so
that batches are cut in parts; a limited rule, so that some parts are refused and planned again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shared.contacts.identity import ContactId
from shared.scoring.catalogue import effective
from shared.scoring.decay import Decay
from shared.scoring.engine import ScoringContext
from shared.scoring.rules import Limit, StoredRule
from shared.tracking.messages import parse_calls
from shared.tracking.wire import Limits
from shared.usecases.aggregation import aggregate
from shared.usecases.recording import ChangeCapacity, record
from tests.fakes import MemoryContactStore, log_key

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DECAY = Decay()
ONCE = StoredRule(id="once", behaviour="product_viewed", points=5, limit=Limit(per_contact=1), version=1)
RULES = [*effective([]), ONCE]

users = st.sampled_from(["ann", "bob", "eve"])
visitors = st.sampled_from(["v1", "v2"])
message_ids = st.sampled_from([f"m{n}" for n in range(8)])
stated_times = [(NOW - timedelta(hours=1)).isoformat(), (NOW - timedelta(hours=2)).isoformat()]
stated = st.sampled_from([None, *stated_times])


def _with(call: dict, message_id: str, time: str | None) -> dict:
    return {**call, "messageId": message_id, **({"timestamp": time} if time else {})}


who = st.one_of(users.map(lambda u: {"userId": u}), visitors.map(lambda v: {"anonymousId": v}))
calls = st.builds(
    _with,
    st.one_of(
        who.map(lambda w: {"type": "page", **w}),
        who.map(lambda w: {"type": "track", "event": "Product Viewed", **w}),
        who.map(lambda w: {"type": "track", "event": "Order Completed", "properties": {"revenue": 3}, **w}),
        st.builds(lambda u, v: {"type": "identify", "userId": u, "anonymousId": v}, users, visitors),
        st.builds(
            lambda u, t: {"type": "identify", "userId": u, "traits": {"plan": t}}, users, st.text(max_size=3)
        ),
        st.builds(lambda u, p: {"type": "alias", "userId": u, "previousId": p}, users, users | visitors),
    ),
    message_ids,
    stated,
)
steps = st.lists(
    st.one_of(
        st.lists(calls, min_size=1, max_size=5).map(lambda batch: ("send", batch)),
        st.just(("fold", None)),
        who.map(lambda w: ("fold failing", ContactId.of(w.get("userId"), w.get("anonymousId")))),
        st.just(("merge", None)),
        st.integers(min_value=0, max_value=50).map(lambda n: ("redeliver", n)),
        st.integers(min_value=0, max_value=50).map(lambda n: ("claim", n)),
    ),
    min_size=1,
    max_size=14,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps)
@example(  # the same call under the user and, still on its way, under the identity aliased into it
    steps=[
        (
            "send",
            [
                {"type": "page", "userId": "ann", "messageId": "m0"},
                {"type": "alias", "userId": "ann", "previousId": "bob", "messageId": "m1"},
            ],
        ),
        ("fold", None),
        ("send", [{"type": "page", "userId": "bob", "messageId": "m0"}]),
        ("merge", None),
    ]
)
@example(  # a visitor's call on its way while the visitor is merged into bob and bob into ann (one run)
    steps=[
        (
            "send",
            [
                {"type": "identify", "userId": "bob", "anonymousId": "v1", "messageId": "m0"},
                {"type": "alias", "userId": "ann", "previousId": "bob", "messageId": "m1"},
            ],
        ),
        ("fold", None),
        ("send", [{"type": "page", "anonymousId": "v1", "messageId": "m0", "timestamp": stated_times[0]}]),
        ("merge", None),
    ]
)
@example(  # the same, and ann holds the call too: bob's copy is taken back, and given back by bob's mark
    steps=[
        (
            "send",
            [
                {"type": "identify", "userId": "bob", "anonymousId": "v1", "messageId": "m2"},
                {"type": "alias", "userId": "ann", "previousId": "bob", "messageId": "m1"},
                {"type": "page", "userId": "ann", "messageId": "m0"},
            ],
        ),
        ("fold", None),
        ("send", [{"type": "page", "anonymousId": "v1", "messageId": "m0"}]),
        ("merge", None),
    ]
)
@example(  # a call re-routed and counted into ann, taken back when ann joins eve (who holds it), redelivered
    steps=[
        ("send", [{"type": "identify", "userId": "ann", "anonymousId": "v1", "messageId": "m2"}]),
        ("fold", None),
        ("merge", None),
        ("send", [{"type": "page", "anonymousId": "v1", "messageId": "m0"}]),
        ("fold", None),
        (
            "send",
            [
                {"type": "page", "userId": "eve", "messageId": "m0"},
                {"type": "alias", "userId": "eve", "previousId": "ann", "messageId": "m1"},
            ],
        ),
        ("fold", None),
        ("merge", None),
        ("redeliver", 1),
    ]
)
def test_every_call_taken_counts_once_where_it_ends_up(steps) -> None:
    store = MemoryContactStore(capacity=ChangeCapacity(max_events=2, max_keys=300))
    scoring = ScoringContext(store.aggregation(RULES).rules.book(), DECAY)
    delivered: list[list] = []
    taken: set[str] = set()
    for number, (kind, arg) in enumerate(steps):
        at = NOW + timedelta(minutes=number)
        if kind == "send":
            events = parse_calls("/v1/batch", {"batch": arg}, received_at=at, limits=Limits())
            before = {c: set(log) for c, log in store.log.items()}
            record(events, store, at, scoring)
            taken |= {key for c, log in store.log.items() for key in set(log) - before.get(c, set())}
        elif kind == "fold":
            batch = store.new_events()
            delivered.append(batch)
            assert aggregate(batch, store.aggregation(RULES, DECAY)).failed_from is None
        elif kind == "fold failing":  # one contact's writes fail: the stream resumes at its first record
            batch = store.new_events()
            delivered.append(batch)
            store.failing.add(arg)
            failed_from = aggregate(batch, store.aggregation(RULES, DECAY)).failed_from
            store.failing.clear()
            retry = [new for new in batch if failed_from is not None and new.position >= failed_from]
            assert aggregate(retry, store.aggregation(RULES, DECAY)).failed_from is None
        elif kind == "merge":
            store.deliver_merges(at, DECAY)
        elif kind == "claim":  # a merge function that died after its first step (it runs again later)
            if store.merge_requests:
                request = store.merge_requests[arg % len(store.merge_requests)]
                for source in request.sources:
                    store.claim(source, request.target, at)
        elif delivered:  # the stream delivers an earlier batch again
            aggregate(delivered[arg % len(delivered)], store.aggregation(RULES, DECAY))
    for _ in range(10):  # let the streams run dry
        folded = store.deliver_events(RULES, DECAY)
        assert folded.failed_from is None, folded.errors
        store.deliver_merges(NOW + timedelta(days=1), DECAY)
        if not store.stream and not store.merge_requests:
            break
    assert not store.stream and not store.merge_requests, "every merge completes once its events are in"

    holders = {c: p for c, p in store.profiles.items() if not p.merged_into}
    for contact, profile in store.profiles.items():
        log = store.log.get(contact, {})
        if profile.merged_into:
            assert not log, f"{contact} is merged away but its log still holds {sorted(log)}"
            continue
        assert profile.event_count == len(log), (contact, profile.event_count, sorted(log))
        assert sum(profile.counts.values()) == profile.event_count, contact
    held = {key for c in holders for key in store.log.get(c, {})}
    assert held == taken, "every call taken is held by a contact that is not merged away"
    assert all(
        ContactId.parse(p.merged_into) in store.profiles for p in store.profiles.values() if p.merged_into
    )
    assert all(log_key(item.event) == key for log in store.log.values() for key, item in log.items())
