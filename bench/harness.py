"""Shared measuring tools: machine description, robust medians, the BENCHMARKS.md section writer."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d}"
    )


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def cpu_seconds(fn: Callable[[], object], repeat: int) -> float:
    """CPU time of ``repeat`` calls (process time: other processes on a noisy machine do not count)."""
    import time

    start = time.process_time()
    for _ in range(repeat):
        fn()
    return time.process_time() - start


def python_child(code: str, env: dict[str, str]) -> float:
    """Run ``code`` in a fresh interpreter; it prints one number (milliseconds)."""
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    return float(result.stdout.strip().splitlines()[-1])


def write_section(name: str, body: str, path: Path = ROOT / "BENCHMARKS.md") -> None:
    """Replace the text between ``<!-- bench:NAME -->`` markers, keeping the hand-written rest."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
