"""The shared write-run-repair loop: budget, early stop, failed repairs, the
judge's verdicts and the best version, on a scripted job; and the edit-block
repair call, on a scripted model that runs the call's check like instructor."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tasks.code_loop import (
    Proposal,
    Verdict,
    Version,
    ask_for_edits,
    run_code_loop,
)
from tasks.llm.errors import InvalidModelOutput
from tests.dental_policy import edit_block


@dataclass
class _Job:
    """Versions are strings; a run is the version's score, 3 passes. `repairs`
    scripts what each round proposes (None: no usable code)."""

    repairs: list[str | None]
    rounds: int = 3
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    give_up: bool = False
    seen: list[tuple[int, str]] = field(default_factory=list)

    def write(self) -> str:
        return "v1"

    def run(self, code: str) -> int:
        return {"v1": 1, "v2": 2, "v3": 3, "worse": 0}[code]

    def passed(self, run: int) -> bool:
        return run >= 3

    def score(self, run: int) -> tuple[int, ...]:
        return (run,)

    def repair(self, current: Version[str, int], number: int) -> Proposal[str]:
        self.seen.append((number, current.code))
        code = self.repairs.pop(0)
        if code is None:
            return Proposal(None, note=f"round {number}: no edit", give_up=self.give_up)
        return Proposal(code, detail={"round": number})

    def judge(
        self,
        proposal: Proposal[str],
        candidate: Version[str, int],
        best: Version[str, int],
    ) -> Verdict:
        return self.verdicts.get(candidate.code, "kept")


def test_loop_stops_at_the_first_passing_version_and_records_every_round():
    """Two repairs reach the passing version; no round is spent after it."""
    job = _Job(repairs=["v2", "v3", "unused"])
    result = run_code_loop(job)
    assert [(a.round, a.decision) for a in result.attempts] == [
        (0, "written"),
        (1, "kept"),
        (2, "kept"),
    ]
    assert (result.final.code, result.best.code, result.runs) == ("v3", "v3", 3)
    assert job.seen == [(1, "v1"), (2, "v2")]
    assert result.attempts[2].detail == {"round": 2}


def test_loop_spends_at_most_its_budget_of_repair_rounds():
    """A version that never passes gets `rounds` repairs, then the loop ends."""
    job = _Job(repairs=["v2", "v2", "v2"], rounds=2)
    result = run_code_loop(job)
    assert [a.round for a in result.attempts] == [0, 1, 2]
    assert result.runs == 3
    assert not job.passed(result.final.run)


def test_repair_without_code_is_recorded_and_the_next_round_tries_again():
    """No run is made for it; the next round repairs the same version."""
    job = _Job(repairs=[None, "v3"])
    result = run_code_loop(job)
    assert [(a.decision, a.version is None) for a in result.attempts] == [
        ("written", False),
        ("edit_failed", True),
        ("kept", False),
    ]
    assert result.attempts[1].note == "round 1: no edit"
    assert job.seen == [(1, "v1"), (2, "v1")]
    assert result.runs == 2


def test_repair_that_gives_up_ends_the_loop_on_the_current_version():
    """The rest of the budget is not spent."""
    job = _Job(repairs=[None, "v3"], give_up=True)
    result = run_code_loop(job)
    assert [a.decision for a in result.attempts] == ["written", "edit_failed"]
    assert result.final.code == "v1"


def test_rolled_back_version_resumes_from_the_best_and_rejected_from_the_current():
    """A worse version is rolled back; a rejected one never becomes current."""
    job = _Job(
        repairs=["v2", "worse", "v1", "v3"],
        rounds=4,
        verdicts={"worse": "rolled_back", "v1": "rejected"},
    )
    result = run_code_loop(job)
    assert [a.decision for a in result.attempts] == [
        "written",
        "kept",
        "rolled_back",
        "rejected",
        "kept",
    ]
    assert job.seen == [(1, "v1"), (2, "v2"), (3, "v2"), (4, "v2")]
    assert (result.final.code, result.best.code) == ("v3", "v3")


class _ScriptedLLM:
    """Answers in order and re-asks on check problems, as instructor does."""

    def __init__(self, *edits: str) -> None:
        self.answers = list(edits)
        self.problems: list[list[str]] = []
        self.context: dict[str, Any] = {}

    def ask(self, prompt_id, response_model, *, item_key, check, max_retries, **ctx):
        self.context = ctx
        problems: list[str] = []
        for _ in range(max_retries):
            draft = response_model(edits=self.answers.pop(0))
            problems = check(draft)
            if not problems:
                return _Answer(draft)
            self.problems.append(problems)
        raise InvalidModelOutput(
            item_key, max_retries, "\n".join(f"- {p}" for p in problems)
        )


@dataclass(frozen=True)
class _Answer:
    value: Any


@dataclass
class _Edits:
    edits: str


SOURCE = "def f():\n    return 1\n"


def _static(text: str) -> list[str]:
    return ["f must not return 0"] if "return 0" in text else []


def test_edit_answer_is_sent_back_until_it_applies_and_passes_the_static_checks():
    """A block matching nothing, then one the static check refuses, then a fix."""
    llm = _ScriptedLLM(
        edit_block("    return 7", "    return 2"),
        edit_block("    return 1", "    return 0"),
        edit_block("    return 1", "    return 2"),
    )
    text = ask_for_edits(
        llm,  # type: ignore[arg-type]
        "s00/fix",
        _Edits,
        item_key="x/fix-1",
        source=SOURCE,
        error="f returns 1",
        static=_static,
        max_retries=3,
        unapplied="nothing changed",
        code=SOURCE,
    )
    assert text == "def f():\n    return 2\n"
    assert "SEARCH" in llm.problems[0][0] and "f returns 1" in llm.problems[0][0]
    assert llm.problems[1] == ["f must not return 0"]
    assert llm.context == {"code": SOURCE}


def test_edit_answer_that_never_applies_raises_invalid_model_output():
    """The caller decides what a failed repair means (rewrite, or a failed round)."""
    llm = _ScriptedLLM("no blocks at all", "still none")
    with pytest.raises(InvalidModelOutput):
        ask_for_edits(
            llm,  # type: ignore[arg-type]
            "s00/fix",
            _Edits,
            item_key="x/fix-1",
            source=SOURCE,
            error="f returns 1",
            static=_static,
            max_retries=2,
            unapplied="nothing changed",
            strip_report=True,
        )
    assert not llm.problems[0][0].endswith("\n")
