from __future__ import annotations

import os

from infra.write_keys import main
from tests.conftest import http_event, invoke


def test_created_key_works_and_disabled_key_stops(aws, capsys) -> None:
    from functions.tracking.handler import handler
    from shared import runtime

    table = os.environ["CONFIG_TABLE_NAME"]
    assert main(["--table", table, "create", "--source", "shop", "--trust", "server"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("wk_srv_") and len(key) > 30
    stored = aws.scan(TableName=table)["Items"]
    assert all(key not in str(item) for item in stored), "only the hash is stored"
    call = {"userId": "ann", "event": "Order Completed", "properties": {"revenue": 5}}
    assert invoke(handler, http_event("POST", "/v1/track", body=call, key=key))[0] == 200

    assert main(["--table", table, "disable", "--key", key]) == 0
    runtime.reset()  # a new function instance: the key cache (60 s) starts empty
    assert invoke(handler, http_event("POST", "/v1/track", body=call, key=key))[0] == 401


def test_a_key_gets_its_own_rate_limit_and_returns_to_the_default(aws, capsys) -> None:
    import pytest

    from functions.tracking.handler import handler
    from shared import runtime

    table = os.environ["CONFIG_TABLE_NAME"]
    assert (
        main(
            [
                "--table",
                table,
                "create",
                "--source",
                "partner",
                "--trust",
                "server",
                "--rate",
                "1",
                "--burst",
                "2",
            ]
        )
        == 0
    )
    key = capsys.readouterr().out.strip()
    call = {"userId": "ann", "event": "Liked"}
    statuses = [invoke(handler, http_event("POST", "/v1/track", body=call, key=key))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]

    assert main(["--table", table, "limit", "--key", key, "--default"]) == 0
    assert capsys.readouterr().out.strip() == "limit: the default"
    runtime.reset()  # a new instance: the key cache (60 s) and the instance's counts start empty
    assert invoke(handler, http_event("POST", "/v1/track", body=call, key=key))[0] == 200
    assert main(["--table", table, "limit", "--key", key, "--rate", "0.5", "--burst", "1"]) == 0
    assert capsys.readouterr().out.strip() == "limit: 1 requests per 2 s"
    assert main(["--table", table, "limit", "--key", "wk_nobody", "--default"]) == 1
    for wrong in (
        ["--rate", "1"],
        ["--rate", "0", "--burst", "1"],
        [],
        ["--default", "--rate", "1", "--burst", "1"],
    ):
        with pytest.raises(SystemExit):
            main(["--table", table, "limit", "--key", key, *wrong])
