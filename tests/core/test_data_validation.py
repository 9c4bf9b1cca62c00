"""s06 data validation: every problem of a generated table is found and named, in a
form a model can act on; valid rows come back in contract order."""

from __future__ import annotations

from schemas.database import ColumnContract, DataProblem, TableContract
from tasks.core.data_contract import TableData
from tasks.core.data_validation import (
    canonical_rows,
    parse_output,
    problem_report,
    table_problems,
)

NOW = "2025-01-23T15:00:00-05:00"
ID_A = "6f1c2b1e-0d44-4c39-9a5e-1f2f3a4b5c6d"
ID_B = "0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d"


def _contract(n: int = 2) -> TableContract:
    return TableContract(
        table="Visit",
        kind="relationship",
        server="Care",
        primary_key="visit_id",
        columns={
            "visit_id": ColumnContract(type="string", format="uuid"),
            "patient_id": ColumnContract(type="string", references="Patient"),
            "fee": ColumnContract(type="number", minimum=40.0, maximum=500.0),
            "status": ColumnContract(type="enum", enum=("open", "done")),
            "starts_at": ColumnContract(
                type="datetime", minimum="2025-01-24", maximum="2025-04-30"
            ),
            "note": ColumnContract(type="string", nullable=True),
            "city": ColumnContract(type="string", drawn_from="Patient.city"),
        },
        n=n,
        seed=1,
        simulation_time=NOW,
        tables={"Patient": "patient_id"},
    )


PATIENTS = TableData(
    TableContract(
        table="Patient",
        kind="entity",
        primary_key="patient_id",
        columns={
            "patient_id": ColumnContract(type="string"),
            "city": ColumnContract(type="string"),
        },
        n=2,
        seed=2,
        simulation_time=NOW,
    ),
    [{"patient_id": "p1", "city": "Oslo"}, {"patient_id": "p2", "city": "Lyon"}],
)


def _row(**changes):
    row = {
        "city": "Oslo",
        "fee": 120.5,
        "note": None,
        "patient_id": "p1",
        "starts_at": "2025-02-01T10:00:00",
        "status": "open",
        "visit_id": ID_A,
    }
    return {**row, **changes}


def test_valid_rows_have_no_problems_and_come_back_in_contract_order():
    """A correct table passes; canonical rows put the primary key first."""
    rows = [_row(), _row(visit_id=ID_B, patient_id="p2", city="Lyon", note="x")]
    assert table_problems(_contract(), rows, {"Patient": PATIENTS}) == []
    assert list(canonical_rows(_contract(), rows)[0]) == [
        "visit_id",
        "patient_id",
        "fee",
        "status",
        "starts_at",
        "note",
        "city",
    ]


def test_each_kind_of_bad_value_is_named_with_its_row_and_column():
    """Type, enum, range, format, FK, copied value and null problems, exactly."""
    rows = [
        _row(fee="12", status="closed"),
        _row(
            visit_id="not-a-uuid",
            patient_id="p9",
            starts_at="2025-06-01T09:00:00",
            city="Rome",
            fee=None,
        ),
        _row(visit_id=ID_B, fee=600, starts_at="tomorrow"),
    ]
    problems = table_problems(_contract(3), rows, {"Patient": PATIENTS})
    assert [(p.kind, p.column, p.row) for p in problems] == [
        ("wrong_type", "fee", 0),
        ("not_in_enum", "status", 0),
        ("bad_format", "visit_id", 1),
        ("dangling_foreign_key", "patient_id", 1),
        ("null_value", "fee", 1),
        ("out_of_range", "starts_at", 1),
        ("not_drawn_from", "city", 1),
        ("out_of_range", "fee", 2),
        ("wrong_type", "starts_at", 2),
    ]
    assert problems[0].message == (
        f"row #0 (visit_id '{ID_A}'): fee '12' is not a number"
    )
    assert problems[3].message == (
        "row #1 (visit_id 'not-a-uuid'): patient_id 'p9' is not a Patient id (no "
        "row of Patient has that primary key)"
    )
    assert problems[5].message == (
        "row #1 (visit_id 'not-a-uuid'): starts_at '2025-06-01T09:00:00' is not "
        "between 2025-01-24 and 2025-04-30"
    )
    assert problems[7].message == (
        f"row #2 (visit_id '{ID_B}'): fee 600 is outside 40..500"
    )


def test_shape_problems_count_rows_columns_and_keys():
    """Row count, missing and unknown columns, and duplicate or null keys."""
    extra = {**_row(), "colour": "red"}
    missing = {k: v for k, v in _row(visit_id=ID_B).items() if k != "note"}
    rows = [extra, missing, _row(), _row(visit_id=None), "row"]
    problems = table_problems(_contract(), rows, {"Patient": PATIENTS})
    assert [(p.kind, p.column, p.row) for p in problems] == [
        ("row_count", None, None),
        ("missing_column", "note", None),
        ("unknown_column", "colour", None),
        ("duplicate_primary_key", "visit_id", 2),
        ("missing_primary_key", "visit_id", 3),
        ("not_an_object", None, 4),
    ]
    assert problems[0].message == "the table has 5 rows; exactly 2 are required"
    assert problems[3].message == (
        f"row #2 (visit_id '{ID_A}'): primary key '{ID_A}' repeats row #0"
    )


def test_output_that_is_not_an_array_is_one_problem():
    """An object instead of a list of rows stops validation with one sentence."""
    assert table_problems(_contract(), {"rows": []}, {}) == [
        DataProblem(
            kind="not_an_array",
            message="output.json holds a dict, not a JSON array of rows",
        )
    ]


def test_parse_output_reports_a_missing_or_broken_file():
    """No output.json, or text that is not JSON, is a script failure."""
    assert parse_output("[1]") == ([1], [])
    _, missing = parse_output(None)
    assert missing[0].message == "the script did not write output.json"
    _, broken = parse_output("[1,")
    assert broken[0].kind == "script_failed"
    assert broken[0].message.startswith("output.json is not valid JSON: ")


def test_problem_report_shows_three_examples_per_kind_and_column():
    """Repeated problems are summarised with a count of the rest."""
    same = [
        DataProblem(kind="null_value", message=f"row #{i}: fee is null", column="fee")
        for i in range(5)
    ]
    other = DataProblem(kind="row_count", message="the table has 5 rows")
    assert problem_report([*same, other]) == [
        "row #0: fee is null",
        "row #1: fee is null",
        "row #2: fee is null",
        "... and 2 more row(s) with the same problem (null_value in 'fee')",
        "the table has 5 rows",
    ]
