"""s09 model calls: the tool module, the policy tests, the triage of a failure and
the SEARCH/REPLACE fix of one file.

Inputs: a `StepLLM` and a server's `ServerInputs` (blueprint, environment spec,
policy, base rows, conformance suite), plus the code and failure at hand. Output:
validated drafts; every check that can be decided without running the code
(syntax, imports, tool signatures, CONFIRM_TOOLS, fixtures, assertions, edit
blocks that apply) is sent back to the model by instructor, so only code that may
run reaches the sandbox. Side effects: the model calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from schemas.blueprint import ServerBlueprint
from schemas.environment import EnvironmentSpec
from schemas.policy import PolicyDocument
from schemas.server import (
    ConformanceSuite,
    EditAnswerDraft,
    GateResult,
    PolicyTestsDraft,
    ToolModuleDraft,
    TriageDraft,
)
from tasks.code_loop import ask_for_edits
from tasks.core.policy import strip_fence
from tasks.core.server_builds import allowed_locations, failure_text, table_views
from tasks.llm.bound import StepLLM
from tasks.runtime.harness import FIXTURES
from tasks.server_checks import (
    STDLIB_ALLOWED,
    policy_test_problems,
    tool_module_problems,
)

MODULE_PROMPT = "s09/write_tool_module"
TESTS_PROMPT = "s09/write_policy_tests"
TRIAGE_PROMPT = "s09/triage_failure"
FIX_PROMPT = "s09/fix_code"
PROMPTS = (MODULE_PROMPT, TESTS_PROMPT, TRIAGE_PROMPT, FIX_PROMPT)


@dataclass(frozen=True)
class ServerInputs:
    """Everything one server build reads."""

    blueprint: ServerBlueprint
    spec: EnvironmentSpec
    policy: PolicyDocument
    rows: Mapping[str, Sequence[Mapping[str, Any]]]
    suite: ConformanceSuite

    @property
    def name(self) -> str:
        return self.spec.name

    def context(self) -> dict[str, Any]:
        """What every s09 prompt receives about the server."""
        return {
            "spec": self.spec,
            "blueprint": self.blueprint,
            "tables": table_views(self.spec, self.rows),
            "policy": self.policy.markdown,
            "auth_required": self.suite.auth_required,
            "confirm_tools": self.suite.confirm_tools,
        }


def code_of(text: str) -> str:
    """Model-written code without a wrapping fence, ending in one newline."""
    return strip_fence(text.strip()).strip() + "\n"


def write_tool_module(
    llm: StepLLM, inputs: ServerInputs, *, attempts: int
) -> ToolModuleDraft:
    """The coding model's tool module, statically checked (re-asked on problems)."""
    return llm.ask(
        MODULE_PROMPT,
        ToolModuleDraft,
        item_key=f"{inputs.name}/module",
        check=lambda d: tool_module_problems(code_of(d.code), inputs.spec),
        max_retries=attempts,
        allowed_imports=sorted(STDLIB_ALLOWED),
        **inputs.context(),
    ).value


def write_policy_tests(
    llm: StepLLM, inputs: ServerInputs, module: str, *, attempts: int
) -> PolicyTestsDraft:
    """The coding model's policy tests, statically checked (re-asked on problems)."""
    return llm.ask(
        TESTS_PROMPT,
        PolicyTestsDraft,
        item_key=f"{inputs.name}/tests",
        check=lambda d: policy_test_problems(code_of(d.code), inputs.spec),
        max_retries=attempts,
        module=module,
        fixtures=FIXTURES,
        allowed_imports=sorted(STDLIB_ALLOWED),
        **inputs.context(),
    ).value


def triage_failure(
    llm: StepLLM,
    inputs: ServerInputs,
    gate: GateResult,
    *,
    module: str,
    tests: str,
    n: int,
) -> TriageDraft:
    """Where the failure of `gate` comes from (only "server" for module gates)."""
    allowed = allowed_locations(gate.gate)

    def check(draft: TriageDraft) -> list[str]:
        if draft.location in allowed:
            return []
        return [
            f"the '{gate.gate}' gate runs only the tool module, so the location "
            f"must be one of {', '.join(allowed)}"
        ]

    return llm.ask(
        TRIAGE_PROMPT,
        TriageDraft,
        item_key=f"{inputs.name}/triage-{n}",
        check=check,
        gate=gate.gate,
        failure=failure_text(gate),
        locations=allowed,
        module=module,
        tests=tests,
        **inputs.context(),
    ).value


def fix_code(
    llm: StepLLM,
    inputs: ServerInputs,
    *,
    target: str,
    module: str,
    tests: str,
    failure: str,
    triage: TriageDraft,
    n: int,
    attempts: int,
) -> str:
    """The edited file: SEARCH/REPLACE blocks that apply and keep it valid.

    Raises:
        InvalidModelOutput: No answer applied cleanly within `attempts`.
    """
    code = module if target == "module" else tests
    static: Callable[[str], list[str]] = (
        (lambda text: tool_module_problems(text, inputs.spec))
        if target == "module"
        else (lambda text: policy_test_problems(text, inputs.spec))
    )
    return ask_for_edits(
        llm,
        FIX_PROMPT,
        EditAnswerDraft,
        item_key=f"{inputs.name}/fix-{n}",
        source=code,
        error=failure,
        static=static,
        max_retries=attempts,
        unapplied="the edits changed nothing",
        strip_report=True,
        target=target,
        code=code,
        other=tests if target == "module" else module,
        failure=failure,
        triage=triage,
        **inputs.context(),
    )
