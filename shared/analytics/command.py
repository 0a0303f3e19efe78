"""``lifecycle-analytics score``: the nightly job's scoring, offline, on a CSV of transactions.

    lifecycle-analytics score --transactions FILE.csv --cutoff YYYY-MM-DD --horizon-days N --out OUT.csv
                              [--lookback-days 1095] [--rfm-edges 0.2,0.4,0.6,0.8]
                              [--risk-medium 0.5] [--risk-high 0.8]

Writes one row per customer who bought on or before the cut-off (in customer id order), scored by
``shared.analytics.scoring.score`` on the data up to the cut-off alone. Every row of the file is checked,
also those after the cut-off. Bad input is one line on stderr and exit status 2, and ``--out`` is left
as it was: the scores go to a temporary file beside it, renamed over it when complete.
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import sys
from datetime import date
from pathlib import Path
from typing import NoReturn

from shared.analytics.history import day_number
from shared.analytics.rfm import RfmSettings, parse_edges
from shared.analytics.scoring import DEFAULT_HORIZON_DAYS, RiskLevels, ScoringSettings, score
from shared.analytics.transactions import BadTransactions, read_transactions, write_scores

BAD_INPUT = 2


class BadUsage(Exception):
    """A wrong option or file: the message is the one line the command prints."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse's prints the usage and exits; this raises
        raise BadUsage(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lifecycle-analytics",
        description="Score customers from a CSV of transactions: RFM segments and churn risk.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="score", parser_class=_Parser)
    scoring = commands.add_parser(
        "score",
        help="score every customer seen up to a cut-off day",
        description="Writes customer_id,p_no_purchase,churn_risk,risk_level,expected_next_purchase,"
        "typical_gap_days,r,f,m,segment: one row per customer who bought on or before the cut-off.",
    )
    scoring.add_argument(
        "--transactions",
        required=True,
        type=Path,
        metavar="FILE.csv",
        help="CSV with a header: customer_id,timestamp,amount and optionally product,category",
    )
    scoring.add_argument(
        "--cutoff",
        required=True,
        type=_cutoff,
        metavar="YYYY-MM-DD",
        help="the last day whose purchases are used (UTC)",
    )
    scoring.add_argument(
        "--horizon-days",
        required=True,
        type=_days,
        metavar="N",
        help=f"p_no_purchase is for days cutoff+1 to cutoff+N (the nightly job's: {DEFAULT_HORIZON_DAYS})",
    )
    scoring.add_argument("--out", required=True, type=Path, metavar="OUT.csv", help="where the scores go")
    scoring.add_argument(
        "--lookback-days",
        type=_days,
        default=RfmSettings().lookback_days,
        metavar="DAYS",
        help=f"the RFM window: days up to the cut-off (default {RfmSettings().lookback_days})",
    )
    scoring.add_argument(
        "--rfm-edges",
        type=_edges,
        default=RfmSettings().edges,
        metavar="E1,E2,E3,E4",
        help="the quintile edges, as shares (default 0.2,0.4,0.6,0.8)",
    )
    scoring.add_argument(
        "--risk-medium",
        type=_share,
        default=RiskLevels().medium,
        metavar="RISK",
        help=f"churn_risk at or above this is medium (default {RiskLevels().medium}; the nightly job's "
        "RISK_MEDIUM)",
    )
    scoring.add_argument(
        "--risk-high",
        type=_share,
        default=RiskLevels().high,
        metavar="RISK",
        help=f"churn_risk at or above this is high (default {RiskLevels().high}; the nightly job's RISK_HIGH)",
    )
    return parser


def _cutoff(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD") from None


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days, 1 or more")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number strictly between 0 and 1")
    return value


def _edges(text: str) -> tuple[float, float, float, float]:
    try:
        return parse_edges(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: list[str] | None = None) -> int:
    """Runs the command; 0 when the scores are written, 2 for bad input, 1 when writing them failed."""
    try:
        options = _parser().parse_args(argv)
        _score(options)
    except SystemExit as done:  # --help
        return done.code if isinstance(done.code, int) else 0
    except (BadUsage, BadTransactions) as error:
        print(f"lifecycle-analytics: {error}", file=sys.stderr)
        return BAD_INPUT
    except OSError as error:
        print(f"lifecycle-analytics: cannot write the scores: {error.strerror or error}", file=sys.stderr)
        return 1
    return 0


def _score(options: argparse.Namespace) -> None:
    cutoff = day_number(options.cutoff)
    source: Path = options.transactions
    out: Path = options.out
    if not out.parent.is_dir():
        raise BadUsage(f"--out: the folder {str(out.parent)!r} does not exist")
    if out.is_dir():
        raise BadUsage(f"--out: {str(out)!r} is a folder, not a file")
    try:
        with source.open(newline="", encoding="utf-8-sig") as lines:
            purchases = read_transactions(lines, until=cutoff)
    except FileNotFoundError:
        raise BadUsage(f"--transactions: no file {str(source)!r}") from None
    except IsADirectoryError:
        raise BadUsage(f"--transactions: {str(source)!r} is a folder, not a file") from None
    except PermissionError:
        raise BadUsage(f"--transactions: {str(source)!r} cannot be read (permission denied)") from None
    except UnicodeDecodeError as error:
        raise BadTransactions(f"the transactions are not UTF-8 text (byte {error.start})") from None
    if options.risk_medium >= options.risk_high:
        raise BadUsage(
            f"--risk-medium ({options.risk_medium:g}) must be below --risk-high ({options.risk_high:g})"
        )
    settings = ScoringSettings(
        horizon_days=options.horizon_days,
        rfm=RfmSettings(lookback_days=options.lookback_days, edges=options.rfm_edges),
        risk=RiskLevels(medium=options.risk_medium, high=options.risk_high),
    )
    rows = score(purchases, cutoff, settings)
    staged = out.with_name(f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with staged.open("x", newline="", encoding="utf-8") as staging:
            write_scores(rows, staging)
        staged.replace(out)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise


if __name__ == "__main__":
    sys.exit(main())
