"""Create or disable write keys, set their rate limits, and manage the sources' identity secrets, in a
deployed stack.

    python -m infra.write_keys create --source website --trust browser --verify-identity
    python -m infra.write_keys create --source backend --trust server
    python -m infra.write_keys create --source partner --trust server --rate 50 --burst 100
    python -m infra.write_keys verify-identity --key wk_web_... [--off]
    python -m infra.write_keys rotate-secret --source website [--overlap-hours 24]
    python -m infra.write_keys limit --key wk_srv_... --rate 2000 --burst 4000
    python -m infra.write_keys limit --key wk_srv_... --default
    python -m infra.write_keys disable --key wk_web_...

A key is printed once; only its SHA-256 hash is stored. A source's identity secret (for the proofs its
back-end gives the pages, docs/tracking.md "Verified identity") is printed once when it is created or
rotated, and kept as an SSM SecureString. Uses your current AWS credentials and finds the config table
from the stack's outputs (or ``--table``).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

from infra.app import STACK_NAME
from infra.config import identity_secrets_path
from shared.adapters import aws
from shared.adapters.identity_secrets import SsmIdentitySecrets
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
    create.add_argument(
        "--verify-identity",
        action="store_true",
        help="browser keys: calls naming a userId must prove it (creates the source's secret if it has none)",
    )
    _limit_arguments(create)
    verify = commands.add_parser("verify-identity", help="require identity proofs on a browser key, or stop")
    verify.add_argument("--key", required=True)
    verify.add_argument("--off", action="store_true", help="stop requiring proofs")
    rotate = commands.add_parser(
        "rotate-secret", help="replace a source's identity secret; the old one is accepted for the overlap"
    )
    rotate.add_argument("--source", required=True)
    rotate.add_argument("--overlap-hours", type=float, default=24.0)
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

    if args.command == "rotate-secret" and not 0 <= args.overlap_hours <= 24 * 365:
        parser.error("--overlap-hours: 0 to 8760")
    if args.command == "create" and args.verify_identity and args.trust != Trust.BROWSER.value:
        parser.error("--verify-identity is for browser keys: a server key's calls are trusted")
    secrets = SsmIdentitySecrets(lambda: aws.client("ssm"), path=identity_secrets_path(args.stack))
    if args.command == "rotate-secret":
        overlap = timedelta(hours=args.overlap_hours)
        print(
            f"new identity secret for {args.source} (the old one is accepted for {overlap}):", file=sys.stderr
        )
        print(secrets.rotate(args.source, datetime.now(UTC), overlap))
        return 0
    keys = DynamoWriteKeys(aws.client("dynamodb"), table=args.table or config_table(args.stack))
    if args.command == "create":
        # the secret first: a key that requires proofs never waits for its secret
        created = _ensure_secret(secrets, args.source) if args.verify_identity else None
        key = keys.create(
            args.source, Trust(args.trust), datetime.now(UTC), own, requires_proof=args.verify_identity
        )
        print(key)
        if args.verify_identity:
            _show(args.source, created)
        return 0
    try:
        if args.command == "verify-identity":
            found = keys.lookup(args.key)
            if found is None:
                raise NotFound("no such write key")
            if found.trust is not Trust.BROWSER:
                print("a server key's calls are trusted; proofs are for browser keys", file=sys.stderr)
                return 1
            if not args.off:
                _show(found.name, _ensure_secret(secrets, found.name))
            keys.require_proof(args.key, not args.off)
            print(
                "identity proofs " + ("no longer required" if args.off else "required") + " (within a minute)"
            )
        elif args.command == "limit":
            keys.set_limit(args.key, own)
            print(
                f"limit: {own.burst} requests per {own.window_ms / 1000:g} s" if own else "limit: the default"
            )
        else:
            keys.disable(args.key)
            print("disabled")
    except NotFound:
        print("no such write key", file=sys.stderr)
        return 1
    return 0


def _ensure_secret(secrets: SsmIdentitySecrets, source: str) -> str | None:
    """The source's new identity secret, if it had none (to print once: only SSM keeps it)."""
    created = secrets.create(source)
    if created is None:
        print(f"source {source} already has an identity secret (rotate-secret replaces it)", file=sys.stderr)
    return created


def _show(source: str, secret: str | None) -> None:
    if secret is not None:
        print(
            f"identity secret for {source} (give it to your back-end; it is not shown again):",
            file=sys.stderr,
        )
        print(secret)


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
