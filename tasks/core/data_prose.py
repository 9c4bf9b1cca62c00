"""s06 prose check: takes a model's prose summary of a table, the table's computed
`TableSummary`, its contract and rows; returns the sentences that say where the
prose contradicts the data (empty when it agrees). Pure, no side effects.

What is checked, exactly:
1. Every `backticked` token is the table's name, one of its columns, a table a
   foreign key points to, or a value that occurs in the data (JSON text form).
2. Every enum value of the contract that the prose mentions as a whole word (with
   or without backticks, three characters or more) occurs in the data.
3. A number directly followed by "row(s)", "record(s)" or "entry/entries" equals
   the row count.
4. Every other number (digits, optional thousands commas and decimals, outside
   backticks and outside dates and clock times) equals a computed fact to the
   precision written (e.g. `120.5` matches 120.47): the row count, a column's
   distinct or null count or number of listed values, a listed numeric value, the
   minimum or maximum of a numeric column, or the year of the minimum or maximum
   of a date/datetime column.
5. Every ISO date (`YYYY-MM-DD`, optionally with a time) is the calendar date of
   the minimum or maximum of a date/datetime column, or the simulation date.
Not checked: numbers written as words, clock times, and claims without numbers or
backticks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from schemas.database import TableContract, TableSummary
from tasks.core.data_values import (
    NUMERIC_TYPES,
    TEMPORAL_TYPES,
    day_of,
    simulation_now,
    value_text,
)

_BACKTICK = re.compile(r"`([^`\n]+)`")
_DATE = re.compile(
    r"(?<!\d)(\d{4}-\d{2}-\d{2})"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
)
_CLOCK = re.compile(r"(?<!\d)\d{1,2}:\d{2}(?::\d{2})?(?!\d)")
_NUMBER = re.compile(r"(?<![\w.])(-?)(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w]|\.\d)")
_COUNT_WORD = re.compile(r"\s+(rows?|records?|entry|entries)\b", re.IGNORECASE)
MIN_ENUM_WORD = 3


def prose_problems(
    prose: str,
    summary: TableSummary,
    contract: TableContract,
    rows: Sequence[Mapping[str, Any]],
) -> list[str]:
    """Where the prose disagrees with the computed facts.

    Args:
        prose: The model's summary text.
        summary: The facts computed from the rows.
        contract: The table's contract (column types, enum values).
        rows: The validated rows.

    Returns:
        One sentence per problem, in text order.
    """
    problems = _backtick_problems(prose, summary, rows)
    problems += _enum_problems(prose, summary, contract)
    text = _BACKTICK.sub(" ", prose)
    problems += _date_problems(text, summary, contract)
    text = _CLOCK.sub(" ", _DATE.sub(" ", text))
    problems += _number_problems(text, summary, contract)
    return problems


def _backtick_problems(
    prose: str, summary: TableSummary, rows: Sequence[Mapping[str, Any]]
) -> list[str]:
    names = {summary.table, *summary.columns}
    names |= {c.references for c in summary.columns.values() if c.references}
    values = {value_text(v) for row in rows for v in row.values() if v is not None}
    problems = []
    for token in dict.fromkeys(_BACKTICK.findall(prose)):
        if token not in names and token not in values:
            problems.append(
                f"`{token}` is neither a column or table name nor a value that occurs "
                f"in the data (columns: {', '.join(summary.columns)})"
            )
    return problems


def _enum_problems(
    prose: str, summary: TableSummary, contract: TableContract
) -> list[str]:
    problems = []
    for name, column in contract.columns.items():
        present = set(summary.columns[name].values or ())
        for value in column.enum or ():
            if value in present or len(value) < MIN_ENUM_WORD:
                continue
            if re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", prose):
                shown = ", ".join(sorted(present))
                problems.append(
                    f"'{value}' is a possible {name} value by design, but no row has "
                    f"it; do not mention it (values present: {shown})"
                )
    return problems


def _date_problems(
    text: str, summary: TableSummary, contract: TableContract
) -> list[str]:
    now = simulation_now(contract.simulation_time)
    allowed = {now.date().isoformat()}
    for column in summary.columns.values():
        if column.type in TEMPORAL_TYPES:
            for bound in (column.minimum, column.maximum):
                day = day_of(bound, column.type, now.tzinfo)
                if day is not None:
                    allowed.add(day.isoformat())
    return [
        f"the date {day} is not the first or last date of a date column, nor the "
        f"simulation date (allowed: {', '.join(sorted(allowed))})"
        for day in dict.fromkeys(_DATE.findall(text))
        if day not in allowed
    ]


def _number_problems(
    text: str, summary: TableSummary, contract: TableContract
) -> list[str]:
    facts = _number_facts(summary, contract)
    problems = []
    for match in _NUMBER.finditer(text):
        sign, digits, fraction = match.groups()
        written = f"{sign}{digits}{fraction or ''}"
        stated = float(written.replace(",", ""))
        decimals = len(fraction) - 1 if fraction else 0
        if _COUNT_WORD.match(text, match.end()):
            if stated != summary.row_count:
                problems.append(
                    f"the prose says {written} rows; the table has {summary.row_count}"
                )
            continue
        tolerance = 0.5 * 10**-decimals
        if not any(abs(stated - fact) <= tolerance for fact in facts):
            problems.append(
                f"the number {written} is not one of the computed facts (row count, "
                "distinct and null counts, listed values, minimum and maximum of "
                "numeric columns, years of the first and last dates)"
            )
    return problems


def _number_facts(summary: TableSummary, contract: TableContract) -> set[float]:
    zone = simulation_now(contract.simulation_time).tzinfo
    facts: set[float] = {float(summary.row_count)}
    for column in summary.columns.values():
        facts |= {float(column.distinct), float(column.nulls)}
        if column.values is not None:
            facts.add(float(len(column.values)))
        if column.type in NUMERIC_TYPES:
            facts |= {
                float(v) for v in (column.minimum, column.maximum) if v is not None
            }
            facts |= {float(v) for v in column.values or ()}
        if column.type in TEMPORAL_TYPES:
            for bound in (column.minimum, column.maximum):
                day = day_of(bound, column.type, zone)
                if day is not None:
                    facts.add(float(day.year))
    return facts
