"""Tests for s04 blueprint checks (the re-ask sentences)."""

from typing import Any

import pydantic
import pytest

from schemas.blueprint import BlueprintDraft
from tasks.core.blueprint_checks import blueprint_checker, check_blueprint


@pytest.fixture
def check(outline, catalogue, limits):
    """Check JSON data as the instructor context would: repair, then check."""
    checker = blueprint_checker(outline=outline, catalogue=catalogue, limits=limits)

    def run(data: dict[str, Any]) -> list[str]:
        return checker(BlueprintDraft.model_validate(data))

    return run


def _visit(data: dict[str, Any]) -> list[dict[str, Any]]:
    return data["relationships"][0]["attributes"]


def _function(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(item for item in data["functions"] if item["name"] == name)


def test_valid_blueprint_has_no_problems(check, blueprint_data):
    """The fixture blueprint meets every rule."""
    assert check(blueprint_data) == []


def test_repairable_spellings_are_not_blamed_on_the_model(check, blueprint_data):
    """Key variants and case differences are repaired before checking."""
    _visit(blueprint_data)[1] = {"name": "PatientId", "value_from_entity": "patient"}
    _function(blueprint_data, "authorize_patient")["parameters"] = [
        {"name": "Patient_ID"}
    ]
    assert check(blueprint_data) == []


def test_colliding_columns_are_reported_by_their_original_names(check, blueprint_data):
    """Two spellings of the same key column are named, not silently merged."""
    _visit(blueprint_data).append(
        {"name": "patientId", "value_from_entity": "Patient.patient_id"}
    )
    assert check(blueprint_data) == [
        "Relationship 'Visit': columns 'patient_id' and 'patientId' would both be "
        "named 'patient_id'; keep one, or rename the others to say what they hold "
        "(e.g. 'referring_patient_id')."
    ]


def test_repeated_parameter_is_reported(check, blueprint_data):
    """The same parameter twice in one function is reported once."""
    _function(blueprint_data, "book_visit")["parameters"].append(
        {"name": "physician_id"}
    )
    assert check(blueprint_data) == [
        "Function 'book_visit': parameter 'physician_id' appears 2 times; keep one, "
        "or rename the others to say what they hold."
    ]


def test_too_few_functions_and_too_many_relationships_are_reported(
    check, blueprint_data
):
    """Limits from the config are enforced, with the counts."""
    blueprint_data["functions"] = blueprint_data["functions"][:2]
    extra = dict(blueprint_data["relationships"][0], name="Review")
    extra["attributes"] = [
        {"name": "review_id", "value_from_entity": "system_generated"},
        {"name": "patient_id", "value_from_entity": "Patient.patient_id"},
    ]
    blueprint_data["relationships"] += [extra, dict(extra, name="Rating")]
    blueprint_data["relationships"][2]["attributes"] = [
        {"name": "rating_id", "value_from_entity": "system_generated"},
        {"name": "patient_id", "value_from_entity": "Patient.patient_id"},
    ]
    assert check(blueprint_data) == [
        "The blueprint has 3 relationships; the maximum is 2. Drop or merge "
        "relationships (never merge two entities' ids into one column) and adjust "
        "the functions.",
        "The blueprint has 2 functions; at least 3 are required. Add functions such "
        "as list, get, create, update and cancel operations on the relationships.",
    ]


def test_relationship_without_own_id_or_core_reference_is_reported(
    check, blueprint_data
):
    """A relationship needs its generated id and a column with the core key."""
    _visit(blueprint_data)[:2] = [
        {"name": "booking_id", "value_from_entity": "system_generated"}
    ]
    assert check(blueprint_data) == [
        "Relationship 'Visit' has no column 'visit_id'; add it as the "
        "relationship's own id with value_from_entity 'system_generated'.",
        "Relationship 'Visit': column 'booking_id' is a second generated id; a "
        "relationship has exactly one id, 'visit_id'. Remove it or take its value "
        "from an entity key.",
        "Relationship 'Visit' does not reference the core entity; add a column "
        "'patient_id' with value_from_entity 'Patient.patient_id'.",
    ]


def test_own_id_must_be_system_generated(check, blueprint_data):
    """The relationship id is generated, not drawn from elsewhere."""
    _visit(blueprint_data)[0]["value_from_entity"] = "Random"
    assert check(blueprint_data) == [
        "Relationship 'Visit': column 'visit_id' is the relationship's own id, so "
        "its value_from_entity must be 'system_generated', not 'Random'."
    ]


def test_values_from_unknown_entities_or_attributes_are_reported(check, blueprint_data):
    """Sources must be an attribute of one of the blueprint's entities."""
    _visit(blueprint_data)[2:5] = [
        {"name": "account_id", "value_from_entity": "BankAccount.bank_account_id"},
        {"name": "clinic_phone", "value_from_entity": "Clinic.phone"},
        {"name": "note", "value_from_entity": "typed by user"},
    ]
    assert check(blueprint_data) == [
        "Relationship 'Visit', column 'account_id': value_from_entity "
        "'BankAccount.bank_account_id' names 'BankAccount', which is not an entity "
        "of this blueprint; use one of Patient, Physician, Clinic, or 'Random'.",
        "Relationship 'Visit', column 'clinic_phone': value_from_entity "
        "'Clinic.phone' names no attribute of Clinic; use one of: clinic_id, name, "
        "city.",
        "Relationship 'Visit', column 'note': value_from_entity 'typed by user' is "
        "not valid; use 'Entity.attribute' (e.g. 'Patient.patient_id'), "
        "'system_generated' or 'Random'.",
    ]


def test_bad_column_type_and_short_column_enum_are_reported(check, blueprint_data):
    """Column types map to attribute types; enum columns list their values."""
    _visit(blueprint_data)[5] = {
        "name": "status",
        "type": "enum",
        "value_from_entity": "Random",
        "range": "booked",
    }
    _visit(blueprint_data).append(
        {"name": "fee", "type": "money", "value_from_entity": "Random"}
    )
    assert check(blueprint_data) == [
        "Relationship 'Visit', column 'status' is an enum; give at least 2 allowed "
        "values as a comma-separated range.",
        "Relationship 'Visit', column 'fee' has type 'money', which is not "
        "supported; use one of: string, integer, number, boolean, enum, date, "
        "datetime, array, object.",
    ]


def test_authorization_rules_are_enforced(check, blueprint_data):
    """Exactly one authorization function, taking the core key."""
    auth = _function(blueprint_data, "authorize_patient")
    auth["parameters"] = [{"name": "token"}]
    assert check(blueprint_data) == [
        "Authorization function 'authorize_patient' must take a parameter named "
        "'patient_id' (the key of Patient)."
    ]
    _function(blueprint_data, "book_visit")["is_authorization"] = True
    assert check(blueprint_data) == [
        "Functions 'authorize_patient', 'book_visit' all have is_authorization "
        "true; exactly one function may be the authorization function."
    ]
    for function in blueprint_data["functions"]:
        function["is_authorization"] = False
    assert check(blueprint_data) == [
        "No function has is_authorization true; mark exactly one function that "
        "takes 'patient_id' and returns only success or failure as the "
        "authorization function."
    ]


def test_function_names_must_be_unique_valid_tool_names(check, blueprint_data):
    """Tool names follow the OpenAI pattern and do not repeat."""
    _function(blueprint_data, "book_visit")["name"] = "book visit!"
    _function(blueprint_data, "list_visits")["name"] = "authorize_patient"
    assert check(blueprint_data) == [
        "Function name 'authorize_patient' is used 2 times; give each function a "
        "distinct name.",
        "Function name 'book visit!' is not a valid tool name; use letters, digits "
        "and underscores, starting with a letter or underscore, at most 64 "
        "characters.",
    ]


def test_parameter_types_arrays_and_enums_are_checked(check, blueprint_data):
    """Types map to JSON, arrays have items, enums list two values."""
    _function(blueprint_data, "list_visits")["parameters"] = [
        {"name": "statuses", "type": "array"},
        {"name": "ids", "type": "array", "items_type": "array"},
        {"name": "kind", "type": "enum", "range": "one"},
        {"name": "when", "type": "moment"},
    ]
    assert check(blueprint_data) == [
        "Function 'list_visits', parameter 'statuses' is an array; set items_type "
        "to the type of its elements (e.g. string).",
        "Function 'list_visits', parameter 'ids' has items_type 'array', which is "
        "not supported; use one of: string, integer, number, boolean, object, enum.",
        "Function 'list_visits', parameter 'kind' is an enum; list at least 2 "
        "allowed values in 'enum' (or as a comma-separated 'range').",
        "Function 'list_visits', parameter 'when' has type 'moment', which is not "
        "supported; use one of: string, integer, number, boolean, enum, date, "
        "datetime, array, object.",
    ]


def test_legal_accessor_must_be_a_blueprint_entity(check, blueprint_data):
    """Accessors cannot introduce new entities."""
    _function(blueprint_data, "book_visit")["legal_accessor"] = ["Admin"]
    assert check(blueprint_data) == [
        "Function 'book_visit': legal_accessor 'Admin' is not an entity of this "
        "blueprint; use Patient, Physician, Clinic or leave it empty."
    ]


def test_check_blueprint_reports_entities_outside_outline_and_catalogue(
    blueprint_data, outline, catalogue, limits
):
    """Checking a draft directly reports a wrong core and unknown peripherals."""
    draft = BlueprintDraft.model_validate(
        blueprint_data
        | {"core_entity": "Physician", "peripheral_entities": ["Clinic", "Ward", "X"]}
    )
    problems = check_blueprint(
        draft, outline=outline, catalogue=catalogue, limits=limits
    )
    assert problems[:4] == [
        "core_entity must be 'Patient', the core of the outline, not 'Physician'.",
        "The blueprint has 3 peripheral entities (Clinic, Ward, X); use at most 2.",
        "Entity 'Ward' is not in the entity catalogue; do not invent entities.",
        "Entity 'X' is not in the entity catalogue; do not invent entities.",
    ]


def test_blueprint_checker_makes_validation_raise(
    blueprint_data, outline, catalogue, limits
):
    """In the validation context, problems become one re-ask error."""
    checker = blueprint_checker(outline=outline, catalogue=catalogue, limits=limits)
    blueprint_data["functions"] = blueprint_data["functions"][:1]
    with pytest.raises(pydantic.ValidationError, match="has 1 functions"):
        BlueprintDraft.model_validate(blueprint_data, context={"check": checker})


def test_colliding_parameters_are_reported_by_their_original_names(
    check, blueprint_data
):
    """Two spellings of one entity key in a function are both named."""
    _function(blueprint_data, "book_visit")["parameters"] += [
        {"name": "bankaccount_id"},
        {"name": "BankAccount_id"},
    ]
    assert check(blueprint_data) == [
        "Function 'book_visit': parameters 'bankaccount_id' and 'BankAccount_id' "
        "would both be named 'bank_account_id'; keep one, or rename the others to "
        "say what they hold."
    ]
