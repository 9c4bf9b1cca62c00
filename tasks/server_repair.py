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
one is rolled back to the best one. The loop itself is `tasks.code_loop`; this
module is its s09 job. Side effects: model calls and sandboxed runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from schemas.server import (
    GATES,
    GateResult,
    RepairAttempt,
    RepairDecision,
    ServerBuild,
)
from tasks.code_loop import (
    Attempt,
    Decision,
    LoopResult,
    Proposal,
    Verdict,
    Version,
    run_code_loop,
)
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
class _Files:
    """One version of the server's generated code."""

    module: str
    tests: str


_DECISIONS: dict[Decision, RepairDecision] = {
    "kept": "kept",
    "rolled_back": "rolled_back",
    "rejected": "rejected_weakened_tests",
}


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
        result = run_code_loop(_ServerJob(coder, triager, inputs, limits))
    except InvalidModelOutput as exc:
        return _never_drafted(inputs, exc)
    return _report(inputs, result)


@dataclass(frozen=True)
class _ServerJob:
    """One server as a `CodeJob`: a failed run is triaged, then one file is
    edited; the judge keeps, rolls back or rejects the edited version."""

    coder: StepLLM
    triager: StepLLM
    inputs: ServerInputs
    limits: BuildLimits

    @property
    def rounds(self) -> int:
        return self.limits.max_fix_attempts

    def write(self) -> _Files:
        coder, inputs, attempts = self.coder, self.inputs, self.limits.code_attempts
        module = code_of(write_tool_module(coder, inputs, attempts=attempts).code)
        tests = code_of(
            write_policy_tests(coder, inputs, module, attempts=attempts).code
        )
        return _Files(module, tests)

    def run(self, code: _Files) -> HarnessRun:
        return _run(self.inputs, self.limits, code.module, code.tests)

    def passed(self, run: HarnessRun) -> bool:
        return all_passed(run.gates)

    def score(self, run: HarnessRun) -> tuple[int, ...]:
        return gate_score(run.gates)

    def repair(
        self, current: Version[_Files, HarnessRun], number: int
    ) -> Proposal[_Files]:
        gate = first_failure(current.run.gates)
        assert gate is not None
        proposed = _propose_fix(
            self.coder, self.triager, self.inputs, self.limits, current, gate, number
        )
        if isinstance(proposed, RepairAttempt):
            return Proposal(None, note=proposed.note, detail=proposed)
        record, text = proposed
        files = current.code
        if record["edited"] == "module":
            return Proposal(_Files(text, files.tests), detail=record)
        return Proposal(_Files(files.module, text), detail=record)

    def judge(
        self,
        proposal: Proposal[_Files],
        candidate: Version[_Files, HarnessRun],
        best: Version[_Files, HarnessRun],
    ) -> Verdict:
        record = proposal.detail
        decision = judge_edit(
            edited=record["edited"],
            asserts_before=record["asserts_before"],
            asserts_after=assertion_count(candidate.code.tests),
            result=candidate.run.gates,
            best=best.run.gates,
        )
        if decision == "rejected_weakened_tests":
            return "rejected"
        return "rolled_back" if decision == "rolled_back" else "kept"


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


def _propose_fix(
    coder: StepLLM,
    triager: StepLLM,
    inputs: ServerInputs,
    limits: BuildLimits,
    current: Version[_Files, HarnessRun],
    gate: GateResult,
    n: int,
) -> RepairAttempt | tuple[dict[str, Any], str]:
    """Triage, then the fix call: the edited text, or the failed round."""
    version = current.code
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


def _report(
    inputs: ServerInputs, result: LoopResult[_Files, HarnessRun]
) -> ServerBuild:
    current = result.final
    final = current if all_passed(current.run.gates) else result.best
    passed = all_passed(final.run.gates)
    problems: list[str] = []
    if passed:
        problems = listing_problems(
            final.run.listed_tools,
            tool_list(inputs.blueprint),
            confirm_tools=inputs.suite.confirm_tools,
            effects={t.name: t.effect for t in inputs.spec.tools},
        )
    failed = first_failure(final.run.gates)
    last_error = failure_text(failed) if failed else "; ".join(problems) or None
    repairs = tuple(_repair_record(attempt) for attempt in result.attempts[1:])
    return ServerBuild(
        server_name=inputs.name,
        status="passed" if passed and not problems else "failed",
        attempts=result.runs,
        gates=final.run.gates,
        last_error=last_error,
        repairs=repairs,
        module_code=final.code.module,
        tests_code=final.code.tests,
        confirm_tools=inputs.suite.confirm_tools,
        auth_required=inputs.suite.auth_required,
        assertion_count=assertion_count(final.code.tests),
        assertion_drops=tuple(
            f"round {r.round}: assertions {r.asserts_before} -> {r.asserts_after}"
            for r in repairs
            if r.decision == "kept" and r.asserts_after < r.asserts_before
        ),
        tool_list_problems=tuple(problems),
        listed_tools=final.run.listed_tools or (),
    )


def _repair_record(attempt: Attempt[_Files, HarnessRun]) -> RepairAttempt:
    """The s09 record of one repair round of the loop."""
    if attempt.version is None:
        return attempt.detail
    return RepairAttempt(
        **attempt.detail,
        decision=_DECISIONS[attempt.decision],
        asserts_after=assertion_count(attempt.version.code.tests),
        note=_outcome_note(attempt.version.run.gates),
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
