"""s15x creation code: a script runs in the sandbox on a read-only copy of the
data and creates records per combination; a combination is a candidate only if
its overlay fits the tables and its instances and values meet the plan.

The tables are the hand-written DentalAppointments fixture's; the plan books a
visit at a clinic the combination creates for an existing patient.
"""

from __future__ import annotations

import json

import pytest

from schemas.instance_plan import InstancePlan
from tasks.core.instance_creation import (
    Candidate,
    check_created,
    creation_check,
    creation_request,
)
from tasks.runtime.sandbox import run_sandboxed
from tasks.runtime.serve import load_environment
from tests.dental_combinations import AUTHORIZE_PATIENT, entity_arg
from tests.runtime import ANA, FIXTURE_DIR, FUTURE, SERVER, SIMULATION_TIME

PLAN = InstancePlan.model_validate(
    {
        "instances": {
            "Patient": {"table": "Patient", "constraints": ["status = active"]},
            "Clinic": {"table": "Clinic", "constraints": ["a new clinic"]},
        },
        "steps": [
            AUTHORIZE_PATIENT,
            {
                "tool": "book_appointment",
                "arguments": {
                    "clinic_id": entity_arg("Clinic", "clinic_id"),
                    "scheduled_at": {"source": "value", "domain": [FUTURE]},
                },
            },
        ],
    }
)
NEW = {
    "clinic_id": "new-clinic",
    "name": "Created Dental",
    "city": "Faro",
    "accepts_new_patients": True,
}


@pytest.fixture(scope="module")
def world():
    environment = load_environment(FIXTURE_DIR, SERVER, simulation_time=SIMULATION_TIME)
    return environment.spec, environment.base


def _raw(overlay, clinic="new-clinic", when=FUTURE):
    return {
        "overlay": overlay,
        "instances": {"Patient": {"patient_id": ANA}, "Clinic": {"clinic_id": clinic}},
        "values": {"1.scheduled_at": when},
    }


def test_a_created_record_is_an_instance_with_bound_calls(world):
    spec, base = world
    found = check_created(_raw({"Clinic": [NEW]}), PLAN, spec, base)
    assert isinstance(found, Candidate)
    assert found.overlay == {"Clinic": (NEW,)}
    assert found.selected.instances["Clinic"] == NEW
    assert found.selected.instances["Patient"]["full_name"] == "Ana Silva"
    assert [c.tool for c in found.selected.calls] == [s.tool for s in PLAN.steps]
    other = check_created(
        _raw({"Clinic": [{**NEW, "city": "Lagos"}]}), PLAN, spec, base
    )
    assert other.combo_id(SERVER, "h") != found.combo_id(SERVER, "h")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (_raw({}), "creates no record"),
        (_raw({"Clinic": [{**NEW, "colour": "red"}]}), "has column 'colour'"),
        (
            _raw({"Appointment": [{"appointment_id": "x", "clinic_id": "nowhere"}]}),
            "is not a Clinic id",
        ),
        (_raw({"Clinic": [NEW]}, clinic="elsewhere"), "no row with clinic_id"),
        (_raw({"Clinic": [NEW]}, when="tomorrow"), "is not in its domain"),
        ({"instances": {}}, 'needs an "overlay" object'),
    ],
)
def test_a_combination_that_does_not_fit_says_why(world, raw, expected):
    spec, base = world
    problems = check_created(raw, PLAN, spec, base)
    assert isinstance(problems, list)
    assert any(expected in p for p in problems), problems


def test_the_script_reads_a_copy_of_the_data_and_its_output_is_checked(world):
    """The script sees the plan, every table's key and rows; what it writes is
    checked combination by combination; the base stays untouched."""
    spec, base = world
    before = base.state_hash()
    script = """
import json
spec = json.load(open("input.json"))
clinics = json.load(open("tables/Clinic.json"))
key = spec["tables"]["Clinic"]["primary_key"]
new = dict(clinics[0], **{key: "made-by-script", "city": "Faro"})
good = {"overlay": {"Clinic": [new]},
        "instances": {"Patient": {"patient_id": spec["given"]}, "Clinic": new},
        "values": {"1.scheduled_at": spec["values"]["1.scheduled_at"][0]}}
bad = dict(good, overlay={"Clinic": [clinics[0]]})
json.dump({"combinations": [good, bad]}, open("output.json", "w"))
""".replace('spec["given"]', json.dumps(ANA))
    request = creation_request(
        script,
        PLAN,
        spec,
        base,
        core_entity="Patient",
        seed=7,
        simulation_time=SIMULATION_TIME,
        timeout_s=20,
    )
    check = creation_check(run_sandboxed(request), PLAN, spec, base)
    assert check.status == "ok", check.problems
    [made] = check.candidates
    assert made.overlay["Clinic"][0]["clinic_id"] == "made-by-script"
    assert check.rejected == 1
    assert "already used by an existing row" in check.problems[0]
    assert base.state_hash() == before
