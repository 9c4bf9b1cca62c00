"""Tests for typed tables keyed by primary id."""

from datetime import datetime

import pytest

from schemas.environment import TableSpec
from tasks.runtime.table import Table, ToolError

CLINIC = TableSpec(
    name="Clinic",
    primary_key="clinic_id",
    kind="entity",
    columns=("clinic_id", "name", "city"),
)


def _clinics() -> Table:
    return Table(
        CLINIC,
        [
            {"clinic_id": "c1", "name": "Bright", "city": "Lisbon"},
            {"clinic_id": "c2", "name": "Harbor", "city": "Porto"},
            {"clinic_id": "c3", "name": "Old Town", "city": "Lisbon"},
        ],
    )


def test_get_returns_a_copy_that_cannot_change_the_table():
    """Mutating what get() returned leaves the stored row as it was."""
    table = _clinics()
    row = table.get("c1")
    row["name"] = "Changed"
    assert table.get("c1") == {"clinic_id": "c1", "name": "Bright", "city": "Lisbon"}


def test_get_of_unknown_id_raises_a_tool_error_naming_table_and_key():
    """The message names the table, the key column and the id."""
    with pytest.raises(ToolError, match="^no Clinic with clinic_id 'x'$"):
        _clinics().get("x")


def test_integer_ids_are_found_by_their_string_form():
    """An integer key is indexed by its string form, so "7" finds row 7."""
    table = Table(CLINIC, [{"clinic_id": 7, "name": "Seven", "city": "Faro"}])
    assert table.get("7")["clinic_id"] == 7
    assert 7 in table and "7" in table and "8" not in table


def test_find_matches_every_given_column_in_order():
    """find() returns copies of the matching rows in insertion order."""
    table = _clinics()
    assert [r["clinic_id"] for r in table.find(city="Lisbon")] == ["c1", "c3"]
    assert table.find(city="Lisbon", name="Old Town") == [
        {"clinic_id": "c3", "name": "Old Town", "city": "Lisbon"}
    ]
    assert table.find(city="Faro") == []


def test_find_on_unknown_column_is_a_tool_error():
    """Filtering on a column the table does not have is rejected."""
    with pytest.raises(ToolError, match="Clinic has no column 'country'"):
        _clinics().find(country="PT")


def test_insert_fills_missing_columns_and_returns_a_copy():
    """Inserted rows carry every column; the returned copy is independent."""
    table = _clinics()
    returned = table.insert({"clinic_id": "c4", "name": "New"})
    returned["name"] = "Changed"
    assert table.get("c4") == {"clinic_id": "c4", "name": "New", "city": None}
    assert len(table) == 4


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"name": "No key"}, "a new Clinic needs a clinic_id"),
        ({"clinic_id": None}, "a new Clinic needs a clinic_id"),
        ({"clinic_id": True}, "a new Clinic needs a clinic_id"),
        ({"clinic_id": "c1"}, "Clinic with clinic_id 'c1' already exists"),
        ({"clinic_id": "c9", "rating": 5}, "Clinic has no column 'rating'"),
    ],
)
def test_insert_rejects_bad_keys_and_unknown_columns(row, message):
    """Missing, invalid and taken keys and unknown columns are tool errors."""
    table = _clinics()
    with pytest.raises(ToolError, match=message):
        table.insert(row)
    assert len(table) == 3


def test_insert_of_a_non_json_value_is_a_type_error():
    """A datetime stored as is would break hashing: it is a bug, not a tool error."""
    table = _clinics()
    with pytest.raises(TypeError, match="column 'city': datetime is not a JSON"):
        table.insert({"clinic_id": "c9", "city": datetime(2025, 1, 1)})
    assert "c9" not in table


def test_update_changes_columns_and_returns_the_new_row():
    """update() returns a copy of the changed row and stores it."""
    table = _clinics()
    assert table.update("c2", city="Braga") == {
        "clinic_id": "c2",
        "name": "Harbor",
        "city": "Braga",
    }
    assert table.get("c2")["city"] == "Braga"


def test_update_refuses_unknown_rows_columns_and_a_new_primary_key():
    """The key cannot change; unknown ids and columns are tool errors."""
    table = _clinics()
    with pytest.raises(ToolError, match="the clinic_id of a Clinic cannot change"):
        table.update("c1", clinic_id="c9")
    with pytest.raises(ToolError, match="no Clinic with clinic_id 'c9'"):
        table.update("c9", city="Braga")
    with pytest.raises(ToolError, match="no column 'rating'"):
        table.update("c1", rating=5)
    assert table.update("c1", clinic_id="c1")["clinic_id"] == "c1"


def test_delete_removes_the_row_and_returns_it():
    """delete() returns the removed row; a second delete is a tool error."""
    table = _clinics()
    assert table.delete("c2")["name"] == "Harbor"
    assert [r["clinic_id"] for r in table.all()] == ["c1", "c3"]
    with pytest.raises(ToolError, match="no Clinic with clinic_id 'c2'"):
        table.delete("c2")


def test_constructor_refuses_repeated_primary_keys():
    """Initial rows must already be uniquely keyed (loading filters them)."""
    with pytest.raises(ValueError, match="repeated clinic_id 'c1'"):
        Table(CLINIC, [{"clinic_id": "c1"}, {"clinic_id": "c1"}])


def test_copy_is_independent():
    """Writes to a copy do not reach the original, and the other way round."""
    table = _clinics()
    twin = table.copy()
    twin.delete("c1")
    table.update("c2", city="Braga")
    assert "c1" in table and "c1" not in twin
    assert twin.get("c2")["city"] == "Porto"
