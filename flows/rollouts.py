"""Flow of r01 rollouts: k trials of every checked query.

Input: the queries of s17 and s17x (whichever ran in this output location),
their validated tasks, the policies, and the artifacts each environment is made
of. Output: one `rollout` per (query, trial) and, per environment, a
`rollout_set` exported as `rollouts/<Environment>.jsonl`. A finished rollout is
cached, so a re-run skips it; one cut short (an endpoint or environment failure,
an interrupt) was never stored and restarts from its first message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

from prefect import flow

from schemas.artifact import Artifact, FailedItem, WorkItem
from schemas.config import RolloutConfig
from schemas.database import DataTable
from schemas.report import StepReport
from schemas.rollout import Rollout
from schemas.run import RunRef
from schemas.server import McpServer
from schemas.validated_task import AgentTask, UserQuery
from tasks import inputs
from tasks import rollout_plan as plan
from tasks import rollouts as r01
from tasks.served_environments import EnvironmentBuild, close_served, expect
from tasks.step_run import StepRun
from tasks.store.paths import rollouts_relpath
from tasks.task_filter_plan import environment_inputs


@flow(name="r01-rollouts", validate_parameters=False)
def run_rollouts(run: RunRef) -> StepReport:
    """Converse every query k times; one JSONL of rollouts per environment."""
    step = StepRun("r01", run)
    cfg = step.config.steps.r01_rollouts
    store = step.store
    queries = [
        q
        for name in plan.finished(step, plan.QUERY_STEPS)
        for q in store.load_outputs(name, UserQuery, kind="user_query")
    ]
    tasks = {
        t.id: t
        for name in plan.finished(step, plan.TASK_STEPS)
        for t in store.load_outputs(name, AgentTask, kind="agent_task")
    }
    blueprints = {b.id: b for b in inputs.blueprints(store)}
    catalogue = inputs.entity_catalogue(store)
    tables = store.load_outputs("s06_database_generation", DataTable, kind="data_table")
    servers = {
        s.id: s
        for s in store.load_outputs(
            "s09_mcp_server_implementation", McpServer, kind="mcp_server"
        )
    }

    @cache
    def made_of(environment: str):
        return environment_inputs(
            environment,
            blueprints=blueprints,
            catalogue=catalogue,
            tables=tables,
            servers=servers,
        )

    works = plan.plan_rollouts(
        step, cfg, queries, tasks, plan.policies_by_environment(step), made_of
    )
    # Where rollouts run in this process, the first one launches every
    # environment, so the others boot while the first model calls are in flight.
    expect(_builds(cfg, works, tasks, made_of))
    try:
        outcomes = step.run_items(works)
    finally:
        close_served()
    rollouts = [a for o in outcomes for a in o.artifacts]
    by_env: dict[str, list] = {}
    for rollout in rollouts:
        by_env.setdefault(rollout.payload.environment, []).append(rollout)
    sets = [
        a
        for o in step.run_items(
            [
                step.item(
                    f"set/{environment}",
                    r01.collect_rollouts,
                    inputs={"rollouts": group},
                    params={"environment": environment},
                )
                for environment, group in sorted(by_env.items())
            ]
        )
        for a in o.artifacts
    ]
    return step.finish(
        outputs=[*rollouts, *sets],
        exports={
            rollouts_relpath(s.id): (s, r01.rollouts_jsonl(s.payload.rollouts))
            for s in sets
        },
        note=_note(cfg.trials, len(works), [r.payload for r in rollouts]),
        inputs=len(works),
        produced=len(rollouts),
    )


def _builds(
    cfg: RolloutConfig,
    works: Sequence[WorkItem],
    tasks: Mapping[str, Artifact[AgentTask]],
    made_of: Callable[[str], dict[str, Any] | FailedItem],
) -> list[EnvironmentBuild]:
    """The environments the rollouts run in, in the order they are first
    needed."""
    by_hash = {t.content_hash: t.payload for t in tasks.values()}
    builds: dict[str, EnvironmentBuild] = {}
    for work in works:
        task = by_hash.get(str(work.inputs.get("task")))
        parts = made_of(task.environment) if task is not None else None
        if task is None or not isinstance(parts, dict):
            continue
        build = r01.environment_build(cfg, task, **parts)
        builds.setdefault(build.key, build)
    return list(builds.values())


def _note(trials: int, planned: int, rollouts: list[Rollout]) -> str:
    stopped = sum(r.stop_reason == "user_token" for r in rollouts)
    return (
        f"{len(rollouts)} of {planned} rollout(s) ({planned // trials} quer(ies) x "
        f"{trials} trial(s)); "
        f"{stopped} ended by the user, {len(rollouts) - stopped} at the turn limit"
    )
