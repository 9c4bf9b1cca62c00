"""The text parts of a user query record."""

from __future__ import annotations

from tasks.core.queries import known_info, query_id, user_system_prompt


def test_known_info_lists_every_instance_field_in_a_stable_order():
    text = known_info(
        {
            "Patient": {"patient_id": "p-1", "active": True, "tags": ["a", "b"]},
            "Clinic": {"clinic_id": "c-9", "closed_on": None},
        }
    )
    assert text == (
        "# Entity Instances\n\n## Clinic\n- clinic_id: c-9\n- closed_on: null\n\n"
        "## Patient\n- active: true\n- patient_id: p-1\n- tags: a, b\n"
    )


def test_query_ids_differ_per_environment_and_combination_and_are_stable():
    """The original's 8-hex id per file could repeat across files."""
    ids = {
        query_id(env, combo)
        for env in ("DentalAppointments", "DentalAppointments_TreatmentBilling")
        for combo in ("c1", "c2")
    }
    assert len(ids) == 4
    assert query_id("A", "c1") == query_id("A", "c1")
    assert query_id("A", "c1").startswith("q-")


def test_the_user_prompt_has_the_three_reference_parts():
    prompt = user_system_prompt("a bill", "pay it", "# Entity Instances\n")
    assert prompt == (
        "You are a user who needs help with: a bill\n\nYour goal: pay it\n\n"
        "Information you know: # Entity Instances\n"
    )
