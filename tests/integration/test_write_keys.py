from __future__ import annotations

import os

import pytest

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


def test_a_key_that_verifies_identity_with_its_secret_created_and_rotated(aws, admin, capsys) -> None:
    from functions.tracking.handler import handler
    from shared import runtime
    from shared.adapters import aws as clients
    from shared.tracking.proofs import user_hash

    table = os.environ["CONFIG_TABLE_NAME"]
    create = ["--table", table, "create", "--source", "shop-web", "--trust", "browser", "--verify-identity"]
    assert main(create) == 0
    key, secret = capsys.readouterr().out.split()[-2:]
    parameter = clients.client("ssm").get_parameter(Name="/Lifecycle/identity-secrets/shop-web")["Parameter"]
    assert parameter["Type"] == "SecureString" and secret not in str(aws.scan(TableName=table)["Items"])

    def send(message_id: str, secret_used: str | None) -> None:
        call = {"userId": "ann", "anonymousId": "v", "event": "Product Viewed", "messageId": message_id}
        if secret_used:
            call["integrations"] = {"Lifecycle": {"userHash": user_hash(secret_used, "ann")}}
        assert invoke(handler, http_event("POST", "/v1/track", body=call, key=key))[0] == 200

    send("a", secret)
    send("b", None)
    capsys.readouterr()
    assert main(["--table", table, "rotate-secret", "--source", "shop-web", "--overlap-hours", "1"]) == 0
    new = capsys.readouterr().out.split()[-1]  # after what the handler printed (its metrics, when on)
    assert new and new != secret
    runtime.reset()
    send("c", secret)  # the old secret, during the overlap
    send("d", new)
    assert main(["--table", table, "verify-identity", "--key", key, "--off"]) == 0
    runtime.reset()
    send("e", None)  # not required any more: the claim is taken, as before
    on_user = {e["message_id"] for e in admin("user_id:ann", events=True)[1]["events"]}
    on_visitor = {e["message_id"] for e in admin("anonymous_id:v", events=True)[1]["events"]}
    assert (on_user, on_visitor) == ({"a", "c", "d", "e"}, {"b"})
    with pytest.raises(SystemExit):  # a server key's calls are trusted: nothing to verify
        main(["--table", table, "create", "--source", "x", "--trust", "server", "--verify-identity"])


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


def test_an_older_key_with_a_free_form_source_name_can_require_proofs(aws, admin, capsys) -> None:
    from functions.tracking.handler import handler
    from shared import runtime
    from shared.tracking.proofs import user_hash

    table = os.environ["CONFIG_TABLE_NAME"]
    assert main(["--table", table, "create", "--source", "Main website", "--trust", "browser"]) == 0
    key = capsys.readouterr().out.split()[-1]
    assert main(["--table", table, "verify-identity", "--key", key]) == 0
    secret = capsys.readouterr().out.splitlines()[-2]  # the secret, then "identity proofs required ..."
    runtime.reset()
    call = {"userId": "ann", "anonymousId": "v", "event": "Liked", "messageId": "m1"}
    call["integrations"] = {"Lifecycle": {"userHash": user_hash(secret, "ann")}}
    assert invoke(handler, http_event("POST", "/v1/track", body=call, key=key))[0] == 200
    assert [e["trust"] for e in admin("user_id:ann", events=True)[1]["events"]] == ["verified"]
    with pytest.raises(SystemExit):
        main(["--table", table, "rotate-secret", "--source", "Main website", "--overlap-hours", "-1"])
