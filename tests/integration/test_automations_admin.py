"""The automations admin API through the real admin handler on moto: validation naming the field,
versions, If-Match, history, deletion with its tombstone, pause and resume, and the shipped examples."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import NOW, ROOT
from tests.integration.conftest import dump

EXAMPLES = ROOT / "examples" / "automations"
NURTURE: dict[str, Any] = {
    "name": "Nurture new leads",
    "trigger": {"type": "stage", "from": "visitor", "to": "lead"},
    "conditions": [{"field": "consent.email", "op": "eq", "value": True}],
    "steps": [
        {"action": "email", "subject": "Welcome", "text": "Hello {{ traits.first_name }}"},
        {"action": "wait", "for": {"days": 3}},
        {"action": "tag", "add": "nurtured"},
    ],
    "reentry": "once",
}


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


def test_a_valid_automation_is_stored_as_version_one(automations_api) -> None:
    status, stored, _ = automations_api("PUT", "nurture", NURTURE)
    assert status == 200
    assert (stored["id"], stored["version"], stored["paused"]) == ("nurture", 1, False)
    assert stored["updated_at"].startswith(NOW.date().isoformat())
    assert stored["trigger"] == {"type": "stage", "from": "visitor", "to": "lead", "direction": None}
    assert stored["steps"][1] == {"action": "wait", "for": {"years": 0, "months": 0, "days": 3, "hours": 0}}
    status, listing, _ = automations_api("GET")
    assert status == 200 and listing == {"automations": [stored]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            with_(NURTURE, trigger={"type": "lunar"}),
            "trigger.type: 'lunar' is not one of 'event', 'inactivity', ",
        ),
        (with_(NURTURE, trigger={"days": 3}), "trigger.type: Field required"),
        (
            with_(NURTURE, trigger={"type": "inactivity", "days": 0}),
            "trigger.days: Input should be greater than or equal to 1",
        ),
        (
            with_(NURTURE, steps=[{"action": "email", "subject": "Hello"}]),
            "steps.0: an email needs a template, or a subject with text or html",
        ),
        (with_(NURTURE, steps=[{"action": "points"}]), "steps.0.points: Field required"),
        (
            with_(NURTURE, steps=[{"action": "sms", "text": "hi"}, {"action": "fax"}]),
            "steps.1.action: 'fax' is not one of 'email', 'sms', ",
        ),
        (
            with_(NURTURE, reentry="once_per"),
            "automation: reentry once_per needs a period (and only it takes one)",
        ),
        (
            with_(NURTURE, steps=[{"action": "sms", "text": "hi"}, {"action": "wait", "for": {"days": 1}}]),
            "automation: the last step cannot be a wait",
        ),
        (
            with_(NURTURE, trigger={"type": "event", "behaviour": "purchase", "counter": {"name": "age"}}),
            "trigger.counter.from: Field required",
        ),
        (
            with_(NURTURE, conditions=[{"field": "mood", "op": "eq"}]),
            "conditions.0.field: String should match",
        ),
        (
            with_(NURTURE, trigger={"type": "segment", "segment": "rfm:champs"}),
            "trigger.segment: 'rfm:champs' is not an RFM segment; they are rfm:champions, ",
        ),
        (with_(NURTURE, colour="blue"), "colour: Extra inputs are not permitted"),
        (with_(NURTURE, id="other"), "id: 'other' does not match the path ('nurture')"),
        ([NURTURE], "the automation must be a JSON object"),
    ],
)
def test_an_invalid_automation_is_a_400_naming_the_field_as_written(automations_api, body, message) -> None:
    status, error, _ = automations_api("PUT", "nurture", body)
    assert status == 400 and error["code"] == "invalid_automation"
    assert error["message"].startswith(message), error["message"]
    assert automations_api("GET", "nurture")[0] == 404, "nothing was stored"


def test_if_match_makes_a_change_conditional(automations_api) -> None:
    assert automations_api("PUT", "nurture", NURTURE, {"if-match": "1"})[0] == 409, "none stored yet"
    assert automations_api("PUT", "nurture", NURTURE, {"if-match": "0"})[1]["version"] == 1
    status, second, _ = automations_api("PUT", "nurture", with_(NURTURE, name="Second"), {"if-match": "1"})
    assert status == 200 and second["version"] == 2
    status, body, _ = automations_api("PUT", "nurture", with_(NURTURE, name="Lost"), {"if-match": "1"})
    assert status == 409 and body["code"] == "conflict"
    assert automations_api("PUT", "nurture", NURTURE, {"if-match": "two"})[0] == 400
    assert automations_api("DELETE", "nurture", headers={"if-match": "1"})[0] == 409
    assert automations_api("GET", "nurture")[1]["automation"]["name"] == "Second"


def test_the_history_lists_every_version_newest_first(automations_api) -> None:
    for name in ("First", "Second", "Third"):
        automations_api("PUT", "nurture", with_(NURTURE, name=name))
    status, detail, _ = automations_api("GET", "nurture")
    assert status == 200 and detail["automation"]["name"] == "Third"
    assert [(v["version"], v["name"]) for v in detail["history"]] == [
        (3, "Third"),
        (2, "Second"),
        (1, "First"),
    ]
    assert detail["history"][0] == detail["automation"]
    assert automations_api("GET", "never-stored")[0] == 404


def test_a_deletion_leaves_a_tombstone_and_versions_never_repeat(aws, automations_api) -> None:
    automations_api("PUT", "nurture", NURTURE)
    automations_api("PUT", "nurture", with_(NURTURE, name="Second"))
    status, deleted, _ = automations_api("DELETE", "nurture", headers={"if-match": "2"})
    assert status == 200 and deleted == {"deleted": "nurture", "version": 2}
    assert automations_api("GET", "nurture")[0] == 404
    assert automations_api("GET")[1] == {"automations": []}
    assert automations_api("DELETE", "nurture")[0] == 404
    tombstones = [i for i in dump(aws, "CONFIG_TABLE_NAME") if i.get("deleted") == {"BOOL": True}]
    assert [(i["pk"]["S"], i["sk"]["S"]) for i in tombstones] == [("AUTOMATION#nurture", "v00000003")]

    status, again, _ = automations_api("PUT", "nurture", with_(NURTURE, name="Again"))
    assert status == 200 and again["version"] == 4, "1 and 2 were versions, 3 the tombstone"
    history = automations_api("GET", "nurture")[1]["history"]
    assert [v["version"] for v in history] == [4, 3, 2, 1]


def test_pause_and_resume_store_new_versions_and_repeating_one_changes_nothing(automations_api) -> None:
    automations_api("PUT", "nurture", NURTURE)
    status, paused, _ = automations_api("POST", "nurture", action="pause")
    assert status == 200 and paused["paused"] and paused["version"] == 2
    assert {k: v for k, v in paused.items() if k not in ("paused", "version")} == {
        k: v
        for k, v in automations_api("GET", "nurture")[1]["history"][1].items()
        if k not in ("paused", "version")
    }
    status, again, _ = automations_api("POST", "nurture", action="pause")
    assert status == 200 and again == paused, "pausing a paused automation is a no-op"
    assert automations_api("POST", "nurture", action="resume", headers={"if-match": "1"})[0] == 409
    status, resumed, _ = automations_api("POST", "nurture", action="resume", headers={"if-match": "2"})
    assert status == 200 and not resumed["paused"] and resumed["version"] == 3
    assert automations_api("GET", "nurture")[1]["automation"] == resumed
    assert automations_api("POST", "never-stored", action="pause")[0] == 404


def test_what_a_get_returns_can_be_put_back_as_it_is(automations_api) -> None:
    automations_api("PUT", "nurture", NURTURE)
    automations_api("PUT", "win-back", json.loads((EXAMPLES / "win-back.json").read_text()))
    for automation_id in ("nurture", "win-back"):
        current = automations_api("GET", automation_id)[1]["automation"]
        status, stored, _ = automations_api(
            "PUT", automation_id, current, {"if-match": str(current["version"])}
        )
        assert status == 200, stored
        assert stored["version"] == current["version"] + 1
        assert {k: v for k, v in stored.items() if k not in ("version", "updated_at")} == {
            k: v for k, v in current.items() if k not in ("version", "updated_at")
        }


@pytest.mark.parametrize("example", ["win-back", "kids-program", "churn-win-back", "champions-at-risk"])
def test_each_example_file_is_accepted_as_it_is(automations_api, example) -> None:
    body = json.loads((EXAMPLES / f"{example}.json").read_text())
    assert body["id"] == example
    status, stored, _ = automations_api("PUT", example, body)
    assert status == 200, stored
    assert stored["version"] == 1
    assert automations_api("GET")[1]["automations"] == [stored]


def test_the_examples_say_what_the_documentation_says() -> None:
    win_back = json.loads((EXAMPLES / "win-back.json").read_text())
    assert win_back["trigger"] == {"type": "inactivity", "days": 90, "since": "visit"}
    assert (win_back["reentry"], win_back["holdout_percent"]) == ("always", 10)
    coupon, email = win_back["steps"]
    assert coupon == {"action": "coupon", "prefix": "BACK", "value": 15, "unit": "percent"}
    assert all(f"{{{{ {name} }}}}" in email["text"] for name in ("traits.first_name", "coupon.code"))
    kids = json.loads((EXAMPLES / "kids-program.json").read_text())
    assert kids["trigger"]["counter"] == {"name": "age", "from": "child_age", "up_to": 12}
    assert "{{ age }}" in kids["steps"][0]["subject"] and "{{ age }}" in kids["steps"][0]["text"]


def test_an_automation_over_64_kb_is_refused_whole(automations_api) -> None:
    body = {
        "name": "Huge",
        "trigger": {"type": "inactivity", "days": 30},
        "steps": [{"action": "email", "subject": "s", "text": "x" * 20_000} for _ in range(4)],
    }
    status, answer, _ = automations_api("PUT", "huge", body)
    assert status == 400 and answer["code"] == "invalid_automation" and "64 KB" in answer["message"]
    assert automations_api("GET", "huge")[0] == 404
