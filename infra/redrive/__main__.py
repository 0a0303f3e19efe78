"""``python -m infra.redrive --queue <dead-letter queue URL>``: run a stream trigger's failed batches again.

Run it with credentials for the deployed stack once the cause is fixed, within 24 hours of the
failure (the stream's retention). Each dead letter's range is re-read, filtered as the trigger
filters, and handed to the function; the dead letter is deleted only when all of it succeeded.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from infra.local.filters import matches
from infra.wiring import FUNCTIONS, function


def main(argv: Sequence[str] | None = None) -> int:
    triggered = [spec.name for spec in FUNCTIONS if spec.stream is not None]
    parser = argparse.ArgumentParser(prog="python -m infra.redrive", description=__doc__.split("\n\n")[0])
    parser.add_argument("--queue", required=True, help="URL of the trigger's dead-letter queue")
    parser.add_argument(
        "--trigger",
        choices=triggered,
        default=triggered[0] if len(triggered) == 1 else None,
        required=len(triggered) != 1,
        help="the wiring function whose stream trigger this is (its filters and batch size apply)",
    )
    parser.add_argument(
        "--function", help="function name or ARN to invoke (default: the one named in each dead letter)"
    )
    parser.add_argument(
        "--discard-expired",
        action="store_true",
        help="delete dead letters whose range the stream no longer holds (they are reported either way)",
    )
    args = parser.parse_args(argv)

    import botocore.session
    from botocore.config import Config

    from infra.redrive import Redrive
    from infra.redrive.aws import LambdaInvoker, SqsDeadLetters, StreamShardRanges

    trigger = function(args.trigger).stream
    assert trigger is not None
    session = botocore.session.get_session()
    # an invocation may run for the function's whole timeout; a retried invoke would run it twice
    invoke_config = Config(read_timeout=900, retries={"total_max_attempts": 1})
    redrive = Redrive(
        SqsDeadLetters(session.create_client("sqs"), args.queue),
        StreamShardRanges(session.create_client("dynamodbstreams")),
        LambdaInvoker(session.create_client("lambda", config=invoke_config)),
        passes=lambda record: any(matches(pattern, record) for pattern in trigger.filters),
        batch_size=trigger.batch_size,
        function=args.function,
        discard_expired=args.discard_expired,
    )
    results = redrive.run()
    for result in results:
        print(f"{result.outcome:<10} {result.message_id}  {result.detail}")
    settled = sum(r.settled for r in results)
    print(f"{settled} of {len(results)} dead letters settled; the others are still in the queue")
    return 0 if settled == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
