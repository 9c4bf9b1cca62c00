"""s15x prompt templates (cross-domain creation): rendered text is snapshotted
(a prompt change is a reviewable diff) and every template is strict about its
inputs."""

from __future__ import annotations

import pytest

from schemas.agent_task import TaskTemplate
from schemas.instance_plan import InstancePlan
from tasks import cross_instance_combinations as s15x
from tasks.core.instance_plans import ToolParameters
from tasks.llm.prompting import PromptLibrary
from tests.llm.snapshots import assert_inputs_required, check_golden, golden_name

TRAJECTORY = ("CardServices__authorize_account_holder", "CardServices__block_card")
TEMPLATE = TaskTemplate(
    source="AccountServicing_CardServices",
    trajectory=TRAJECTORY,
    trajectory_hash="05ae286945c0",
    instruction="I'm <AccountHolder.full_name>; block my <Card.network> card.",
    reason_for_call="A stolen wallet.",
    domains=("AccountServicing", "CardServices"),
    is_cross_domain=True,
)
TABLES = [
    {
        "name": "AccountHolder",
        "primary_key": "account_holder_id",
        "columns": ["account_holder_id", "full_name", "kyc_status"],
        "foreign_keys": {},
        "rows": 12,
        "samples": [
            {"account_holder_id": "h1", "full_name": "Ana", "kyc_status": "verified"}
        ],
    },
    {
        "name": "CardServices.CardLink",
        "primary_key": "card_link_id",
        "columns": ["card_link_id", "account_holder_id", "card_id"],
        "foreign_keys": {
            "account_holder_id": "AccountHolder",
            "card_id": "CardServices.Card",
        },
        "rows": 0,
        "samples": [],
    },
]
PLAN = InstancePlan.model_validate(
    {
        "instances": {"AccountHolder": {"table": "AccountHolder"}},
        "steps": [
            {
                "tool": TRAJECTORY[0],
                "arguments": {
                    "account_holder_id": {
                        "source": "entity",
                        "instance": "AccountHolder",
                        "field": "account_holder_id",
                    }
                },
            }
        ],
    }
)
POLICY = "## Global rules\n- Authorize first.\n"
CASES = {
    s15x.PLAN_PROMPT: {
        "template": TEMPLATE,
        "environment": TEMPLATE.source,
        "core_entity": "AccountHolder",
        "tables": TABLES,
        "policy": POLICY,
        "simulation_time": "2025-01-23T15:00:00-05:00",
        "tools": {
            TRAJECTORY[0]: ToolParameters(
                names=frozenset({"account_holder_id"}),
                required=frozenset({"account_holder_id"}),
                enums=(),
            ),
            TRAJECTORY[1]: ToolParameters(
                names=frozenset({"card_id", "reason", "confirm"}),
                required=frozenset({"card_id", "reason"}),
                enums=(("reason", ("lost", "stolen")),),
            ),
        },
    },
    s15x.WRITE_PROMPT: {
        "template": TEMPLATE,
        "environment": TEMPLATE.source,
        "core_entity": "AccountHolder",
        "tables": TABLES,
        "policy": POLICY,
        "simulation_time": "2025-01-23T15:00:00-05:00",
        "plan": PLAN,
        "previous_script": "print('hello')\n",
        "problems": ["output.json is not JSON"],
    },
    s15x.FIX_PROMPT: {
        "template": TEMPLATE,
        "environment": TEMPLATE.source,
        "policy": POLICY,
        "plan": PLAN,
        "script": "print('hello')\n",
        "problems": ["combination 0 failed execution (tool_error): card is issued"],
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
