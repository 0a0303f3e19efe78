"""The documentation tables say what the code does."""

import re

from shared.scoring.defaults import GENERAL_POINTS
from shared.tracking.behaviours import TRACK_EVENTS, Behaviour, classify
from tests.conftest import ROOT


def test_scoring_defaults_table_matches_the_shipped_rules() -> None:
    text = (ROOT / "docs" / "scoring.md").read_text()
    documented = {m[0]: int(m[1]) for m in re.findall(r"^\| `(\w+)` \| ([+-]\d+) \|", text, re.M)}
    assert documented == {b.value: p for b, p, _ in GENERAL_POINTS}


def test_tracking_table_lists_every_mapped_event_name() -> None:
    text = (ROOT / "docs" / "tracking.md").read_text().lower()
    for name in TRACK_EVENTS:
        assert name in text, name
    rows = re.findall(r"^\| `(\w+)`(?: / `(\w+)`)? \| ([a-z][^|`]*) \| (?:any|\*\*server\*\*) \|", text, re.M)
    assert len(rows) >= 20
    for row in rows:
        behaviours = {b for b in row[:2] if b}
        for name in (n.strip() for n in row[2].split(",")):
            if name and not name.startswith("anything"):
                assert classify(
                    "track", name, {"mailbox": "personal"} if "personal" in str(behaviours) else {}, {}
                ).behaviour in {Behaviour(b) for b in behaviours}, name


def test_tracking_doc_names_every_field_the_event_log_drops() -> None:
    from shared.tracking.stored import DROPPED_CONTEXT, DROPPED_FIELDS, USER_AGENT_DATA_KEPT

    text = (ROOT / "docs" / "tracking.md").read_text()
    section = text.split("## What the event log keeps", 1)[1].split("\n## ", 1)[0]
    for name in (*DROPPED_FIELDS, *(f"context.{n}" for n in DROPPED_CONTEXT), *USER_AGENT_DATA_KEPT):
        assert f"`{name}`" in section, name
