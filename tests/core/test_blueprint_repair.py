"""Tests for s04 deterministic blueprint repair."""

from typing import Any

from schemas.blueprint import (
    BlueprintDraft,
    ColumnDraft,
    FunctionDraft,
    ParameterDraft,
    RelationshipDraft,
)
from tasks.core.blueprint_repair import normalize_blueprint


def _messy(blueprint_data: dict[str, Any]) -> BlueprintDraft:
    data = blueprint_data | {
        "MCP_server_name": "patient care-hub",
        "core_entity": "patient",
        "peripheral_entities": ["Ward"],
        "relationships": [
            {
                "name": "patient visit",
                "description": "A visit.",
                "attributes": [
                    {"name": "id", "value_from_entity": "System Generated"},
                    {"name": "PatientID", "value_from_entity": "patient"},
                    {
                        "name": "referring_physician_id",
                        "value_from_entity": "physician.PhysicianId",
                    },
                    {
                        "name": "attending_physician_id",
                        "value_from_entity": "Physician.id",
                    },
                    {"name": "clinicName", "value_from_entity": "CLINIC.Name"},
                    {"name": "session_id", "value_from_entity": "random"},
                ],
            }
        ],
        "functions": [
            {
                "name": " authorize_patient ",
                "description": "Auth.",
                "is_authorization": True,
                "legal_accessor": ["patient", "patient", ""],
                "parameters": [{"name": "Patient_id"}],
            },
            {
                "name": "pay",
                "description": "Pay.",
                "parameters": [
                    {"name": "bankaccount_id"},
                    {"name": "BankAccount_id"},
                    {"name": "session_id"},
                    {"name": "visitDate", "type": "date"},
                    {"name": "tags", "type": "list[str]"},
                ],
            },
        ],
    }
    return BlueprintDraft.model_validate(data)


def test_normalize_blueprint_repairs_names_values_and_keys(
    blueprint_data, outline, catalogue
):
    """Every deterministic repair applies; nothing is merged or dropped."""
    repaired = normalize_blueprint(
        _messy(blueprint_data), outline=outline, catalogue=catalogue
    )
    assert repaired == BlueprintDraft(
        MCP_server_name="PatientCareHub",
        description="Patients book visits with physicians at clinics.",
        core_entity="Patient",
        peripheral_entities=["Physician", "Clinic"],
        relationships=[
            RelationshipDraft(
                name="PatientVisit",
                description="A visit.",
                attributes=[
                    ColumnDraft(
                        name="patient_visit_id", value_from_entity="system_generated"
                    ),
                    ColumnDraft(
                        name="patient_id", value_from_entity="Patient.patient_id"
                    ),
                    ColumnDraft(
                        name="referring_physician_id",
                        value_from_entity="Physician.physician_id",
                    ),
                    ColumnDraft(
                        name="attending_physician_id",
                        value_from_entity="Physician.physician_id",
                    ),
                    ColumnDraft(name="clinic_name", value_from_entity="Clinic.name"),
                    ColumnDraft(name="param_session_id", value_from_entity="Random"),
                ],
            )
        ],
        functions=[
            FunctionDraft(
                name="authorize_patient",
                description="Auth.",
                is_authorization=True,
                legal_accessor=["Patient"],
                parameters=[ParameterDraft(name="patient_id")],
            ),
            FunctionDraft(
                name="pay",
                description="Pay.",
                parameters=[
                    ParameterDraft(name="bankaccount_id"),
                    ParameterDraft(name="BankAccount_id"),
                    ParameterDraft(name="param_session_id"),
                    ParameterDraft(name="visit_date", type="date"),
                    ParameterDraft(name="tags", type="array", items_type="str"),
                ],
            ),
        ],
    )


def test_normalize_blueprint_keeps_distinct_foreign_keys_to_one_entity(
    blueprint_data, outline, catalogue
):
    """Referring and attending physician both survive (reference defect 18)."""
    draft = BlueprintDraft.model_validate(blueprint_data)
    repaired = normalize_blueprint(draft, outline=outline, catalogue=catalogue)
    names = [column.name for column in repaired.relationships[0].attributes]
    assert names == [
        "visit_id",
        "patient_id",
        "referring_physician_id",
        "attending_physician_id",
        "clinic_id",
        "status",
    ]
    assert repaired == draft


def test_normalize_blueprint_leaves_colliding_names_as_written(
    blueprint_data, outline, catalogue
):
    """Two spellings of one key are not collapsed into one column."""
    columns = blueprint_data["relationships"][0]["attributes"]
    columns.append({"name": "patientId", "value_from_entity": "Patient.patient_id"})
    draft = BlueprintDraft.model_validate(blueprint_data)
    repaired = normalize_blueprint(draft, outline=outline, catalogue=catalogue)
    names = [column.name for column in repaired.relationships[0].attributes]
    assert names.count("patient_id") == 1
    assert names[-1] == "patientId"


def test_normalize_blueprint_renames_key_variants_of_any_catalogue_entity(
    blueprint_data, outline, catalogue
):
    """A lone key variant becomes the canonical key, even of a non-member."""
    blueprint_data["functions"][1]["parameters"] = [{"name": "BankAccountId"}]
    draft = BlueprintDraft.model_validate(blueprint_data)
    repaired = normalize_blueprint(draft, outline=outline, catalogue=catalogue)
    assert repaired.functions[1].parameters == [ParameterDraft(name="bank_account_id")]


def test_normalize_blueprint_is_idempotent_and_leaves_input_alone(
    blueprint_data, outline, catalogue
):
    """Repairing twice changes nothing more; the draft passed in is unchanged."""
    draft = _messy(blueprint_data)
    before = draft.model_dump()
    once = normalize_blueprint(draft, outline=outline, catalogue=catalogue)
    assert normalize_blueprint(once, outline=outline, catalogue=catalogue) == once
    assert draft.model_dump() == before


def test_normalize_blueprint_falls_back_to_core_manager_name(
    blueprint_data, outline, catalogue
):
    """With no usable name in the draft or outline, the server is {Core}Manager."""
    draft = BlueprintDraft.model_validate(blueprint_data | {"MCP_server_name": "??"})
    nameless = outline.model_copy(update={"server_name": "--"})
    repaired = normalize_blueprint(draft, outline=nameless, catalogue=catalogue)
    assert repaired.MCP_server_name == "PatientManager"


def test_normalize_blueprint_never_renames_a_differently_named_foreign_key(
    blueprint_data, outline, catalogue
):
    """A lone FK column named for its role keeps that name."""
    columns = blueprint_data["relationships"][0]["attributes"]
    columns[4] = {"name": "homeClinicId", "value_from_entity": "clinic"}
    draft = BlueprintDraft.model_validate(blueprint_data)
    repaired = normalize_blueprint(draft, outline=outline, catalogue=catalogue)
    assert repaired.relationships[0].attributes[4] == ColumnDraft(
        name="home_clinic_id", value_from_entity="Clinic.clinic_id"
    )
