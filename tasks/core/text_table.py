"""Plain-text tables for the command line, with columns sized to their content.

Input: a header row, data rows (any values; `str()` is shown) and an alignment per
column. Output: one line per row, header first, with at least `gap` spaces between
columns and no trailing spaces. The last column is free text: it is never padded,
so a long note runs on to the right without pushing into another column. No side
effects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

Align = Literal["left", "right"]


def render_table(
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    align: Sequence[Align] = (),
    gap: int = 2,
) -> list[str]:
    """Lay out a table whose column widths come from its widest cell.

    Args:
        header: Column titles.
        rows: One sequence of cells per row, each as long as `header`.
        align: Alignment per column (default left); columns beyond its length
            are left-aligned. The last column is never padded.
        gap: Spaces between columns (at least 1).

    Returns:
        The header line followed by one line per row.

    Raises:
        ValueError: A row has a different number of cells than the header, or
            `gap` is less than 1.
    """
    if gap < 1:
        raise ValueError(f"gap must be at least 1, got {gap}")
    cells = [[str(c) for c in header]]
    for number, row in enumerate(rows, start=1):
        if len(row) != len(header):
            raise ValueError(
                f"row {number} has {len(row)} cell(s); the header has {len(header)}"
            )
        cells.append([str(c) for c in row])
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    sides = [*align, *["left"] * (len(header) - len(align))]
    return [_line(line, widths, sides, gap) for line in cells]


def _line(cells: list[str], widths: list[int], sides: list[Align], gap: int) -> str:
    last = len(cells) - 1
    parts = []
    for i, cell in enumerate(cells):
        if i == last and sides[i] == "left":
            parts.append(cell)
        elif sides[i] == "right":
            parts.append(cell.rjust(widths[i]))
        else:
            parts.append(cell.ljust(widths[i]))
    return (" " * gap).join(parts).rstrip()
