"""Tests for blueprint-to-spec derivation and reading the reference exports."""

import json

import pytest

from schemas.blueprint import Parameter, ServerBlueprint
from schemas.entity import EntityCatalogue
from schemas.environment import EnvironmentSpec, TableSpec, ToolSpec
from tasks.core.blueprints import blueprints_export
from tasks.core.entities import entities_export
from tasks.core.tool_lists import tool_list
from tasks.runtime.exports import (
    blueprint_from_export,
    catalogue_from_export,
    find_blueprint,
)
from tasks.runtime.spec import CONFIRM_PROPERTY, environment_spec
from tests.runtime import FIXTURE_DIR, SERVER, SIMULATION_TIME


@pytest.fixture
def catalogue() -> EntityCatalogue:
    """The fixture catalogue read from `entities.json`."""
    return catalogue_from_export(
        json.loads((FIXTURE_DIR / "entities.json").read_text())
    )


@pytest.fixture
def blueprint(catalogue: EntityCatalogue) -> ServerBlueprint:
    """The fixture blueprint read from `blueprints.json`."""
    document = json.loads((FIXTURE_DIR / "blueprints.json").read_text())
    return blueprint_from_export(find_blueprint(document, SERVER), catalogue)


def _spec(blueprint, catalogue, confirm=frozenset({"book_appointment"})):
    return environment_spec(
        blueprint,
        catalogue,
        simulation_time=SIMULATION_TIME,
        seed=7,
        confirm_tools=confirm,
    )


def test_spec_derives_entity_and_relationship_tables_with_foreign_keys(
    blueprint, catalogue
):
    """Core and peripheral entities and the relationship become keyed tables."""
    spec = _spec(blueprint, catalogue)
    assert spec.core_entity == "Patient" and spec.core_key == "patient_id"
    assert spec.tables == {
        "Patient": TableSpec(
            name="Patient",
            primary_key="patient_id",
            kind="entity",
            columns=("patient_id", "full_name", "email", "status"),
        ),
        "Clinic": TableSpec(
            name="Clinic",
            primary_key="clinic_id",
            kind="entity",
            columns=("clinic_id", "name", "city", "accepts_new_patients"),
        ),
        "Appointment": TableSpec(
            name="Appointment",
            primary_key="appointment_id",
            kind="relationship",
            columns=(
                "appointment_id",
                "patient_id",
                "clinic_id",
                "scheduled_at",
                "status",
                "created_at",
            ),
            foreign_keys={"patient_id": "Patient", "clinic_id": "Clinic"},
        ),
    }


def test_tool_schemas_equal_the_s05_tool_list_plus_confirm(blueprint, catalogue):
    """Agents see the tool-list schema; confirmation tools also get `confirm`."""
    spec = _spec(blueprint, catalogue)
    exported = {t.function["name"]: t.function for t in tool_list(blueprint).tools}
    for tool in spec.tools:
        expected = exported[tool.name]["parameters"]
        if tool.name == "book_appointment":
            expected = {
                **expected,
                "properties": {**expected["properties"], "confirm": CONFIRM_PROPERTY},
            }
        assert tool.parameters == expected
        assert tool.description == exported[tool.name]["description"]
    assert [(t.name, t.effect, t.needs_confirmation) for t in spec.tools] == [
        ("authorize_patient", "read", False),
        ("list_clinics", "read", False),
        ("book_appointment", "write", True),
        ("list_my_appointments", "read", False),
        ("cancel_appointment", "write", False),
    ]
    assert spec.auth_tool == "authorize_patient"


def test_a_blueprint_confirm_parameter_is_replaced_by_the_runtime_one(
    blueprint, catalogue
):
    """A model-written `confirm` parameter becomes optional with default false."""
    functions = tuple(
        function.model_copy(
            update={
                "parameters": {
                    **function.parameters,
                    "confirm": Parameter(description="Confirm?", type="boolean"),
                }
            }
        )
        if function.name == "book_appointment"
        else function
        for function in blueprint.functions
    )
    changed = blueprint.model_copy(update={"functions": functions})
    tool = _spec(changed, catalogue).tool("book_appointment")
    assert tool is not None
    assert tool.parameters["properties"]["confirm"] == CONFIRM_PROPERTY
    assert tool.parameters["required"] == ["clinic_id", "scheduled_at"]


def test_confirmation_tools_must_be_write_tools_of_the_blueprint(blueprint, catalogue):
    """Confirming a read tool or an unknown tool is refused by name."""
    with pytest.raises(ValueError, match=r"\['list_clinics', 'nope'\]"):
        _spec(blueprint, catalogue, confirm={"list_clinics", "nope"})


def test_a_parameter_called_env_is_refused(blueprint, catalogue):
    """`env` is the runtime object's name in every tool body."""
    first = blueprint.functions[0]
    renamed = first.model_copy(
        update={"parameters": {"env": Parameter(description="x", type="string")}}
    )
    changed = blueprint.model_copy(
        update={"functions": (renamed, *blueprint.functions[1:])}
    )
    with pytest.raises(ValueError, match="parameter 'env' is reserved"):
        _spec(changed, catalogue)


def test_an_entity_missing_from_the_catalogue_is_refused(blueprint, catalogue):
    """A blueprint naming an unknown peripheral cannot become a spec."""
    changed = blueprint.model_copy(update={"peripheral_entities": ("Dentist",)})
    with pytest.raises(ValueError, match="entity Dentist is not in the catalogue"):
        _spec(changed, catalogue)


def test_spec_round_trips_through_json(blueprint, catalogue):
    """The spec is a plain artifact that survives serialisation."""
    spec = _spec(blueprint, catalogue)
    assert EnvironmentSpec.model_validate_json(spec.model_dump_json()) == spec


def test_exports_read_back_to_the_same_blueprint_and_catalogue(blueprint, catalogue):
    """Reading what the core export writes gives back the canonical models."""
    again = blueprint_from_export(blueprints_export([blueprint])[0], catalogue)
    assert again == blueprint
    assert catalogue_from_export(entities_export(catalogue)) == catalogue
    appointment = blueprint.relationships[0]
    assert appointment.primary_key == "appointment_id"
    assert appointment.attributes["clinic_id"].references == "Clinic"
    assert appointment.attributes["scheduled_at"].references is None


def test_catalogue_export_may_be_wrapped_in_an_entities_key(catalogue):
    """The reference accepts `{"entities": {...}}` as well."""
    assert catalogue_from_export({"entities": entities_export(catalogue)}) == catalogue


def test_find_blueprint_names_the_servers_there_are():
    """An unknown server name lists the known ones."""
    with pytest.raises(ValueError, match="no blueprint for server X; servers: A, B"):
        find_blueprint([{"MCP_server_name": "B"}, {"MCP_server_name": "A"}], "X")


def test_malformed_exports_are_value_errors_naming_the_document(catalogue):
    """A missing key is reported as malformed input, not as a KeyError."""
    with pytest.raises(ValueError, match="malformed entities.json: KeyError"):
        catalogue_from_export({"Clinic": {"description": "no attributes"}})
    with pytest.raises(ValueError, match="malformed blueprint of S: KeyError"):
        blueprint_from_export({"MCP_server_name": "S"}, catalogue)


def test_a_confirmation_tool_spec_needs_a_boolean_confirm_parameter():
    """The schema agents see must offer the `confirm` flag the runtime checks."""
    schema = {"type": "object", "properties": {}, "required": []}
    with pytest.raises(ValueError, match="no boolean 'confirm' parameter"):
        ToolSpec(
            name="book",
            description="Book.",
            effect="write",
            needs_confirmation=True,
            parameters=schema,
        )
