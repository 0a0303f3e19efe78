"""Issue 13, segments, in the synthesized template: the sparse membership index on the contacts table, and
who may read it (the stage function's writer filter is checked with the other triggers, test_template)."""

from __future__ import annotations

import json
import re
from typing import Any

from infra.wiring import FUNCTIONS
from shared.adapters.tables import CONTACTS
from tests.conftest import table_names_by_env
from tests.infra.test_template import by_env, lambda_for, policy_statements


def test_the_contacts_table_has_the_membership_index_keys_only(template: dict[str, Any]) -> None:
    props = by_env(template, CONTACTS.env)
    indexes = {i["IndexName"]: i for i in props["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"byDue", "bySegment", "byLookup"}
    members = indexes["bySegment"]
    assert [(k["AttributeName"], k["KeyType"]) for k in members["KeySchema"]] == [
        ("segmentShard", "HASH"),
        ("segmentMember", "RANGE"),
    ]
    assert members["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    types = {d["AttributeName"]: d["AttributeType"] for d in props["AttributeDefinitions"]}
    assert types["segmentShard"] == types["segmentMember"] == "S"
    lookup = indexes["byLookup"]  # issue 14: the console's search terms and leads share one index
    assert [(k["AttributeName"], k["KeyType"]) for k in lookup["KeySchema"]] == [
        ("lookupKey", "HASH"),
        ("lookupSort", "RANGE"),
    ]
    assert lookup["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert types["lookupKey"] == types["lookupSort"] == "S"


def test_the_membership_index_is_queried_by_those_that_list_members_and_nothing_else(
    template: dict[str, Any],
) -> None:
    logical = table_names_by_env(template)[CONTACTS.env]
    readers = {}
    for spec in FUNCTIONS:
        for statement in policy_statements(template, lambda_for(template, spec.name)):
            targets = (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
            for target in map(json.dumps, targets):
                index = re.search(r"/index/([^\"]+)", target)
                if f'"{logical}"' in target and index is not None:
                    readers.setdefault(spec.name, set()).add((statement["Action"], index.group(1)))
    # issue 14: the admin also Queries the look-up index (a salesperson's leads, contact search)
    assert readers["admin"] == {("dynamodb:Query", "bySegment"), ("dynamodb:Query", "byLookup")}, "no other"
    for name, found in readers.items():  # the others Query every index (the due index), or this one alone
        if name != "admin":
            assert found in ({("dynamodb:Query", "*")}, {("dynamodb:Query", "bySegment")}), (name, found)
