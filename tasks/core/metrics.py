"""Metrics of an evaluation run: pass@1, pass^k and pass@k over repeated trials,
overall, per domain and per environment, with per-rollout averages, evaluator
counts, failure reasons and the original scoring's pass rate.

Input: the `EvaluationResult`s of a run (one per query and trial) and the counts
of input items skipped before evaluation. Output: an `EvaluationSummary`. Pure.

Per task (query id) with n trials of which c passed: pass@1 is the mean of c/n;
pass^k (every one of k trials drawn without replacement passes, tau-bench) is the
mean of C(c,k)/C(n,k); pass@k (at least one of k passes) the mean of
1 - C(n-c,k)/C(n,k). They are computed with exact integers and fractions and
rounded to float once. Tasks may have different n: each uses its own n, and k runs
from 1 to the smallest n among the tasks of the group, so every task has a value
for every k reported.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from fractions import Fraction
from math import comb

from schemas.evaluation import (
    EvaluationResult,
    EvaluationSummary,
    EvaluatorCounts,
    Metrics,
)
from tasks.core.rollout_records import DUPLICATE_ROLLOUT

"""Skip reason of a second result for the same (query id, trial)."""


def pass_hat_k(n: int, c: int, k: int) -> Fraction:
    """Probability that k of n trials, c of which passed, all pass."""
    return Fraction(comb(c, k), comb(n, k))


def pass_at_k(n: int, c: int, k: int) -> Fraction:
    """Probability that at least one of k of n trials, c of which passed, passes."""
    return 1 - Fraction(comb(n - c, k), comb(n, k))


def task_outcomes(results: Iterable[EvaluationResult]) -> dict[str, tuple[int, int]]:
    """Query id -> (trials, passes)."""
    out: dict[str, tuple[int, int]] = {}
    for r in results:
        n, c = out.get(r.id, (0, 0))
        out[r.id] = (n + 1, c + r.passed)
    return out


def metrics(results: Sequence[EvaluationResult]) -> Metrics:
    """The pass rates and averages of one group of results (module docstring).

    Args:
        results: One result per (query id, trial).

    Returns:
        The group's metrics; all zero for an empty group.
    """
    outcomes = list(task_outcomes(results).values())
    if not outcomes:
        return Metrics(tasks=0, rollouts=0, pass_at_1=0.0, pass_hat_k={}, pass_at_k={})
    ks = range(1, min(n for n, _ in outcomes) + 1)
    tasks = len(outcomes)
    legacy = [r.legacy_passed for r in results if r.legacy_passed is not None]
    return Metrics(
        tasks=tasks,
        rollouts=len(results),
        pass_at_1=float(sum(Fraction(c, n) for n, c in outcomes) / tasks),
        pass_hat_k={
            k: float(sum(pass_hat_k(n, c, k) for n, c in outcomes) / tasks) for k in ks
        },
        pass_at_k={
            k: float(sum(pass_at_k(n, c, k) for n, c in outcomes) / tasks) for k in ks
        },
        legacy_pass_rate=sum(legacy) / len(legacy) if legacy else None,
        avg_turns=sum(r.turns for r in results) / len(results),
        avg_tokens=sum(r.tokens for r in results) / len(results),
        avg_cost_usd=sum(r.cost_usd for r in results) / len(results),
    )


def failure_reason(result: EvaluationResult) -> str | None:
    """Why a result failed: `error:<kind>` for a failed rollout, else the first
    failing evaluator (in the result's order: action, state, then the judges);
    None when it passed."""
    if result.passed:
        return None
    if result.error is not None or result.error_kind is not None:
        return f"error:{result.error_kind or 'unknown'}"
    return next(
        (
            name
            for name, v in result.evaluators.items()
            if not v.skipped and not v.passed
        ),
        "unknown",
    )


def _evaluator_counts(
    results: Iterable[EvaluationResult],
) -> dict[str, EvaluatorCounts]:
    counts: dict[str, Counter[str]] = {}
    for r in results:
        for name, verdict in r.evaluators.items():
            outcome = (
                "skipped"
                if verdict.skipped
                else ("passed" if verdict.passed else "failed")
            )
            counts.setdefault(name, Counter())[outcome] += 1
    return {name: EvaluatorCounts(**c) for name, c in counts.items()}


def _grouped(
    results: Sequence[EvaluationResult],
    keys: Callable[[EvaluationResult], Iterable[str]],
) -> dict[str, Metrics]:
    groups: dict[str, list[EvaluationResult]] = {}
    for r in results:
        for key in dict.fromkeys(keys(r)):
            groups.setdefault(key, []).append(r)
    return {key: metrics(groups[key]) for key in sorted(groups)}


def summarize(
    results: Sequence[EvaluationResult], *, skipped: Mapping[str, int] | None = None
) -> EvaluationSummary:
    """Summarise an evaluation run.

    Args:
        results: One result per (query id, trial); a repeated (query id, trial)
            keeps its first result and is counted as skipped
            (`duplicate_rollout`).
        skipped: Reason -> count of input items skipped before evaluation
            (truncated lines, unknown queries, ...).

    Returns:
        Overall metrics; per domain (a cross-domain task counts once for each of
        its member servers, as in the reference) and per environment; evaluator
        pass/fail/skip counts; failure reasons; and the skipped items.
    """
    seen: set[tuple[str, int]] = set()
    unique: list[EvaluationResult] = []
    skipped_items = Counter(dict(skipped or {}))
    for r in results:
        if (r.id, r.trial) in seen:
            skipped_items[DUPLICATE_ROLLOUT] += 1
            continue
        seen.add((r.id, r.trial))
        unique.append(r)
    reasons = Counter(
        reason for r in unique if (reason := failure_reason(r)) is not None
    )
    return EvaluationSummary(
        overall=metrics(unique),
        by_domain=_grouped(unique, lambda r: r.domains),
        by_environment=_grouped(unique, lambda r: (r.environment,)),
        by_evaluator=_evaluator_counts(unique),
        failure_reasons=dict(reasons.most_common()),
        skipped_items=dict(sorted(skipped_items.items())),
    )
