"""The transactions reader and the scores CSV: what is accepted, what is refused and how it is named."""

from __future__ import annotations

import io
from datetime import date

import pytest

from shared.analytics.facts import CustomerScore
from shared.analytics.history import Purchase, Purchases, day_number
from shared.analytics.rfm import RfmSettings
from shared.analytics.scoring import ScoringSettings, score
from shared.analytics.transactions import (
    SCORE_COLUMNS,
    BadScores,
    BadTransactions,
    read_scores,
    read_transactions,
    write_scores,
)


def lines(text: str) -> list[str]:
    return io.StringIO(text).readlines()


def histories(purchases: Purchases) -> dict[str, list[tuple[date, float]]]:
    found: dict[str, list[tuple[date, float]]] = {}
    for c, day, amount in zip(purchases.customer, purchases.day, purchases.amount, strict=True):
        found.setdefault(purchases.customers[c], []).append(
            (date.fromordinal(date(1970, 1, 1).toordinal() + int(day)), float(amount))
        )
    return found


def test_rows_of_one_customer_and_day_are_one_purchase_with_the_amounts_added() -> None:
    purchases = read_transactions(
        lines(
            "customer_id,timestamp,amount\n"
            "ann,2024-05-01,10.50\n"
            "ann,2024-05-01T23:59:59,4.50\n"
            "bob,2024-05-02,0\n"
            "ann,2024-04-01,1\n"
        )
    )
    assert histories(purchases) == {
        "ann": [(date(2024, 4, 1), 1.0), (date(2024, 5, 1), 15.0)],
        "bob": [(date(2024, 5, 2), 0.0)],
    }


@pytest.mark.parametrize(
    ("timestamp", "day"),
    [
        ("2024-05-01", date(2024, 5, 1)),
        ("2024-05-01T23:30:00", date(2024, 5, 1)),  # no offset: UTC
        ("2024-05-01T23:30:00-02:00", date(2024, 5, 2)),  # 01:30 UTC the next day
        ("2024-05-01T01:30:00+02:00", date(2024, 4, 30)),
        ("2024-05-01 12:00:00Z", date(2024, 5, 1)),
        ("2024-05-01T12:00:00.123456+00:00", date(2024, 5, 1)),
        ("20240501", date(2024, 5, 1)),
    ],
)
def test_timestamps_are_iso_8601_dates_or_times_on_utc_days(timestamp: str, day: date) -> None:
    purchases = read_transactions(lines(f"customer_id,timestamp,amount\nann,{timestamp},1\n"))
    assert purchases.day.tolist() == [day_number(day)]


def test_columns_come_in_any_order_with_others_ignored_and_products_kept() -> None:
    purchases = read_transactions(
        lines(
            "Category, AMOUNT ,order_id,customer_id,product,timestamp\n"
            "water,30,o-1,ann,filter,2024-05-01\n"
            ",800,o-2,bob,oven,2024-05-02\n"
            "kitchen,5,o-3,bob,,2024-05-02\n"
        )
    )
    assert histories(purchases) == {"ann": [(date(2024, 5, 1), 30.0)], "bob": [(date(2024, 5, 2), 805.0)]}
    baskets = [
        (
            purchases.customers[purchases.customer[row]],
            purchases.products[p] if p >= 0 else "",
            purchases.categories[c] if c >= 0 else "",
        )
        for row, p, c in zip(
            purchases.basket_row, purchases.basket_product, purchases.basket_category, strict=True
        )
    ]
    assert sorted(baskets) == [("ann", "filter", "water"), ("bob", "", "kitchen"), ("bob", "oven", "")]


def test_the_result_does_not_depend_on_the_order_of_the_rows() -> None:
    rows = [
        "ann,2024-05-01,1",
        "bob,2024-05-03,2",
        "ann,2024-05-09,3",
        "cid,2024-01-01,4",
        "bob,2024-05-03,5",
    ]
    first = read_transactions(["customer_id,timestamp,amount", *rows])
    second = read_transactions(["customer_id,timestamp,amount", *reversed(rows)])
    assert first.customers == second.customers == ("ann", "bob", "cid")
    assert histories(first) == histories(second)


def test_until_keeps_the_rows_up_to_that_day_but_checks_them_all() -> None:
    text = "customer_id,timestamp,amount\nann,2024-05-01,1\nann,2024-05-02,2\nbob,2024-05-03,3\n"
    purchases = read_transactions(lines(text), until=day_number(date(2024, 5, 1)))
    assert histories(purchases) == {"ann": [(date(2024, 5, 1), 1.0)]}
    with pytest.raises(BadTransactions, match="line 3: amount '-2' is negative"):
        read_transactions(lines(text.replace(",2\n", ",-2\n")), until=day_number(date(2024, 5, 1)))


def test_a_byte_order_mark_quoted_fields_and_blank_lines_are_fine() -> None:
    purchases = read_transactions(
        lines('\ufeffcustomer_id,timestamp,amount\n"smith, ann",2024-05-01,"12.00"\n\n" bob ",2024-05-01,1\n')
    )
    assert purchases.customers == ("bob", "smith, ann")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the transactions are empty"),
        ("customer_id,timestamp\nann,2024-05-01\n", "missing column amount: the header needs"),
        ("id,when,amount\n", "missing columns customer_id, timestamp: the header needs"),
        ("customer_id,timestamp,amount,Amount\n", "the header names column 'amount' twice"),
        ("customer_id,timestamp,amount\nann,2024-05-01,1\n,2024-05-01,1\n", "line 3: customer_id is empty"),
        ("customer_id,timestamp,amount\nann,2024-05-01,1\n  ,2024-05-01,1\n", "line 3: customer_id is empty"),
        ("customer_id,timestamp,amount\nann,,1\n", "line 2: timestamp is empty"),
        (
            "customer_id,timestamp,amount\nann,2024-13-01,1\n",
            "line 2: timestamp '2024-13-01' is not an ISO 8601 date or date-time",
        ),
        ("customer_id,timestamp,amount\nann,05/01/2024,1\n", "line 2: timestamp '05/01/2024' is not an ISO"),
        ("customer_id,timestamp,amount\nann,1714521600,1\n", "line 2: timestamp '1714521600' is not an ISO"),
        ("customer_id,timestamp,amount\nann,2024-05-01T25:00,1\n", "timestamp '2024-05-01T25:00' is not"),
        ("customer_id,timestamp,amount\nann,2024-05-01,\n", "line 2: amount is empty"),
        ("customer_id,timestamp,amount\nann,2024-05-01,-0.01\n", "line 2: amount '-0.01' is negative"),
        ("customer_id,timestamp,amount\nann,2024-05-01,$5\n", "line 2: amount '$5' is not a decimal number"),
        (
            "customer_id,timestamp,amount\nann,2024-05-01,nan\n",
            "line 2: amount 'nan' is not a decimal number",
        ),
        (
            "customer_id,timestamp,amount\nann,2024-05-01,inf\n",
            "line 2: amount 'inf' is not a decimal number",
        ),
        ("customer_id,timestamp,amount\nann,2024-05-01,1e999\n", "line 2: amount '1e999' is too large"),
        ('customer_id,timestamp,amount\nann,2024-05-01,"1,000"\n', "amount '1,000' is not a decimal"),
        ("customer_id,timestamp,amount\nann,2024-05-01\n", "line 2: 2 fields, but the header has 3"),
        ("customer_id,timestamp,amount\nann,2024-05-01,1,x\n", "line 2: 4 fields, but the header has 3"),
    ],
)
def test_bad_input_names_the_line_the_column_and_the_problem(text: str, message: str) -> None:
    with pytest.raises(BadTransactions) as refused:
        read_transactions(lines(text))
    assert message in str(refused.value)


def test_a_message_names_only_the_bad_value() -> None:
    text = "customer_id,timestamp,amount\nann@example.com,2024-05-01,1\nbob@example.com,2024-05-01,-3\n"
    with pytest.raises(BadTransactions) as refused:
        read_transactions(lines(text))
    assert str(refused.value) == "line 3: amount '-3' is negative (amounts are 0 or more)"
    long = "x" * 500
    with pytest.raises(BadTransactions) as refused:
        read_transactions(lines(f"customer_id,timestamp,amount\nann,{long},1\n"))
    assert len(str(refused.value)) < 200


def test_a_field_longer_than_the_csv_limit_is_bad_input_naming_its_line() -> None:
    huge = "1" * 200_000
    text = f"customer_id,timestamp,amount\nann,2024-05-01,1\nbob,2024-05-01,{huge}\n"
    with pytest.raises(BadTransactions) as refused:
        read_transactions(lines(text))
    assert str(refused.value) == "line 3: a field is longer than 131,072 characters"
    with pytest.raises(BadTransactions, match="^line 1: a field is longer than"):
        read_transactions(lines(f"customer_id,timestamp,amount,{huge}\n"))
    # in a quoted field spanning lines: the line where it went past the limit
    spread = "\n".join(["x" * 50_000] * 4)
    with pytest.raises(BadTransactions, match="^line [3-6]: a field is longer than"):
        read_transactions(lines(f'customer_id,timestamp,amount,note\nann,2024-05-01,1,"{spread}"\n'))


def test_a_multi_line_field_counts_its_lines() -> None:
    text = 'customer_id,timestamp,amount,note\nann,2024-05-01,1,"two\nlines"\nbob,2024-05-01,x,\n'
    with pytest.raises(BadTransactions, match="^line 4: amount 'x'"):
        read_transactions(lines(text))


def test_amounts_of_zero_and_signs_are_read_as_numbers() -> None:
    purchases = read_transactions(
        lines(
            "customer_id,timestamp,amount\na,2024-05-01,+2.5\nb,2024-05-01,-0\nc,2024-05-01,.5\nd,2024-05-01,1E2\n"
        )
    )
    assert purchases.amount.tolist() == [2.5, 0.0, 0.5, 100.0]
    assert str(purchases.amount[1]) == "0.0"


# the scores CSV -------------------------------------------------------------------------------------


def test_scores_are_written_under_the_contract_columns_and_read_back() -> None:
    rows = [
        CustomerScore(
            customer_id="ann",
            p_no_purchase=0.123457,
            churn_risk=0.9,
            risk_level="high",
            expected_next_purchase=date(2024, 7, 1),
            typical_gap_days=30.5,
            r=1,
            f=5,
            m=5,
            segment="cant_lose_them",
            premium=True,
        ),
        CustomerScore(customer_id="bob, jr", p_no_purchase=1.0, churn_risk=0.0, risk_level="low"),
    ]
    out = io.StringIO()
    write_scores(rows, out)
    assert out.getvalue() == (
        "customer_id,p_no_purchase,churn_risk,risk_level,expected_next_purchase,typical_gap_days,r,f,m,segment\n"
        "ann,0.123457,0.900000,high,2024-07-01,30.5,1,5,5,Can't Lose Them\n"
        '"bob, jr",1.000000,0.000000,low,,,,,,\n'
    )
    assert list(read_scores(lines(out.getvalue()))) == rows


def test_scored_rows_survive_the_round_trip() -> None:
    purchases = Purchases.from_rows(
        Purchase(customer_id=f"c{i % 37}", day=19000 + (i * 7919) % 700, amount=float(i % 13) + 0.25)
        for i in range(400)
    )
    rows = score(purchases, 19600, ScoringSettings(rfm=RfmSettings(lookback_days=60)))
    assert any(row.premium for row in rows) and any(row.segment is None for row in rows)
    out = io.StringIO()
    write_scores(rows, out)
    assert list(read_scores(lines(out.getvalue()))) == rows
    assert out.getvalue().splitlines()[0] == ",".join(SCORE_COLUMNS)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("customer_id,p_no_purchase\n", "the scores need the header"),
        (",".join(SCORE_COLUMNS) + "\nann,0.5,0.5,low,,,,,\n", "line 2: 9 fields"),
        (",".join(SCORE_COLUMNS) + "\nann,1.5,0.5,low,,,,,,\n", "line 2: p_no_purchase:"),
        (",".join(SCORE_COLUMNS) + "\nann,0.5,0.5,severe,,,,,,\n", "line 2: risk_level:"),
        (",".join(SCORE_COLUMNS) + "\nann,0.5,0.5,low,,,1,1,1,Sleepy\n", "line 2: segment 'Sleepy' is not"),
        (",".join(SCORE_COLUMNS) + "\nann,0.5,0.5,low,2024-02-30,,,,,\n", "line 2: expected_next_purchase:"),
        (",".join(SCORE_COLUMNS) + "\n" + "x" * 200_000 + "\n", "line 2: a field is longer than 131,072"),
    ],
)
def test_a_bad_scores_file_is_refused(text: str, message: str) -> None:
    with pytest.raises(BadScores) as refused:
        list(read_scores(lines(text)))
    assert message in str(refused.value)
