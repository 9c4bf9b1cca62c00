"""Planning r01 and r02: the work items of rollouts and of their evaluation.

Input: the checked queries (s17, s17x), the validated tasks (s16, s16x) they
came from, the environments' policies (s07, s13) and the artifacts each
environment is made of. Output: one rollout item per (query, trial) with every
artifact it reads (so an edit to any of them re-runs exactly its rollouts), one
assertions item per task and one evaluation item per rollout; a query whose
task or environment is missing is a `dependency_failed` item. No side effects
beyond recording failures on the step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from schemas.artifact import Artifact, FailedItem, WorkItem
from schemas.config import EvaluationConfig, RolloutConfig, StepModel
from schemas.fusion import MergedPolicy
from schemas.policy import PolicyDocument
from schemas.rollout import Rollout
from schemas.validated_task import AgentTask, UserQuery
from tasks import evaluation as r02
from tasks import rollouts as r01
from tasks.items import LLMChoice, dependency_failed
from tasks.step_run import StepRun

TASK_STEPS = ("s16_task_filtering", "s16x_cross_domain_task_filtering")
QUERY_STEPS = ("s17_query_generation", "s17x_cross_domain_query_generation")


def finished(step: StepRun, names: Sequence[str]) -> list[str]:
    """The steps among `names` that have outputs in this output location."""
    return [n for n in names if step.store.read_manifest(n) is not None]


def policies_by_environment(step: StepRun) -> dict[str, dict[str, Any]]:
    """Each environment's policy as item inputs (`policy` for a single server,
    `merged_policy` for a fused one; the other empty)."""
    found: dict[str, dict[str, Any]] = {}
    if finished(step, ["s07_policy_generation"]):
        for p in step.store.load_outputs(
            "s07_policy_generation", PolicyDocument, kind="policy"
        ):
            found[p.id] = {"policy": [p], "merged_policy": []}
    if finished(step, ["s13_policy_merge"]):
        for m in step.store.load_outputs(
            "s13_policy_merge", MergedPolicy, kind="merged_policy"
        ):
            found[m.id] = {"policy": [], "merged_policy": [m]}
    return found


def agent_models(step: StepRun, cfg: RolloutConfig) -> dict[str, LLMChoice]:
    """The models a rollout talks to: the assistant's and the simulated user's,
    only where a model (not a built-in agent) plays the part."""
    models: dict[str, LLMChoice] = {}
    if cfg.assistant == "model":
        models["assistant"] = step.llm(
            StepModel(role=cfg.assistant_role, model=cfg.assistant_model)
        )
    if cfg.user == "model":
        models["user"] = step.llm(StepModel(role=cfg.user_role, model=cfg.user_model))
    return models


def plan_rollouts(
    step: StepRun,
    cfg: RolloutConfig,
    queries: Sequence[Artifact[UserQuery]],
    tasks: Mapping[str, Artifact[AgentTask]],
    policies: Mapping[str, dict[str, Any]],
    made_of: Callable[[str], dict[str, Any] | FailedItem],
) -> list[WorkItem]:
    """One item per (query, trial), queries in id order."""
    chosen = sorted(queries, key=lambda q: q.payload.id)
    if cfg.environments:
        chosen = [q for q in chosen if q.payload.environment in cfg.environments]
    if cfg.max_queries is not None:
        chosen = chosen[: cfg.max_queries]
    models = agent_models(step, cfg)
    works: list[WorkItem] = []
    for query in chosen:
        environment = query.payload.environment
        task = tasks.get(query.payload.lineage.id)
        inputs = made_of(environment)
        if task is None or isinstance(inputs, FailedItem):
            why = (
                f"no validated task {query.payload.lineage.id}"
                if task is None
                else inputs.message
            )
            step.fail(dependency_failed(step.info.id, query.payload.id, why))
            continue
        for trial in range(cfg.trials):
            works.append(
                step.item(
                    rollout_key(query.payload.id, trial),
                    r01.converse_rollout,
                    inputs={
                        "query": query,
                        "task": task,
                        **policies.get(environment, _NO_POLICY),
                        **inputs,
                    },
                    params={"cfg": cfg, "trial": trial},
                    models=models,
                    prompts=[r01.USER_PROMPT, r01.ASSISTANT_PROMPT],
                )
            )
    return works


_NO_POLICY: dict[str, Any] = {"policy": [], "merged_policy": []}


def rollout_key(query_id: str, trial: int) -> str:
    """The item key of one rollout (and of its evaluation)."""
    return f"{query_id}/trial-{trial}"


def plan_assertions(
    step: StepRun, cfg: EvaluationConfig, tasks: Sequence[Artifact[AgentTask]]
) -> list[WorkItem]:
    """One NL-assertions item per task that has rollouts to judge."""
    if not cfg.nl_assertions:
        return []
    return [
        step.item(
            task.id,
            r02.write_assertions,
            inputs={"task": task},
            params={"cfg": cfg},
            llm=step.llm(cfg),
            prompts=[r02.ASSERTIONS_PROMPT],
        )
        for task in tasks
    ]


def plan_evaluations(
    step: StepRun,
    cfg: EvaluationConfig,
    rollouts: Sequence[Rollout],
    task_of: Mapping[str, Artifact[AgentTask]],
    assertions: Mapping[str, Artifact[Any]],
    policies: Mapping[str, dict[str, Any]],
) -> list[WorkItem]:
    """One item per rollout whose query is known; the rollout itself is a
    parameter (it may come from the user's own harness, not only from r01)."""
    works: list[WorkItem] = []
    for rollout in rollouts:
        task = task_of[rollout.id]
        found = assertions.get(task.id)
        works.append(
            step.item(
                rollout_key(rollout.id, rollout.trial),
                r02.evaluate,
                inputs={
                    "task": task,
                    "assertions": [found] if found is not None else [],
                    **policies.get(rollout.environment, _NO_POLICY),
                },
                params={"cfg": cfg, "rollout": rollout},
                llm=step.llm(cfg),
                prompts=[r02.JUDGE_ASSERTIONS_PROMPT, r02.JUDGE_REVIEW_PROMPT],
            )
        )
    return works
