"""``lifecycle-analytics score``: the nightly job's scoring, offline, on a CSV of transactions.
(Placeholder: issue 12's command part replaces it.)"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    raise SystemExit("not yet")
