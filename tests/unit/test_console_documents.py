"""The console's editing screens name the behaviours the API knows: the list in editing.js (a rule's,
a conversion's behaviour) is Behaviour's, so no choice the page offers is refused and none is missing."""

from __future__ import annotations

import re

from shared.tracking.behaviours import Behaviour
from tests.conftest import ROOT

EDITING = ROOT / "functions" / "console" / "static" / "editing.js"


def test_the_console_offers_exactly_the_behaviours_the_admin_api_accepts() -> None:
    source = EDITING.read_text()
    listed = re.search(r"export const BEHAVIOURS = \[(.*?)\]", source, re.DOTALL)
    assert listed, "editing.js exports BEHAVIOURS"
    offered = re.findall(r"'([a-z_]+)'", listed.group(1))
    assert offered == [b.value for b in Behaviour]
