"""Tests for s04 stage 1: outline checks and canonical outlines."""

import pydantic
import pytest

from schemas.blueprint import BlueprintOutline, OutlineSet, OutlineSetDraft
from schemas.config import BlueprintConfig
from tasks.core.blueprint_outlines import (
    canonical_outlines,
    check_outlines,
    outline_target,
    outlines_checker,
)

CANDIDATES = ["Clinic", "Physician", "BankAccount"]


def _draft(*outlines: tuple[str, list[str]]) -> OutlineSetDraft:
    return OutlineSetDraft(
        outlines=[
            {"server_name": name, "description": f"{name} use case", "entities": ents}
            for name, ents in outlines
        ]
    )


def _check(draft: OutlineSetDraft, limits: BlueprintConfig) -> list[str]:
    return check_outlines(draft, core="Patient", candidates=CANDIDATES, limits=limits)


def test_outline_target_is_capped_by_distinct_entity_sets(limits):
    """One candidate allows one outline; three allow the configured target."""
    assert outline_target(1, limits) == 1
    assert outline_target(2, limits) == 3
    assert outline_target(3, limits) == 3
    assert outline_target(0, limits) == 0


def test_check_outlines_accepts_core_anywhere_and_entity_spellings(limits):
    """The core may come later; candidate names match ignoring case."""
    draft = _draft(
        ("Care", ["Patient", "Clinic"]),
        ("Visits", ["physician", "Patient"]),
        ("Billing", ["Clinic", "bank account"]),
    )
    assert _check(draft, limits) == []


def test_check_outlines_rejects_wrong_count_unknown_and_duplicate_sets(limits):
    """Each problem names the outline and the entity to change."""
    draft = _draft(
        ("Care", ["Patient", "Clinic"]),
        ("", ["Patient", "Hospital"]),
        ("Again", ["Clinic", "Patient"]),
        ("Big", ["Patient", "Clinic", "Physician", "BankAccount"]),
        ("Alone", ["Patient"]),
    )
    assert _check(draft, limits) == [
        "The answer has 5 outlines; return exactly 3.",
        "Outline 2 has no usable server_name; give it a PascalCase name such as "
        "PatientBilling.",
        "Outline 2 ('') uses 'Hospital', which is not a candidate entity; use only: "
        "Clinic, Physician, BankAccount.",
        "Outlines 1 and 3 use the same entities; give each outline a different "
        "combination.",
        "Outline 4 ('Big') has 3 peripheral entities; combine Patient with 1 to 2 "
        "of the candidates.",
        "Outline 5 ('Alone') has 0 peripheral entities; combine Patient with 1 to 2 "
        "of the candidates.",
    ]


def test_outlines_checker_makes_validation_raise(limits):
    """The checker in the validation context turns problems into a re-ask."""
    checker = outlines_checker(core="Patient", candidates=["Clinic"], limits=limits)
    data = {
        "outlines": [
            {"server_name": "A", "description": "d", "entities": ["Patient", "Ward"]}
        ]
    }
    with pytest.raises(pydantic.ValidationError, match="uses 'Ward'"):
        OutlineSetDraft.model_validate(data, context={"check": checker})


def test_canonical_outlines_put_core_first_and_dedupe():
    """The core is removed from peripherals, names are canonical, order is kept."""
    draft = _draft(
        ("patient clinic-scheduler", ["clinic", "Patient", "Clinic", "physician"]),
        ("!!", ["Patient", "bank_account"]),
    )
    assert canonical_outlines(draft, core="Patient", candidates=CANDIDATES) == (
        OutlineSet(
            core_entity="Patient",
            outlines=(
                BlueprintOutline(
                    index=0,
                    server_name="PatientClinicScheduler",
                    description="patient clinic-scheduler use case",
                    core_entity="Patient",
                    peripheral_entities=("Clinic", "Physician"),
                ),
                BlueprintOutline(
                    index=1,
                    server_name="PatientManager",
                    description="!! use case",
                    core_entity="Patient",
                    peripheral_entities=("BankAccount",),
                ),
            ),
        )
    )
