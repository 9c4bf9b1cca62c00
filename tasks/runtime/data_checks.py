"""Referential checks of environment data: takes an `EnvironmentSpec` and the raw
rows of each table (as parsed from JSON) and returns a typed list of `DataIssue`s
(non-object rows, missing, invalid or repeated primary keys, foreign keys that do
not resolve, unknown and missing columns) instead of stopping at the first one;
`DataLoadError` carries them when a strict load refuses the data. No side
effects."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from schemas.environment import DataIssue, DataIssueKind, EnvironmentSpec, TableSpec
from tasks.runtime.table import row_key

MAX_LISTED_ISSUES = 20


class DataLoadError(ValueError):
    """Environment data that a strict load refuses; `issues` lists every problem."""

    def __init__(self, environment: str, issues: Sequence[DataIssue]) -> None:
        self.issues = tuple(issues)
        listed = "\n".join(f"- {issue.message}" for issue in issues[:MAX_LISTED_ISSUES])
        more = len(issues) - MAX_LISTED_ISSUES
        tail = f"\n- ... and {more} more" if more > 0 else ""
        super().__init__(
            f"data of environment {environment} has {len(issues)} problem(s):\n"
            f"{listed}{tail}"
        )


def check_rows(
    spec: EnvironmentSpec,
    rows: Mapping[str, Sequence[Any]],
    *,
    labels: Mapping[str, str] | None = None,
) -> list[DataIssue]:
    """Every problem of the data, table by table in spec order.

    Args:
        spec: The environment spec.
        rows: Table name -> rows as parsed (a table absent here counts as empty).
        labels: Table name -> how to name it in messages (e.g. its file path).

    Returns:
        The issues; empty when the data is usable as is.
    """
    names = labels or {}
    issues: list[DataIssue] = []
    keys: dict[str, set[str]] = {}
    for name, table in spec.tables.items():
        table_rows = rows.get(name, ())
        label = names.get(name, name)
        table_issues, keys[name] = _table_issues(table, table_rows, label)
        issues += table_issues
    for name, table in spec.tables.items():
        label = names.get(name, name)
        issues += _foreign_key_issues(table, rows.get(name, ()), keys, label)
    return issues


def row_issues(
    spec: EnvironmentSpec,
    rows: Mapping[str, Sequence[Any]],
    existing: Mapping[str, set[str]],
    *,
    labels: Mapping[str, str] | None = None,
) -> list[DataIssue]:
    """The problems of rows added to tables that already hold `existing` keys
    (a session overlay), each naming its table and row.

    Args:
        spec: The environment spec; every table in `rows` must be in it.
        rows: Table name -> the added rows.
        existing: Table name -> the string keys already present.
        labels: Table name -> how to name it in messages.

    Returns:
        Non-object rows, missing, invalid or taken keys (taken by an existing
        row or an earlier added one), missing and unknown columns, and foreign
        keys that resolve neither to an existing nor to an added row.
    """
    names = labels or {}
    issues: list[DataIssue] = []
    keys = {name: set(found) for name, found in existing.items()}
    for name, added in rows.items():
        table = spec.tables[name]
        label = names.get(name, name)
        seen: set[str] = set()
        for index, row in enumerate(added):
            issues += _added_row_issues(
                table, row, f"{label} row #{index}", keys.get(name, set()), seen
            )
        keys[name] = keys.get(name, set()) | seen
    for name, added in rows.items():
        issues += _foreign_key_issues(
            spec.tables[name], added, keys, names.get(name, name)
        )
    return issues


def _added_row_issues(
    table: TableSpec, row: Any, where: str, taken: set[str], seen: set[str]
) -> list[DataIssue]:
    if not isinstance(row, dict):
        return [_issue(table, "not_an_object", f"{where} is not an object")]
    key_name = table.primary_key
    issues: list[DataIssue] = []
    key = row_key(row.get(key_name))
    if key_name not in row or key is None:
        kind: DataIssueKind = (
            "missing_primary_key" if key_name not in row else "invalid_primary_key"
        )
        return [
            _issue(
                table,
                kind,
                f"{where} has no valid primary key '{key_name}' (a string or integer)",
                row=where.rsplit(" ", 1)[-1],
                column=key_name,
            )
        ]
    if key in taken or key in seen:
        whose = "an existing row" if key in taken else "an earlier added row"
        issues.append(
            _issue(
                table,
                "duplicate_primary_key",
                f"{where}: {key_name} '{key}' is already used by {whose}",
                row=key,
                column=key_name,
            )
        )
    seen.add(key)
    for column in table.columns:
        if column not in row:
            issues.append(
                _issue(
                    table,
                    "missing_column",
                    f"{where} ('{key}') lacks column '{column}'",
                    row=key,
                    column=column,
                )
            )
    for column in row:
        if column not in table.columns:
            issues.append(
                _issue(
                    table,
                    "unknown_column",
                    f"{where} ('{key}') has column '{column}', which the "
                    "blueprint does not define",
                    row=key,
                    column=column,
                )
            )
    return issues


def valid_rows(table: TableSpec, rows: Sequence[Any]) -> list[dict[str, Any]]:
    """The rows that can be indexed: objects with a valid key not seen before."""
    seen: set[str] = set()
    kept: list[dict[str, Any]] = []
    for row in rows:
        key = row_key(row.get(table.primary_key)) if isinstance(row, dict) else None
        if key is not None and key not in seen:
            seen.add(key)
            kept.append(row)
    return kept


def extra_columns(table: TableSpec, rows: Sequence[Any]) -> list[str]:
    """Columns the rows hold beyond the spec, in order of first appearance."""
    known = set(table.columns)
    found: dict[str, None] = {}
    for row in rows:
        if isinstance(row, dict):
            found.update((column, None) for column in row if column not in known)
    return list(found)


def _table_issues(
    table: TableSpec, rows: Sequence[Any], label: str
) -> tuple[list[DataIssue], set[str]]:
    issues: list[DataIssue] = []
    seen: set[str] = set()
    missing: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    key_name = table.primary_key
    for index, row in enumerate(rows):
        where = f"{label} row #{index}"
        if not isinstance(row, dict):
            issues.append(_issue(table, "not_an_object", f"{where} is not an object"))
            continue
        missing.update(column for column in table.columns if column not in row)
        unknown.update(column for column in row if column not in table.columns)
        if key_name not in row:
            issues.append(
                _issue(
                    table,
                    "missing_primary_key",
                    f"{where} has no primary key '{key_name}'",
                    row=f"#{index}",
                    column=key_name,
                )
            )
            continue
        key = row_key(row[key_name])
        if key is None:
            issues.append(
                _issue(
                    table,
                    "invalid_primary_key",
                    f"{where}: {key_name} {row[key_name]!r} is not a string or integer",
                    row=f"#{index}",
                    column=key_name,
                )
            )
        elif key in seen:
            issues.append(
                _issue(
                    table,
                    "duplicate_primary_key",
                    f"{where}: {key_name} '{key}' is used by an earlier row",
                    row=key,
                    column=key_name,
                )
            )
        else:
            seen.add(key)
    for column, count in missing.items():
        if column != key_name:
            issues.append(
                _issue(
                    table,
                    "missing_column",
                    f"{label}: {count} row(s) lack column '{column}'",
                    column=column,
                )
            )
    for column, count in unknown.items():
        issues.append(
            _issue(
                table,
                "unknown_column",
                f"{label}: {count} row(s) have column '{column}', which the "
                f"blueprint does not define",
                column=column,
            )
        )
    return issues, seen


def _foreign_key_issues(
    table: TableSpec, rows: Sequence[Any], keys: Mapping[str, set[str]], label: str
) -> list[DataIssue]:
    issues: list[DataIssue] = []
    for row in valid_rows(table, rows):
        key = row_key(row[table.primary_key])
        for column, target in table.foreign_keys.items():
            value = row.get(column)
            if value is None:
                continue
            if row_key(value) not in keys.get(target, set()):
                issues.append(
                    _issue(
                        table,
                        "dangling_foreign_key",
                        f"{label} row '{key}': {column} {value!r} is not a {target} id",
                        row=key,
                        column=column,
                    )
                )
    return issues


def _issue(
    table: TableSpec, kind: DataIssueKind, message: str, **where: str
) -> DataIssue:
    return DataIssue(table=table.name, kind=kind, message=message, **where)
