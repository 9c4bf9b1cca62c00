"""s15 prompt templates: rendered text is snapshotted (a prompt change is a
reviewable diff) and every template is strict about its inputs."""

from __future__ import annotations

import pytest

from schemas.agent_task import TaskTemplate
from tasks import instance_combinations as s15
from tasks.core.instance_plans import canonical_plan, tool_parameters
from tasks.core.policy import filter_policy, parse_policy
from tasks.llm.prompting import PromptLibrary
from tests.dental_combinations import TOOLS, TRAJECTORY, plan_draft
from tests.dental_policy import BLUEPRINT, POLICY, summaries
from tests.llm.snapshots import assert_inputs_required, check_golden, golden_name

TEMPLATE = TaskTemplate(
    source=BLUEPRINT.server_name,
    trajectory=TRAJECTORY,
    trajectory_hash="0a1b2c3d4e5f",
    instruction="I am <Patient.full_name>; cancel my booked visit.",
    reason_for_call="A schedule conflict.",
)
CONTEXT = {
    "template": TEMPLATE,
    "blueprint": BLUEPRINT,
    "summaries": summaries(),
    "policy": filter_policy(parse_policy(POLICY), TRAJECTORY),
    "simulation_time": "2025-01-23T15:00:00-05:00",
}
PLAN = canonical_plan(plan_draft())
CASES = {
    s15.PLAN_PROMPT: CONTEXT
    | {
        "tools": {n: p for n, p in tool_parameters(TOOLS).items() if n in TRAJECTORY},
        "tables": ["Appointment", "Clinic", "Patient"],
    },
    s15.WRITE_PROMPT: CONTEXT
    | {
        "plan": PLAN,
        "previous_script": "print('hello')\n",
        "problems": ["output.json is not JSON"],
    },
    s15.FIX_PROMPT: {
        "plan": PLAN,
        "script": "print('hello')\n",
        "problems": ["the script found no combination"],
    },
}


@pytest.mark.parametrize("prompt_id", sorted(CASES))
def test_rendered_prompt_matches_its_golden_snapshot(prompt_id, update_golden):
    """Fixed inputs render the reviewed text (--update-golden rewrites it)."""
    rendered = PromptLibrary().render(prompt_id, **CASES[prompt_id])
    check_golden(golden_name(prompt_id), rendered.text, update=update_golden)
    assert rendered.prompt_id == prompt_id


@pytest.mark.parametrize("prompt_id", sorted(CASES))
def test_each_input_of_a_prompt_is_required(prompt_id):
    """StrictUndefined: leaving out any input is an error, never an empty string."""
    assert_inputs_required(prompt_id, CASES[prompt_id])
