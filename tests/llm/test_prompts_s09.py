"""s09 prompt templates: rendered text is snapshotted (a prompt change is a
reviewable diff), every template is strict about its inputs, and the shared
server include is part of each prompt's hash."""

from __future__ import annotations

import pytest

from schemas.server import TriageDraft
from tasks.llm.prompting import PromptLibrary
from tasks.runtime.harness import FIXTURES
from tasks.server_checks import STDLIB_ALLOWED
from tasks.server_drafts import FIX_PROMPT, MODULE_PROMPT, TESTS_PROMPT, TRIAGE_PROMPT
from tests.llm.snapshots import assert_inputs_required, check_golden, golden_name
from tests.tasks.test_server_implementation import (
    BUGGY,
    MODULE,
    TESTS,
    dental_inputs,
)

SERVER = {
    key: value
    for key, value in dental_inputs().context().items()
    if key != "confirm_tools"
}
FAILURE = (
    "Gate 'conformance' failed (valid_calls/list_clinics):\n"
    "[valid_calls/list_clinics] list_clinics({}) crashed: KeyError: 'town'"
)
TRIAGE = TriageDraft(
    location="server",
    explanation="list_clinics reads a town column; Clinic has city.",
    failing_test="valid_calls/list_clinics",
)
CASES = {
    MODULE_PROMPT: SERVER
    | {
        "allowed_imports": sorted(STDLIB_ALLOWED),
        "confirm_tools": ("book_appointment",),
    },
    TESTS_PROMPT: SERVER
    | {
        "module": MODULE,
        "fixtures": FIXTURES,
        "allowed_imports": sorted(STDLIB_ALLOWED),
    },
    TRIAGE_PROMPT: SERVER
    | {
        "gate": "conformance",
        "failure": FAILURE,
        "locations": ("server",),
        "module": BUGGY,
        "tests": TESTS,
    },
    FIX_PROMPT: SERVER
    | {
        "target": "module",
        "code": BUGGY,
        "other": TESTS,
        "failure": FAILURE,
        "triage": TRIAGE,
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


def test_fix_prompt_carries_the_diagnosis_and_the_real_failure():
    """Defect 23 of the reference: the fix call sees both, not only one."""
    text = PromptLibrary().render(FIX_PROMPT, **CASES[FIX_PROMPT]).text
    assert TRIAGE.explanation in text
    assert "crashed: KeyError: 'town'" in text


def test_editing_the_server_include_changes_the_hash_of_every_s09_prompt(tmp_path):
    """The include is part of the cache key of every prompt that uses it."""
    (tmp_path / "s09").mkdir()
    (tmp_path / "s09" / "_server.md.j2").write_text("Something else.\n")
    custom, packaged = PromptLibrary(str(tmp_path)), PromptLibrary()
    for prompt_id in CASES:
        assert custom.prompt_hash(prompt_id) != packaged.prompt_hash(prompt_id)
