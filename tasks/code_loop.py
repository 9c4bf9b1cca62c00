"""The one "write code -> static check -> run in the sandbox -> repair with edit
blocks" loop, shared by s06 (table generator scripts), s09 (tool modules and their
policy tests) and s15 (selection code, to come).

Input: a `CodeJob`, which says what to generate (`write`: the first version, whose
static checks are the model call's `check`, so the model is re-asked before
anything runs), how to run a version in the sandbox (`run`), whether a run passed
and how good it was (`passed`, `score`), how to turn a failed run into a repair
(`repair`: usually a prompt answered with SEARCH/REPLACE blocks, applied and
re-checked by `ask_for_edits`), what to do with a repaired version once it ran
(`judge`) and a budget of repair rounds (`rounds`). Output: a `LoopResult` with the
version the loop ended on, the best version seen, and one `Attempt` per round.
Side effects: only the job's (model calls, sandboxed runs); the loop holds no
state besides its records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

from schemas.edit import EditOutcome
from tasks.core.block_editor import apply_edit_answer
from tasks.llm.bound import StepLLM

CodeT = TypeVar("CodeT")
RunT = TypeVar("RunT")
Verdict = Literal["kept", "rolled_back", "rejected"]
"""What becomes of a repaired version once it ran: the loop goes on from it, goes
back to the best version so far, or goes on from the version it repaired."""
Decision = Literal["written", "edit_failed", "kept", "rolled_back", "rejected"]


@dataclass(frozen=True)
class Version(Generic[CodeT, RunT]):
    """One version of the code and what its sandboxed run reported."""

    code: CodeT
    run: RunT


@dataclass(frozen=True)
class Proposal(Generic[CodeT]):
    """What one repair round produced before anything ran.

    `code` is None when the model gave no usable repair; `note` says why.
    `give_up` ends the loop there (no later round can do better); `detail` is the
    job's own record of the round (a triage, say), kept in its `Attempt`.
    """

    code: CodeT | None
    note: str = ""
    detail: Any = None
    give_up: bool = False


@dataclass(frozen=True)
class Attempt(Generic[CodeT, RunT]):
    """One round: 0 is the first version, k the k-th repair round.

    `version` is what ran in this round; None when the repair gave no code.
    """

    round: int
    decision: Decision
    version: Version[CodeT, RunT] | None
    note: str = ""
    detail: Any = None


@dataclass(frozen=True)
class LoopResult(Generic[CodeT, RunT]):
    """How the loop ended: where it stopped, the best version, every round."""

    final: Version[CodeT, RunT]
    best: Version[CodeT, RunT]
    attempts: tuple[Attempt[CodeT, RunT], ...]

    @property
    def runs(self) -> int:
        """Sandboxed runs made (one per version)."""
        return sum(attempt.version is not None for attempt in self.attempts)


class CodeJob(Protocol[CodeT, RunT]):
    """What the loop needs from its user."""

    @property
    def rounds(self) -> int:
        """The budget: at most this many repair rounds after the first version."""
        ...

    def write(self) -> CodeT:
        """The first version, statically checked (re-asked until it is).

        Raises:
            tasks.llm.errors.InvalidModelOutput: It never passed its checks.
        """
        ...

    def run(self, code: CodeT) -> RunT:
        """Run a version in the sandbox and report what happened.

        Raises:
            tasks.machinery.MachineryError: The sandbox itself is broken.
        """
        ...

    def passed(self, run: RunT) -> bool:
        """Whether the run needs no repair."""
        ...

    def score(self, run: RunT) -> tuple[int, ...]:
        """How good a run is, compared in order; a kept version that scores at
        least as well as the best one becomes the best."""
        ...

    def repair(self, current: Version[CodeT, RunT], number: int) -> Proposal[CodeT]:
        """Turn the failure of `current` into a repaired version in round `number`
        (from 1)."""
        ...

    def judge(
        self,
        proposal: Proposal[CodeT],
        candidate: Version[CodeT, RunT],
        best: Version[CodeT, RunT],
    ) -> Verdict:
        """What to do with a repaired version once it ran."""
        ...


def run_code_loop(job: CodeJob[CodeT, RunT]) -> LoopResult[CodeT, RunT]:
    """Write, run and repair one piece of generated code within its budget.

    The first version runs; while the current version fails and rounds remain,
    the job proposes a repair; a repaired version runs and the job's verdict says
    whether the loop goes on from it, from the best version, or from where it was.
    A round without usable code is recorded as `edit_failed` and, unless the
    proposal gives up, the next round tries again.

    Args:
        job: The code to write and how to check, run and repair it.

    Returns:
        The final and best versions and one record per round.

    Raises:
        tasks.llm.errors.InvalidModelOutput: The first version never validated.
        tasks.machinery.MachineryError: The sandbox is broken.
    """
    code = job.write()
    current = best = Version(code, job.run(code))
    attempts: list[Attempt[CodeT, RunT]] = [Attempt(0, "written", current)]
    for n in range(1, job.rounds + 1):
        if job.passed(current.run):
            break
        proposal = job.repair(current, n)
        if proposal.code is None:
            attempts.append(
                Attempt(n, "edit_failed", None, proposal.note, proposal.detail)
            )
            if proposal.give_up:
                break
            continue
        candidate = Version(proposal.code, job.run(proposal.code))
        verdict = job.judge(proposal, candidate, best)
        if verdict == "kept":
            current = candidate
            if job.score(candidate.run) >= job.score(best.run):
                best = candidate
        elif verdict == "rolled_back":
            current = best
        attempts.append(Attempt(n, verdict, candidate, proposal.note, proposal.detail))
    return LoopResult(final=current, best=best, attempts=tuple(attempts))


class _EditAnswer(Protocol):
    edits: str


EditT = TypeVar("EditT", bound=_EditAnswer)


def ask_for_edits(
    llm: StepLLM,
    prompt_id: str,
    response_model: type[EditT],
    *,
    item_key: str,
    source: str,
    error: str,
    static: Callable[[str], list[str]],
    max_retries: int,
    unapplied: str,
    strip_report: bool = False,
    **template_context: Any,
) -> str:
    """Ask for SEARCH/REPLACE blocks that fix `error` in `source`, and apply them.

    An answer is re-asked (by the model call's check) until its blocks apply and
    change the text, and the edited text passes the static checks.

    Args:
        llm: The step's model access.
        prompt_id: The repair prompt.
        response_model: The answer model; its `edits` field holds the blocks.
        item_key: The call's item key.
        source: The text to edit.
        error: The failure the edits are to fix (repeated in the editor's report
            when nothing changed).
        static: The static checks of an edited text; problems as sentences.
        max_retries: Attempts for the call.
        unapplied: The problem sent back when the editor has no report.
        strip_report: Send the editor's report without its surrounding whitespace
            (s09 does, s06 does not; kept so their re-asks stay byte-identical).
        **template_context: The prompt's inputs.

    Returns:
        The edited text.

    Raises:
        tasks.llm.errors.InvalidModelOutput: No answer applied cleanly in time.
    """

    def check(draft: EditT) -> list[str]:
        outcome = apply_edit_answer(source, draft.edits, original_error=error)
        if not outcome.succeeded:
            return [_report(outcome, strip_report) or unapplied]
        return static(outcome.text)

    answer = llm.ask(
        prompt_id,
        response_model,
        item_key=item_key,
        check=check,
        max_retries=max_retries,
        **template_context,
    )
    return apply_edit_answer(source, answer.value.edits, original_error=error).text


def _report(outcome: EditOutcome, strip: bool) -> str:
    return outcome.report.strip() if strip else outcome.report
