"""Tests of the command line's plain-text tables."""

from __future__ import annotations

import pytest

from tasks.core.text_table import render_table


def test_columns_are_as_wide_as_their_widest_cell_plus_two_spaces():
    """Widths come from the content; numbers align right; no trailing spaces."""
    lines = render_table(
        ["step", "ok", "note"],
        [["s01", 4, "fine"], ["s09_mcp_server_implementation", 12, ""]],
        align=["left", "right", "left"],
    )
    assert lines == [
        "step                           ok  note",
        "s01                             4  fine",
        "s09_mcp_server_implementation  12",
    ]


def test_a_long_last_column_runs_on_without_widening_the_others():
    """The last column is free text: a long note leaves earlier columns alone."""
    note = "a very long note " * 5
    lines = render_table(["id", "note"], [["a", "short"], ["b", note]])
    assert lines == ["id  note", "a   short", f"b   {note}".rstrip()]


def test_a_right_aligned_last_column_is_padded_on_the_left():
    """A numeric last column lines up on its right edge."""
    lines = render_table(["name", "n"], [["x", 1], ["y", 100]], align=["left", "right"])
    assert lines == ["name    n", "x       1", "y     100"]


def test_rows_of_the_wrong_length_are_refused():
    """A row with a missing cell is a programming error, named by its row number."""
    with pytest.raises(ValueError, match="row 2 has 1 cell"):
        render_table(["a", "b"], [["1", "2"], ["3"]])
