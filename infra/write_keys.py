"""Create or disable write keys in a deployed stack, and set their rate limits.

    python -m infra.write_keys create --source website --trust browser
    python -m infra.write_keys create --source backend --trust server
    python -m infra.write_keys create --source partner --trust server --rate 50 --burst 100
    python -m infra.write_keys limit --key wk_srv_... --rate 2000 --burst 4000
    python -m infra.write_keys limit --key wk_srv_... --default
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
from shared.tracking.rates import RateLimit
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
    _limit_arguments(create)
    limit = commands.add_parser(
        "limit", help="set a write key's own rate limit, or return it to the default (within a minute)"
    )
    limit.add_argument("--key", required=True)
    _limit_arguments(limit)
    limit.add_argument("--default", action="store_true", help="use the tracking function's default limit")
    disable = commands.add_parser("disable", help="stop accepting a write key (within a minute)")
    disable.add_argument("--key", required=True)
    args = parser.parse_args(argv)
    own = _own_limit(parser, args)

    keys = DynamoWriteKeys(aws.client("dynamodb"), table=args.table or config_table(args.stack))
    if args.command == "create":
        key = keys.create(args.source, Trust(args.trust), datetime.now(UTC), own)
        print(key)
    elif args.command == "limit":
        try:
            keys.set_limit(args.key, own)
        except NotFound:
            print("no such write key", file=sys.stderr)
            return 1
        print(f"limit: {own.burst} requests per {own.window_ms / 1000:g} s" if own else "limit: the default")
    else:
        try:
            keys.disable(args.key)
        except NotFound:
            print("no such write key", file=sys.stderr)
            return 1
        print("disabled")
    return 0


def _limit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, help="requests per second the key may send (with --burst)")
    parser.add_argument("--burst", type=int, help="requests it may send at once (with --rate)")


def _own_limit(parser: argparse.ArgumentParser, args: argparse.Namespace) -> RateLimit | None:
    """The key's own limit from --rate and --burst (both or neither; ``limit`` needs them or --default)."""
    rate, burst = getattr(args, "rate", None), getattr(args, "burst", None)
    if (rate is None) != (burst is None):
        parser.error("--rate and --burst go together")
    if args.command == "limit" and (rate is None) == (not args.default):
        parser.error("limit takes --rate and --burst, or --default")
    if rate is None:
        return None
    try:
        return RateLimit(rate=rate, burst=burst)
    except ValueError as exc:
        parser.error(str(exc))


if __name__ == "__main__":
    sys.exit(main())
