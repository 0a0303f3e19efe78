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
