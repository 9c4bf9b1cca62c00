"""Tests for s04 canonical blueprints, unique server names and the export shape."""

import pytest

from schemas.blueprint import (
    BlueprintDraft,
    Column,
    Function,
    Parameter,
    Relationship,
    ServerBlueprint,
)
from tasks.core.blueprints import (
    assign_unique_server_names,
    blueprints_export,
    canonical_blueprint,
    json_type,
)


@pytest.fixture
def blueprint(blueprint_data, outline, catalogue) -> ServerBlueprint:
    """The fixture draft in canonical form."""
    draft = BlueprintDraft.model_validate(blueprint_data)
    return canonical_blueprint(draft, outline=outline, catalogue=catalogue)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("int", "integer"),
        ("enum", "string"),
        ("date", "string"),
        ("timestamp", "string"),
        ("list[int]", "array"),
        ("dict", "object"),
        ("Boolean", "boolean"),
        ("money", None),
    ],
)
def test_json_type_maps_synonyms_and_string_like_types(raw, expected):
    """Enums and dates are strings in JSON schema; unknown types map to None."""
    assert json_type(raw) == expected


def test_canonical_blueprint_builds_typed_relationships_and_functions(blueprint):
    """Foreign keys get references, parameters get JSON types and enum tuples."""
    physician = Column(
        type="string",
        value_from_entity="Physician.physician_id",
        references="Physician",
    )
    assert blueprint == ServerBlueprint(
        server_name="PatientCare",
        description="Patients book visits with physicians at clinics.",
        core_entity="Patient",
        peripheral_entities=("Physician", "Clinic"),
        relationships=(
            Relationship(
                name="Visit",
                description="A booked visit.",
                primary_key="visit_id",
                attributes={
                    "visit_id": Column(
                        type="string", value_from_entity="system_generated"
                    ),
                    "patient_id": Column(
                        type="string",
                        value_from_entity="Patient.patient_id",
                        references="Patient",
                    ),
                    "referring_physician_id": physician,
                    "attending_physician_id": physician,
                    "clinic_id": Column(
                        type="string",
                        value_from_entity="Clinic.clinic_id",
                        references="Clinic",
                    ),
                    "status": Column(
                        type="enum", value_from_entity="Random", range="booked,done"
                    ),
                },
            ),
        ),
        functions=(
            Function(
                name="authorize_patient",
                description="Check the patient id.",
                effect="read",
                is_authorization=True,
                legal_accessor=("Patient",),
                parameters={
                    "patient_id": Parameter(description="Patient id", type="string")
                },
            ),
            Function(
                name="book_visit",
                description="Book a visit.",
                effect="write",
                parameters={
                    "physician_id": Parameter(description="Who", type="string"),
                    "visit_date": Parameter(
                        description="When", type="string", range="YYYY-MM-DD"
                    ),
                },
            ),
            Function(
                name="list_visits",
                description="List visits.",
                effect="read",
                parameters={
                    "statuses": Parameter(
                        description="",
                        type="array",
                        enum=("booked", "done"),
                        items_type="string",
                        required=False,
                    ),
                    "limit": Parameter(
                        description="", type="integer", range="1-50", required=False
                    ),
                },
            ),
        ),
        source_domains=("dental_clinic", "healthcare"),
    )


def test_canonical_blueprint_survives_a_json_round_trip(blueprint):
    """The canonical form serialises and validates back to itself."""
    assert ServerBlueprint.model_validate_json(blueprint.model_dump_json()) == blueprint


def test_canonical_blueprint_refuses_an_unknown_type(
    blueprint_data, outline, catalogue
):
    """A draft that failed the checks is never silently converted."""
    blueprint_data["functions"][1]["parameters"][0]["type"] = "money"
    draft = BlueprintDraft.model_validate(blueprint_data)
    with pytest.raises(ValueError, match="parameter 'physician_id' has unknown type"):
        canonical_blueprint(draft, outline=outline, catalogue=catalogue)


def test_canonical_blueprint_refuses_colliding_columns(
    blueprint_data, outline, catalogue
):
    """Two columns with one name are an error, never a silent overwrite."""
    blueprint_data["relationships"][0]["attributes"].append(
        {"name": "status", "value_from_entity": "Random"}
    )
    draft = BlueprintDraft.model_validate(blueprint_data)
    with pytest.raises(ValueError, match="relationship 'Visit' repeats a column"):
        canonical_blueprint(draft, outline=outline, catalogue=catalogue)


def test_assign_unique_server_names_suffixes_repeats_in_order(blueprint):
    """Repeated names get 1, 2, ... in list order; other fields are unchanged."""
    other = blueprint.model_copy(update={"server_name": "PatientCare1"})
    renamed = assign_unique_server_names([blueprint, blueprint, other, blueprint])
    assert [item.server_name for item in renamed] == [
        "PatientCare",
        "PatientCare2",
        "PatientCare1",
        "PatientCare3",
    ]
    assert renamed[1] == blueprint.model_copy(update={"server_name": "PatientCare2"})


def test_blueprints_export_matches_reference_shape(blueprint):
    """Relationship attributes and function parameters become keyed dicts."""

    def column(value: str, range_: str = "", type_: str = "string") -> dict:
        return {"type": type_, "value_from_entity": value, "range": range_}

    def parameter(description: str, type_: str = "string", **extra) -> dict:
        base = {
            "description": description,
            "type": type_,
            "range": "",
            "required": True,
        }
        return base | extra

    assert blueprints_export([blueprint]) == [
        {
            "MCP_server_name": "PatientCare",
            "description": "Patients book visits with physicians at clinics.",
            "core_entity": "Patient",
            "peripheral_entities": ["Physician", "Clinic"],
            "relationships": [
                {
                    "name": "Visit",
                    "description": "A booked visit.",
                    "attributes": {
                        "visit_id": column("system_generated"),
                        "patient_id": column("Patient.patient_id"),
                        "referring_physician_id": column("Physician.physician_id"),
                        "attending_physician_id": column("Physician.physician_id"),
                        "clinic_id": column("Clinic.clinic_id"),
                        "status": column("Random", "booked,done", "enum"),
                    },
                }
            ],
            "functions": [
                {
                    "name": "authorize_patient",
                    "description": "Check the patient id.",
                    "legal_accessor": ["Patient"],
                    "parameters": {"patient_id": parameter("Patient id")},
                    "effect": "read",
                    "is_authorization": True,
                },
                {
                    "name": "book_visit",
                    "description": "Book a visit.",
                    "legal_accessor": [],
                    "parameters": {
                        "physician_id": parameter("Who"),
                        "visit_date": parameter("When", range="YYYY-MM-DD"),
                    },
                    "effect": "write",
                    "is_authorization": False,
                },
                {
                    "name": "list_visits",
                    "description": "List visits.",
                    "legal_accessor": [],
                    "parameters": {
                        "statuses": parameter(
                            "",
                            "array",
                            required=False,
                            enum=["booked", "done"],
                            items={"type": "string"},
                        ),
                        "limit": parameter("", "integer", range="1-50", required=False),
                    },
                    "effect": "read",
                    "is_authorization": False,
                },
            ],
            "source_domains": ["dental_clinic", "healthcare"],
        }
    ]
