"""The environment database: takes an `EnvironmentSpec` and either rows in memory or
the generated JSON files under an output directory (entity tables in
`database/outputs/entities/<Entity>.json`, relationship tables in
`database/outputs/relationships/<Server>/<Relationship>.json`, each a JSON array of
flat objects; a fused environment's namespaced table `Server.Table` is read from
that member's file, nothing is copied). Output: a `Database` of `Table`s with deep
copies for per-session isolation, a state hash (sha256 of canonical JSON), a
row-level `DatabaseDiff`, and transactions that undo a failed tool call. Side
effects: `Database.load` reads the files (never writes them); nothing else
touches the disk."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from schemas.base import canonical_json, sha256_hex
from schemas.environment import (
    DatabaseDiff,
    DataIssue,
    EnvironmentSpec,
    TableDiff,
    TableSpec,
    table_origin,
)
from tasks.runtime.data_checks import (
    DataLoadError,
    check_rows,
    extra_columns,
    valid_rows,
)
from tasks.runtime.table import Row, Table, Undo
from tasks.store.paths import table_data_relpath


def data_paths(output_dir: Path, spec: EnvironmentSpec) -> dict[str, Path]:
    """Where each table's JSON file lives under an output directory (the output
    layout, `tasks.store.paths`, is the authority).

    Args:
        output_dir: The pipeline's output root (a local folder).
        spec: The environment spec.

    Returns:
        Table name -> file path, in spec order.
    """
    return {
        name: output_dir.joinpath(
            table_data_relpath(
                *table_origin(spec.name, name), entity=table.kind == "entity"
            )
        )
        for name, table in spec.tables.items()
    }


class Transaction:
    """Undo log of the writes made while it is open (one per tool call)."""

    def __init__(self, tables: Sequence[Table]) -> None:
        self._tables = tables
        self._journal: list[Undo] = []
        self.active = True
        for table in tables:
            table.attach_journal(self._journal)

    @property
    def changed(self) -> bool:
        """True if any write happened since the transaction began."""
        return bool(self._journal)

    def commit(self) -> None:
        """Keep the writes and stop recording."""
        self._close()

    def rollback(self) -> None:
        """Undo every write, newest first, and stop recording."""
        while self._journal:
            self._journal.pop()()
        self._close()

    def _close(self) -> None:
        for table in self._tables:
            table.attach_journal(None)
        self.active = False


class Database:
    """The tables of one environment state."""

    def __init__(
        self, tables: Mapping[str, Table], issues: Sequence[DataIssue] = ()
    ) -> None:
        """Wrap tables.

        Args:
            tables: Table name -> table.
            issues: What loading found wrong with the data (kept for reports).
        """
        self._tables = dict(tables)
        self.issues: tuple[DataIssue, ...] = tuple(issues)
        self._open: Transaction | None = None

    @classmethod
    def from_rows(
        cls,
        spec: EnvironmentSpec,
        rows: Mapping[str, Sequence[Any]],
        *,
        strict: bool = True,
        labels: Mapping[str, str] | None = None,
        issues: Sequence[DataIssue] = (),
    ) -> Database:
        """Build a database from rows, checking keys, foreign keys and columns.

        Args:
            spec: The environment spec.
            rows: Table name -> rows (absent tables are empty).
            strict: Refuse data with any issue; otherwise keep the usable rows
                (objects with a valid, first-seen key) and record the issues.
            labels: Table name -> name used in messages (e.g. its file).
            issues: Issues found before the rows were parsed (missing files).

        Returns:
            The database.

        Raises:
            ValueError: If `rows` names a table the spec does not have.
            DataLoadError: If `strict` and the data has issues.
        """
        unknown = sorted(set(rows) - set(spec.tables))
        if unknown:
            raise ValueError(f"rows for unknown tables: {', '.join(unknown)}")
        found = [*issues, *check_rows(spec, rows, labels=labels)]
        if strict and found:
            raise DataLoadError(spec.name, found)
        tables = {
            name: _table(table, rows.get(name, ()))
            for name, table in spec.tables.items()
        }
        return cls(tables, found)

    @classmethod
    def load(
        cls, spec: EnvironmentSpec, output_dir: Path, *, strict: bool = True
    ) -> Database:
        """Read the environment's tables from the output directory.

        Args:
            spec: The environment spec.
            output_dir: The output root holding `database/outputs/`.
            strict: Refuse data with any issue (see `from_rows`).

        Returns:
            The database; the files are only read.

        Raises:
            DataLoadError: If `strict` and a file is missing or unreadable, or the
                data has issues; the message names file, row and column.
        """
        rows: dict[str, list[Any]] = {}
        labels: dict[str, str] = {}
        issues: list[DataIssue] = []
        for name, path in data_paths(output_dir, spec).items():
            label = _relative(path, output_dir)
            labels[name] = label
            loaded, problem = _read_array(path, label, name)
            rows[name] = loaded
            if problem is not None:
                issues.append(problem)
        return cls.from_rows(spec, rows, strict=strict, labels=labels, issues=issues)

    @property
    def tables(self) -> Mapping[str, Table]:
        """Table name -> table (a read-only view)."""
        return MappingProxyType(self._tables)

    def table(self, name: str) -> Table:
        """The table called `name`.

        Raises:
            KeyError: If there is no such table (a bug in the calling code).
        """
        try:
            return self._tables[name]
        except KeyError:
            raise KeyError(
                f"no table {name!r}; tables are {', '.join(self._tables)}"
            ) from None

    def copy(self) -> Database:
        """A deep, independent copy (the issues are shared, they are immutable)."""
        return Database(
            {name: table.copy() for name, table in self._tables.items()}, self.issues
        )

    def snapshot(self) -> dict[str, list[Row]]:
        """Every table's rows sorted by primary id, as plain JSON data."""
        return {
            name: [rows[key] for key in sorted(rows)]
            for name, rows in (
                (name, table.rows_by_id()) for name, table in self._tables.items()
            )
        }

    def state_hash(self) -> str:
        """sha256 of the canonical JSON of `snapshot()` (tables, rows, keys sorted),
        assembled from each table's canonical rows, so no row is copied."""
        tables = ",".join(
            f"{canonical_json(name)}:{self._tables[name].canonical_rows()}"
            for name in sorted(self._tables)
        )
        return sha256_hex("{" + tables + "}")

    def diff(self, other: Database) -> DatabaseDiff:
        """What changed from this state (before) to `other` (after).

        Args:
            other: A later state of the same environment.

        Returns:
            Per changed table: inserted and deleted ids, and per updated row the
            (old, new) value of each changed column.
        """
        changed: dict[str, TableDiff] = {}
        for name, table in self._tables.items():
            diff = table.diff(other.table(name))
            if not diff.empty:
                changed[name] = diff
        return DatabaseDiff(tables=changed)

    def begin(self) -> Transaction:
        """Start recording writes so they can be undone.

        Raises:
            RuntimeError: If a transaction is already open.
        """
        if self._open is not None and self._open.active:
            raise RuntimeError("a transaction is already open on this database")
        self._open = Transaction(list(self._tables.values()))
        return self._open


def _table(spec: TableSpec, rows: Sequence[Any]) -> Table:
    return Table(spec, valid_rows(spec, rows), extra_columns=extra_columns(spec, rows))


def _read_array(
    path: Path, label: str, table: str
) -> tuple[list[Any], DataIssue | None]:
    if not path.is_file():
        return [], DataIssue(
            table=table, kind="missing_file", message=f"{label} does not exist"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return [], DataIssue(
            table=table, kind="invalid_json", message=f"{label} is not JSON: {exc}"
        )
    if not isinstance(data, list):
        return [], DataIssue(
            table=table,
            kind="not_an_array",
            message=f"{label} holds a {type(data).__name__}, not a JSON array",
        )
    return data, None


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
