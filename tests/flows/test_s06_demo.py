"""End-to-end: the demo world through s06 under a real (temporary) Prefect API.

The scripted cassette makes the repair loops run for real: the Transfer script
writes foreign keys that do not resolve and is fixed by an edit, the Booking script
crashes and is fixed after one did-you-mean round, and one summary is re-asked.
The data must load in the environment runtime, re-runs make no model calls, and a
fresh run reproduces every table byte for byte.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import DEMO_CASSETTE, DEMO_CONFIG

pytestmark = pytest.mark.slow

STEP = "s06_database_generation"
ENTITIES = [
    "AccountHolder",
    "BankAccount",
    "Card",
    "Clinic",
    "Flight",
    "Patient",
    "Traveler",
    "Treatment",
]
RELATIONSHIPS = [
    "AccountServicing/AccountOwnership",
    "AccountServicing/Transfer",
    "CardServices/CardLink",
    "DentalAppointments/Appointment",
    "FlightBooking/Booking",
    "TreatmentBilling/Invoice",
    "TreatmentBilling/TreatmentPlan",
]


def _run(config: Path, out: Path):
    from flows.pipeline import run_pipeline

    return run_pipeline(config_path=str(config), output_dir=str(out), until="s06")


def _store(out: Path):
    from tasks.store.artifacts import ArtifactStore
    from tasks.store.paths import OutputLayout

    return ArtifactStore(OutputLayout(out))


def _ledger(out: Path) -> list[dict]:
    return [
        json.loads(line)
        for path in sorted((out / ".agentskiller" / "ledger").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


@pytest.fixture(scope="module")
def demo(prefect_harness, tmp_path_factory):
    out = tmp_path_factory.mktemp("s06-demo")
    return out, _run(DEMO_CONFIG, out)


def test_demo_writes_every_table_script_constraint_and_summary(demo):
    """Eight entity and seven relationship tables of 12 rows each, as laid out."""
    out, report = demo
    step = report.steps[STEP]
    assert (step.ok, step.failed) == (37, 0)
    database = out / "database"
    for name in ENTITIES:
        rows = json.loads((database / "outputs/entities" / f"{name}.json").read_text())
        assert len(rows) == 12
        assert (database / "scripts/entities" / f"{name}.py").is_file()
        assert (out / "database_summary/entities" / f"{name}.md").is_file()
    for name in RELATIONSHIPS:
        rows = json.loads(
            (database / "outputs/relationships" / f"{name}.json").read_text()
        )
        assert len(rows) == 12
        assert (database / "scripts/relationships" / f"{name}.py").is_file()
        assert (database / "constraints" / f"{name}.json").is_file()
        assert (out / "database_summary/relationships" / f"{name}.md").is_file()


def test_the_data_loads_in_the_environment_runtime_without_issues(demo):
    """Keys, columns and foreign keys agree with what generated servers load."""
    from schemas.blueprint import ServerBlueprint
    from schemas.entity import EntityCatalogue
    from tasks.runtime import check_rows, data_paths, environment_spec

    out, _ = demo
    store = _store(out)
    [catalogue] = store.load_outputs(
        "s02_entity_extraction", EntityCatalogue, kind="entity_catalogue"
    )
    for blueprint in store.load_outputs(
        "s04_blueprint_generation", ServerBlueprint, kind="blueprint"
    ):
        spec = environment_spec(
            blueprint.payload,
            catalogue.payload,
            simulation_time="2025-01-23T15:00:00-05:00",
            seed=7,
        )
        rows = {
            name: json.loads(path.read_text())
            for name, path in data_paths(out, spec).items()
        }
        assert check_rows(spec, rows) == [], blueprint.id


def test_the_broken_foreign_key_was_caught_and_fixed_by_an_edit(demo):
    """Transfer took two runs; the fix call was made; every to_account_id resolves."""
    from schemas.database import DataTable

    out, _ = demo
    tables = {
        a.id: a for a in _store(out).load_outputs(STEP, DataTable, kind="data_table")
    }
    transfer = tables["AccountServicing/Transfer"]
    assert transfer.payload.attempts == 2
    assert 'target["bank_account_id"]' in transfer.payload.script
    accounts = {row["bank_account_id"] for row in tables["BankAccount"].payload.rows}
    assert {row["to_account_id"] for row in transfer.payload.rows} <= accounts
    assert tables["FlightBooking/Booking"].payload.attempts == 2
    assert {
        a.payload.attempts
        for k, a in tables.items()
        if "Transfer" not in k and "Booking" not in k
    } == {1}
    calls = {(r["call_key"], r["attempt"]) for r in _ledger(out)}
    assert ("s06/relationship/AccountServicing/Transfer/fix-1", 0) in calls
    assert ("s06/relationship/FlightBooking/Booking/fix-1", 1) in calls
    assert ("s06/summary/relationship/DentalAppointments/Appointment", 1) in calls
    assert transfer.parents[-1].kind == "table_constraints"
    assert {p.id for p in transfer.parents if p.kind == "data_table"} == {
        "AccountHolder",
        "BankAccount",
    }


def test_summaries_state_the_computed_facts_and_the_checked_prose(demo):
    """The Appointment summary lists only statuses the data holds."""
    from schemas.database import TableSummary

    out, _ = demo
    summaries = {
        a.id: a.payload
        for a in _store(out).load_outputs(STEP, TableSummary, kind="table_summary")
    }
    appointment = summaries["DentalAppointments/Appointment"]
    assert appointment.row_count == 12
    assert appointment.columns["status"].values == ("cancelled", "scheduled")
    assert "completed" not in appointment.prose
    markdown = (
        out / "database_summary/relationships/DentalAppointments/Appointment.md"
    ).read_text()
    assert appointment.prose in markdown
    assert "scheduled_at after the simulation time" in markdown


def test_rerun_of_the_demo_makes_no_model_calls(demo):
    """Every s06 item is a cache hit the second time."""
    out, first = demo
    second = _run(DEMO_CONFIG, out)
    assert first.steps[STEP].llm_calls == 41
    step = second.steps[STEP]
    assert (second.llm_calls, step.cached, step.ok) == (0, 37, 37)


def test_a_fresh_run_reproduces_every_table_byte_for_byte(demo, tmp_path):
    """Data, scripts, constraints and summaries are identical in another directory."""
    out, _ = demo
    other = tmp_path / "again"
    _run(DEMO_CONFIG, other)
    for folder in ("database", "database_summary"):
        files = sorted(p.relative_to(out) for p in (out / folder).rglob("*"))
        assert files == sorted(
            p.relative_to(other) for p in (other / folder).rglob("*")
        )
        for rel in files:
            if (out / rel).is_file():
                assert (out / rel).read_bytes() == (other / rel).read_bytes(), rel


def test_a_table_that_never_validates_fails_its_dependants_and_the_step_goes_on(
    demo, tmp_path
):
    """A crashing Clinic script fails Clinic; tables pointing at it are skipped."""
    out, _ = demo
    copy, cassette = tmp_path / "out", tmp_path / "cassette"
    shutil.copytree(out, copy)
    shutil.copytree(DEMO_CASSETTE, cassette)
    part = cassette / "s06.yaml"
    document = yaml.safe_load(part.read_text())
    document["calls"]["s06/entity/Clinic"] = [
        {"script": 'import json\nraise SystemExit("no input.json or output.json")\n'}
    ]
    part.write_text(yaml.safe_dump(document))
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["llm"]["cassette"] = str(cassette)
    config["steps"]["s06_database_generation"]["max_code_fix_retries"] = 0
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(config))
    report = _run(path, copy)
    step = report.steps[STEP]
    assert report.status == "ok"
    assert sorted((f.item_key, f.reason) for f in step.failures) == [
        ("entity/Clinic", "validation_failed"),
        ("relationship/AccountServicing/Transfer", "validation_failed"),
        ("relationship/DentalAppointments/Appointment", "dependency_failed"),
        ("relationship/FlightBooking/Booking", "validation_failed"),
        ("relationship/TreatmentBilling/TreatmentPlan", "dependency_failed"),
    ]
    clinic = next(f for f in step.failures if f.item_key == "entity/Clinic")
    assert "no input.json or output.json" in clinic.message
    assert (
        copy / "database/outputs/relationships/TreatmentBilling/Invoice.json"
    ).is_file()
