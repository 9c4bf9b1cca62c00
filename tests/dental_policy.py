"""The DentalAppointments policy world shared by the s07 and s08 tests: the
fixture blueprint and catalogue, s06 summaries of its tables, a policy that passes
every check, and small builders for artifacts and edit blocks."""

from __future__ import annotations

import json

from schemas.artifact import Artifact, Producer
from schemas.blueprint import ServerBlueprint
from schemas.database import ColumnSummary, TableSummary
from schemas.entity import EntityCatalogue
from tasks.runtime.exports import blueprint_from_export, catalogue_from_export
from tests.runtime import FIXTURE_DIR

POLICY = """\
<!-- POLICY_START -->
## Global Rules
- The user is a patient; the simulation time is 2025-01-23T15:00:00-05:00.
- Call `authorize_patient` first; it binds the session to one patient.
<!-- GLOBAL_RULES_END -->

<!-- TOOL: authorize_patient -->
### Tool: authorize_patient
Purpose: Bind the session to a patient.
Permission outcomes:
- Permitted: `patient_id` equals a Patient.patient_id and Patient.status is `active`.
- Rejected: the id is unknown or Patient.status is `suspended`.
<!-- TOOL_END: authorize_patient -->

<!-- TOOL: list_clinics -->
### Tool: list_clinics
Purpose: List clinics, optionally in one `city`.
<!-- TOOL_END: list_clinics -->

<!-- TOOL: book_appointment -->
### Tool: book_appointment
Purpose: Book a visit after the user explicitly confirms (`confirm` set to true).
Permission outcomes:
- Permitted: Clinic.accepts_new_patients is true.
- Rejected: `scheduled_at` is not later than the simulation time.
<!-- TOOL_END: book_appointment -->

<!-- TOOL: list_my_appointments -->
### Tool: list_my_appointments
Purpose: List the user's appointments; `status` in {booked, cancelled}.
<!-- TOOL_END: list_my_appointments -->

<!-- TOOL: cancel_appointment -->
### Tool: cancel_appointment
Purpose: Cancel a `booked` appointment of the user.
<!-- TOOL_END: cancel_appointment -->

<!-- POLICY_END -->
"""
CONFIRM = ["book_appointment"]
FABRICATED = "- Rejected: `scheduled_at` is not later than the simulation time."
FIXED = (
    "- Rejected: `scheduled_at` is not later than the simulation time, or falls "
    "outside Clinic.opening_hours."
)


def _fixture() -> tuple[ServerBlueprint, EntityCatalogue]:
    catalogue = catalogue_from_export(
        json.loads((FIXTURE_DIR / "entities.json").read_text())
    )
    [exported] = json.loads((FIXTURE_DIR / "blueprints.json").read_text())
    return blueprint_from_export(exported, catalogue), catalogue


BLUEPRINT, CATALOGUE = _fixture()


def summaries() -> list[TableSummary]:
    """s06 summaries of Patient, Clinic and Appointment (with data facts)."""
    status = ColumnSummary(
        type="enum", distinct=2, nulls=0, values=("booked", "cancelled")
    )
    patient = ColumnSummary(
        type="enum", distinct=2, nulls=0, values=("active", "suspended")
    )
    key = ColumnSummary(type="string", distinct=3, nulls=0)
    return [
        TableSummary(
            table="Patient",
            kind="entity",
            row_count=3,
            columns={"patient_id": key, "status": patient},
            prose="Three patients, one suspended.",
        ),
        TableSummary(table="Clinic", kind="entity", row_count=3, columns={}),
        TableSummary(
            table="Appointment",
            kind="relationship",
            server="DentalAppointments",
            row_count=3,
            columns={"status": status},
        ),
    ]


def artifact(kind: str, ident: str, payload) -> Artifact:
    """`payload` as an artifact of a test producer."""
    made = Producer(step="test", item_key=ident, params_hash="0", code_version="0")
    return Artifact.build(kind=kind, id=ident, payload=payload, producer=made)


def edit_block(search: str, replace: str) -> str:
    """One SEARCH/REPLACE block."""
    return f"<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"
