"""The real local stack (``make run``) as a subprocess, told what it needs through the environment."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_stack(**settings: str) -> Iterator[tuple[str, str]]:
    """``python -m infra.local`` on a free port with these environment variables; yields its URL and
    banner, and stops it with Ctrl-C (which must stop it cleanly)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))} | {
        "PORT": str(port),
        **settings,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    banner = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        banner.append(line)
        if "Move time on" in line:
            break
    text = "".join(banner)
    assert f"http://127.0.0.1:{port}" in text, text
    yield f"http://127.0.0.1:{port}", text
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=20) == 0, "Ctrl-C must stop the local stack cleanly"
