"""r02 evaluation: NL assertions per task, and one scored result per rollout.

Input: s16's `agent_task`s (with the golden calls and their results), r01's
`rollout`s, and the environments' policies. Output: a `task_assertions` artifact
per task (the model writes 3-8 checkable assertions from the verified run, once,
cached) and an `evaluation_result` per rollout: actions and final state checked
deterministically (`tasks.core.evaluation`), the NL assertions and the rubric
review judged by the model (`tasks.core.judging`). A judge that never answers
validly gives a failed verdict naming why, so the rollout cannot pass on it and
nothing is lost; a rollout whose environment or endpoint failed never passes.
Side effects: model calls only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from schemas.artifact import Artifact, ItemOutcome, WorkItem
from schemas.config import EvaluationConfig
from schemas.evaluation import (
    AssertionJudgement,
    AssertionsDraft,
    EvaluationResult,
    EvaluationSummary,
    SubjectiveJudgement,
    TaskAssertions,
    Verdict,
)
from schemas.fusion import MergedPolicy
from schemas.policy import PolicyDocument
from schemas.rollout import Rollout
from schemas.validated_task import AgentTask
from tasks.core.evaluation import evaluate_rollout
from tasks.core.judging import (
    assertion_problems,
    assertion_verdict,
    failed_judge,
    subjective_problems,
    subjective_verdict,
    transcript_text,
)
from tasks.core.metrics import summarize
from tasks.items import invalid_output, producer
from tasks.llm.errors import InvalidModelOutput
from tasks.resources import ItemEnv

STEP = "r02"
ASSERTIONS_PROMPT = "evaluation/write_assertions"
JUDGE_ASSERTIONS_PROMPT = "evaluation/judge_assertions"
JUDGE_REVIEW_PROMPT = "evaluation/judge_subjective"


def write_assertions(
    work: WorkItem, env: ItemEnv, *, cfg: EvaluationConfig, task: Artifact[AgentTask]
) -> ItemOutcome:
    """The NL assertions of one validated task, or its typed failure."""
    agent_task = task.payload
    try:
        answer = env.llm.ask(
            ASSERTIONS_PROMPT,
            AssertionsDraft,
            item_key=f"assertions/{work.item_key}",
            max_retries=cfg.judge_attempts,
            environment=agent_task.environment,
            instruction=agent_task.instruction,
            reason_for_call=agent_task.reason_for_call,
            calls=agent_task.golden_calls,
            changes=agent_task.expected_diff.model_dump(mode="json")["tables"],
        )
    except InvalidModelOutput as exc:
        return invalid_output(work, exc)
    artifact = Artifact[TaskAssertions].build(
        kind="task_assertions",
        id=agent_task.combo_id,
        payload=TaskAssertions(
            combo_id=agent_task.combo_id,
            assertions=tuple(a.strip() for a in answer.value.assertions),
        ),
        parents=[task.ref],
        producer=producer(work, prompt=answer.prompt, model_id=answer.model_id),
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(artifact,))


def evaluate(
    work: WorkItem,
    env: ItemEnv,
    *,
    cfg: EvaluationConfig,
    rollout: Rollout,
    task: Artifact[AgentTask],
    assertions: tuple[Artifact[TaskAssertions], ...],
    policy: tuple[Artifact[PolicyDocument], ...],
    merged_policy: tuple[Artifact[MergedPolicy], ...],
) -> ItemOutcome:
    """Score one rollout (read from a rollouts file, so it may come from the
    user's own harness): the enabled judges, then the deterministic checks."""
    judged: dict[str, Verdict] = {}
    transcript = transcript_text(rollout.messages)
    if cfg.nl_assertions:
        judged["nl_assertions"] = _judge_assertions(
            work, env, cfg, task.payload, assertions, transcript
        )
    if cfg.subjective:
        texts = [p.payload.markdown for p in (*policy, *merged_policy)]
        text = texts[0] if texts else "(no policy)"
        judged["subjective"] = _review(work, env, cfg, text, transcript)
    result = evaluate_rollout(
        task.payload,
        rollout,
        ordered_actions=cfg.ordered_actions,
        judged=judged,
    )
    artifact = Artifact[EvaluationResult].build(
        kind="evaluation_result",
        id=work.item_key,
        payload=result,
        parents=[task.ref, *(a.ref for a in assertions)],
        producer=producer(work, model_id=env.llm.model_id if judged else None),
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(artifact,))


def _judge_assertions(
    work: WorkItem,
    env: ItemEnv,
    cfg: EvaluationConfig,
    task: AgentTask,
    assertions: tuple[Artifact[TaskAssertions], ...],
    transcript: str,
) -> Verdict:
    if not assertions:
        return failed_judge("the task has no NL assertions (their item failed)")
    wanted = list(assertions[0].payload.assertions)
    try:
        answer = env.llm.ask(
            JUDGE_ASSERTIONS_PROMPT,
            AssertionJudgement,
            item_key=f"nl/{work.item_key}",
            check=lambda j: assertion_problems(j, wanted),
            max_retries=cfg.judge_attempts,
            instruction=task.instruction,
            reason_for_call=task.reason_for_call,
            assertions=wanted,
            transcript=transcript,
        )
    except InvalidModelOutput as exc:
        return failed_judge(f"the NL-assertion judge never answered validly: {exc}")
    return assertion_verdict(answer.value)


def _review(
    work: WorkItem, env: ItemEnv, cfg: EvaluationConfig, policy: str, transcript: str
) -> Verdict:
    try:
        answer = env.llm.ask(
            JUDGE_REVIEW_PROMPT,
            SubjectiveJudgement,
            item_key=f"review/{work.item_key}",
            check=subjective_problems,
            max_retries=cfg.judge_attempts,
            policy=policy,
            transcript=transcript,
        )
    except InvalidModelOutput as exc:
        return failed_judge(f"the rubric judge never answered validly: {exc}")
    return subjective_verdict(answer.value)


def summarize_results(
    work: WorkItem,
    env: ItemEnv,
    *,
    results: tuple[Artifact[EvaluationResult], ...],
    skipped: dict[str, int],
) -> ItemOutcome:
    """The run's summary: pass@1, pass^k and pass@k overall, per domain and per
    environment, evaluator counts, failure reasons and skipped inputs."""
    del env
    ordered = sorted(results, key=lambda r: (r.payload.id, r.payload.trial))
    artifact = Artifact[EvaluationSummary].build(
        kind="evaluation_summary",
        id="summary",
        payload=summarize([r.payload for r in ordered], skipped=skipped),
        parents=[r.ref for r in ordered],
        producer=producer(work),
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(artifact,))


def results_jsonl(results: Sequence[EvaluationResult]) -> str:
    """`evaluation/results.jsonl`: one result per line, by query and trial."""
    ordered = sorted(results, key=lambda r: (r.id, r.trial))
    return "".join(
        json.dumps(r.model_dump(mode="json"), ensure_ascii=False) + "\n"
        for r in ordered
    )
