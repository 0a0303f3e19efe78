"""``make run``: start the local stack and serve until Ctrl-C."""

from __future__ import annotations

import signal
import sys
import threading

from infra.local.stack import LocalSettings, LocalStack


def main() -> int:
    stack = LocalStack(LocalSettings.from_env())
    try:
        stack.start()
    except OSError as exc:
        print(f"cannot start the local stack: {exc}", file=sys.stderr)
        return 1
    print(stack.banner(), flush=True)
    stopped = threading.Event()
    # Ctrl-C and SIGTERM stop it, even when started with SIGINT ignored (as a shell's background job
    # is), which would leave Python without its Ctrl-C handler
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: stopped.set())
    while not stopped.wait(0.5):
        pass
    print("\nstopping...", flush=True)
    stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
