"""Typed in-memory tables keyed by primary id, and the one error convention of tool
bodies. Inputs: a `TableSpec` and rows (plain JSON objects). Output: `Table`, whose
reads return copies (so tool code cannot change state behind its back) and whose
writes check keys, columns and JSON values, and `ToolError`. Side effects: only on
the table's own rows; every write is journalled while a transaction is open so the
runtime can undo a failed tool call."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from schemas.base import canonical_json
from schemas.environment import TableDiff, TableSpec

Row = dict[str, Any]
Undo = Callable[[], None]


class ToolError(Exception):
    """A failure the agent should read: bad id, policy rejection, invalid input.

    Tool bodies raise it with a human-readable message; the runtime turns it into
    an error result (`is_error` true over MCP) and undoes the call's writes. Any
    other exception from a tool body is treated as a bug in the tool.
    """


def row_key(value: Any) -> str | None:
    """The index key of a primary-key value, or None if it cannot be a key.

    Keys are strings or integers (JSON has no other sensible id); both index as
    their string form, so `get("7")` and `get(7)` find the same row.
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value)


def clone(value: Any) -> Any:
    """Deep copy of a JSON value (dicts and lists are copied, scalars shared)."""
    if isinstance(value, dict):
        return {key: clone(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [clone(item) for item in value]
    return value


def check_json_value(value: Any, where: str) -> None:
    """Raise TypeError unless `value` is a plain JSON value.

    Args:
        value: The value to check.
        where: What holds it, for the message (e.g. "Appointment.created_at").

    Raises:
        TypeError: For datetimes, sets, objects, non-string keys, NaN or infinity.
    """
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if math.isfinite(value):
            return
        raise TypeError(f"{where}: {value} is not a JSON number")
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_json_value(item, f"{where}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: key {key!r} is not a string")
            check_json_value(item, f"{where}.{key}")
        return
    raise TypeError(
        f"{where}: {type(value).__name__} is not a JSON value (store strings such "
        "as ISO 8601 dates instead)"
    )


class Table:
    """Rows of one table, keyed by primary id, in insertion order.

    Rows always carry every column (missing values are None). Callers get copies.
    Unknown columns, missing or duplicate keys and unknown ids raise `ToolError`;
    values that are not JSON raise `TypeError` (a bug in the calling code).
    """

    def __init__(
        self,
        spec: TableSpec,
        rows: Iterable[Mapping[str, Any]] = (),
        *,
        extra_columns: Iterable[str] = (),
    ) -> None:
        """Build a table from rows whose keys are already known to be valid.

        Args:
            spec: The table's spec.
            rows: Initial rows; each must hold a unique, valid primary key.
            extra_columns: Columns the data has beyond the spec (kept, not dropped,
                so loaded data is never silently altered).

        Raises:
            ValueError: If a row has a missing, invalid or repeated primary key.
        """
        self.spec = spec
        extra = [column for column in extra_columns if column not in spec.columns]
        self._columns = (*spec.columns, *dict.fromkeys(extra))
        self._rows: dict[str, Row] = {}
        self._journal: list[Undo] | None = None
        for row in rows:
            key = row_key(row.get(spec.primary_key))
            if key is None or key in self._rows:
                raise ValueError(
                    f"{spec.name}: missing, invalid or repeated {spec.primary_key} "
                    f"{row.get(spec.primary_key)!r}"
                )
            self._rows[key] = self._normalised(row)

    @property
    def name(self) -> str:
        """The table name."""
        return self.spec.name

    @property
    def primary_key(self) -> str:
        """The primary-key column."""
        return self.spec.primary_key

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column: the spec's, then any extra ones found in the data."""
        return self._columns

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, row_id: object) -> bool:
        key = row_key(row_id)
        return key is not None and key in self._rows

    def get(self, row_id: Any) -> Row:
        """A copy of the row with this primary id.

        Raises:
            ToolError: If there is no such row ("no Clinic with clinic_id 'x'").
        """
        return clone(self._stored(row_id))

    def find(self, **equals: Any) -> list[Row]:
        """Copies of the rows whose columns equal the given values, in order.

        Raises:
            ToolError: If a column is unknown.
        """
        self._check_columns(equals)
        return [
            clone(row)
            for row in self._rows.values()
            if all(row.get(column) == value for column, value in equals.items())
        ]

    def all(self) -> list[Row]:
        """Copies of every row, in order."""
        return [clone(row) for row in self._rows.values()]

    def insert(self, row: Mapping[str, Any]) -> Row:
        """Add a row; missing columns become None.

        Returns:
            A copy of the stored row.

        Raises:
            ToolError: If the primary key is missing or taken, or a column unknown.
            TypeError: If a value is not a JSON value.
        """
        self._check_columns(row)
        key = row_key(row.get(self.primary_key))
        if key is None:
            raise ToolError(
                f"a new {self.name} needs a {self.primary_key} (a string or integer)"
            )
        if key in self._rows:
            raise ToolError(
                f"{self.name} with {self.primary_key} '{key}' already exists"
            )
        stored = self._normalised(row)
        self._check_values(stored, key)
        self._rows[key] = stored
        self._record(lambda: self._rows.pop(key))
        return clone(stored)

    def update(self, row_id: Any, /, **changes: Any) -> Row:
        """Change columns of an existing row.

        Returns:
            A copy of the updated row.

        Raises:
            ToolError: If the row does not exist, a column is unknown, or the
                primary key would change.
            TypeError: If a value is not a JSON value.
        """
        current = self._stored(row_id)
        self._check_columns(changes)
        if (
            self.primary_key in changes
            and changes[self.primary_key] != current[self.primary_key]
        ):
            raise ToolError(f"the {self.primary_key} of a {self.name} cannot change")
        key = row_key(current[self.primary_key])
        assert key is not None
        updated = {**current, **clone(changes)}
        self._check_values(updated, key)
        self._rows[key] = updated
        self._record(lambda: self._rows.__setitem__(key, current))
        return clone(updated)

    def delete(self, row_id: Any) -> Row:
        """Remove a row.

        Returns:
            The removed row.

        Raises:
            ToolError: If the row does not exist.
        """
        stored = self._stored(row_id)
        key = row_key(stored[self.primary_key])
        assert key is not None
        position = list(self._rows).index(key)
        del self._rows[key]
        self._record(lambda: self._restore(position, key, stored))
        return clone(stored)

    def copy(self) -> Table:
        """An independent copy with the same rows and columns (no journal)."""
        twin = Table(self.spec)
        twin._columns = self._columns
        twin._rows = {key: clone(row) for key, row in self._rows.items()}
        return twin

    def rows_by_id(self) -> dict[str, Row]:
        """Copies of the rows keyed by the string form of their primary id."""
        return {key: clone(row) for key, row in self._rows.items()}

    def canonical_rows(self) -> str:
        """Canonical JSON of the rows sorted by primary id: this table's part of
        a state hash (serialised from the stored rows, nothing is copied)."""
        return canonical_json([self._rows[key] for key in sorted(self._rows)])

    def diff(self, after: Table) -> TableDiff:
        """What changed from this table (before) to `after`, a later state of it:
        inserted and deleted ids, and per updated row the (old, new) value of
        each changed column (copies; unchanged rows are not copied)."""
        before, later = self._rows, after._rows
        updated: dict[str, dict[str, tuple[Any, Any]]] = {}
        for key in sorted(before.keys() & later.keys()):
            old, new = before[key], later[key]
            if old == new:
                continue
            columns = dict.fromkeys([*old, *new])
            changes = {
                column: (clone(old.get(column)), clone(new.get(column)))
                for column in columns
                if old.get(column) != new.get(column)
            }
            if changes:
                updated[key] = changes
        return TableDiff(
            inserted=tuple(sorted(later.keys() - before.keys())),
            updated=updated,
            deleted=tuple(sorted(before.keys() - later.keys())),
        )

    def attach_journal(self, journal: list[Undo] | None) -> None:
        """Record undo steps of every write into `journal` (None stops recording)."""
        self._journal = journal

    def _record(self, undo: Undo) -> None:
        if self._journal is not None:
            self._journal.append(undo)

    def _restore(self, position: int, key: str, row: Row) -> None:
        items = list(self._rows.items())
        items.insert(position, (key, row))
        self._rows = dict(items)

    def _stored(self, row_id: Any) -> Row:
        key = row_key(row_id)
        row = self._rows.get(key) if key is not None else None
        if row is None:
            raise ToolError(f"no {self.name} with {self.primary_key} '{row_id}'")
        return row

    def _check_columns(self, names: Iterable[str]) -> None:
        unknown = [name for name in names if name not in self._columns]
        if unknown:
            listed = ", ".join(f"'{name}'" for name in unknown)
            raise ToolError(
                f"{self.name} has no column {listed}; columns are "
                f"{', '.join(self._columns)}"
            )

    def _check_values(self, row: Row, key: str) -> None:
        for column, value in row.items():
            check_json_value(value, f"{self.name} '{key}' column '{column}'")

    def _normalised(self, row: Mapping[str, Any]) -> Row:
        stored = {column: clone(row.get(column)) for column in self._columns}
        stored.update({k: clone(v) for k, v in row.items() if k not in stored})
        return stored
