"""s06 prose check: a model's summary may only state names, values, numbers and
dates that the computed facts support."""

from __future__ import annotations

import pytest

from schemas.database import ColumnContract, TableContract
from tasks.core.data_prose import prose_problems
from tasks.core.data_summary import summarize_table

NOW = "2025-01-23T15:00:00-05:00"
CONTRACT = TableContract(
    table="Account",
    kind="entity",
    primary_key="account_id",
    columns={
        "account_id": ColumnContract(type="string"),
        "holder_id": ColumnContract(type="string", references="Holder"),
        "status": ColumnContract(type="enum", enum=("open", "frozen", "closed")),
        "balance": ColumnContract(type="number", range="0-250000"),
        "opened_on": ColumnContract(type="date"),
        "phone": ColumnContract(type="string", range="E.164"),
    },
    n=3,
    seed=1,
    simulation_time=NOW,
    tables={"Holder": "holder_id"},
)
ROWS = [
    {
        "account_id": "a1",
        "holder_id": "h1",
        "status": "open",
        "balance": 1908.9,
        "opened_on": "2019-04-02",
        "phone": "+15550001",
    },
    {
        "account_id": "a2",
        "holder_id": "h2",
        "status": "frozen",
        "balance": 212473.56,
        "opened_on": "2024-11-30",
        "phone": "+15550002",
    },
    {
        "account_id": "a3",
        "holder_id": "h1",
        "status": "open",
        "balance": 5000,
        "opened_on": "2021-06-15",
        "phone": "+15550003",
    },
]
SUMMARY = summarize_table(CONTRACT, ROWS)


def _check(prose: str) -> list[str]:
    return prose_problems(prose, SUMMARY, CONTRACT, ROWS)


def test_prose_that_sticks_to_the_facts_passes():
    """Names, present values, rounded bounds, counts, years and dates are fine."""
    prose = (
        "Each of the 3 rows is an `Account` of a `Holder` (`holder_id`), `open` or "
        "`frozen`, in 2 distinct statuses. Balances run from about 1,909 to "
        "212,473.6; accounts were opened between 2019 and 2024-11-30, before "
        "2025-01-23. Phones follow E.164 and calls are taken at 09:00. "
        "Account `a2` is frozen."
    )
    assert _check(prose) == []


@pytest.mark.parametrize(
    ("prose", "problem"),
    [
        (
            "Accounts have a `currency` column.",
            "`currency` is neither a column or table name nor a value that occurs "
            "in the data (columns: account_id, holder_id, status, balance, "
            "opened_on, phone)",
        ),
        (
            "An account is open, frozen or closed.",
            "'closed' is a possible status value by design, but no row has it; do "
            "not mention it (values present: frozen, open)",
        ),
        ("There are 12 rows.", "the prose says 12 rows; the table has 3"),
        (
            "Balances reach 250,000.",
            "the number 250,000 is not one of the computed facts (row count, "
            "distinct and null counts, listed values, minimum and maximum of "
            "numeric columns, years of the first and last dates)",
        ),
        (
            "The first account opened on 2019-01-01.",
            "the date 2019-01-01 is not the first or last date of a date column, "
            "nor the simulation date (allowed: 2019-04-02, 2024-11-30, 2025-01-23)",
        ),
    ],
)
def test_prose_that_contradicts_the_data_is_named(prose, problem):
    """Unknown names, absent values, wrong counts, numbers and dates."""
    assert _check(prose) == [problem]


def test_precision_follows_what_is_written():
    """1,908.9 matches the minimum; 1,908.8 does not; 1,909 rounds correctly."""
    assert _check("The lowest balance is 1,908.9 or about 1,909.") == []
    assert len(_check("The lowest balance is 1,908.8.")) == 1
    assert len(_check("The lowest balance is about 1,900.")) == 1
