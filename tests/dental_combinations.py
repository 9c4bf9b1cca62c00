"""The DentalAppointments world of the s15 tests: table rows, a template that
cancels a booked appointment, a plan draft that passes every check, selection
scripts (a working one and ways to break it), and the entity-bound arguments
that checked plans and planned calls share."""

from __future__ import annotations

from schemas.instance_plan import InstancePlanDraft
from tasks.core.instance_selection import TableRows
from tasks.core.tool_lists import tool_list
from tests.dental_policy import BLUEPRINT

TRAJECTORY = ("authorize_patient", "list_my_appointments", "cancel_appointment")
TOOLS = tuple(t.model_dump() for t in tool_list(BLUEPRINT).tools)


def _patient(pid: str, name: str, status: str) -> dict:
    return {"patient_id": pid, "full_name": name, "email": f"{pid}@x", "status": status}


def _visit(aid: str, patient: str, day: int, status: str) -> dict:
    return {
        "appointment_id": aid,
        "patient_id": patient,
        "clinic_id": "c1",
        "scheduled_at": f"2025-02-0{day}T10:00:00-05:00",
        "status": status,
        "created_at": "2025-01-02T10:00:00-05:00",
    }


CLINIC = {
    "clinic_id": "c1",
    "name": "Harbor",
    "city": "Oslo",
    "accepts_new_patients": 1,
}
ROWS = {
    "Patient": TableRows(
        "patient_id",
        (
            _patient("p1", "Ana Silva", "active"),
            _patient("p2", "Ben Berg", "suspended"),
            _patient("p3", "Chen Rossi", "active"),
        ),
    ),
    "Clinic": TableRows("clinic_id", (CLINIC,)),
    "Appointment": TableRows(
        "appointment_id",
        (
            _visit("a1", "p1", 1, "booked"),
            _visit("a2", "p2", 2, "booked"),
            _visit("a3", "p1", 3, "cancelled"),
            _visit("a4", "p3", 4, "booked"),
        ),
    ),
}


def entity_arg(instance: str, field: str) -> dict:
    """An argument bound to a field of one instance (the same shape in a checked
    plan's step and in a planned call)."""
    return {"source": "entity", "instance": instance, "field": field}


AUTHORIZE_PATIENT = {
    "tool": "authorize_patient",
    "arguments": {"patient_id": entity_arg("Patient", "patient_id")},
}
"""A plan step or planned call that authorizes the Patient instance."""


def plan_data() -> dict:
    """A plan (as the model sends it) that passes every check."""
    return {
        "instances": [
            {"key": "Patient", "table": "Patient", "constraints": ["status is active"]},
            {
                "key": "Appointment",
                "table": "Appointment",
                "constraints": ["patient_id is Patient.patient_id", "status is booked"],
            },
        ],
        "steps": [
            {
                "tool": "authorize_patient",
                "arguments": [
                    {
                        "parameter": "patient_id",
                        "source": "entity",
                        "instance": "Patient",
                        "field": "patient_id",
                    }
                ],
            },
            {
                "tool": "list_my_appointments",
                "arguments": [
                    {"parameter": "status", "source": "value", "domain": ["booked"]}
                ],
            },
            {
                "tool": "cancel_appointment",
                "arguments": [
                    {
                        "parameter": "appointment_id",
                        "source": "entity",
                        "instance": "Appointment",
                        "field": "appointment_id",
                    }
                ],
            },
        ],
        "sequential_constraints": ["only a booked appointment can be cancelled"],
    }


def plan_draft(**changes) -> InstancePlanDraft:
    return InstancePlanDraft.model_validate({**plan_data(), **changes})


GOOD_SCRIPT = """\
import json

spec = json.load(open("input.json"))
tables = {t: json.load(open(f"tables/{t}.json")) for t in spec["tables"]}
combos = []
for patient in tables["Patient"]:
    if patient["status"] != "active":
        continue
    for visit in tables["Appointment"]:
        if visit["patient_id"] == patient["patient_id"] and visit["status"] == "booked":
            combos.append(
                {
                    "instances": {"Patient": patient, "Appointment": visit},
                    "values": {"1.status": "booked"},
                }
            )
json.dump({"combinations": combos}, open("output.json", "w"))
"""

CRASHING_SCRIPT = GOOD_SCRIPT.replace('tables["Appointment"]', 'tables["Appointments"]')
EMPTY_SCRIPT = GOOD_SCRIPT.replace('!= "active"', '!= "retired"')
HANGING_SCRIPT = GOOD_SCRIPT.replace(
    "combos = []", "combos = []\nwhile True:\n    pass"
)
MISSING_ROW_SCRIPT = GOOD_SCRIPT.replace(
    '"Appointment": visit}', '"Appointment": {"appointment_id": "zz9"}}'
)
