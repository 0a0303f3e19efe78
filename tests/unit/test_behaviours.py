import pytest

from shared.tracking.behaviours import SERVER_ONLY, TRACK_EVENTS, Behaviour, classify


def page(url="https://shop.example/p", referrer="", campaign=None):
    context = {"page": {"url": url, "referrer": referrer}}
    if campaign:
        context["campaign"] = campaign
    return classify("page", None, {}, context)


def test_plain_visit() -> None:
    assert page().behaviour is Behaviour.VISIT


@pytest.mark.parametrize("query", ["gclid=abc", "fbclid=x", "msclkid=1", "utm_source=google&utm_medium=cpc"])
def test_visit_from_ads(query: str) -> None:
    result = page(url=f"https://shop.example/p?{query}")
    assert result.behaviour is Behaviour.VISIT_FROM_ADS


def test_newsletter_utm_is_not_advertising() -> None:
    result = page(campaign={"source": "newsletter", "medium": "email"})
    assert result.behaviour is Behaviour.VISIT
    assert result.attributes["utm_medium"] == "email"


def test_visit_from_search_keeps_engine_and_phrase() -> None:
    result = page(referrer="https://www.google.com/search?q=red+shoes")
    assert result.behaviour is Behaviour.VISIT_FROM_SEARCH
    assert result.attributes["search_engine"] == "google"
    assert result.attributes["search_phrase"] == "red shoes"
    assert page(referrer="https://blog.example/post").behaviour is Behaviour.VISIT


def test_paid_search_counts_as_ads() -> None:
    result = page(url="https://shop.example/?gclid=1", referrer="https://www.google.com/")
    assert result.behaviour is Behaviour.VISIT_FROM_ADS


@pytest.mark.parametrize(
    ("name", "behaviour"),
    [
        ("Order Completed", Behaviour.PURCHASE),
        ("order_completed", Behaviour.PURCHASE),
        ("ORDER-COMPLETED", Behaviour.PURCHASE),
        ("Product Added", Behaviour.ADDED_TO_CART),
        ("Cart Abandoned", Behaviour.CART_ABANDONED),
        ("Link Clicked", Behaviour.LINK_CLICKED),
        ("Comment Added", Behaviour.COMMENT_ADDED),
        ("Comment Removed", Behaviour.COMMENT_REMOVED),
        ("Liked", Behaviour.LIKE),
        ("Disliked", Behaviour.DISLIKE),
        ("Call Center Contacted", Behaviour.CALL_CENTRE_CONTACT),
        ("Store Visited", Behaviour.STORE_VISIT),
        ("Live Chat Conversation Started", Behaviour.LIVE_CHAT),
        ("Application Installed", Behaviour.APP_INSTALLED),
        ("Application Opened", Behaviour.APP_USED),
        ("Webinar Attended", Behaviour.WEBINAR_ATTENDED),
        ("Webinar Question Asked", Behaviour.WEBINAR_QUESTION_ASKED),
        ("Segment Consent Preference Updated", Behaviour.CONSENT_CHANGED),
        ("Something Only We Do", Behaviour.CUSTOM),
    ],
)
def test_track_names(name: str, behaviour: Behaviour) -> None:
    assert classify("track", name, {}, {}).behaviour is behaviour


def test_email_from_a_mailing_or_a_personal_mailbox() -> None:
    assert (
        classify("track", "Email Opened", {"campaign_id": "c1"}, {}).behaviour
        is Behaviour.EMAIL_OPENED_MAILING
    )
    assert (
        classify("track", "Email Opened", {"mailbox": "personal"}, {}).behaviour
        is Behaviour.EMAIL_OPENED_PERSONAL
    )
    clicked = classify("track", "Email Link Clicked", {"email_type": "one_to_one"}, {})
    assert clicked.behaviour is Behaviour.EMAIL_CLICKED_PERSONAL
    assert classify("track", "Email Link Clicked", {}, {}).behaviour is Behaviour.EMAIL_CLICKED_MAILING


def test_every_mapped_name_is_a_known_behaviour_and_money_is_server_only() -> None:
    assert {Behaviour.PURCHASE, Behaviour.REFUND, Behaviour.CONSENT_CHANGED, Behaviour.ALIASED} <= SERVER_ONLY
    for name in TRACK_EVENTS:
        assert classify("track", name, {}, {}).behaviour is not Behaviour.CUSTOM
