"""Default general rules: points per behaviour, shipped with Lifecycle.

The values follow common lead-scoring practice (HubSpot, Mautic, SALESmanago): explicit intent
(purchase, add to cart, webinar, store visit) outweighs passive attention (a visit, an opened
mailing); one-to-one email counts more than a mailing; taking something back (dislike, removed
comment, refund) takes points back. Administrators override any of them by storing a rule with the
same id, or switch one off with ``"enabled": false``.
"""

from __future__ import annotations

from shared.scoring.rules import StoredRule
from shared.tracking.behaviours import Behaviour

B = Behaviour

#: (behaviour, points, why)
GENERAL_POINTS: tuple[tuple[Behaviour, int, str], ...] = (
    (B.VISIT, 1, "a page or screen view"),
    (B.VISIT_FROM_ADS, 2, "came from a paid campaign: the ad worked"),
    (B.VISIT_FROM_SEARCH, 3, "looked for us: active intent"),
    (B.LINK_CLICKED, 2, "followed a link to the next step"),
    (B.EMAIL_OPENED_MAILING, 1, "opened a mailing"),
    (B.EMAIL_OPENED_PERSONAL, 3, "opened a salesperson's one-to-one email"),
    (B.EMAIL_CLICKED_MAILING, 3, "clicked through a mailing"),
    (B.EMAIL_CLICKED_PERSONAL, 5, "clicked through a one-to-one email"),
    (B.LIKE, 2, "liked content or a product"),
    (B.DISLIKE, -2, "disliked content or a product"),
    (B.COMMENT_ADDED, 3, "took the time to comment"),
    (B.COMMENT_REMOVED, -3, "took a comment back"),
    (B.PRODUCT_VIEWED, 2, "looked at a product"),
    (B.ADDED_TO_CART, 5, "put a product in the cart"),
    (B.CART_ABANDONED, 1, "left a cart: still interested, a recovery message is due"),
    (B.PURCHASE, 20, "bought"),
    (B.REFUND, -10, "asked for money back"),
    (B.ORDER_CANCELLED, -10, "cancelled an order"),
    (B.CALL_CENTRE_CONTACT, 5, "called us"),
    (B.STORE_VISIT, 8, "came to a store"),
    (B.LIVE_CHAT, 4, "started a live chat"),
    (B.APP_INSTALLED, 10, "installed the app"),
    (B.APP_USED, 2, "opened the app"),
    (B.WEBINAR_ATTENDED, 10, "attended a webinar"),
    (B.WEBINAR_QUESTION_ASKED, 5, "asked a question in a webinar"),
)


def default_rules() -> list[StoredRule]:
    return [
        StoredRule(
            id=f"general.{behaviour.value}",
            behaviour=behaviour,
            points=points,
            description=why,
            version=1,
            origin="default",
        )
        for behaviour, points, why in GENERAL_POINTS
    ]
