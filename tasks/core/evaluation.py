"""Deterministic evaluation of one rollout against its validated task.

Input: an `AgentTask` (golden calls with concrete arguments, expected state hash
and diff), one `Rollout` of it, and optionally the verdicts of LLM judges computed
elsewhere (NL assertions, subjective). Output: an `EvaluationResult` with our
verdicts (`action`, `state`, plus the judges'), the composite score and pass, and
under `legacy` the original tool's action and environment scoring of the same
rollout (reference section 6.8). Pure, no I/O; `is_error_result` (the tool-error
rule) is re-exported here for the episode runtime.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from schemas.evaluation import EvaluationResult, Verdict
from schemas.rollout import Rollout
from schemas.validated_task import AgentTask
from tasks.core.action_match import evaluate_actions, evaluate_actions_legacy
from tasks.core.agent_calls import agent_calls, is_error_result
from tasks.core.state_match import evaluate_state, evaluate_state_legacy

__all__ = ["DETERMINISTIC", "evaluate_rollout", "is_error_result", "task_domains"]

DETERMINISTIC = ("action", "state")
"""The evaluators computed here; judged verdicts may not replace them."""
INSTRUCTION_CHARS = 200


def task_domains(task: AgentTask) -> tuple[str, ...]:
    """The member servers of a task's environment (the server itself when it is
    not fused)."""
    return task.domains or (task.environment,)


def evaluate_rollout(
    task: AgentTask,
    rollout: Rollout,
    *,
    ordered_actions: bool = False,
    judged: Mapping[str, Verdict] | None = None,
) -> EvaluationResult:
    """Score one rollout of one task.

    Evaluators: `action` (every golden call matched by a distinct successful
    agent call with the same tool and arguments, `tasks.core.action_match`),
    `state` (final state hash equals the golden one, `tasks.core.state_match`),
    and any judged verdicts (`nl_assertions`, `subjective` with its 1-5 score
    already normalised to 0..1). The composite, as the original's: `total_score`
    is the product of the scores and `passed` means every evaluator passed;
    skipped verdicts count in neither. A rollout that failed (`success` false)
    fails with its error and scores 0, whatever its verdicts say. `legacy` holds
    the original's `action` (tool-name set) and `environment` (golden changes a
    subset of the agent's, deletions ignored) verdicts, and `legacy_passed`
    combines them with the judged verdicts as the original would have (it did
    not look at `success`).

    A read-only task's golden calls are reads, so an agent that makes no call
    passes its state check (nothing changed) but fails its action check.

    Args:
        task: The validated task the rollout is a trial of.
        rollout: The rollout; its id should be the task's query id.
        ordered_actions: Whether the matched calls must follow the golden order.
        judged: Evaluator name -> verdict of an LLM judge.

    Returns:
        The evaluation result.

    Raises:
        ValueError: If a judged verdict names a deterministic evaluator.
    """
    judged = dict(judged or {})
    clash = sorted(set(judged) & set(DETERMINISTIC))
    if clash:
        raise ValueError(f"judged verdicts may not replace {clash}")
    calls = agent_calls(rollout.messages)
    evaluators = {
        "action": evaluate_actions(task.golden_calls, calls, ordered=ordered_actions),
        "state": evaluate_state(
            task.expected_state_hash,
            task.expected_diff,
            rollout.final_state_hash,
            rollout.final_diff,
        ),
        **judged,
    }
    legacy = {
        "action": evaluate_actions_legacy(task.golden_calls, calls, rollout.tool_names),
        "environment": evaluate_state_legacy(task.expected_diff, rollout.final_diff),
    }
    counted = [v for v in evaluators.values() if not v.skipped]
    judged_pass = all(v.passed for v in judged.values() if not v.skipped)
    error = None
    if not rollout.success:
        kind = rollout.error_kind or "unknown"
        error = rollout.error or f"the rollout failed ({kind})"
    usage = rollout.usage.values()
    return EvaluationResult(
        id=rollout.id,
        trial=rollout.trial,
        environment=task.environment,
        domains=task_domains(task),
        passed=rollout.success and all(v.passed for v in counted),
        total_score=math.prod(v.score for v in counted) if rollout.success else 0.0,
        evaluators=evaluators,
        legacy=legacy,
        legacy_passed=all(v.passed for v in legacy.values()) and judged_pass,
        task_info={
            "instruction": task.instruction[:INSTRUCTION_CHARS],
            "domains": list(task_domains(task)),
            "trajectory_length": len(task.golden_calls),
            "agent_tool_calls": len(calls),
        },
        error=error,
        error_kind=rollout.error_kind if not rollout.success else None,
        turns=rollout.total_turns,
        tokens=sum(u.prompt_tokens + u.completion_tokens for u in usage),
        cost_usd=sum(u.cost_usd for u in usage),
    )
