"""The agent's state diff side by side with the golden one, change by change.

Input: the golden task's expected diff and a rollout's final diff (each a
`DatabaseDiff` against the untouched base, or None when unknown). Output: one
`TableComparison` per table either side changed, each listing every inserted or
deleted row and every updated cell with its status: `match` (both made it),
`missing` (only the golden run made it), `unexpected` (only the agent made it),
`different` (both updated the cell, to different values); with one side unknown,
the other side's changes are `expected` or `recorded`. No side effects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from schemas.environment import DatabaseDiff, TableDiff

ChangeKind = Literal["inserted", "updated", "deleted"]
ChangeStatus = Literal[
    "match", "missing", "unexpected", "different", "expected", "recorded"
]
_KIND_ORDER = {"inserted": 0, "updated": 1, "deleted": 2}


@dataclass(frozen=True)
class CellChange:
    """One changed row (inserted, deleted) or cell (updated).

    Attributes:
        kind: What happened to the row.
        row: The row's primary id.
        column: The updated column (None for an inserted or deleted row).
        expected: The golden (old, new) values of an updated cell; for a row,
            True when the golden run made the change; None when it did not.
        actual: The same for the agent's run.
        status: How the two sides compare.
    """

    kind: ChangeKind
    row: str
    column: str | None
    expected: Any
    actual: Any
    status: ChangeStatus


@dataclass(frozen=True)
class TableComparison:
    table: str
    changes: tuple[CellChange, ...]

    @property
    def matches(self) -> bool:
        return all(c.status == "match" for c in self.changes)


def compare_diffs(
    expected: DatabaseDiff | None, actual: DatabaseDiff | None
) -> tuple[TableComparison, ...]:
    """Compare a golden diff with an agent's, table by table (sorted by name).

    Args:
        expected: The golden run's diff, or None when there is no golden task.
        actual: The agent's final diff, or None when the rollout recorded none.

    Returns:
        One comparison per table with a change on either side; tables whose
        diffs are empty on both sides are left out.
    """
    empty = TableDiff()
    names = set(expected.tables if expected else ()) | set(
        actual.tables if actual else ()
    )
    out = []
    for name in sorted(names):
        left = expected.tables.get(name, empty) if expected else None
        right = actual.tables.get(name, empty) if actual else None
        changes = _compare_table(left, right)
        if changes:
            out.append(TableComparison(table=name, changes=changes))
    return tuple(out)


def _compare_table(
    expected: TableDiff | None, actual: TableDiff | None
) -> tuple[CellChange, ...]:
    left, right = _cells(expected), _cells(actual)
    changes = []
    for key in sorted(left.keys() | right.keys(), key=_order):
        kind, row, column = key
        want, got = left.get(key), right.get(key)
        changes.append(
            CellChange(
                kind=kind,
                row=row,
                column=column,
                expected=want,
                actual=got,
                status=_status(want, got, expected is None, actual is None),
            )
        )
    return tuple(changes)


def _cells(diff: TableDiff | None) -> dict[tuple[ChangeKind, str, str | None], Any]:
    if diff is None:
        return {}
    cells: dict[tuple[ChangeKind, str, str | None], Any] = {}
    cells |= {("inserted", row, None): True for row in diff.inserted}
    cells |= {("deleted", row, None): True for row in diff.deleted}
    for row, columns in diff.updated.items():
        for column, values in columns.items():
            cells[("updated", row, column)] = tuple(values)
    return cells


def _status(
    want: Any, got: Any, expected_unknown: bool, actual_unknown: bool
) -> ChangeStatus:
    if want is not None and got is not None:
        return "match" if want == got else "different"
    if want is not None:
        return "expected" if actual_unknown else "missing"
    return "recorded" if expected_unknown else "unexpected"


def _order(key: tuple[ChangeKind, str, str | None]) -> tuple[int, str, str]:
    kind, row, column = key
    return (_KIND_ORDER[kind], row, column or "")
