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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
from tasks.core.block_editor import apply_edit_answer
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
    first = llm.ask(
        WRITE_PROMPT,
        GeneratorScriptDraft,
        item_key=item_key,
        check=_script_check,
        contract=contract,
        previous_script=None,
        problems=[],
        **context,
    )
    script, runs = first.value.script, 0
    while True:
        runs += 1
        rows, problems = run_table_script(script, contract, referenced, cfg)
        if rows is not None:
            return AuthoredTable(script, runs, rows, (), first)
        if runs > cfg.max_code_fix_retries:
            return AuthoredTable(script, runs, None, tuple(problems), first)
        try:
            script = _repair(llm, contract, script, problems, item_key, runs, context)
        except InvalidModelOutput as exc:
            unusable = f"repair {runs} gave no usable script: {'; '.join(exc.problems)}"
            return AuthoredTable(script, runs, None, (*problems, unusable), first)


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


def _repair(
    llm: StepLLM,
    contract: TableContract,
    script: str,
    problems: list[str],
    item_key: str,
    repair: int,
    context: Mapping[str, Any],
) -> str:
    """Edit blocks for the problems, else a rewritten script (repair round `repair`).

    Raises:
        InvalidModelOutput: The rewrite never passed the static checks.
    """
    error = "\n".join(problems)
    try:
        fix = llm.ask(
            FIX_PROMPT,
            ScriptFixDraft,
            item_key=f"{item_key}/fix-{repair}",
            check=_edit_check(script, error),
            max_retries=EDIT_ATTEMPTS,
            contract=contract,
            script=script,
            problems=problems,
        )
        return apply_edit_answer(script, fix.value.edits, original_error=error).text
    except InvalidModelOutput:
        rewrite = llm.ask(
            WRITE_PROMPT,
            GeneratorScriptDraft,
            item_key=f"{item_key}/rewrite-{repair}",
            check=_script_check,
            contract=contract,
            previous_script=script,
            problems=problems,
            **context,
        )
        return rewrite.value.script


def _script_check(draft: GeneratorScriptDraft) -> list[str]:
    return script_problems(draft.script)


def _edit_check(script: str, error: str) -> Callable[[ScriptFixDraft], list[str]]:
    def check(draft: ScriptFixDraft) -> list[str]:
        outcome = apply_edit_answer(script, draft.edits, original_error=error)
        if not outcome.succeeded:
            return [outcome.report or "The edit blocks did not change the script."]
        return script_problems(outcome.text)

    return check
