from datetime import UTC, datetime

import pytest

from shared.errors import Forbidden
from shared.tracking.messages import parse_calls
from shared.tracking.trust import Source, Trust, authorise, consent_traits, is_consent_trait, words
from shared.tracking.wire import Limits

BROWSER = Source("website", Trust.BROWSER)
SERVER = Source("backend", Trust.SERVER)


def events(path, payload):
    return parse_calls(path, payload, received_at=datetime(2026, 11, 23, tzinfo=UTC), limits=Limits())


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/v1/track", {"userId": "u", "event": "Order Completed"}),
        ("/v1/track", {"userId": "u", "event": "Order Refunded"}),
        ("/v1/track", {"userId": "u", "event": "Consent Updated"}),
        ("/v1/alias", {"userId": "u", "previousId": "old"}),
        ("/v1/identify", {"userId": "u", "traits": {"email_opt_in": True}}),
        ("/v1/identify", {"userId": "u", "context": {"traits": {"Unsubscribed": False}}}),
    ],
)
def test_server_only_facts(path, payload) -> None:
    calls = events(path, payload)
    with pytest.raises(Forbidden):
        authorise(BROWSER, calls)
    authorise(SERVER, calls)


def test_browser_may_report_behaviour_and_identify() -> None:
    authorise(
        BROWSER,
        events(
            "/v1/batch",
            {
                "batch": [
                    {"type": "page", "anonymousId": "a"},
                    {
                        "type": "identify",
                        "userId": "u",
                        "anonymousId": "a",
                        "traits": {"email": "a@example.com"},
                    },
                    {"type": "track", "userId": "u", "event": "Product Viewed"},
                    {"type": "group", "userId": "u", "groupId": "g", "traits": {"consent": "company field"}},
                ]
            },
        ),
    )


def test_one_forbidden_call_rejects_the_batch() -> None:
    calls = events(
        "/v1/batch",
        {
            "batch": [
                {"type": "page", "anonymousId": "a"},
                {"type": "track", "userId": "u", "event": "Order Completed"},
            ]
        },
    )
    with pytest.raises(Forbidden, match="Order Completed"):
        authorise(BROWSER, calls)


#: Consent and contact-permission traits as Segment, Shopify, HubSpot, Mautic, Salesforce, Braze,
#: Intercom, Marketo, Brevo and plain hand-written code name them.
CONSENT_NAMES = [
    # the probes
    "accepts_marketing",
    "marketing_opt_in",
    "newsletter_opt_in",
    "unsubscribe",
    "email_unsubscribed",
    "consent_given",
    "tracking_consent",
    # Segment
    "consent",
    "categoryPreferences",
    # Shopify
    "acceptsMarketing",
    "email_marketing_consent",
    "sms_marketing_consent",
    "marketing_opt_in_level",
    # HubSpot
    "hs_email_optout",
    "hs_email_optout_12345678",
    "hs_legal_basis",
    "hs_email_subscription_status",
    # Mautic
    "doNotContact",
    "dnc",
    # Salesforce, Marketo, Intercom, Braze, Brevo
    "HasOptedOutOfEmail",
    "DoNotCall",
    "marketingSuspended",
    "unsubscribed_from_emails",
    "email_subscribe",
    "subscription_groups",
    "emailBlacklisted",
    # generic spellings
    "optIn",
    "opt-out",
    "OPTOUT",
    "Email Opt In",
    "emailoptin",
    "opted_in",
    "subscribed",
    "is_subscribed",
    "subscription_status",
    "newsletter_subscriber",
    "gdpr",
    "GDPRConsent",
    "ccpa_do_not_sell",
    "do_not_track",
    "do-not-email",
    "marketing_permissions",
    "email_preferences",
    "communication_preferences",
    "allow_marketing",
]
ORDINARY_NAMES = [
    "plan",
    "company",
    "email",
    "name",
    "phone",
    "newsletter",
    "preferences",
    "status",
    "subscription",
    "subscription_plan",
    "subscription_id",
    "subscription_tier",
    "subscription_type",
    "subscriptionRenewalAt",
    "subscriber_count",
    "option",
    "optionalField",
    "optimization_score",
    "adopting",
    "donation_amount",
    "top_interest",
    "email_verified",
    "marketing_source",
    "preferred_email",
    "accept_language",
    "accepted_terms_at",
    "allowed_domains",
    "notes",
]


def test_names_are_read_as_words_whatever_the_case_convention() -> None:
    for name in ("doNotContact", "do_not_contact", "Do-Not Contact", "DO_NOT_CONTACT", "DoNotContact"):
        assert words(name) == ("do", "not", "contact")
    assert words("GDPRConsent") == ("gdpr", "consent")
    assert words("hs_email_optout_123") == ("hs", "email", "optout", "123")


@pytest.mark.parametrize("name", CONSENT_NAMES)
def test_consent_vocabularies_are_recognised(name: str) -> None:
    assert is_consent_trait(name)


@pytest.mark.parametrize("name", ORDINARY_NAMES)
def test_ordinary_traits_are_not_consent(name: str) -> None:
    assert not is_consent_trait(name)


@pytest.mark.parametrize("name", CONSENT_NAMES)
def test_a_browser_key_may_not_set_a_consent_trait(name: str) -> None:
    for traits in ({"traits": {name: True}}, {"context": {"traits": {name: "yes"}}}):
        calls = events("/v1/identify", {"userId": "u", **traits})
        with pytest.raises(Forbidden, match=name) as caught:
            authorise(BROWSER, calls)
        assert caught.value.code == "server_key_required"
        authorise(SERVER, calls)


def test_consent_is_found_at_any_depth_and_named_by_its_path() -> None:
    traits = {
        "email": "a@example.com",
        "preferences": {"theme": "dark", "unsubscribed": True},
        "channels": [{"name": "sms"}, {"sms_consent": True}],
        "profile": {"settings": {"notifications": {"emailOptOut": True}}},
        "subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED"}}},  # Klaviyo
    }
    assert consent_traits(traits) == [
        "channels[1].sms_consent",
        "preferences.unsubscribed",
        "profile.settings.notifications.emailOptOut",
        "subscriptions.email.marketing.consent",
    ]
    assert consent_traits({"consent": {"categoryPreferences": {"ads": False}}}) == ["consent"]
    with pytest.raises(Forbidden, match=r"preferences\.unsubscribed"):
        authorise(BROWSER, events("/v1/identify", {"userId": "u", "traits": traits}))


def test_ordinary_nested_traits_pass_from_a_browser() -> None:
    traits = {name: {"plan": "pro", "company": {"name": "Acme"}} for name in ORDINARY_NAMES}
    authorise(BROWSER, events("/v1/identify", {"userId": "u", "traits": traits}))
