"""s06 table contracts: designed types, ranges and keys become the exact rules a
generator gets as input.json and its output is validated against."""

from __future__ import annotations

import pytest

from schemas.blueprint import Column, Relationship, ServerBlueprint
from schemas.database import ColumnContract
from schemas.entity import Attribute, Entity
from tasks.core.data_contract import (
    column_contract,
    entity_contract,
    pointed_entities,
    relationship_contract,
    table_seed,
    used_entities,
)

NOW = "2025-01-23T15:00:00-05:00"

PATIENT = Entity(
    name="Patient",
    description="A person who receives care.",
    is_person=True,
    primary_key="patient_id",
    attributes={
        "date_of_birth": Attribute(
            description="Birth date", type="date", range="1930-01-01 to 2007-01-01"
        ),
        "insurance_provider": Attribute(
            description="Insurer", type="string", range="free text or none"
        ),
        "patient_id": Attribute(description="Unique id", type="string", range="UUID"),
        "tier": Attribute(
            description="Plan", type="enum", range="none,basic", enum=("none", "basic")
        ),
    },
    source_domains=("healthcare",),
)
CLINIC = Entity(
    name="Clinic",
    description="A practice.",
    is_person=False,
    primary_key="clinic_id",
    attributes={
        "city": Attribute(description="City", type="string"),
        "clinic_id": Attribute(description="Unique id", type="string"),
    },
    source_domains=("healthcare",),
)
VISIT = Relationship(
    name="Visit",
    description="A patient's visit at a clinic.",
    primary_key="visit_id",
    attributes={
        "clinic_city": Column(type="string", value_from_entity="Clinic.city"),
        "clinic_id": Column(
            type="str", value_from_entity="Clinic.clinic_id", references="Clinic"
        ),
        "fee": Column(type="float", value_from_entity="Random", range="40 to 500.5"),
        "patient_id": Column(
            type="string", value_from_entity="Patient.patient_id", references="Patient"
        ),
        "starts_at": Column(
            type="timestamp",
            value_from_entity="Random",
            range="2025-01-24 to 2025-04-30, 09:00-17:00",
        ),
        "status": Column(type="enum", value_from_entity="Random", range="open, done"),
        "visit_id": Column(type="string", value_from_entity="system_generated"),
    },
)


def test_entity_contract_puts_the_key_first_and_reads_ranges_exactly():
    """UUID format, date bounds, nullable text and enum values come from the design."""
    contract = entity_contract(PATIENT, n=12, seed=3, simulation_time=NOW)
    assert list(contract.columns) == [
        "patient_id",
        "date_of_birth",
        "insurance_provider",
        "tier",
    ]
    assert contract.columns["patient_id"] == ColumnContract(
        type="string", description="Unique id", range="UUID", format="uuid"
    )
    assert contract.columns["date_of_birth"].minimum == "1930-01-01"
    assert contract.columns["date_of_birth"].maximum == "2007-01-01"
    assert contract.columns["insurance_provider"].nullable is True
    assert contract.columns["tier"] == ColumnContract(
        type="enum", description="Plan", range="none,basic", enum=("none", "basic")
    )
    assert (contract.n, contract.seed, contract.tables) == (12, 3, {})


def test_relationship_contract_marks_foreign_keys_copied_values_and_tables():
    """FK columns name their table; a copied non-key value names its source."""
    contract = relationship_contract(
        VISIT,
        server="Care",
        entities={"Patient": PATIENT, "Clinic": CLINIC},
        n=5,
        seed=1,
        simulation_time=NOW,
    )
    assert list(contract.columns)[0] == "visit_id"
    assert contract.tables == {"Clinic": "clinic_id", "Patient": "patient_id"}
    assert contract.columns["clinic_id"].references == "Clinic"
    assert contract.columns["clinic_id"].type == "string"
    assert contract.columns["clinic_city"].drawn_from == "Clinic.city"
    assert contract.columns["fee"].type == "number"
    assert (contract.columns["fee"].minimum, contract.columns["fee"].maximum) == (
        40.0,
        500.5,
    )
    assert contract.columns["starts_at"].type == "datetime"
    assert contract.columns["starts_at"].minimum == "2025-01-24"
    assert contract.columns["starts_at"].maximum == "2025-04-30"
    assert contract.columns["status"].enum == ("open", "done")


def test_relationship_contract_refuses_a_foreign_key_to_an_unknown_entity():
    """A FK whose entity is not offered cannot become a contract."""
    with pytest.raises(ValueError, match="pointed into but not listed"):
        relationship_contract(
            VISIT,
            server="Care",
            entities={"Patient": PATIENT},
            n=5,
            seed=1,
            simulation_time=NOW,
        )


@pytest.mark.parametrize(
    ("raw_type", "range_text", "bounds"),
    [
        ("integer", "1-5", (1.0, 5.0)),
        ("number", "0..2.5", (0.0, 2.5)),
        ("number", "5-1", (None, None)),
        ("number", "about 3", (None, None)),
        ("date", "2025-02-30 to 2025-03-01", (None, None)),
        ("string", "1-5", (None, None)),
    ],
)
def test_only_exactly_readable_ranges_become_bounds(raw_type, range_text, bounds):
    """Reversed, invalid or wordy ranges stay text for the model only."""
    column = column_contract(raw_type, range_text=range_text)
    assert (column.minimum, column.maximum) == bounds


def test_enum_listing_none_is_not_nullable_and_foreign_keys_never_are():
    """The word 'none' in an enum's values, or on a FK, does not allow nulls."""
    assert column_contract("enum", range_text="none,gold").nullable is False
    fk = column_contract("string", description="optional", references="Clinic")
    assert fk.nullable is False


def test_table_seed_is_stable_and_differs_per_item():
    """The same run seed and item key give the same seed; other keys differ."""
    first = table_seed(7, "entity/Patient")
    assert first == table_seed(7, "entity/Patient")
    assert first != table_seed(7, "entity/Clinic")
    assert first != table_seed(8, "entity/Patient")
    assert 0 <= first < 2**48


def test_used_entities_and_pointed_entities_are_sorted_names():
    """Entities used by blueprints, and those one relationship points into."""
    blueprint = ServerBlueprint(
        server_name="Care",
        description="Care",
        core_entity="Patient",
        peripheral_entities=("Clinic",),
        relationships=(VISIT,),
        functions=(),
    )
    assert used_entities([blueprint, blueprint]) == ["Clinic", "Patient"]
    entities = {"Patient": PATIENT, "Clinic": CLINIC}
    assert pointed_entities(VISIT, entities) == ["Clinic", "Patient"]
