"""s09 test-driven self-correction of one server: generation, gates, triage, fixes.

Inputs: the coding and triage `StepLLM`s, a server's `ServerInputs` (blueprint,
environment spec, policy, base rows, conformance suite) and `BuildLimits`.
Output: the server's `ServerBuild`, passed or failed, never an exception for bad
code. The coding model writes the tool module and the policy tests (both
statically checked and re-asked before anything runs); each version runs the
gates in the sandbox; a failure is triaged (server, test, test data: the
module-only gates always mean the server), then fixed with SEARCH/REPLACE edits
that get the triage explanation and the real failure text, within
`max_fix_attempts` rounds. Test edits that remove assertions are kept only while
the conformance suite passes; a version that passes fewer gates than the best
one is rolled back to the best one. Side effects: model calls and sandboxed runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.server import GATES, GateResult, RepairAttempt, ServerBuild
from tasks.core.server_builds import (
    all_passed,
    edited_file,
    failure_text,
    first_failure,
    gate_score,
    judge_edit,
    listing_problems,
)
from tasks.core.tool_lists import tool_list
from tasks.llm.bound import StepLLM
from tasks.llm.errors import InvalidModelOutput
from tasks.machinery import MachineryError
from tasks.server_checks import assertion_count
from tasks.server_drafts import (
    ServerInputs,
    code_of,
    fix_code,
    triage_failure,
    write_policy_tests,
    write_tool_module,
)
from tasks.server_harness import HarnessRun, run_harness


@dataclass(frozen=True)
class BuildLimits:
    """Budgets of one build."""

    max_fix_attempts: int
    code_attempts: int
    timeout_s: float
    python_path: str


@dataclass(frozen=True)
class _Version:
    module: str
    tests: str
    run: HarnessRun

    @property
    def gates(self) -> tuple[GateResult, ...]:
        return self.run.gates


@dataclass
class _Loop:
    version: _Version
    best: _Version
    attempts: int = 1
    repairs: list[RepairAttempt] = field(default_factory=list)
    drops: list[str] = field(default_factory=list)


def build_server(
    coder: StepLLM, triager: StepLLM, inputs: ServerInputs, limits: BuildLimits
) -> ServerBuild:
    """Generate, gate and repair one server.

    Args:
        coder: The coding role (module, tests, fixes).
        triager: The triage role.
        inputs: The server's inputs.
        limits: Budgets.

    Returns:
        The build report; a server whose drafts never validate, or that never
        passes every gate, ends as `status="failed"` with its last error.

    Raises:
        tasks.machinery.MachineryError: The sandbox or the harness is broken.
        tasks.llm.errors.LLMUnavailable: The endpoint failed (retryable).
        tasks.llm.errors.CassetteMiss: Replay mode had no answer (retryable).
    """
    try:
        module = code_of(
            write_tool_module(coder, inputs, attempts=limits.code_attempts).code
        )
        tests = code_of(
            write_policy_tests(
                coder, inputs, module, attempts=limits.code_attempts
            ).code
        )
    except InvalidModelOutput as exc:
        return _never_drafted(inputs, exc)
    first = _Version(module, tests, _run(inputs, limits, module, tests))
    loop = _Loop(version=first, best=first)
    for n in range(1, limits.max_fix_attempts + 1):
        if all_passed(loop.version.gates):
            break
        _repair_round(coder, triager, inputs, limits, loop, n)
    return _report(inputs, loop)


def _run(
    inputs: ServerInputs, limits: BuildLimits, module: str, tests: str
) -> HarnessRun:
    run = run_harness(
        inputs.spec,
        inputs.suite,
        inputs.rows,
        module=module,
        tests=tests,
        timeout_s=limits.timeout_s,
        python_path=limits.python_path,
    )
    if run.machinery_error:
        # No gate ran: triaging or repairing the generated code cannot help.
        raise MachineryError(f"building {inputs.spec.name}", run.machinery_error)
    return run


def _repair_round(
    coder: StepLLM,
    triager: StepLLM,
    inputs: ServerInputs,
    limits: BuildLimits,
    loop: _Loop,
    n: int,
) -> None:
    gate = first_failure(loop.version.gates)
    assert gate is not None
    proposed = _propose_fix(coder, triager, inputs, limits, loop.version, gate, n)
    if isinstance(proposed, RepairAttempt):
        loop.repairs.append(proposed)
    else:
        loop.repairs.append(_try_fix(inputs, limits, loop, *proposed))


def _propose_fix(
    coder: StepLLM,
    triager: StepLLM,
    inputs: ServerInputs,
    limits: BuildLimits,
    version: _Version,
    gate: GateResult,
    n: int,
) -> RepairAttempt | tuple[dict[str, Any], str]:
    """Triage, then the fix call: the edited text, or the failed round."""
    record: dict[str, Any] = {
        "round": n,
        "gate": gate.gate,
        "asserts_before": assertion_count(version.tests),
    }
    try:
        triage = triage_failure(
            triager, inputs, gate, module=version.module, tests=version.tests, n=n
        )
    except InvalidModelOutput as exc:
        return _edit_failed(record, gate, "triage", exc)
    record |= {
        "failing_test": triage.failing_test,
        "location": triage.location,
        "explanation": triage.explanation,
        "edited": edited_file(gate.gate, triage.location),
    }
    try:
        text = fix_code(
            coder,
            inputs,
            target=record["edited"],
            module=version.module,
            tests=version.tests,
            failure=failure_text(gate),
            triage=triage,
            n=n,
            attempts=limits.code_attempts,
        )
    except InvalidModelOutput as exc:
        return RepairAttempt(
            **record,
            decision="edit_failed",
            asserts_after=record["asserts_before"],
            note=f"fix: {_problems(exc)}",
        )
    return record, text


def _try_fix(
    inputs: ServerInputs,
    limits: BuildLimits,
    loop: _Loop,
    record: dict[str, Any],
    text: str,
) -> RepairAttempt:
    """Run the edited version and keep it, roll back, or reject the test edit."""
    version, target = loop.version, record["edited"]
    module = text if target == "module" else version.module
    tests = text if target == "tests" else version.tests
    candidate = _Version(module, tests, _run(inputs, limits, module, tests))
    loop.attempts += 1
    before, after = record["asserts_before"], assertion_count(tests)
    decision = judge_edit(
        edited=target,
        asserts_before=before,
        asserts_after=after,
        result=candidate.gates,
        best=loop.best.gates,
    )
    if decision == "kept":
        loop.version = candidate
        if gate_score(candidate.gates) >= gate_score(loop.best.gates):
            loop.best = candidate
        if after < before:
            loop.drops.append(
                f"round {record['round']}: assertions {before} -> {after}"
            )
    elif decision == "rolled_back":
        loop.version = loop.best
    return RepairAttempt(
        **record,
        decision=decision,
        asserts_after=after,
        note=_outcome_note(candidate.gates),
    )


def _edit_failed(
    record: dict[str, Any], gate: GateResult, what: str, exc: InvalidModelOutput
) -> RepairAttempt:
    return RepairAttempt(
        **record,
        failing_test=(gate.failing or (gate.gate,))[0],
        location="server",
        explanation="",
        edited="module",
        decision="edit_failed",
        asserts_after=record["asserts_before"],
        note=f"{what}: {_problems(exc)}",
    )


def _problems(exc: InvalidModelOutput) -> str:
    return f"no valid answer after {exc.attempts} attempt(s): {exc.problems[0][:500]}"


def _outcome_note(gates: Sequence[GateResult]) -> str:
    failed = first_failure(gates)
    if failed is None:
        return "every gate passed"
    failing = f" ({', '.join(failed.failing[:5])})" if failed.failing else ""
    return f"the edited version failed at {failed.gate}{failing}"


def _report(inputs: ServerInputs, loop: _Loop) -> ServerBuild:
    final = loop.version if all_passed(loop.version.gates) else loop.best
    passed = all_passed(final.gates)
    problems: list[str] = []
    if passed:
        problems = listing_problems(
            final.run.listed_tools,
            tool_list(inputs.blueprint),
            confirm_tools=inputs.suite.confirm_tools,
            effects={t.name: t.effect for t in inputs.spec.tools},
        )
    failed = first_failure(final.gates)
    last_error = failure_text(failed) if failed else "; ".join(problems) or None
    return ServerBuild(
        server_name=inputs.name,
        status="passed" if passed and not problems else "failed",
        attempts=loop.attempts,
        gates=final.gates,
        last_error=last_error,
        repairs=tuple(loop.repairs),
        module_code=final.module,
        tests_code=final.tests,
        confirm_tools=inputs.suite.confirm_tools,
        auth_required=inputs.suite.auth_required,
        assertion_count=assertion_count(final.tests),
        assertion_drops=tuple(loop.drops),
        tool_list_problems=tuple(problems),
        listed_tools=final.run.listed_tools or (),
    )


def _never_drafted(inputs: ServerInputs, exc: InvalidModelOutput) -> ServerBuild:
    what = "tool module" if exc.call_key.endswith("/module") else "policy tests"
    return ServerBuild(
        server_name=inputs.name,
        status="failed",
        attempts=0,
        gates=tuple(GateResult(gate=g, status="not_run") for g in GATES),
        last_error=f"the {what} draft never validated: {'; '.join(exc.problems)}",
        confirm_tools=inputs.suite.confirm_tools,
        auth_required=inputs.suite.auth_required,
    )
