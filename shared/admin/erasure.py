"""``DELETE /admin/contacts/{contactId}``: erase a contact (``shared.usecases.erasure``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.admin.dependencies import Admin
from shared.contacts.identity import ContactId
from shared.usecases.erasure import ErasureResult, erase

if TYPE_CHECKING:
    from shared.http import HttpRequest


def erase_contact(request: HttpRequest, deps: Admin) -> ErasureResult:
    """The contact this identity belongs to, its events, ledgers, runs, timers, stage history, send ledger
    and the identities merged into it. Repeating it is harmless: nothing left, 0 items."""
    return erase(ContactId.parse(request.path_parameters.get("contactId", "")), deps.erasure)


ROUTES = {
    "DELETE /admin/contacts/{contactId}": erase_contact,
}
