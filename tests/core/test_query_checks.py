"""A user query states only values its combination holds, and every value the
user must give."""

from __future__ import annotations

from schemas.golden import PlannedCall
from tasks.core.query_checks import (
    hallucinated,
    marked_values,
    missing,
    normalise,
    required_values,
    unmark,
)
from tests.dental_combinations import AUTHORIZE_PATIENT, entity_arg

INSTANCES = {
    "Patient": {"patient_id": "p-1", "full_name": "Ada  Byron", "age": 36},
    "Clinic": {"clinic_id": "c-9", "name": "Bright Smiles", "tags": ["kids", "late"]},
}
CALLS = [
    PlannedCall.model_validate(call)
    for call in (
        AUTHORIZE_PATIENT,
        {
            "tool": "book_appointment",
            "arguments": {
                "clinic_id": entity_arg("Clinic", "clinic_id"),
                "scheduled_at": {
                    "source": "literal",
                    "value": "2025-02-10T10:00:00-05:00",
                },
                "services": {"source": "literal", "value": ["cleaning", "x-ray"]},
                "confirm": {"source": "literal", "value": True},
            },
        },
        {
            "tool": "cancel_appointment",
            "arguments": {
                "appointment_id": {
                    "source": "step_result",
                    "step": 1,
                    "path": ["appointment_id"],
                }
            },
        },
    )
]


def test_required_values_are_what_the_user_gives_not_what_calls_return():
    """Entity fields and literals count (list elements one by one); the ids a
    call returns and the confirmation flag do not."""
    assert required_values(INSTANCES, CALLS) == [
        "p-1",
        "c-9",
        "2025-02-10t10:00:00-05:00",
        "cleaning",
        "x-ray",
    ]


def test_a_stated_value_must_equal_a_known_one_not_be_part_of_one():
    """Case, blanks and number spelling do not matter; a fragment of a value
    (the original accepted any substring) and an invented value are caught."""
    texts = [
        "I am [[ada byron]], patient [[P-1]], aged [[36.0]]; book [[Bright Smiles]].",
        "Also [[Smiles]] and [[c-10]] and [[1]].",
    ]
    assert hallucinated(texts, INSTANCES, CALLS) == ["Smiles", "c-10", "1"]


def test_missing_values_are_named_and_markers_come_off_for_the_user():
    """Every required value must be stated in the instruction; the text a user
    reads has no markers."""
    instruction = (
        "As [[p-1]], book [[c-9]] for [[2025-02-10T10:00:00-05:00]] for a [[cleaning]]."
    )
    assert missing(instruction, INSTANCES, CALLS) == ["x-ray"]
    assert unmark(instruction).startswith("As p-1, book c-9 for 2025-02-10")
    assert marked_values(instruction)[0] == "p-1"
    assert normalise(True) == "true" and normalise(2.0) == normalise("2")
