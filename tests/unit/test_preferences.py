"""The unsubscribe and confirmation links on the fakes (``shared.usecases.preferences``): a GET changes
nothing, a POST acts at once and is recorded once, and a bad link gets its 4xx page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.clock import FixedClock
from shared.contacts.identity import ContactId
from shared.delivery.consent import ConsentFact, state
from shared.delivery.links import CONFIRM_PATH, UNSUBSCRIBE_PATH
from shared.delivery.pages import CONTENT_SECURITY_POLICY
from shared.delivery.tokens import LinkClaims, sign
from shared.errors import DependencyUnavailable
from shared.tracking.messages import parse_calls
from shared.tracking.wire import Limits
from shared.usecases.preferences import LinkRequest, Preferences, serve
from shared.usecases.recording import record
from tests.fakes import (
    CountingTelemetry,
    MemoryConsentProfiles,
    MemoryContactStore,
    StaticRules,
    StaticSecret,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ANN = ContactId.user("ann")
SECRET = b"test-delivery-secret"


def token(purpose="unsubscribe", contact="user_id:ann", channel="email", days=60, secret=SECRET) -> str:
    return sign(secret, LinkClaims(purpose, contact, channel, NOW + timedelta(days=days)))


class World:
    def __init__(self) -> None:
        self.clock = FixedClock(NOW)
        self.store = MemoryContactStore()
        self.telemetry = CountingTelemetry()
        self.deps = Preferences(
            clock=self.clock,
            secret=StaticSecret(SECRET),
            profiles=MemoryConsentProfiles(self.store),
            log=self.store,
            telemetry=self.telemetry,
        )

    def known(self, **traits) -> None:
        from shared.scoring.decay import Decay
        from shared.scoring.engine import ScoringContext

        call = {"type": "identify", "userId": "ann", "messageId": "i1", "traits": traits or {"plan": "pro"}}
        events = parse_calls("/v1/identify", call, received_at=NOW - timedelta(days=1), limits=Limits())
        record(events, self.store, NOW, ScoringContext(StaticRules().book(), Decay()))
        self.store.deliver_events()

    def answer(self, method: str, path: str, t: str | None):
        return serve(LinkRequest(method, path, t), self.deps)

    def consent_events(self) -> list:
        return [i.event for i in self.store.log.get(ANN, {}).values() if i.event.event == "Consent Updated"]


@pytest.fixture
def world() -> World:
    return World()


def test_a_get_shows_a_button_that_posts_back_and_changes_nothing(world) -> None:
    world.known(email_opt_in=True)
    before = world.store.profile(ANN)
    t = token()
    page = world.answer("GET", UNSUBSCRIBE_PATH, t)
    assert page.status == 200
    html = page.html()
    assert '<form method="post" action="?t=' in html and t in html
    assert 'name="List-Unsubscribe" value="One-Click"' in html
    assert "<script" not in html and "ann" not in html, "no script, and nothing about the contact"
    assert world.store.profile(ANN) == before and world.consent_events() == []
    assert world.answer("GET", CONFIRM_PATH, token("confirm")).status == 200
    assert world.store.profile(ANN) == before


def test_a_post_unsubscribes_at_once_and_a_replay_is_harmless(world) -> None:
    world.known(email_opt_in=True)
    t = token()
    page = world.answer("POST", UNSUBSCRIBE_PATH, t)
    assert (page.status, page.title) == (200, "You are unsubscribed")
    email = world.store.profile(ANN).consent["email"]
    assert email.revoked == ConsentFact(source="unsubscribe link", at=NOW)
    assert state(email, ()) == "revoked"
    (event,) = world.consent_events()
    assert event.properties == {"source": "unsubscribe link", "email_opt_in": False}
    world.clock.advance(timedelta(minutes=3))
    assert world.answer("POST", UNSUBSCRIBE_PATH, t).status == 200
    assert len(world.consent_events()) == 1, "one event per link"
    assert state(world.store.profile(ANN).consent["email"], ()) == "revoked"
    world.store.deliver_events()  # the aggregation folds the event to the same fact
    assert state(world.store.profile(ANN).consent["email"], ()) == "revoked"
    assert world.telemetry.counts["Unsubscribed"] == 2


def test_a_post_confirms_a_pending_grant(world) -> None:
    world.known(email_opt_in=True, consent_source="signup form")
    assert state(world.store.profile(ANN).consent["email"], {"signup form"}) == "pending"
    page = world.answer("POST", CONFIRM_PATH, token("confirm"))
    assert (page.status, page.title) == (200, "Thank you")
    email = world.store.profile(ANN).consent["email"]
    assert email.confirmed_at == NOW and state(email, {"signup form"}) == "granted"
    (event,) = world.consent_events()
    assert event.properties == {"source": "confirmation link", "channel": "email", "confirmed": True}


def test_a_contact_that_is_gone_gets_the_page_and_nothing_is_written(world) -> None:
    page = world.answer("POST", UNSUBSCRIBE_PATH, token())
    assert page.status == 200
    assert world.store.profile(ANN) is None and world.store.log == {}


@pytest.mark.parametrize(
    ("path", "t"),
    [
        (UNSUBSCRIBE_PATH, None),
        (UNSUBSCRIBE_PATH, ""),
        (UNSUBSCRIBE_PATH, "not-a-token"),
        (UNSUBSCRIBE_PATH, token(secret=b"another secret")),
        (UNSUBSCRIBE_PATH, token()[:-2] + ("AA" if not token().endswith("AA") else "BB")),
        (UNSUBSCRIBE_PATH, token("confirm")),  # a confirmation link does not unsubscribe
        (CONFIRM_PATH, token("unsubscribe")),
        (UNSUBSCRIBE_PATH, token(channel="push")),
    ],
)
def test_a_forged_or_misused_link_is_a_400_page_and_changes_nothing(world, path, t) -> None:
    world.known(email_opt_in=True)
    before = world.store.profile(ANN)
    for method in ("GET", "POST"):
        page = world.answer(method, path, t)
        assert (page.status, page.title) == (400, "This link is not valid")
    assert world.store.profile(ANN) == before and world.consent_events() == []


def test_an_expired_link_is_a_410_page(world) -> None:
    world.known(email_opt_in=True)
    t = token(days=1)
    world.clock.advance(timedelta(days=1))
    for method in ("GET", "POST"):
        assert world.answer(method, UNSUBSCRIBE_PATH, t).status == 410
    assert state(world.store.profile(ANN).consent["email"], ()) == "granted"


def test_a_failing_dependency_is_a_503_page_to_try_again(world) -> None:
    class Unavailable:
        def key(self) -> bytes:
            raise DependencyUnavailable("the secret is not readable right now", retry_after_seconds=5)

    world.deps = Preferences(world.clock, Unavailable(), world.deps.profiles, world.store, world.telemetry)
    page = world.answer("POST", UNSUBSCRIBE_PATH, token())
    assert (page.status, page.headers()["retry-after"]) == (503, "5")


def test_pages_are_not_cached_and_allow_nothing_but_their_own_style() -> None:
    page = World().answer("DELETE", UNSUBSCRIBE_PATH, token())
    assert page.status == 405
    headers = page.headers()
    assert headers["cache-control"] == "no-store"
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY and "script" not in CONTENT_SECURITY_POLICY
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["content-type"].startswith("text/html")


def test_a_link_replayed_after_the_contact_opted_in_again_changes_nothing(world) -> None:
    """A mail client repeating the one-click POST days later must not undo a newer opt-in."""
    world.known(email_opt_in=True)
    issued = NOW - timedelta(hours=1)
    t = sign(
        SECRET, LinkClaims("unsubscribe", "user_id:ann", "email", NOW + timedelta(days=60), issued=issued)
    )
    assert world.answer("POST", UNSUBSCRIBE_PATH, t).status == 200
    assert state(world.store.profile(ANN).consent["email"], ()) == "revoked"
    # Ann opts in again, then the old link is posted again
    world.clock.advance(timedelta(days=2))
    call = {"type": "identify", "userId": "ann", "messageId": "i2", "traits": {"email_opt_in": True}}
    from shared.scoring.decay import Decay
    from shared.scoring.engine import ScoringContext

    events = parse_calls("/v1/identify", call, received_at=world.clock.now(), limits=Limits())
    record(events, world.store, world.clock.now(), ScoringContext(StaticRules().book(), Decay()))
    world.store.deliver_events()
    assert state(world.store.profile(ANN).consent["email"], ()) == "granted"
    assert world.answer("POST", UNSUBSCRIBE_PATH, t).status == 200
    assert state(world.store.profile(ANN).consent["email"], ()) == "granted", "the newer opt-in stands"
    assert world.telemetry.counts["UnsubscribeOlderThanGrant"] == 1
