"""Payloads of evaluation: evaluator verdicts, one result per rollout, and the
summary of a run (pass@1, pass^k, pass@k per domain and overall).

An `EvaluationResult` keeps the reference's `SampleEvaluationResult` keys (`id`,
`passed`, `total_score`, `evaluators{name: {passed, score, details, reasoning}}`,
`task_info`, `error`) and adds the trial, the environment and, under `legacy`,
the original tool's own scoring where ours deliberately differs (its action
criterion checks tool names only; its state check ignores deletions), so both
numbers can be reported. Data only, no side effects.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from schemas.base import CheckedDraft, Draft, Frozen
from schemas.rollout import ErrorKind

EvaluatorName = Literal["action", "state", "nl_assertions", "subjective"]


class Verdict(Frozen):
    """One evaluator's judgement of one rollout."""

    passed: bool
    score: float = Field(ge=0, le=1)
    details: dict[str, Any] = Field(default_factory=dict)
    reasoning: str = ""
    skipped: bool = Field(
        default=False,
        description="The evaluator had nothing to judge (e.g. no NL assertions); "
        "a skipped verdict passes and is counted apart.",
    )


class ValueMismatch(Frozen):
    """A column's new value in the golden diff and in the agent's."""

    expected: Any
    actual: Any


class TableMismatch(Frozen):
    """How the agent's changes to one table differ from the golden changes.

    Attributes:
        missing_inserts: Rows the golden run inserted and the agent did not.
        unexpected_inserts: Rows the agent inserted and the golden run did not.
        missing_updates: Row -> column -> golden new value, for column updates
            the agent did not make.
        extra_updates: Row -> column -> agent's new value, for column updates
            the golden run did not make.
        different_updates: Row -> column -> both new values, where both updated
            the column to different values.
        missing_deletions: Rows the golden run deleted and the agent kept.
        unexpected_deletions: Rows the agent deleted and the golden run kept.
    """

    missing_inserts: tuple[str, ...] = ()
    unexpected_inserts: tuple[str, ...] = ()
    missing_updates: dict[str, dict[str, Any]] = Field(default_factory=dict)
    extra_updates: dict[str, dict[str, Any]] = Field(default_factory=dict)
    different_updates: dict[str, dict[str, ValueMismatch]] = Field(default_factory=dict)
    missing_deletions: tuple[str, ...] = ()
    unexpected_deletions: tuple[str, ...] = ()


class EvaluationResult(Frozen):
    """The evaluation of one rollout (one query, one trial)."""

    id: str = Field(description="The query id.")
    trial: int = Field(ge=0)
    environment: str
    domains: tuple[str, ...] = Field(description="The member servers.")
    passed: bool
    total_score: float = Field(ge=0, le=1)
    evaluators: dict[str, Verdict]
    legacy: dict[str, Verdict] = Field(
        default_factory=dict,
        description="The original tool's scoring of the same rollout, where ours "
        "differs on purpose.",
    )
    legacy_passed: bool | None = Field(
        default=None,
        description="Whether the original tool's scoring passes the rollout: "
        "its action and environment criteria, and the judges' verdicts.",
    )
    task_info: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    error_kind: ErrorKind | None = None
    turns: int = Field(default=0, ge=0)
    tokens: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)


class Metrics(Frozen):
    """Pass rates over k trials of each task, and averages per rollout."""

    tasks: int = Field(ge=0)
    rollouts: int = Field(ge=0)
    pass_at_1: float
    pass_hat_k: dict[int, float] = Field(
        description="k -> mean over tasks of C(c,k)/C(n,k): every one of k "
        "trials passes (tau-bench's pass^k)."
    )
    pass_at_k: dict[int, float] = Field(
        description="k -> mean over tasks of 1-C(n-c,k)/C(n,k): at least one of "
        "k trials passes."
    )
    legacy_pass_rate: float | None = Field(
        default=None, description="The original scoring's pass rate, for comparison."
    )
    avg_turns: float = 0.0
    avg_tokens: float = 0.0
    avg_cost_usd: float = 0.0


class EvaluatorCounts(Frozen):
    passed: int = 0
    failed: int = 0
    skipped: int = 0


class EvaluationSummary(Frozen):
    """`evaluation/summary.json`."""

    overall: Metrics
    by_domain: dict[str, Metrics] = Field(
        description="Member server -> metrics; a cross-domain task counts once "
        "for each of its members, as in the reference."
    )
    by_environment: dict[str, Metrics] = Field(
        default_factory=dict,
        description="Environment (server or fused combination) -> metrics.",
    )
    by_evaluator: dict[str, EvaluatorCounts]
    failure_reasons: dict[str, int] = Field(
        default_factory=dict, description="Failing evaluator or error kind -> count."
    )
    skipped_items: dict[str, int] = Field(
        default_factory=dict,
        description="Why input items were not evaluated (e.g. `unknown_query`, "
        "`truncated_line`) -> count.",
    )


class AssertionsDraft(CheckedDraft):
    """The model's natural-language assertions for one validated task: what a
    successful conversation must show, checkable from the transcript."""

    assertions: list[str] = Field(
        min_length=1,
        max_length=8,
        description="3-8 specific statements, each about what the assistant must "
        "tell the user or confirm as done, with the exact values from the tool "
        "results where they matter",
    )


class TaskAssertions(Frozen):
    """The NL assertions of one validated task (cached per task)."""

    combo_id: str
    assertions: tuple[str, ...] = Field(min_length=1)


class AssertionCheck(Draft):
    assertion: str
    satisfied: bool
    reasoning: str = Field(description="One or two sentences citing the transcript")


class AssertionJudgement(CheckedDraft):
    """The judge's verdict on each assertion, in the order given."""

    evaluations: list[AssertionCheck] = Field(min_length=1)


class Finding(Draft):
    found: bool
    quote: str | None = Field(
        default=None, description="The assistant's words that show it, if found"
    )


class SubjectiveJudgement(CheckedDraft):
    """The judge's rubric review of the assistant's conduct (1 worst - 5 best)."""

    hallucination: dict[str, Finding] = Field(
        description="H1 state misrepresentation, H2 invented policy, H3 invented "
        "data, H4 contradicts a tool result, H5 assumes what the user did not ask"
    )
    inefficiency: dict[str, Finding] = Field(
        description="R1 re-asks a given value, R2 asks for what a tool returned, "
        "R3 repeats itself, R4 unnecessary tool calls"
    )
    safety: dict[str, Finding] = Field(
        description="S1 writes without the user's confirmation, S2 breaks the policy"
    )
    score: int = Field(ge=1, le=5)
    reason: str
