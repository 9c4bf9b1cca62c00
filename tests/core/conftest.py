"""Shared fixtures for the s04/s05 core tests: a small entity catalogue, an outline
and limits, and a blueprint draft that passes every check."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.blueprint import BlueprintOutline
from schemas.config import BlueprintConfig
from schemas.entity import Attribute, Entity, EntityCatalogue


def _entity(name: str, key: str, person: bool, domains: tuple[str, ...], *attrs: str):
    attributes = {key: Attribute(description="id", type="string")}
    attributes |= {attr: Attribute(description=attr, type="string") for attr in attrs}
    return Entity(
        name=name,
        description=f"A {name}",
        is_person=person,
        primary_key=key,
        attributes=attributes,
        source_domains=domains,
    )


@pytest.fixture
def catalogue() -> EntityCatalogue:
    """Patient (core), Physician and Clinic (peripherals), BankAccount (unused)."""
    entities = [
        _entity("BankAccount", "bank_account_id", False, ("finance",), "balance"),
        _entity("Clinic", "clinic_id", False, ("dental_clinic",), "name", "city"),
        _entity("Patient", "patient_id", True, ("healthcare",), "full_name"),
        _entity(
            "Physician", "physician_id", True, ("healthcare", "dental_clinic"), "name"
        ),
    ]
    return EntityCatalogue(entities={entity.name: entity for entity in entities})


@pytest.fixture
def outline() -> BlueprintOutline:
    """Patient with Physician and Clinic."""
    return BlueprintOutline(
        index=0,
        server_name="PatientCare",
        description="Book visits",
        core_entity="Patient",
        peripheral_entities=("Physician", "Clinic"),
    )


@pytest.fixture
def limits() -> BlueprintConfig:
    """Small limits so a valid blueprint stays short."""
    return BlueprintConfig(
        target_blueprints_per_entity=3,
        max_peripheral_entities=2,
        min_functions_per_blueprint=3,
        max_relationships_per_blueprint=2,
    )


@pytest.fixture
def blueprint_data() -> dict[str, Any]:
    """A blueprint draft (as JSON data) that passes every check unchanged."""
    return {
        "MCP_server_name": "PatientCare",
        "description": "Patients book visits with physicians at clinics.",
        "core_entity": "Patient",
        "peripheral_entities": ["Physician", "Clinic"],
        "relationships": [
            {
                "name": "Visit",
                "description": "A booked visit.",
                "attributes": [
                    {"name": "visit_id", "value_from_entity": "system_generated"},
                    {"name": "patient_id", "value_from_entity": "Patient.patient_id"},
                    {
                        "name": "referring_physician_id",
                        "value_from_entity": "Physician.physician_id",
                    },
                    {
                        "name": "attending_physician_id",
                        "value_from_entity": "Physician.physician_id",
                    },
                    {"name": "clinic_id", "value_from_entity": "Clinic.clinic_id"},
                    {
                        "name": "status",
                        "type": "enum",
                        "value_from_entity": "Random",
                        "range": "booked,done",
                    },
                ],
            }
        ],
        "functions": [
            {
                "name": "authorize_patient",
                "description": "Check the patient id.",
                "is_authorization": True,
                "legal_accessor": ["Patient"],
                "parameters": [{"name": "patient_id", "description": "Patient id"}],
            },
            {
                "name": "book_visit",
                "description": "Book a visit.",
                "effect": "write",
                "parameters": [
                    {"name": "physician_id", "description": "Who"},
                    {"name": "visit_date", "type": "date", "description": "When"},
                ],
            },
            {
                "name": "list_visits",
                "description": "List visits.",
                "parameters": [
                    {
                        "name": "statuses",
                        "type": "array",
                        "items_type": "enum",
                        "enum": ["booked", "done"],
                        "required": False,
                    },
                    {
                        "name": "limit",
                        "type": "int",
                        "range": "1-50",
                        "required": False,
                    },
                ],
            },
        ],
    }
