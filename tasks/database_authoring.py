"""s06 script authoring: the write-run-validate-repair loop of one table.

Input: the step's model access (coding role), a `TableContract`, the validated
tables it points into, the step config and the prompt context. Output: an
`AuthoredTable` with the script, the number of runs, and either the canonical rows
or the last problems. Side effects: model calls (call keys `s06/<item>`,
`s06/<item>/fix-<k>`, `s06/<item>/rewrite-<k>`) and sandboxed runs of the script
(`tasks.runtime.sandbox`; never in this process).

The loop: the first script (re-asked until it parses and keeps the I/O and
determinism rules) runs in the sandbox; its output is validated; a run that passes
runs again and must give byte-identical output. On failure the problems go back as
a fix request answered with SEARCH/REPLACE blocks; blocks that do not apply are
reported back once with the block editor's did-you-mean report; if they still do
not apply, the whole script is rewritten. At most `1 + max_code_fix_retries` runs.
The loop itself is `tasks.code_loop`; this module is its s06 job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from schemas.config import DatabaseConfig
from schemas.database import (
    DataProblem,
    GeneratorScriptDraft,
    ScriptFixDraft,
    TableContract,
)
from schemas.sandbox import SandboxRequest, SandboxResult
from tasks.code_loop import Proposal, Verdict, Version, ask_for_edits, run_code_loop
from tasks.core.data_contract import TableData
from tasks.core.data_scripts import (
    output_text,
    run_problems,
    script_problems,
    script_request,
)
from tasks.core.data_validation import (
    canonical_rows,
    parse_output,
    problem_report,
    table_problems,
)
from tasks.llm.bound import Answer, StepLLM
from tasks.llm.errors import InvalidModelOutput
from tasks.machinery import MachineryError
from tasks.runtime.sandbox import run_sandboxed

WRITE_PROMPT = "s06/write_generator"
FIX_PROMPT = "s06/fix_generator"
EDIT_ATTEMPTS = 2
"""The fix answer, then one re-ask that shows the did-you-mean report."""
NONDETERMINISTIC = (
    "running the script twice on the same input.json gave different output; draw "
    "every random value from random.Random(spec['seed']) and never read the clock"
)


@dataclass(frozen=True)
class AuthoredTable:
    """How authoring one table ended."""

    script: str
    attempts: int
    rows: tuple[dict[str, Any], ...] | None
    problems: tuple[str, ...]
    first: Answer[GeneratorScriptDraft]

    @property
    def ok(self) -> bool:
        return self.rows is not None


@dataclass(frozen=True)
class _Script:
    """A version of the generator, with the first answer (the producer names its
    prompt) carried along through the repairs."""

    text: str
    first: Answer[GeneratorScriptDraft]


@dataclass(frozen=True)
class _TableRun:
    rows: tuple[dict[str, Any], ...] | None
    problems: list[str]


def author_table(
    llm: StepLLM,
    contract: TableContract,
    referenced: Mapping[str, TableData],
    *,
    cfg: DatabaseConfig,
    item_key: str,
    context: Mapping[str, Any],
) -> AuthoredTable:
    """Write, run, validate and repair the generator of one table.

    Args:
        llm: Model access of the step (coding role).
        contract: The table contract.
        referenced: Validated tables the contract points into, by name.
        cfg: Limits: fix rounds, script timeout and memory.
        item_key: The item key; call keys are derived from it.
        context: Template inputs besides `contract` (`referenced`, `summaries`,
            `rules`).

    Returns:
        The outcome; `rows` is None when no run validated.

    Raises:
        InvalidModelOutput: The first script never passed the static checks.
    """
    job = _TableJob(llm, contract, referenced, cfg, item_key, context)
    result = run_code_loop(job)
    final, last = result.final, result.attempts[-1]
    problems = tuple(final.run.problems)
    if last.decision == "edit_failed":
        problems += (last.note,)
    return AuthoredTable(
        final.code.text, result.runs, final.run.rows, problems, final.code.first
    )


@dataclass(frozen=True)
class _TableJob:
    """The generator of one table as a `CodeJob`: every repaired version is kept,
    and a repair that gives no usable script ends the loop."""

    llm: StepLLM
    contract: TableContract
    referenced: Mapping[str, TableData]
    cfg: DatabaseConfig
    item_key: str
    context: Mapping[str, Any]

    @property
    def rounds(self) -> int:
        return self.cfg.max_code_fix_retries

    def write(self) -> _Script:
        first = self.llm.ask(
            WRITE_PROMPT,
            GeneratorScriptDraft,
            item_key=self.item_key,
            check=_script_check,
            contract=self.contract,
            previous_script=None,
            problems=[],
            **self.context,
        )
        return _Script(first.value.script, first)

    def run(self, code: _Script) -> _TableRun:
        rows, problems = run_table_script(
            code.text, self.contract, self.referenced, self.cfg
        )
        return _TableRun(rows, problems)

    def passed(self, run: _TableRun) -> bool:
        return run.rows is not None

    def score(self, run: _TableRun) -> tuple[int, ...]:
        return (int(run.rows is not None),)

    def repair(
        self, current: Version[_Script, _TableRun], number: int
    ) -> Proposal[_Script]:
        script, problems = current.code.text, current.run.problems
        try:
            text = self._repair(script, problems, number)
            return Proposal(_Script(text, current.code.first))
        except InvalidModelOutput as exc:
            why = "; ".join(exc.problems)
            unusable = f"repair {number} gave no usable script: {why}"
            return Proposal(None, note=unusable, give_up=True)

    def judge(
        self,
        proposal: Proposal[_Script],
        candidate: Version[_Script, _TableRun],
        best: Version[_Script, _TableRun],
    ) -> Verdict:
        return "kept"

    def _repair(self, script: str, problems: list[str], number: int) -> str:
        """Edit blocks for the problems, else a rewritten script.

        Raises:
            InvalidModelOutput: The rewrite never passed the static checks.
        """
        try:
            return ask_for_edits(
                self.llm,
                FIX_PROMPT,
                ScriptFixDraft,
                item_key=f"{self.item_key}/fix-{number}",
                source=script,
                error="\n".join(problems),
                static=script_problems,
                max_retries=EDIT_ATTEMPTS,
                unapplied="The edit blocks did not change the script.",
                contract=self.contract,
                script=script,
                problems=problems,
            )
        except InvalidModelOutput:
            rewrite = self.llm.ask(
                WRITE_PROMPT,
                GeneratorScriptDraft,
                item_key=f"{self.item_key}/rewrite-{number}",
                check=_script_check,
                contract=self.contract,
                previous_script=script,
                problems=problems,
                **self.context,
            )
            return rewrite.value.script


def run_table_script(
    script: str,
    contract: TableContract,
    referenced: Mapping[str, TableData],
    cfg: DatabaseConfig,
) -> tuple[tuple[dict[str, Any], ...] | None, list[str]]:
    """Run a generator in the sandbox and validate what it wrote.

    Returns:
        (canonical rows, []) when valid, else (None, the problem report).
    """
    request = script_request(
        script,
        contract,
        {name: table.rows for name, table in referenced.items()},
        timeout_s=cfg.script_timeout_s,
        memory_mb=cfg.script_memory_mb,
    )
    result = run_sandboxed(request)
    if result.status == "sandbox_error":
        raise MachineryError(f"running the {contract.table} generator", result.message)
    problems = run_problems(result)
    data: Any = None
    if not problems:
        data, problems = parse_output(output_text(result))
    if not problems:
        problems = table_problems(contract, data, referenced)
    if not problems:
        problems = _rerun_problems(request, result)
    if problems:
        return None, problem_report(problems)
    return canonical_rows(contract, data), []


def _rerun_problems(request: SandboxRequest, first: SandboxResult) -> list[DataProblem]:
    """Run a validated script again: it must give the same output. A second run
    that failed (killed by a limit on a busy machine, say) is reported as what it
    is, not as nondeterminism."""
    again = run_sandboxed(request)
    if again.status == "sandbox_error":
        raise MachineryError("re-running a generator", again.message)
    if not again.ok:
        return run_problems(again)
    if output_text(again) != output_text(first):
        return [DataProblem(kind="nondeterministic", message=NONDETERMINISTIC)]
    return []


def _script_check(draft: GeneratorScriptDraft) -> list[str]:
    return script_problems(draft.script)
