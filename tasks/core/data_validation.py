"""s06 data validation: takes a table's contract, the parsed `output.json` of its
generator script and the tables it points into; returns every `DataProblem`
(not an array, row count, missing and unknown columns, primary keys, nulls, types,
enum values, ranges, UUID format, foreign keys, copied values, constraint rules)
instead of stopping at the first, the canonical rows of a valid table, and the
grouped problem report sent back to the model. Pure, no side effects.

Exact rules: the output is a JSON array of exactly `n` objects; each has exactly
the contract's columns; the primary key is a non-empty string or an integer and
unique (compared as text, as the runtime indexes it); null only where the column is
nullable; types as in `tasks.core.data_values`; enum values verbatim; numeric
bounds inclusive; date/datetime bounds inclusive by calendar date; a foreign key
value equals a primary key of the referenced table; a copied value occurs in the
source column; every constraint rule holds (`tasks.core.data_rules`).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from schemas.database import ColumnContract, DataProblem, TableContract
from tasks.core.data_contract import TableData
from tasks.core.data_rules import rule_violations
from tasks.core.data_values import (
    day_of,
    has_type,
    key_text,
    parse_date,
    row_label,
    simulation_now,
    value_text,
)

MAX_EXAMPLES = 3
MAX_REPORT_LINES = 30


def parse_output(text: str | None) -> tuple[Any, list[DataProblem]]:
    """The parsed `output.json`, or the problem that prevents reading it."""
    if text is None:
        return None, [_problem("script_failed", "the script did not write output.json")]
    try:
        return json.loads(text), []
    except json.JSONDecodeError as exc:
        return None, [
            _problem("script_failed", f"output.json is not valid JSON: {exc}")
        ]


def table_problems(
    contract: TableContract, data: Any, referenced: Mapping[str, TableData]
) -> list[DataProblem]:
    """Every problem of a generated table.

    Args:
        contract: The table's contract.
        data: The parsed output of the script.
        referenced: Validated tables this one points into, by table name.

    Returns:
        The problems in row order (column-wide ones first); empty when valid.
    """
    if not isinstance(data, list):
        return [
            _problem(
                "not_an_array",
                f"output.json holds a {type(data).__name__}, not a JSON array of rows",
            )
        ]
    problems: list[DataProblem] = []
    if len(data) != contract.n:
        problems.append(
            _problem(
                "row_count",
                f"the table has {len(data)} rows; exactly {contract.n} are required",
            )
        )
    rows = [row for row in data if isinstance(row, dict)]
    problems += _column_problems(contract, rows)
    zone = simulation_now(contract.simulation_time).tzinfo
    keys = {name: _keys(table) for name, table in referenced.items()}
    seen: dict[str, int] = {}
    for index, row in enumerate(data):
        if not isinstance(row, dict):
            problems.append(
                _problem(
                    "not_an_object", f"row #{index} is not a JSON object", row=index
                )
            )
            continue
        where = row_label(contract.primary_key, row, index)
        problems += _key_problems(contract, row, index, where, seen)
        for name, column in contract.columns.items():
            if name == contract.primary_key or name not in row:
                continue
            problems += _value_problems(
                name, column, row[name], where, index, zone, keys, referenced
            )
    problems += rule_violations(contract, rows, referenced)
    return problems


def canonical_rows(
    contract: TableContract, rows: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, Any], ...]:
    """Rows with their columns in contract order (primary key first)."""
    return tuple({name: row[name] for name in contract.columns} for row in rows)


def problem_report(problems: Sequence[DataProblem]) -> list[str]:
    """Problems grouped by kind and column: a few examples and a count per group."""
    groups: dict[tuple[str, str | None], list[DataProblem]] = {}
    for problem in problems:
        groups.setdefault((problem.kind, problem.column), []).append(problem)
    lines: list[str] = []
    for found in groups.values():
        lines += [p.message for p in found[:MAX_EXAMPLES]]
        if len(found) > MAX_EXAMPLES:
            lines.append(
                f"... and {len(found) - MAX_EXAMPLES} more row(s) with the same "
                f"problem ({found[0].kind}"
                + (f" in '{found[0].column}')" if found[0].column else ")")
            )
    if len(lines) > MAX_REPORT_LINES:
        more = len(lines) - MAX_REPORT_LINES
        lines = [*lines[:MAX_REPORT_LINES], f"... and {more} more line(s)"]
    return lines


def _keys(table: TableData) -> set[str]:
    key = table.contract.primary_key
    return {k for row in table.rows if (k := key_text(row.get(key))) is not None}


def _column_problems(
    contract: TableContract, rows: Sequence[Mapping[str, Any]]
) -> list[DataProblem]:
    missing: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    for row in rows:
        missing.update(c for c in contract.columns if c not in row)
        unknown.update(c for c in row if c not in contract.columns)
    problems = [
        _problem(
            "missing_column",
            f"{count} row(s) lack column '{name}'",
            column=name,
        )
        for name, count in missing.items()
    ]
    problems += [
        _problem(
            "unknown_column",
            f"{count} row(s) have column '{name}', which the table does not define "
            f"(columns: {', '.join(contract.columns)})",
            column=name,
        )
        for name, count in unknown.items()
    ]
    return problems


def _key_problems(
    contract: TableContract,
    row: Mapping[str, Any],
    index: int,
    where: str,
    seen: dict[str, int],
) -> list[DataProblem]:
    name = contract.primary_key
    if name not in row:
        return []  # reported as a missing column
    key = key_text(row[name])
    if key is None:
        return [
            _problem(
                "missing_primary_key",
                f"{where}: primary key {name} {row[name]!r} is not a non-empty "
                "string or an integer",
                column=name,
                row=index,
            )
        ]
    problems = _value_problems(
        name, contract.columns[name], row[name], where, index, None, {}, {}
    )
    if key in seen:
        problems.append(
            _problem(
                "duplicate_primary_key",
                f"{where}: primary key '{key}' repeats row #{seen[key]}",
                column=name,
                row=index,
            )
        )
    else:
        seen[key] = index
    return problems


def _value_problems(
    name: str,
    column: ColumnContract,
    value: Any,
    where: str,
    index: int,
    zone: Any,
    keys: Mapping[str, set[str]],
    referenced: Mapping[str, TableData],
) -> list[DataProblem]:
    def found(kind: Any, message: str) -> list[DataProblem]:
        return [_problem(kind, f"{where}: {message}", column=name, row=index)]

    if value is None:
        return [] if column.nullable else found("null_value", f"{name} is null")
    if not has_type(value, column.type, zone):
        return found(
            "wrong_type", f"{name} {value!r} is not {_TYPE_WORDS[column.type]}"
        )
    if column.enum is not None and value not in column.enum:
        allowed = ", ".join(column.enum)
        return found("not_in_enum", f"{name} {value!r} is not one of: {allowed}")
    outside = _outside(column, value, zone)
    if outside:
        return found("out_of_range", f"{name} {value!r} is {outside}")
    if column.format == "uuid" and not _is_uuid(value):
        return found("bad_format", f"{name} {value!r} is not a UUID string")
    if column.references is not None:
        if key_text(value) not in keys.get(column.references, set()):
            return found(
                "dangling_foreign_key",
                f"{name} {value!r} is not a {column.references} id (no row of "
                f"{column.references} has that primary key)",
            )
    if column.drawn_from is not None:
        source, attribute = column.drawn_from.split(".", 1)
        table = referenced.get(source)
        pool = {value_text(r.get(attribute)) for r in table.rows} if table else set()
        if value_text(value) not in pool:
            return found(
                "not_drawn_from",
                f"{name} {value!r} does not occur in {column.drawn_from}",
            )
    return []


def _outside(column: ColumnContract, value: Any, zone: Any) -> str:
    low, high = column.minimum, column.maximum
    if low is None or high is None:
        return ""
    if column.type in ("integer", "number"):
        inside = float(low) <= value <= float(high)
        return "" if inside else f"outside {_number(low)}..{_number(high)}"
    if column.type in ("date", "datetime"):
        day = day_of(value, column.type, zone)
        first, last = parse_date(low), parse_date(high)
        if day is None or first is None or last is None:
            return ""
        return "" if first <= day <= last else f"not between {low} and {high}"
    return ""


def _number(value: float | str) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else str(number)


def _is_uuid(value: Any) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except (ValueError, AttributeError, TypeError):
        return False


_TYPE_WORDS = {
    "string": "a string",
    "enum": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true/false)",
    "date": "a date (YYYY-MM-DD)",
    "datetime": "an ISO 8601 datetime",
    "array": "a JSON array",
    "object": "a JSON object",
}


def _problem(
    kind: Any, message: str, *, column: str | None = None, row: int | None = None
) -> DataProblem:
    return DataProblem(kind=kind, message=message, column=column, row=row)
