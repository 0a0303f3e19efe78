"""issue 14: who may do what through the console. The console's requests carry the signed-in user's
Cognito groups (``HttpRequest.groups``); each admin route needs one of the groups allowed to use it.

- ``marketers`` may use every admin route;
- ``sales`` may read contacts and leads (a contact and its card's parts, the search, the salespeople and
  their leads, the segments and their members), accept a lead, and tag a contact by hand: nothing that
  erases, edits the rules, sends, or configures.

A request without JWT claims (an IAM route, a loopback call) is not the console's and is not checked here:
IAM decides who may call those. A sales user may read any salesperson's leads: an access token carries no
email to match with a salesperson's, so there is no clean mapping from a sign-in to a salesperson.
"""

from __future__ import annotations

from shared.errors import Forbidden

MARKETERS = "marketers"
SALES = "sales"

#: The routes the ``sales`` group may use (route keys as in ``shared.admin.ROUTES``).
SALES_ROUTES = frozenset(
    {
        "GET /admin/contacts",
        "GET /admin/contacts/{contactId}",
        "GET /admin/contacts/{contactId}/automations",
        "GET /admin/contacts/{contactId}/deliveries",
        "GET /admin/contacts/{contactId}/events",
        "GET /admin/contacts/{contactId}/ledger",
        "GET /admin/contacts/{contactId}/scores",
        # issue 15: the card's recommended products
        "GET /admin/contacts/{contactId}/recommendations",
        "POST /admin/contacts/{contactId}/accept",
        "POST /admin/contacts/{contactId}/tags",
        "DELETE /admin/contacts/{contactId}/tags/{tag}",
        "GET /admin/salespeople",
        "GET /admin/salespeople/{salespersonId}/leads",
        "GET /admin/segments",
        "GET /admin/segments/{segmentId}/members",
    }
)


def allowed_groups(route: str) -> tuple[str, ...]:
    """The groups whose members may use an admin route (its key, ``GET /admin/rules``)."""
    return (MARKETERS, SALES) if route in SALES_ROUTES else (MARKETERS,)


def authorize(route: str, groups: tuple[str, ...] | None) -> None:
    """Refuse a console user (``groups`` from their token) in none of the groups an admin route needs;
    ``groups`` None (no token: an IAM or loopback call) is not checked."""
    if groups is None:
        return
    needed = allowed_groups(route)
    if not set(needed) & set(groups):
        raise Forbidden(
            f"Your console group does not allow this: {route} needs the console group "
            f"{' or '.join(needed)}; ask an administrator to add you to it, then sign in again",
            code="forbidden",
        )
