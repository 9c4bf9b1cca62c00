"""s07 and s08 prompt templates: rendered text is snapshotted (a prompt change is a
reviewable diff), every template is strict about its inputs, and the shared
includes are part of each prompt's hash."""

from __future__ import annotations

import pytest

from tasks import policy_generation as s07
from tasks import tool_graph_generation as s08
from tasks.core.policy import parse_policy, policy_export
from tasks.core.policy_rules import schema_tables
from tasks.llm.prompting import PromptLibrary
from tests.dental_policy import BLUEPRINT, CATALOGUE, POLICY, summaries
from tests.llm.snapshots import assert_inputs_required, check_golden, golden_name

TABLES = schema_tables(BLUEPRINT, CATALOGUE, summaries())
SERVER_FACTS = {
    "blueprint": BLUEPRINT,
    "tables": TABLES,
    "core_key": "patient_id",
    "simulation_time": "2025-01-23T15:00:00-05:00",
}
GRAPH_FACTS = {"blueprint": BLUEPRINT, "root": "authorize_patient", "policy": POLICY}

CASES = {
    s07.WRITE_PROMPT: SERVER_FACTS,
    s07.AUDIT_PROMPT: SERVER_FACTS
    | {
        "policy": policy_export(parse_policy(POLICY)),
        "confirm_tools": ("book_appointment",),
    },
    s08.GRAPH_PROMPT: GRAPH_FACTS,
    s08.PRECONDITIONS_PROMPT: GRAPH_FACTS,
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


@pytest.mark.parametrize(
    ("include", "users"),
    [
        ("s07/_server_facts.md.j2", [s07.WRITE_PROMPT, s07.AUDIT_PROMPT]),
        ("s08/_tools.md.j2", [s08.GRAPH_PROMPT, s08.PRECONDITIONS_PROMPT]),
    ],
)
def test_editing_a_shared_include_changes_the_hash_of_its_prompts(
    tmp_path, include, users
):
    """An include is part of the cache key of every prompt that uses it."""
    (tmp_path / include).parent.mkdir(parents=True)
    (tmp_path / include).write_text("Something else.\n")
    custom, packaged = PromptLibrary(str(tmp_path)), PromptLibrary()
    for prompt_id in CASES:
        changed = custom.prompt_hash(prompt_id) != packaged.prompt_hash(prompt_id)
        assert changed == (prompt_id in users), prompt_id
