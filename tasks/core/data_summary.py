"""s06 table summaries: takes a table's contract and its validated rows (and, for a
relationship, its checked constraints); returns the `TableSummary` computed from
the data and the `database_summary/.../<Table>.md` document rendered from those
facts plus the model's prose. Pure, no side effects.

Per column: its contract type, the number of distinct non-null values (compared by
their JSON text), the number of nulls, the referenced table of a foreign key, the
minimum and maximum of numeric (as numbers) and date/datetime columns (as the
stored strings), and every distinct value (sorted; numerically for numbers) for
enum and boolean columns, and for other scalar columns that are neither the
primary key nor a foreign key when they hold at most `MAX_LISTED_VALUES` distinct
values that repeat (fewer distinct values than non-null rows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from schemas.database import (
    ColumnContract,
    ColumnSummary,
    TableConstraints,
    TableContract,
    TableSummary,
)
from tasks.core.constraints import describe_rule
from tasks.core.data_values import (
    NUMERIC_TYPES,
    TEMPORAL_TYPES,
    order_key,
    simulation_now,
    value_text,
)

MAX_LISTED_VALUES = 10
_ALWAYS_LISTED = frozenset({"enum", "boolean"})
_NEVER_LISTED = frozenset({"array", "object"})


def summarize_table(
    contract: TableContract, rows: Sequence[Mapping[str, Any]]
) -> TableSummary:
    """The facts of a table, computed from its rows (prose left empty)."""
    zone = simulation_now(contract.simulation_time).tzinfo
    columns = {}
    for name, column in contract.columns.items():
        values = [row.get(name) for row in rows]
        present = [value for value in values if value is not None]
        texts = _distinct(present, column.type)
        low, high = _extremes(present, column.type, zone)
        listed = _listed(name, column, contract, len(texts), len(present))
        columns[name] = ColumnSummary(
            type=column.type,
            distinct=len(texts),
            nulls=len(values) - len(present),
            values=tuple(texts) if listed else None,
            minimum=low,
            maximum=high,
            references=column.references,
        )
    return TableSummary(
        table=contract.table,
        kind=contract.kind,
        server=contract.server,
        row_count=len(rows),
        columns=columns,
    )


def summary_markdown(
    summary: TableSummary,
    *,
    primary_key: str,
    constraints: TableConstraints | None = None,
) -> str:
    """The summary document: title, prose, then the computed facts."""
    kind = summary.kind.capitalize()
    owner = f" of {summary.server}" if summary.server else ""
    lines = [f"# {summary.table} ({kind}{owner})", ""]
    if summary.prose.strip():
        lines += [summary.prose.strip(), ""]
    lines += [
        "## Facts computed from the data",
        "",
        f"- Rows: {summary.row_count}",
        f"- Primary key: `{primary_key}`",
        "",
        "| Column | Type | Distinct | Nulls | Minimum | Maximum | Values |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, column in summary.columns.items():
        lines.append(
            f"| `{name}` | {column.type} | {column.distinct} | {column.nulls} "
            f"| {format_fact(column.minimum)} | {format_fact(column.maximum)} "
            f"| {_values_cell(column)} |"
        )
    if constraints is not None and (constraints.rules or constraints.notes):
        lines += ["", "## Rules checked on every row", ""]
        lines += [
            f"- `{describe_rule(entry.rule)}`: {entry.description}"
            for entry in constraints.rules
        ] or ["- (none)"]
        if constraints.notes:
            lines += ["", "## Notes (not machine-checked)", ""]
            lines += [f"- {note}" for note in constraints.notes]
    return "\n".join(lines) + "\n"


def format_fact(value: float | str | None) -> str:
    """A minimum or maximum as written in summaries (integral floats as integers)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _values_cell(column: ColumnSummary) -> str:
    if column.references:
        return f"references `{column.references}`"
    if column.values is None:
        return ""
    return ", ".join(f"`{value}`" for value in column.values)


def _distinct(present: Sequence[Any], column_type: str) -> list[str]:
    texts = {value_text(value): value for value in present}
    if column_type in NUMERIC_TYPES:
        return sorted(texts, key=lambda t: (_as_float(texts[t]), t))
    return sorted(texts)


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("inf")


def _extremes(
    present: Sequence[Any], column_type: str, zone: Any
) -> tuple[float | str | None, float | str | None]:
    if column_type not in NUMERIC_TYPES | TEMPORAL_TYPES:
        return None, None
    keyed = [
        (key, value)
        for value in present
        if (key := order_key(value, column_type, zone)) is not None
    ]
    if not keyed:
        return None, None
    low = min(keyed, key=lambda pair: pair[0])[1]
    high = max(keyed, key=lambda pair: pair[0])[1]
    if column_type in NUMERIC_TYPES:
        return float(low), float(high)
    return str(low), str(high)


def _listed(
    name: str,
    column: ColumnContract,
    contract: TableContract,
    distinct: int,
    present: int,
) -> bool:
    if column.type in _ALWAYS_LISTED:
        return True
    if column.type in _NEVER_LISTED or name == contract.primary_key:
        return False
    if column.references is not None:
        return False
    return distinct <= MAX_LISTED_VALUES and distinct < present
