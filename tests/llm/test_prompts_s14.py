"""s14 prompt templates: the writer and judge prompts are snapshotted (a prompt
change is a reviewable diff), strict about their inputs, and the writer sees only
the policy sections of its trajectory's tools."""

from __future__ import annotations

import pytest

from schemas.agent_task import TaskTemplateDraft
from tasks import task_templates as s14
from tasks.core.policy import parse_policy
from tasks.core.policy_rules import schema_tables
from tasks.core.task_templates import trajectory_policy
from tasks.llm.prompting import PromptLibrary
from tests.dental_policy import BLUEPRINT, CATALOGUE, POLICY, summaries
from tests.llm.snapshots import assert_inputs_required, check_golden, golden_name

TRAJECTORY = ["authorize_patient", "list_clinics", "book_appointment"]
CASES = {
    s14.WRITE_PROMPT: {
        "trajectory": TRAJECTORY,
        "blueprint": BLUEPRINT,
        "tables": schema_tables(BLUEPRINT, CATALOGUE, summaries()),
        "policy": trajectory_policy(
            {"DentalAppointments": parse_policy(POLICY)},
            TRAJECTORY,
            "DentalAppointments",
        ),
    },
    s14.JUDGE_PROMPT: {
        "trajectory": TRAJECTORY,
        "template": TaskTemplateDraft(
            instruction="I'm <Patient.patient_id>; book me in <Clinic.city>.",
            reason_for_call="A toothache.",
        ),
    },
}


@pytest.mark.parametrize("prompt_id", sorted(CASES))
def test_rendered_prompt_matches_its_golden_snapshot(prompt_id, update_golden):
    """Fixed inputs render the reviewed text (--update-golden rewrites it)."""
    rendered = PromptLibrary().render(prompt_id, **CASES[prompt_id])
    check_golden(golden_name(prompt_id), rendered.text, update=update_golden)


@pytest.mark.parametrize("prompt_id", sorted(CASES))
def test_each_input_of_a_prompt_is_required(prompt_id):
    assert_inputs_required(prompt_id, CASES[prompt_id])


def test_the_writer_sees_only_the_policy_sections_of_its_trajectory():
    """Other tools' sections (cancel_appointment) are left out of the prompt."""
    text = PromptLibrary().render(s14.WRITE_PROMPT, **CASES[s14.WRITE_PROMPT]).text
    assert "authorize_patient -> list_clinics -> book_appointment" in text
    assert "<!-- TOOL: book_appointment -->" in text
    assert "<!-- TOOL: cancel_appointment -->" not in text
    assert "`Patient.patient_id`" in text  # the schema it must draw placeholders from
