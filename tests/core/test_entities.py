"""Tests for s02 entity extraction logic."""

from typing import Any

import pydantic
import pytest

from schemas.entity import Attribute, Entity, EntityBatch, EntityBatchDraft
from tasks.core.entities import (
    attribute_type,
    canonical_entities,
    check_entity_batch,
    entities_export,
    entity_batch,
    entity_batch_checker,
    merge_batches,
)

DOMAINS = ("dental_clinic", "healthcare")


def _patient(**changes: Any) -> dict[str, Any]:
    data = {
        "name": "patient",
        "description": "A person receiving care",
        "is_person": True,
        "primary_key": "id",
        "attributes": [
            {"name": "fullName", "description": "Name", "type": "str"},
            {"name": "id", "description": "Unique id", "type": "uuid", "range": "UUID"},
            {
                "name": "Blood Type",
                "description": "ABO",
                "type": "enum",
                "range": "A+, B+ ,O-",
            },
            {"name": "born_at", "description": "Birth", "type": "Timestamp"},
        ],
        "domains": ["healthcare", "Dental Clinic", "healthcare"],
    }
    return data | changes


def _batch(*entities: dict[str, Any]) -> EntityBatchDraft:
    return EntityBatchDraft.model_validate({"entities": list(entities)})


def _problems(*entities: dict[str, Any]) -> list[str]:
    return check_entity_batch(_batch(*entities), domains=DOMAINS)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("str", "string"),
        ("UUID", "string"),
        ("int", "integer"),
        ("float", "number"),
        ("bool", "boolean"),
        ("timestamp", "datetime"),
        ("datetime", "datetime"),
        ("list", "array"),
        ("list[str]", "array"),
        ("dict", "object"),
        ("enum", "enum"),
        ("date", "date"),
        ("money", None),
    ],
)
def test_attribute_type_accepts_synonyms(raw, expected):
    """Common type spellings map to the attribute type vocabulary."""
    assert attribute_type(raw) == expected


def test_check_entity_batch_accepts_a_valid_batch():
    """A well-formed batch has no problems."""
    assert _problems(_patient()) == []


def test_check_entity_batch_rejects_session_entity():
    """Sessions belong to the server runtime, not the catalogue."""
    session = _patient(
        name="Session", primary_key="session_id", attributes=[{"name": "session_id"}]
    )
    assert _problems(session) == [
        "Entity 'Session' is not allowed: sessions are handled by the server "
        "runtime; remove it."
    ]


def test_check_entity_batch_rejects_primary_key_missing_from_attributes():
    """The primary key must be one of the listed attributes."""
    assert _problems(_patient(primary_key="patient_number")) == [
        "Entity 'patient': primary_key 'patient_number' is not one of its "
        "attributes; add it to attributes, or set primary_key to the attribute that "
        "identifies one patient."
    ]


def test_check_entity_batch_rejects_key_borrowed_from_another_entity():
    """Enrollment keyed by student_id is a relationship, not an entity."""
    student = _patient(
        name="Student",
        primary_key="student_id",
        attributes=[{"name": "student_id"}],
        domains=["healthcare"],
    )
    enrollment = _patient(
        name="Enrollment",
        primary_key="student_id",
        attributes=[{"name": "student_id"}, {"name": "grade"}],
        domains=["healthcare"],
    )
    assert _problems(student, enrollment) == [
        "Entity 'Enrollment' uses 'student_id', the key of entity 'Student', as its "
        "primary_key; give it its own key 'enrollment_id', or remove it if it only "
        "exists as a link between Student and another entity (that is a "
        "relationship)."
    ]


def test_check_entity_batch_rejects_key_that_clashes_with_canonical_key():
    """Renaming the key to patient_id must not overwrite another attribute."""
    attributes = [{"name": "id"}, {"name": "patient_id"}]
    assert _problems(_patient(attributes=attributes)) == [
        "Entity 'patient' has primary_key 'id' and also an attribute 'patient_id'; "
        "make 'patient_id' the primary_key or remove it."
    ]


def test_check_entity_batch_rejects_attributes_equal_after_snake_casing():
    """Two attributes that snake_case to one name are reported together."""
    attributes = [{"name": "id"}, {"name": "DateOfBirth"}, {"name": "date_of_birth"}]
    assert _problems(_patient(attributes=attributes)) == [
        "Entity 'patient' has attributes 'DateOfBirth', 'date_of_birth', which are "
        "the same name 'date_of_birth' in snake_case; keep only one."
    ]


def test_check_entity_batch_rejects_unknown_type_and_short_enum():
    """Unsupported types and single-value enums name the attribute."""
    attributes = [
        {"name": "id"},
        {"name": "balance", "type": "money"},
        {"name": "tier", "type": "enum", "enum": ["gold"]},
    ]
    assert _problems(_patient(attributes=attributes)) == [
        "Entity 'patient', attribute 'balance' has type 'money', which is not "
        "supported; use one of: string, integer, number, boolean, enum, date, "
        "datetime, array, object.",
        "Entity 'patient', attribute 'tier' is an enum with fewer than 2 values; "
        "list the allowed values in 'enum' (or as a comma-separated 'range').",
    ]


def test_check_entity_batch_rejects_domain_outside_the_batch():
    """Entities may only cite the domains they were asked about."""
    assert _problems(_patient(domains=["veterinary"])) == [
        "Entity 'patient' lists domain 'veterinary', which is not one of this "
        "request's domains (dental_clinic, healthcare); use only those names."
    ]


def test_check_entity_batch_rejects_duplicate_and_unusable_names():
    """Repeated entities, names without letters and leading digits are reported."""
    problems = _problems(
        _patient(),
        _patient(name="Patient"),
        _patient(name="???"),
        _patient(name="3D Printer", primary_key="id"),
    )
    assert problems[0] == (
        "Entity 'Patient' is listed more than once; merge its definitions into one "
        "entry."
    )
    assert (
        "Entity name '???' has no letters; give a PascalCase name such as "
        "BankAccount." in problems
    )
    assert "Entity name '3D Printer' must start with a letter." in problems


def test_entity_batch_checker_makes_validation_raise():
    """The checker in the validation context turns problems into a re-ask."""
    data = {"entities": [_patient(primary_key="number")]}
    with pytest.raises(pydantic.ValidationError, match="primary_key 'number'"):
        EntityBatchDraft.model_validate(
            data, context={"check": entity_batch_checker(domains=DOMAINS)}
        )


def test_canonical_entities_renames_key_first_and_maps_types():
    """The declared key becomes patient_id and leads; other attributes keep order."""
    assert canonical_entities(_batch(_patient()), domains=DOMAINS) == [
        Entity(
            name="Patient",
            description="A person receiving care",
            is_person=True,
            primary_key="patient_id",
            attributes={
                "patient_id": Attribute(
                    description="Unique id", type="string", range="UUID"
                ),
                "full_name": Attribute(description="Name", type="string"),
                "blood_type": Attribute(
                    description="ABO",
                    type="enum",
                    range="A+, B+ ,O-",
                    enum=("A+", "B+", "O-"),
                ),
                "born_at": Attribute(description="Birth", type="datetime"),
            },
            source_domains=("dental_clinic", "healthcare"),
        )
    ]


def test_canonical_entities_refuses_an_invalid_batch():
    """Canonicalisation never builds entities from a batch with problems."""
    with pytest.raises(ValueError, match="primary_key 'nope'"):
        canonical_entities(_batch(_patient(primary_key="nope")), domains=DOMAINS)


def _entity(name, attributes, domains, description="d", is_person=False):
    return Entity(
        name=name,
        description=description,
        is_person=is_person,
        primary_key=f"{name.lower()}_id",
        attributes={
            attr: Attribute(description=attr, type="string") for attr in attributes
        },
        source_domains=domains,
    )


def test_merge_batches_unions_attributes_and_domains_keeping_first_definition():
    """Later batches add missing attributes and domains, never override."""
    first = EntityBatch(
        domains=("healthcare",),
        subfields=(),
        entities=(
            _entity("Patient", ["patient_id", "name"], ("healthcare",), "first", True),
            _entity("Ward", ["ward_id"], ("healthcare",)),
        ),
    )
    second = EntityBatch(
        domains=("dental_clinic",),
        subfields=(),
        entities=(
            _entity("Clinic", ["clinic_id"], ("dental_clinic",)),
            _entity(
                "Patient",
                ["patient_id", "phone", "name"],
                ("dental_clinic",),
                "second",
                False,
            ),
        ),
    )
    catalogue = merge_batches([first, second])
    assert list(catalogue.entities) == ["Clinic", "Patient", "Ward"]
    assert catalogue.entities["Patient"] == _entity(
        "Patient",
        ["patient_id", "name", "phone"],
        ("dental_clinic", "healthcare"),
        "first",
        True,
    )


def test_entities_export_matches_reference_shape():
    """Enums fill an empty range and are also listed under "enum"."""
    batch = entity_batch(_batch(_patient()), domains=DOMAINS)
    exported = entities_export(merge_batches([batch]))
    assert exported == {
        "Patient": {
            "attributes": {
                "patient_id": {
                    "description": "Unique id",
                    "type": "string",
                    "range": "UUID",
                },
                "full_name": {"description": "Name", "type": "string", "range": ""},
                "blood_type": {
                    "description": "ABO",
                    "type": "enum",
                    "range": "A+, B+ ,O-",
                    "enum": ["A+", "B+", "O-"],
                },
                "born_at": {"description": "Birth", "type": "datetime", "range": ""},
            },
            "description": "A person receiving care",
            "is_person": True,
            "primary_key": "patient_id",
            "source_domains": ["dental_clinic", "healthcare"],
        }
    }


def test_entities_export_fills_empty_range_from_enum_values():
    """An enum given only as a list still shows its values in "range"."""
    attributes = [{"name": "id"}, {"name": "tier", "type": "enum", "enum": ["a", "b"]}]
    batch = entity_batch(_batch(_patient(attributes=attributes)), domains=DOMAINS)
    tier = entities_export(merge_batches([batch]))["Patient"]["attributes"]["tier"]
    assert tier == {
        "description": "",
        "type": "enum",
        "range": "a,b",
        "enum": ["a", "b"],
    }
