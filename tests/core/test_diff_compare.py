"""The agent's state diff against the golden one, change by change."""

from __future__ import annotations

from schemas.environment import DatabaseDiff, TableDiff
from tasks.core.diff_compare import CellChange, TableComparison, compare_diffs
from tests import rollout_fixtures as fx


def test_a_wrong_cancellation_shows_missing_and_unexpected_updates_per_table():
    """Golden and agent updated different rows: each side's cell is listed."""
    assert compare_diffs(fx.CANCEL_DIFF, fx.WRONG_CANCEL_DIFF) == (
        TableComparison(
            table="appointments",
            changes=(
                CellChange(
                    "updated",
                    "apt_17",
                    "status",
                    ("scheduled", "cancelled"),
                    None,
                    "missing",
                ),
                CellChange(
                    "updated",
                    "apt_18",
                    "status",
                    None,
                    ("scheduled", "cancelled"),
                    "unexpected",
                ),
            ),
        ),
        TableComparison(
            table="slots",
            changes=(
                CellChange(
                    "updated", "slot_3", "available", (False, True), None, "missing"
                ),
                CellChange(
                    "updated", "slot_4", "available", None, (False, True), "unexpected"
                ),
            ),
        ),
    )


def test_identical_diffs_match_everywhere():
    """The same changes on both sides: every change is a match."""
    compared = compare_diffs(fx.BOOK_DIFF, fx.BOOK_DIFF)
    assert [t.table for t in compared] == sorted(fx.BOOK_DIFF.tables)
    assert all(t.matches for t in compared)


def test_inserts_deletes_and_different_values_are_told_apart():
    """Rows in order inserted, updated, deleted; the same cell set to another value
    is `different`; a deletion only the agent made is `unexpected`."""
    expected = DatabaseDiff(
        tables={
            "t": TableDiff(inserted=("r1",), updated={"r2": {"c": (1, 2)}}),
        }
    )
    actual = DatabaseDiff(
        tables={
            "t": TableDiff(
                inserted=("r1",), updated={"r2": {"c": (1, 3)}}, deleted=("r0",)
            )
        }
    )
    [table] = compare_diffs(expected, actual)
    assert [(c.kind, c.row, c.status) for c in table.changes] == [
        ("inserted", "r1", "match"),
        ("updated", "r2", "different"),
        ("deleted", "r0", "unexpected"),
    ]
    assert not table.matches


def test_an_unknown_side_marks_the_other_as_expected_or_recorded():
    """No golden task: the agent's changes are `recorded`; no final state: the
    golden changes are `expected` (neither is called missing or unexpected)."""
    [recorded] = compare_diffs(None, fx.HALF_BOOK_DIFF)
    assert {c.status for c in recorded.changes} == {"recorded"}
    statuses = {c.status for t in compare_diffs(fx.BOOK_DIFF, None) for c in t.changes}
    assert statuses == {"expected"}
    assert compare_diffs(None, None) == ()


def test_tables_empty_on_both_sides_are_left_out():
    """A table listed with no change in either diff is not shown."""
    quiet = DatabaseDiff(tables={"empty": TableDiff()})
    assert compare_diffs(quiet, quiet) == ()
