"""Tests for fusing environments: two hand-made members that share the core entity
Patient and both own a `Clinic` entity table and a `Visit` relationship table,
loaded from files in the output layout."""

import json
import re
from pathlib import Path

import pytest

from schemas.environment import (
    DatabaseDiff,
    EnvironmentSpec,
    TableDiff,
    TableSpec,
    ToolSpec,
)
from schemas.fused_environment import FusedEnvironmentSpec, ToolRoute
from tasks.runtime.database import Database, data_paths
from tasks.runtime.fusion import (
    agent_tool_names,
    fuse_specs,
    fused_environment,
    served_spec,
)

OPENAI_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
TIME = "2025-01-23T15:00:00+00:00"
NO_PARAMETERS = {"type": "object", "properties": {}, "required": []}
NOTE = {
    "type": "object",
    "properties": {"note": {"type": "string"}},
    "required": ["note"],
}
PATIENTS = [{"patient_id": "p1", "name": "Ana"}, {"patient_id": "p2", "name": "Ben"}]
CLINIC = [{"clinic_id": "c1", "city": "Porto"}]
VISITS = {
    "Dentist": [{"visit_id": "d1", "patient_id": "p1", "note": "dentist checkup"}],
    "Optician": [{"visit_id": "o1", "patient_id": "p1", "note": "eye test"}],
}


def _member(name: str) -> EnvironmentSpec:
    return EnvironmentSpec(
        name=name,
        core_entity="Patient",
        core_key="patient_id",
        tables={
            "Patient": TableSpec(
                name="Patient",
                primary_key="patient_id",
                kind="entity",
                columns=("patient_id", "name"),
            ),
            "Clinic": TableSpec(
                name="Clinic",
                primary_key="clinic_id",
                kind="entity",
                columns=("clinic_id", "city"),
            ),
            "Visit": TableSpec(
                name="Visit",
                primary_key="visit_id",
                kind="relationship",
                columns=("visit_id", "patient_id", "note"),
                foreign_keys={"patient_id": "Patient"},
            ),
        },
        tools=(
            ToolSpec(
                name="authorize",
                description="Bind a patient.",
                effect="write",
                is_authorization=True,
                parameters={
                    "type": "object",
                    "properties": {"patient_id": {"type": "string"}},
                    "required": ["patient_id"],
                },
            ),
            ToolSpec(
                name="my_visits",
                description="The user's visits.",
                effect="read",
                parameters=NO_PARAMETERS,
            ),
            ToolSpec(
                name="add_visit",
                description="Record a visit.",
                effect="write",
                parameters=NOTE,
            ),
        ),
        simulation_time=TIME,
        seed=7,
    )


def _authorize(env, patient_id):
    return env.authorize(patient_id)


def _my_visits(env):
    patient = env.require_auth()
    return {"visits": env.table("Visit").find(patient_id=patient["patient_id"])}


def _add_visit(env, note):
    patient = env.require_auth()
    row = {"visit_id": env.new_id(), "patient_id": patient["patient_id"]}
    return env.table("Visit").insert({**row, "note": note})


BODIES = {"authorize": _authorize, "my_visits": _my_visits, "add_visit": _add_visit}


@pytest.fixture
def fused() -> FusedEnvironmentSpec:
    return fuse_specs([_member("Optician"), _member("Dentist")])


@pytest.fixture
def output_dir(tmp_path: Path, fused) -> Path:
    """Each member's data where s06 writes it (shared entity files once)."""
    for member, spec in fused.members.items():
        for name, path in data_paths(tmp_path, spec).items():
            rows = {"Patient": PATIENTS, "Clinic": CLINIC, "Visit": VISITS[member]}
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(rows[name]))
    return tmp_path


def _environment(fused, output_dir):
    database = Database.load(served_spec(fused), output_dir)
    return fused_environment(
        fused, database, {member: BODIES for member in fused.members}
    )


def test_same_named_tables_coexist_and_the_core_table_is_one(fused, output_dir):
    """Both members' Visit (and Clinic) tables are loaded from their own files
    under their namespace; Patient is one shared table; no file changes."""
    files = {p: p.read_bytes() for p in output_dir.rglob("*.json")}
    environment = _environment(fused, output_dir)
    snapshot = environment.base.snapshot()
    assert sorted(snapshot) == [
        "Dentist.Clinic",
        "Dentist.Visit",
        "Optician.Clinic",
        "Optician.Visit",
        "Patient",
    ]
    assert snapshot["Dentist.Visit"] == VISITS["Dentist"]
    assert snapshot["Optician.Visit"] == VISITS["Optician"]
    assert snapshot["Patient"] == PATIENTS
    assert fused.tables["Dentist"] == {
        "Patient": "Patient",
        "Clinic": "Dentist.Clinic",
        "Visit": "Dentist.Visit",
    }
    assert {p: p.read_bytes() for p in output_dir.rglob("*.json")} == files


def test_a_write_in_one_namespace_leaves_the_other_unchanged(fused, output_dir):
    """Optician's add_visit inserts into Optician.Visit only; Dentist's tool,
    reading its own Visit table, does not see it."""
    environment = _environment(fused, output_dir)
    environment.call("s", "Dentist__authorize", {"patient_id": "p1"})
    added = environment.call("s", "Optician__add_visit", {"note": "new lenses"})
    dentist = environment.call("s", "Dentist__my_visits", {})
    optician = environment.call("s", "Optician__my_visits", {})
    new_id = added.content["visit_id"]
    assert environment.diff("s") == DatabaseDiff(
        tables={"Optician.Visit": TableDiff(inserted=(new_id,))}
    )
    assert dentist.content == {"visits": VISITS["Dentist"]}
    assert [v["visit_id"] for v in optician.content["visits"]] == ["o1", new_id]


def test_one_authorization_serves_every_member(fused, output_dir):
    """Authorizing through one member's tool binds the user for all members;
    before it, a tool names its own member's authorization tool."""
    environment = _environment(fused, output_dir)
    before = environment.call("s", "Optician__my_visits", {})
    environment.call("s", "Dentist__authorize", {"patient_id": "p2"})
    after = environment.call("s", "Optician__my_visits", {})
    assert before.error == "not authorized: call Optician__authorize first"
    assert after.content == {"visits": []}


def test_tool_names_are_openai_valid_and_route_to_member_tools(fused, output_dir):
    """Agents see `Server__tool`; the mapping is recorded in the spec; the
    reference's `Server.tool` form reaches the same tool."""
    assert fused.tools == {
        f"{server}__{tool}": ToolRoute(server=server, tool=tool)
        for server in ("Dentist", "Optician")
        for tool in ("authorize", "my_visits", "add_visit")
    }
    environment = _environment(fused, output_dir)
    names = [tool.name for tool in environment.spec.tools]
    assert all(OPENAI_TOOL_NAME.match(name) for name in names)
    result = environment.call("s", "Dentist.authorize", {"patient_id": "p1"})
    assert result.tool == "Dentist__authorize" and not result.is_error
    assert environment.session("s").authorized_id == "p1"


def test_long_names_are_shortened_deterministically_and_stay_unique():
    """A `Server__tool` over 64 characters becomes a prefix and a hash."""
    server, stem = "S" + "x" * 30, "t" * 40
    routes = [ToolRoute(server=server, tool=f"{stem}_{n}") for n in range(3)]
    names = agent_tool_names(routes)
    assert list(names.values()) == routes
    assert len(set(names)) == 3
    assert all(OPENAI_TOOL_NAME.match(name) for name in names)
    assert all(name.startswith(f"{server}__{stem[:20]}") for name in names)
    assert agent_tool_names(routes) == names


def test_the_fused_spec_round_trips_through_json(fused):
    """The spec (members, namespaces, tool mapping) is a plain JSON record."""
    restored = FusedEnvironmentSpec.model_validate_json(fused.model_dump_json())
    assert restored == fused
    assert restored.aliases["Optician.add_visit"] == "Optician__add_visit"


def test_members_with_different_core_entities_are_refused():
    """A combination serves one person: each member's core entity is named."""
    other = _member("Bank").model_copy(update={"core_entity": "Clinic"})
    other = other.model_copy(update={"core_key": "clinic_id"})
    with pytest.raises(ValueError) as info:
        fuse_specs([_member("Dentist"), other])
    assert str(info.value) == (
        "Bank_Dentist: the members do not share their core entity "
        "(Bank: Clinic, Dentist: Patient)"
    )


def test_a_tool_body_cannot_reach_another_members_table(fused, output_dir):
    """A member's body sees only its own tables: naming another member's
    namespaced table is a crash of that body, and nothing leaks."""

    def peek(env):
        return {"rows": env.table("Optician.Visit").all()}

    database = Database.load(served_spec(fused), output_dir)
    bodies = {"Dentist": {**BODIES, "my_visits": peek}, "Optician": BODIES}
    environment = fused_environment(fused, database, bodies)
    result = environment.call("s", "Dentist__my_visits", {})
    assert result.is_error and result.content is None
    assert result.error == (
        'internal error in tool Dentist__my_visits: KeyError: "no table '
        "'Optician.Visit' in Dentist; its tables are Patient, Clinic, Visit\""
    )
