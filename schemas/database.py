"""s06 payloads: generated tables, their constraints and data-derived summaries.

A `DataTable` carries the rows the sandboxed generator script produced and the script
itself; a `TableSummary` is computed from the rows (value sets, ranges, counts) and
carries the model's prose, which is checked against those numbers.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from schemas.base import Frozen

TableKind = Literal["entity", "relationship"]


class DataTable(Frozen):
    """One generated table: rows keyed by `primary_key`, and the script that made it."""

    table: str
    kind: TableKind
    server: str | None = Field(
        default=None, description="Owning server of a relationship table."
    )
    primary_key: str
    rows: tuple[dict[str, Any], ...]
    script: str
    seed: int
    attempts: int = Field(ge=1, description="Script runs until the data validated.")


class ColumnSummary(Frozen):
    """Facts about one column, computed from the data."""

    type: str
    distinct: int = Field(ge=0)
    nulls: int = Field(ge=0)
    values: tuple[str, ...] | None = Field(
        default=None, description="Every distinct value, when there are few."
    )
    minimum: float | str | None = None
    maximum: float | str | None = None
    references: str | None = Field(default=None, description="Table a FK points to.")


class TableSummary(Frozen):
    """What downstream prompts (policies, servers) learn about a table."""

    table: str
    kind: TableKind
    server: str | None = None
    row_count: int = Field(ge=0)
    columns: dict[str, ColumnSummary]
    prose: str = ""
