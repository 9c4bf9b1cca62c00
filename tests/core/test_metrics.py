"""pass@1, pass^k, pass@k and the rest of an evaluation summary."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from schemas.evaluation import (
    EvaluationResult,
    EvaluationSummary,
    EvaluatorCounts,
    Verdict,
)
from tasks.core.metrics import pass_at_k, pass_hat_k, summarize

PASS = Verdict(passed=True, score=1.0)
FAIL = Verdict(passed=False, score=0.0)


def result(query: str, trial: int, passed: bool, **fields: Any) -> EvaluationResult:
    defaults: dict[str, Any] = {
        "environment": "DentalAppointments",
        "domains": ("DentalAppointments",),
        "total_score": float(passed),
        "evaluators": {"action": PASS, "state": PASS if passed else FAIL},
        "legacy_passed": True,
    }
    return EvaluationResult(id=query, trial=trial, passed=passed, **(defaults | fields))


def trials(query: str, n: int, c: int, **fields: Any) -> list[EvaluationResult]:
    return [result(query, t, t < c, **fields) for t in range(n)]


def test_pass_hat_k_and_pass_at_k_on_a_hand_computed_example():
    """A 3/4, B 0/4, C 4/4: pass^2 = mean(3/6, 0, 1), pass@2 = mean(1, 0, 1)."""
    summary = summarize(trials("A", 4, 3) + trials("B", 4, 0) + trials("C", 4, 4))
    overall = summary.overall
    assert (overall.tasks, overall.rollouts) == (3, 12)
    assert overall.pass_at_1 == pytest.approx(7 / 12)
    assert overall.pass_hat_k == pytest.approx(
        {1: 7 / 12, 2: (3 / 6 + 0 + 1) / 3, 3: (1 / 4 + 0 + 1) / 3, 4: 1 / 3}
    )
    assert overall.pass_at_k == pytest.approx({1: 7 / 12, 2: 2 / 3, 3: 2 / 3, 4: 2 / 3})


def test_the_combinatorics_are_exact():
    assert pass_hat_k(4, 3, 2) == Fraction(1, 2)
    assert pass_hat_k(4, 1, 2) == 0
    assert pass_at_k(4, 1, 2) == Fraction(1, 2)
    assert pass_at_k(4, 0, 3) == 0
    assert pass_hat_k(100, 99, 50) == Fraction(1, 2)


def test_tasks_with_different_trial_counts_use_their_own_n_up_to_the_smallest():
    """A has 4 trials (3 pass), D has 2 (1 passes): k stops at 2."""
    overall = summarize(trials("A", 4, 3) + trials("D", 2, 1)).overall
    assert set(overall.pass_hat_k) == {1, 2}
    assert overall.pass_hat_k[2] == pytest.approx((1 / 2 + 0) / 2)
    assert overall.pass_at_k[2] == pytest.approx((1 + 1) / 2)
    assert overall.pass_at_1 == pytest.approx((3 / 4 + 1 / 2) / 2)


def test_a_cross_domain_task_counts_once_for_each_member_domain():
    fused = ("DentalAppointments", "TreatmentBilling")
    results = trials("A", 2, 2) + trials(
        "X", 2, 1, environment="DentalAppointments_TreatmentBilling", domains=fused
    )
    summary = summarize(results)
    assert summary.by_domain["DentalAppointments"].tasks == 2
    assert summary.by_domain["DentalAppointments"].pass_at_1 == pytest.approx(3 / 4)
    assert summary.by_domain["TreatmentBilling"].tasks == 1
    assert summary.by_domain["TreatmentBilling"].pass_at_1 == pytest.approx(1 / 2)
    assert list(summary.by_environment) == [
        "DentalAppointments",
        "DentalAppointments_TreatmentBilling",
    ]
    assert summary.by_environment["DentalAppointments"].pass_at_1 == 1.0
    assert summary.overall.tasks == 2


def test_averages_evaluator_counts_failure_reasons_and_legacy_rate():
    skipped = Verdict(passed=True, score=1.0, skipped=True)
    results = [
        result(
            "A",
            0,
            True,
            turns=4,
            tokens=1000,
            cost_usd=0.02,
            evaluators={"action": PASS, "state": PASS, "nl_assertions": skipped},
        ),
        result(
            "A",
            1,
            False,
            turns=2,
            tokens=500,
            cost_usd=0.01,
            legacy_passed=True,
            evaluators={"action": FAIL, "state": FAIL},
        ),
        result(
            "B",
            0,
            False,
            turns=6,
            tokens=0,
            legacy_passed=False,
            evaluators={"action": PASS, "state": FAIL},
        ),
        result(
            "B",
            1,
            False,
            turns=0,
            error="died",
            error_kind="environment",
            legacy_passed=None,
            evaluators={"action": PASS, "state": FAIL},
        ),
    ]
    summary = summarize(results)
    assert summary.overall.avg_turns == 3.0
    assert summary.overall.avg_tokens == 375.0
    assert summary.overall.avg_cost_usd == pytest.approx(0.0075)
    assert summary.overall.legacy_pass_rate == pytest.approx(2 / 3)
    assert summary.by_evaluator == {
        "action": EvaluatorCounts(passed=3, failed=1),
        "state": EvaluatorCounts(passed=1, failed=3),
        "nl_assertions": EvaluatorCounts(skipped=1),
    }
    assert summary.failure_reasons == {"action": 1, "state": 1, "error:environment": 1}


def test_skipped_items_and_duplicate_trials_are_counted_not_scored():
    results = trials("A", 2, 1) + [result("A", 0, False)]
    summary = summarize(results, skipped={"truncated_line": 1, "unknown_query": 2})
    assert summary.overall.rollouts == 2
    assert summary.overall.pass_at_1 == 0.5
    assert summary.skipped_items == {
        "duplicate_rollout": 1,
        "truncated_line": 1,
        "unknown_query": 2,
    }


def test_an_empty_run_summarises_to_zeros_and_round_trips():
    summary = summarize([])
    assert summary.overall.tasks == 0 and summary.overall.pass_hat_k == {}
    assert summary.overall.legacy_pass_rate is None
    full = summarize(trials("A", 3, 2))
    for s in (summary, full):
        assert EvaluationSummary.model_validate_json(s.model_dump_json()) == s
