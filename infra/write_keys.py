"""Create or disable write keys in a deployed stack.

    python -m infra.write_keys create --source website --trust browser
    python -m infra.write_keys create --source backend --trust server
    python -m infra.write_keys disable --key wk_web_...

The key is printed once; only its SHA-256 hash is stored. Uses your current AWS credentials and
finds the config table from the stack's outputs (or ``--table``).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from infra.app import STACK_NAME
from shared.adapters import aws
from shared.adapters.write_keys import DynamoWriteKeys
from shared.errors import NotFound
from shared.tracking.trust import Trust


def config_table(stack: str) -> str:
    outputs = aws.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    for output in outputs:
        if output["OutputKey"] == "ConfigTableName":
            return output["OutputValue"]
    raise SystemExit(f"stack {stack} has no ConfigTableName output; deploy it first")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.write_keys", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default=STACK_NAME)
    parser.add_argument("--table", help="config table name (default: from the stack outputs)")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="mint a new write key")
    create.add_argument("--source", required=True, help="what sends with it: website, shop-backend, app...")
    create.add_argument("--trust", choices=[t.value for t in Trust], required=True)
    disable = commands.add_parser("disable", help="stop accepting a write key (within a minute)")
    disable.add_argument("--key", required=True)
    args = parser.parse_args(argv)

    keys = DynamoWriteKeys(aws.client("dynamodb"), table=args.table or config_table(args.stack))
    if args.command == "create":
        key = keys.create(args.source, Trust(args.trust), datetime.now(UTC))
        print(key)
    else:
        try:
            keys.disable(args.key)
        except NotFound:
            print("no such write key", file=sys.stderr)
            return 1
        print("disabled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
