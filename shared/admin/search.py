"""Admin: contact search (issue 14), ``GET /admin/contacts?q=<text>&limit=20&cursor=<opaque>``.

``q`` is a contact id (``user_id:...``, ``anonymous_id:...``: that contact, merges followed), an exact user
id, an email or its start, or the start of words of a name (``shared.usecases.search``). One Query of the
search index and one batch read of the profiles per page; ``next_cursor`` continues it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.admin.dependencies import Admin
from shared.errors import DependencyUnavailable
from shared.usecases.search import ContactSearchPage, Search, page_limit, search

if TYPE_CHECKING:
    from shared.http import HttpRequest


def search_contacts(request: HttpRequest, deps: Admin) -> ContactSearchPage:
    if deps.search is None:
        raise DependencyUnavailable("contact search is not configured")
    limit = page_limit(request.query.get("limit"))
    funnel = deps.funnels.funnel()
    return search(
        request.query.get("q"),
        limit,
        request.query.get("cursor") or None,
        Search(finder=deps.search, profiles=deps.contacts, stage_of=lambda stage: funnel.stage(stage).id),
    )


ROUTES = {"GET /admin/contacts": search_contacts}
