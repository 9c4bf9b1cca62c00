"""Tests for the environment database: loading, checks, hashing, diff, rollback."""

import json
from pathlib import Path

import pytest

from schemas.base import stable_hash
from schemas.environment import (
    DatabaseDiff,
    DataIssue,
    EnvironmentSpec,
    TableDiff,
    TableSpec,
)
from tasks.runtime.data_checks import DataLoadError, check_rows
from tasks.runtime.database import Database, data_paths
from tasks.runtime.table import Table
from tests.runtime import (
    ANA,
    ANA_BOOKED,
    ANA_CANCELLED,
    BEN,
    BEN_BOOKED,
    BRIGHT_SMILES,
    FIXTURE_DIR,
)

APPOINTMENTS = "database/outputs/relationships/DentalAppointments/Appointment.json"


def _rows(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))


def _write(path: Path, rows: list) -> None:
    path.write_text(json.dumps(rows), encoding="utf-8")


def test_data_paths_follow_the_reference_layout(spec: EnvironmentSpec):
    """Entity tables are shared; relationship tables sit under the server name."""
    root = Path("/out")
    assert data_paths(root, spec) == {
        "Patient": root / "database/outputs/entities/Patient.json",
        "Clinic": root / "database/outputs/entities/Clinic.json",
        "Appointment": root / APPOINTMENTS,
    }


def test_load_reads_every_table_of_the_fixture(spec: EnvironmentSpec):
    """The hand-written fixture loads strictly with no issues."""
    database = Database.load(spec, FIXTURE_DIR)
    assert {name: len(t) for name, t in database.tables.items()} == {
        "Patient": 3,
        "Clinic": 3,
        "Appointment": 3,
    }
    assert database.issues == ()
    assert database.table("Appointment").get(BEN_BOOKED)["patient_id"] == BEN


def test_unknown_table_is_a_key_error_listing_the_tables(spec: EnvironmentSpec):
    """Asking for a table the environment lacks is a bug in the caller."""
    database = Database.load(spec, FIXTURE_DIR)
    with pytest.raises(KeyError, match="no table 'Dentist'; tables are Patient"):
        database.table("Dentist")


def test_state_hash_ignores_row_order_but_not_values(
    spec: EnvironmentSpec, output_dir: Path
):
    """Rows are hashed sorted by id, so file order does not matter; values do."""
    base = Database.load(spec, FIXTURE_DIR).state_hash()
    path = output_dir / APPOINTMENTS
    _write(path, list(reversed(_rows(path))))
    assert Database.load(spec, output_dir).state_hash() == base
    rows = _rows(path)
    rows[0]["status"] = "cancelled" if rows[0]["status"] == "booked" else "booked"
    _write(path, rows)
    assert Database.load(spec, output_dir).state_hash() != base


def test_diff_reports_inserted_updated_and_deleted_rows_exactly(
    spec: EnvironmentSpec,
):
    """Per table: new ids, per-column (old, new) pairs, removed ids."""
    before = Database.load(spec, FIXTURE_DIR)
    after = before.copy()
    appointments = after.table("Appointment")
    appointments.update(ANA_BOOKED, status="cancelled")
    appointments.delete(ANA_CANCELLED)
    appointments.insert({"appointment_id": "new-1", "patient_id": ANA})
    after.table("Clinic").update(BRIGHT_SMILES, city="Faro", name="Bright Faro")
    assert before.diff(after) == DatabaseDiff(
        tables={
            "Clinic": TableDiff(
                updated={
                    BRIGHT_SMILES: {
                        "name": ("Bright Smiles Dental", "Bright Faro"),
                        "city": ("Lisbon", "Faro"),
                    }
                }
            ),
            "Appointment": TableDiff(
                inserted=("new-1",),
                updated={ANA_BOOKED: {"status": ("booked", "cancelled")}},
                deleted=(ANA_CANCELLED,),
            ),
        }
    )
    assert before.diff(before.copy()).empty


def test_database_diff_round_trips_through_json(spec: EnvironmentSpec):
    """A diff survives serialisation (evaluation reports store it)."""
    before = Database.load(spec, FIXTURE_DIR)
    after = before.copy()
    after.table("Patient").update(ANA, status="suspended")
    diff = before.diff(after)
    assert DatabaseDiff.model_validate_json(diff.model_dump_json()) == diff
    assert not diff.empty


NOTES = TableSpec(
    name="Note",
    primary_key="note_id",
    kind="entity",
    columns=("note_id", "text", "tags", "score"),
)
TAGS = TableSpec(
    name="Tag", primary_key="tag", kind="entity", columns=("tag", "weights")
)


def _notes() -> Database:
    """Values canonical JSON must get right: non-ASCII text, nested objects and
    lists, floats, integer ids (sorted as strings), and a table whose name sorts
    before the other's."""
    notes = [
        {"note_id": 10, "text": "café ☕", "tags": ["x", {"k": [1, 2.5]}]},
        {"note_id": 9, "text": 'quote " and \\ slash', "score": 0.1},
        {"note_id": 100, "text": None, "tags": [], "score": -3},
    ]
    tags = [{"tag": "ü", "weights": {"b": 1, "a": 2.0}}]
    return Database({"Tag": Table(TAGS, tags), "Note": Table(NOTES, notes)})


def test_state_hash_is_the_sha256_of_the_canonical_snapshot():
    """The hash assembled from each table's canonical rows equals the sha256 of
    the canonical JSON of the whole snapshot, before and after writes and after
    a rollback."""
    database = _notes()
    assert database.state_hash() == stable_hash(database.snapshot())
    before = database.state_hash()
    transaction = database.begin()
    database.table("Note").update(9, tags=["ß"], score=1e-7)
    database.table("Tag").insert({"tag": "a", "weights": {"z": [None]}})
    database.table("Note").delete(100)
    assert database.state_hash() == stable_hash(database.snapshot())
    assert database.state_hash() != before
    transaction.rollback()
    assert database.state_hash() == before


def test_a_diff_holds_copies_of_the_values_it_reports():
    """Changing a value inside a diff leaves both databases as they were."""
    before = _notes()
    after = before.copy()
    after.table("Note").update(10, tags=["y", {"k": [3]}])
    diff = before.diff(after)
    old, new = diff.tables["Note"].updated["10"]["tags"]
    assert (old, new) == (["x", {"k": [1, 2.5]}], ["y", {"k": [3]}])
    old[1]["k"].append(99)
    new[1]["k"].append(99)
    assert before.table("Note").get(10)["tags"] == ["x", {"k": [1, 2.5]}]
    assert after.table("Note").get(10)["tags"] == ["y", {"k": [3]}]
    assert list(diff.tables) == ["Note"]


def test_copy_is_deep_and_independent(spec: EnvironmentSpec):
    """Writes to a copy leave the original's rows and hash unchanged."""
    original = Database.load(spec, FIXTURE_DIR)
    digest = original.state_hash()
    copy = original.copy()
    copy.table("Patient").delete(ANA)
    assert original.state_hash() == digest
    assert ANA in original.table("Patient")


def test_rollback_undoes_writes_and_restores_row_order(spec: EnvironmentSpec):
    """Undo runs newest first; a deleted row returns to its old position."""
    database = Database.load(spec, FIXTURE_DIR)
    order = [r["appointment_id"] for r in database.table("Appointment").all()]
    digest = database.state_hash()
    transaction = database.begin()
    appointments = database.table("Appointment")
    appointments.delete(ANA_CANCELLED)
    appointments.insert({"appointment_id": ANA_CANCELLED, "status": "booked"})
    appointments.update(ANA_CANCELLED, status="cancelled")
    appointments.delete(ANA_BOOKED)
    assert transaction.changed
    transaction.rollback()
    assert database.state_hash() == digest
    assert [r["appointment_id"] for r in appointments.all()] == order
    appointments.delete(BEN_BOOKED)
    assert not transaction.changed


def test_only_one_transaction_can_be_open(spec: EnvironmentSpec):
    """Nested transactions are refused; a closed one allows a new one."""
    database = Database.load(spec, FIXTURE_DIR)
    transaction = database.begin()
    with pytest.raises(RuntimeError, match="already open"):
        database.begin()
    transaction.commit()
    database.begin().commit()


def test_check_rows_lists_every_problem_with_its_kind(spec: EnvironmentSpec):
    """All problems come back as one typed list, not the first as an exception."""
    rows = {
        "Patient": [
            {"patient_id": ANA, "full_name": "A", "email": "a", "status": "active"},
            {"patient_id": ANA, "full_name": "B", "email": "b", "status": "active"},
            {"full_name": "No key", "email": "c", "status": "active"},
        ],
        "Clinic": [
            "not an object",
            {
                "clinic_id": True,
                "name": "N",
                "city": "C",
                "accepts_new_patients": True,
                "rating": 5,
            },
        ],
        "Appointment": [
            {
                "appointment_id": "a1",
                "patient_id": "ghost",
                "clinic_id": None,
                "scheduled_at": "2025-02-01T09:00:00",
                "status": "booked",
            }
        ],
    }
    issues = check_rows(spec, rows)
    assert [(i.table, i.kind, i.row, i.column) for i in issues] == [
        ("Patient", "duplicate_primary_key", ANA, "patient_id"),
        ("Patient", "missing_primary_key", "#2", "patient_id"),
        ("Clinic", "not_an_object", None, None),
        ("Clinic", "invalid_primary_key", "#1", "clinic_id"),
        ("Clinic", "unknown_column", None, "rating"),
        ("Appointment", "missing_column", None, "created_at"),
        ("Appointment", "dangling_foreign_key", "a1", "patient_id"),
    ]
    assert issues[-1] == DataIssue(
        table="Appointment",
        kind="dangling_foreign_key",
        message="Appointment row 'a1': patient_id 'ghost' is not a Patient id",
        row="a1",
        column="patient_id",
    )


def test_strict_load_names_the_file_and_row_of_a_broken_foreign_key(
    spec: EnvironmentSpec, output_dir: Path
):
    """The error message points at the file and the offending row."""
    path = output_dir / APPOINTMENTS
    rows = _rows(path)
    rows[1]["clinic_id"] = "missing-clinic"
    _write(path, rows)
    with pytest.raises(DataLoadError) as caught:
        Database.load(spec, output_dir)
    assert [issue.kind for issue in caught.value.issues] == ["dangling_foreign_key"]
    assert (
        f"{APPOINTMENTS} row '{ANA_CANCELLED}': clinic_id 'missing-clinic' is not a "
        "Clinic id"
    ) in str(caught.value)


def test_lenient_load_keeps_usable_rows_and_reports_the_rest(
    spec: EnvironmentSpec, output_dir: Path
):
    """Unkeyed rows are skipped, extra columns kept, and every issue recorded."""
    path = output_dir / "database/outputs/entities/Clinic.json"
    rows = _rows(path)
    rows[0]["rating"] = 4
    rows.append({"name": "Keyless"})
    _write(path, rows)
    database = Database.load(spec, output_dir, strict=False)
    clinics = database.table("Clinic")
    assert len(clinics) == 3
    assert clinics.columns[-1] == "rating"
    assert clinics.get(BRIGHT_SMILES)["rating"] == 4
    assert [(issue.kind, issue.column) for issue in database.issues] == [
        ("missing_primary_key", "clinic_id"),
        ("missing_column", "city"),
        ("missing_column", "accepts_new_patients"),
        ("unknown_column", "rating"),
    ]


def test_missing_and_malformed_files_are_issues(
    spec: EnvironmentSpec, output_dir: Path
):
    """A missing file, a non-array and bad JSON are each reported by path."""
    (output_dir / APPOINTMENTS).unlink()
    (output_dir / "database/outputs/entities/Clinic.json").write_text("{}")
    (output_dir / "database/outputs/entities/Patient.json").write_text("[{")
    database = Database.load(spec, output_dir, strict=False)
    assert [(i.table, i.kind) for i in database.issues[:3]] == [
        ("Patient", "invalid_json"),
        ("Clinic", "not_an_array"),
        ("Appointment", "missing_file"),
    ]
    assert database.issues[2].message == f"{APPOINTMENTS} does not exist"
    with pytest.raises(DataLoadError, match="3 problem"):
        Database.load(spec, output_dir)


def test_from_rows_refuses_tables_the_spec_lacks(spec: EnvironmentSpec):
    """Rows for an unknown table are a caller bug, not a data issue."""
    with pytest.raises(ValueError, match="rows for unknown tables: Dentist"):
        Database.from_rows(spec, {"Dentist": []})
