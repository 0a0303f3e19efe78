"""``lifecycle-analytics score``: a good run, each kind of bad input, and the cut-off."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from shared.analytics.command import main
from shared.analytics.scoring import RiskLevels
from shared.analytics.transactions import SCORE_COLUMNS, read_scores
from tests.conftest import ROOT

HEADER = ",".join(SCORE_COLUMNS)
TRANSACTIONS = """customer_id,timestamp,amount,product,category
filters,2024-01-05,30.00,filter-3,water
filters,2024-02-04T10:00:00Z,30.00,filter-3,water
filters,2024-03-05T09:00:00+01:00,30.00,filter-3,water
filters,2024-04-04,30.00,filter-3,water
filters,2024-04-04,4.50,cartridge,water
oven,2024-06-01,799.00,oven-x,kitchen
cups,2024-05-20,12.00,,
"""


def run(
    tmp_path: Path, text: str, *options: str, cutoff: str = "2024-06-30", out: str = "scores.csv"
) -> tuple[int, Path]:
    source = tmp_path / "transactions.csv"
    source.write_text(text)
    written = tmp_path / out
    status = main(
        [
            "score",
            "--transactions",
            str(source),
            "--cutoff",
            cutoff,
            "--horizon-days",
            "90",
            "--out",
            str(written),
            *options,
        ]
    )
    return status, written


def test_a_good_run_writes_the_header_and_one_row_per_customer_in_id_order(tmp_path: Path) -> None:
    status, out = run(tmp_path, TRANSACTIONS)
    assert status == 0
    text = out.read_text()
    assert text.splitlines()[0] == HEADER
    rows = list(csv.DictReader(text.splitlines()))
    assert [row["customer_id"] for row in rows] == ["cups", "filters", "oven"]
    filters = rows[1]
    assert (filters["r"], filters["f"], filters["m"]) == ("1", "5", "3")
    assert filters["segment"] == "Can't Lose Them"  # the regular buyer, quiet for 3 months
    # its own 30-day gaps, drawn a little toward the others' (three customers give a weak prior)
    assert 28 <= float(filters["typical_gap_days"]) <= 40
    assert filters["risk_level"] == "high"
    assert rows[2]["segment"] == "New"
    for row in rows:
        assert 0 <= float(row["p_no_purchase"]) <= 1 and 0 <= float(row["churn_risk"]) <= 1
        assert row["risk_level"] in {"low", "medium", "high"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "scores.csv",
        "transactions.csv",
    ]  # no temp file left


def test_data_after_the_cutoff_changes_nothing(tmp_path: Path) -> None:
    _, before = run(tmp_path, TRANSACTIONS)
    expected = before.read_text()
    later = "filters,2024-07-01,30.00,filter-3,water\nnewcomer,2024-07-02T00:00:00+00:00,5,,\n"
    midnight = "oven,2024-07-01T01:00:00+02:00,1000,,\n"  # 2024-06-30 23:00 UTC: inside the cut-off
    status, after = run(tmp_path, TRANSACTIONS + later, out="after.csv")
    assert status == 0 and after.read_text() == expected
    _, moved = run(tmp_path, TRANSACTIONS + later + midnight, out="moved.csv")
    assert moved.read_text() != expected


def test_the_options_reach_the_scoring(tmp_path: Path) -> None:
    _, default = run(tmp_path, TRANSACTIONS)
    _, short = run(tmp_path, TRANSACTIONS, "--lookback-days", "30", out="short.csv")
    scored = {row.customer_id: row for row in read_scores(short.read_text().splitlines())}
    assert scored["filters"].segment is None and scored["filters"].r is None  # nothing in the last 30 days
    assert scored["oven"].segment is not None
    _, edged = run(tmp_path, TRANSACTIONS, "--rfm-edges", "0.6,0.7,0.8,0.9", out="edged.csv")
    assert edged.read_text() != default.read_text()


def test_the_risk_levels_are_options_like_the_nightly_jobs_settings(tmp_path: Path) -> None:
    _, default = run(tmp_path, TRANSACTIONS)
    _, strict = run(
        tmp_path, TRANSACTIONS, "--risk-medium", "0.001", "--risk-high", "0.002", out="strict.csv"
    )
    _, lenient = run(tmp_path, TRANSACTIONS, "--risk-high", "0.9999999", out="lenient.csv")
    default_rows, strict_rows, lenient_rows = (
        list(read_scores(out.read_text().splitlines())) for out in (default, strict, lenient)
    )
    levels = (RiskLevels(), RiskLevels(medium=0.001, high=0.002), RiskLevels(high=0.9999999))
    for rows, level in zip((default_rows, strict_rows, lenient_rows), levels, strict=True):
        assert [row.risk_level for row in rows] == [level.level(row.churn_risk) for row in rows]
    # the same risks, other levels: the filter buyer, 87 days after the last of four monthly filters,
    # is high by default and medium when high needs near certainty; the others are low by default
    assert [row.churn_risk for row in strict_rows] == [row.churn_risk for row in default_rows]
    by_default = {row.customer_id: row.risk_level for row in default_rows}
    assert by_default == {"cups": "low", "filters": "high", "oven": "low"}
    assert {row.customer_id: row.risk_level for row in lenient_rows}["filters"] == "medium"
    assert {row.risk_level for row in strict_rows} == {"high"}


def test_a_cutoff_before_every_purchase_writes_only_the_header(tmp_path: Path) -> None:
    status, out = run(tmp_path, TRANSACTIONS, cutoff="2023-12-31")
    assert status == 0 and out.read_text() == HEADER + "\n"


@pytest.mark.parametrize(
    ("text", "options", "message"),
    [
        ("customer_id,amount\nann,1\n", (), "missing column timestamp"),
        (
            "customer_id,timestamp,amount\nann,2024-02-30,1\n",
            (),
            "line 2: timestamp '2024-02-30' is not an ISO",
        ),
        ("customer_id,timestamp,amount\nann,2024-02-01,-1\n", (), "line 2: amount '-1' is negative"),
        ("customer_id,timestamp,amount\nann,2024-02-01,ten\n", (), "line 2: amount 'ten' is not a decimal"),
        ("customer_id,timestamp,amount\n,2024-02-01,1\n", (), "line 2: customer_id is empty"),
        (
            "customer_id,timestamp,amount\nann,2024-02-01,1\nann,2024-02-01," + "1" * 200_000 + "\n",
            (),
            "line 3: a field is longer than 131,072 characters",
        ),
        # a bad row after the cut-off is still bad: the file is checked whole
        ("customer_id,timestamp,amount\nann,2024-02-01,1\nann,2030-01-01,-1\n", (), "line 3: amount '-1'"),
        (TRANSACTIONS, ("--rfm-edges", "0.2,0.4"), "argument --rfm-edges: RFM edges '0.2,0.4'"),
        (
            TRANSACTIONS,
            ("--lookback-days", "0"),
            "argument --lookback-days: '0' is not a whole number of days",
        ),
        (TRANSACTIONS, ("--frobnicate",), "unrecognized arguments: --frobnicate"),
        (TRANSACTIONS, ("--risk-medium", "1.2"), "argument --risk-medium: '1.2' is not a number strictly"),
        (TRANSACTIONS, ("--risk-high", "0"), "argument --risk-high: '0' is not a number strictly between 0"),
        (TRANSACTIONS, ("--risk-high", "nan"), "argument --risk-high: 'nan' is not a number strictly"),
        (TRANSACTIONS, ("--risk-medium", "high"), "argument --risk-medium: 'high' is not a number"),
        (TRANSACTIONS, ("--risk-medium", "0.9"), "--risk-medium (0.9) must be below --risk-high (0.8)"),
        (
            TRANSACTIONS,
            ("--risk-medium", "0.4", "--risk-high", "0.4"),
            "--risk-medium (0.4) must be below --risk-high (0.4)",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_the_problem_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, options: tuple[str, ...], message: str
) -> None:
    status, _ = run(tmp_path, text, *options)
    assert status == 2
    error = capsys.readouterr().err
    assert error.startswith("lifecycle-analytics: ") and message in error
    assert error.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["transactions.csv"]


@pytest.mark.parametrize(
    ("cutoff", "message"),
    [
        ("2024-02-30", "argument --cutoff: '2024-02-30' is not a date: use YYYY-MM-DD"),
        ("yesterday", "argument --cutoff: 'yesterday' is not a date"),
    ],
)
def test_a_bad_cutoff_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cutoff: str, message: str
) -> None:
    status, out = run(tmp_path, TRANSACTIONS, cutoff=cutoff)
    assert status == 2 and message in capsys.readouterr().err
    assert not out.exists()


def test_a_missing_file_or_option_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "scores.csv"
    missing = tmp_path / "nope.csv"
    common = ["--cutoff", "2024-06-30", "--horizon-days", "90", "--out", str(out)]
    assert main(["score", "--transactions", str(missing), *common]) == 2
    assert f"--transactions: no file '{missing}'" in capsys.readouterr().err
    assert main(["score", "--transactions", str(tmp_path), *common]) == 2
    assert "is a folder, not a file" in capsys.readouterr().err
    assert main(["score", "--cutoff", "2024-06-30", "--out", str(out)]) == 2
    assert "required: --transactions, --horizon-days" in capsys.readouterr().err
    assert main([]) == 2
    assert "required: score" in capsys.readouterr().err
    (tmp_path / "t.csv").write_text(TRANSACTIONS)
    assert (
        main(["score", "--transactions", str(tmp_path / "t.csv"), *common[:-1], str(tmp_path / "no" / "x")])
        == 2
    )
    assert "--out: the folder" in capsys.readouterr().err
    assert not out.exists()


def test_bad_input_leaves_an_earlier_output_as_it_was(tmp_path: Path) -> None:
    status, out = run(tmp_path, TRANSACTIONS)
    good = out.read_text()
    status, out = run(tmp_path, TRANSACTIONS + "x,2024-01-01,-5,,\n")
    assert status == 2 and out.read_text() == good


def test_text_that_is_not_utf8_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "latin1.csv"
    source.write_bytes("customer_id,timestamp,amount\nJos\u00e9,2024-01-01,1\n".encode("latin-1"))
    out = tmp_path / "scores.csv"
    status = main(
        [
            "score",
            "--transactions",
            str(source),
            "--cutoff",
            "2024-06-30",
            "--horizon-days",
            "9",
            "--out",
            str(out),
        ]
    )
    assert status == 2 and "not UTF-8" in capsys.readouterr().err
    assert not out.exists()


def test_the_module_runs_as_a_command(tmp_path: Path) -> None:
    source = tmp_path / "transactions.csv"
    source.write_text(TRANSACTIONS)
    out = tmp_path / "scores.csv"
    command = [sys.executable, "-m", "shared.analytics.command", "score", "--transactions", str(source)]
    done = subprocess.run(
        [*command, "--cutoff", "2024-06-30", "--horizon-days", "90", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert out.read_text().splitlines()[0] == HEADER
    refused = subprocess.run(
        [*command, "--cutoff", "2024-06-31", "--horizon-days", "90", "--out", str(tmp_path / "other.csv")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 2
    assert (
        refused.stderr
        == "lifecycle-analytics: argument --cutoff: '2024-06-31' is not a date: use YYYY-MM-DD\n"
    )
    assert not (tmp_path / "other.csv").exists()
