"""The public links delivery puts in front of contacts: unsubscribe (RFC 8058), consent confirmation and
(issue 15) the answer links of an NPS survey.

Each carries a signed token (``shared.delivery.tokens``); the preferences function serves them. A GET
only shows a page with a button (link scanners follow GETs); the POST does it.
"""

from __future__ import annotations

UNSUBSCRIBE_PATH = "/unsubscribe"
CONFIRM_PATH = "/consent/confirm"
#: issue 15: an NPS survey's answer page (one signed link per score)
NPS_PATH = "/nps"
#: the token's query parameter
TOKEN_PARAMETER = "t"

PREFERENCE_ROUTES: tuple[str, ...] = (
    f"GET {UNSUBSCRIBE_PATH}",
    f"POST {UNSUBSCRIBE_PATH}",
    f"GET {CONFIRM_PATH}",
    f"POST {CONFIRM_PATH}",
    f"GET {NPS_PATH}",
    f"POST {NPS_PATH}",
)
