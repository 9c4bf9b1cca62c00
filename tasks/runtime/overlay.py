"""Session overlays: rows added to one session's copy of the base data.

A cross-domain combination's records (s15x) are not written into the shared
tables; they travel as an overlay, table name -> rows (in a fused environment the
session's table names: the shared core table under its own name, every other
table `Server.Table`), and a session that starts from it sees the base data plus
those rows. Input: an `EnvironmentSpec`, the base `Database` and an overlay (or a
JSON file holding one). Output: the problems of the overlay as `DataIssue`s (an
unknown table, a row that is not an object, a missing, invalid or taken primary
key, an unknown or missing column, a value that is not JSON, a foreign key that
resolves neither in the base nor in the overlay), `OverlayError` carrying them,
or a copy of the base with the rows inserted. Side effects: `read_overlay` reads
its file; nothing else touches the disk, and the base is never changed.

Semantics decided here, and relied on by s16, s16x and `check-task`: a session
started from an overlay has its state hash computed over base + overlay + its
writes, and its diff is taken against the untouched base, so the overlay rows
show as inserted (the expected diff of a cross-domain task lists them next to
the trajectory's own writes). Discarding a session discards its overlay.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from schemas.environment import DataIssue, EnvironmentSpec
from tasks.runtime.data_checks import MAX_LISTED_ISSUES, row_issues
from tasks.runtime.database import Database
from tasks.runtime.table import check_json_value, row_key

Overlay = Mapping[str, Sequence[Mapping[str, Any]]]
"""Table name -> rows to add (as plain JSON objects)."""


class OverlayError(ValueError):
    """An overlay the runtime refuses; `issues` names each table and row."""

    def __init__(self, environment: str, issues: Sequence[DataIssue]) -> None:
        self.issues = tuple(issues)
        listed = "\n".join(f"- {i.message}" for i in self.issues[:MAX_LISTED_ISSUES])
        more = len(self.issues) - MAX_LISTED_ISSUES
        tail = f"\n- ... and {more} more" if more > 0 else ""
        super().__init__(
            f"overlay for {environment} has {len(self.issues)} problem(s):\n"
            f"{listed}{tail}"
        )


def overlay_issues(
    spec: EnvironmentSpec, base: Database, overlay: Overlay
) -> list[DataIssue]:
    """Every problem of `overlay` on top of `base` (empty: it can be applied).

    Args:
        spec: The environment spec (the session's table names).
        base: The data the overlay is added to (read only).
        overlay: Table name -> rows.

    Returns:
        The issues, each naming the table and, where known, the row and column.
    """
    issues: list[DataIssue] = []
    for name in overlay:
        if name not in spec.tables:
            issues.append(
                DataIssue(
                    table=name,
                    kind="unknown_table",
                    message=f"overlay names table {name!r}, which {spec.name} does "
                    f"not have; its tables are {', '.join(spec.tables)}",
                )
            )
    known = {name: rows for name, rows in overlay.items() if name in spec.tables}
    existing = {name: set(base.table(name).rows_by_id()) for name in spec.tables}
    issues += row_issues(
        spec, known, existing, labels={name: f"overlay {name}" for name in known}
    )
    for name, rows in known.items():
        table = spec.tables[name]
        for row in rows:
            if not isinstance(row, Mapping):
                continue
            key = row_key(row.get(table.primary_key))
            try:
                check_json_value(dict(row), f"overlay {name} row '{key}'")
            except TypeError as exc:
                issues.append(
                    DataIssue(
                        table=name, kind="invalid_value", message=str(exc), row=key
                    )
                )
    return issues


def apply_overlay(spec: EnvironmentSpec, base: Database, overlay: Overlay) -> Database:
    """A copy of `base` with the overlay's rows inserted (base is unchanged).

    Raises:
        OverlayError: If the overlay has any issue (nothing is applied).
    """
    issues = overlay_issues(spec, base, overlay)
    if issues:
        raise OverlayError(spec.name, issues)
    applied = base.copy()
    for name, rows in overlay.items():
        table = applied.table(name)
        for row in rows:
            table.insert(row)
    return applied


def read_overlay(path: Path) -> dict[str, list[dict[str, Any]]]:
    """An overlay from a JSON file: an object of table name -> array of rows.

    Raises:
        OSError: If the file cannot be read.
        ValueError: If it is not JSON or not of that shape (the message says why).
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"overlay file {path} is not JSON: {exc}") from exc
    if not isinstance(data, dict) or not all(
        isinstance(rows, list) for rows in data.values()
    ):
        raise ValueError(
            f"overlay file {path} must hold an object of table name -> array of rows"
        )
    return data
