"""The real local stack (``make run``) as a subprocess, told what it needs through the environment, and
readers of its store."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.conftest import ROOT

SERVER_KEY = "loopback-server-key"
BROWSER_KEY = "loopback-browser-key"
#: The browser key that requires verified identity (issue 9) and its source's secret: the local stack's
#: defaults, which the tests name as they are.
VERIFIED_KEY = "local-verified-key"
IDENTITY_SECRET = "local-identity-secret"
#: How long Ctrl-C may take to stop the local stack before a test calls it stuck.
STOP_WITHIN = 60


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
    # read what it prints from now on, as a terminal does: a pipe nobody reads fills up (64 KB) and
    # blocks the stack's next print; the last lines are kept to say why, should it not stop
    tail: deque[str] = deque(maxlen=40)
    reader = threading.Thread(target=lambda: tail.extend(process.stdout), name="stack-output", daemon=True)
    reader.start()
    yield f"http://127.0.0.1:{port}", text
    process.send_signal(signal.SIGINT)
    try:
        # the stack's stop waits on its threads (up to 4 x 5 s) and its workflows (5 s): on a loaded
        # machine that is near 25 s, so a minute is the line between slow and stuck
        code = process.wait(timeout=STOP_WITHIN)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        reader.join(timeout=5)
        pytest.fail(f"Ctrl-C did not stop the local stack within {STOP_WITHIN} s; it printed last:\n" + "".join(tail))
    reader.join(timeout=5)
    assert code == 0, "Ctrl-C must stop the local stack cleanly:\n" + "".join(tail)


@pytest.fixture(scope="module")
def local_stack() -> Iterator[str]:
    """The stack with the loopback keys and the verified-identity key, for a test module."""
    with running_stack(
        LOCAL_SERVER_WRITE_KEY=SERVER_KEY,
        LOCAL_BROWSER_WRITE_KEY=BROWSER_KEY,
        LOCAL_VERIFIED_WRITE_KEY=VERIFIED_KEY,
        LOCAL_IDENTITY_SECRET=IDENTITY_SECRET,
    ) as (url, banner):
        assert SERVER_KEY in banner and BROWSER_KEY in banner and VERIFIED_KEY in banner and "curl" in banner
        yield url


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def eventually(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def stored_events(base: str, contact: str) -> list[dict]:
    """Every event the store keeps for ``contact``, newest first, through the admin API's pages."""
    events: list[dict] = []
    cursor = ""
    while True:
        page = get(
            f"{base}/admin/contacts/{contact}/events?limit=100" + (f"&before={cursor}" if cursor else "")
        )
        events += page["events"]
        cursor = page.get("next_cursor")
        if not cursor:
            return events


def stored_message_ids(base: str, contact: str) -> list[str]:
    return [e["message_id"] for e in stored_events(base, contact)]
