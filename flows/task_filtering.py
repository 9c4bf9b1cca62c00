"""Flow of s16 task filtering: execute every combination, keep what passes.

Input: s15's instance combinations, and per environment the artifacts it is made
of (s04 blueprints, the s02 catalogue, s06 tables, s09 servers). Output: one item
per environment (its combinations run concurrently with other environments'):
`agent_task` artifacts and a `task_filter_report`, exported as
`validated_tasks/<Environment>/validated_combos.json`. Each filtered-out
combination is a failed item of the step with its typed reason; an environment
with a member that was not built is a `dependency_failed` item.
"""

from __future__ import annotations

from prefect import flow

from schemas.database import DataTable
from schemas.report import StepReport
from schemas.run import RunRef
from schemas.server import McpServer
from schemas.validated_task import AgentTask, InstanceCombination
from tasks import inputs
from tasks import task_filter_plan as plan
from tasks.core.validated_tasks import first_per_trajectory, validated_combos_export
from tasks.step_run import StepRun
from tasks.store.paths import validated_tasks_relpath


@flow(name="s16-task-filtering", validate_parameters=False)
def filter_tasks(run: RunRef) -> StepReport:
    """Run every combination's golden trajectory in its environment."""
    return filter_step(StepRun("s16", run), "s15_instance_combinations")


def filter_step(step: StepRun, source: str) -> StepReport:
    """s16's work on the combinations of step `source`: s16 on s15's, s16x
    (the cross-domain pass, each session started from its combination's
    overlay) on s15x's; same config, same exports under each environment's
    name."""
    cfg = step.config.steps.s16_task_filtering
    combos = step.store.load_outputs(
        source, InstanceCombination, kind="instance_combination"
    )
    chosen = {
        c.combo_id
        for c in first_per_trajectory(
            [a.payload for a in combos], cfg.max_combos_per_trajectory
        )
    }
    works = plan.plan_environments(
        step,
        cfg,
        [a for a in combos if a.payload.combo_id in chosen],
        blueprints={b.id: b for b in inputs.blueprints(step.store)},
        catalogue=inputs.entity_catalogue(step.store),
        tables=step.store.load_outputs(
            "s06_database_generation", DataTable, kind="data_table"
        ),
        servers={
            s.id: s
            for s in step.store.load_outputs(
                "s09_mcp_server_implementation", McpServer, kind="mcp_server"
            )
        },
    )
    outcomes = step.run_items(works)
    made = [a for o in outcomes for a in o.artifacts]
    tasks = [a for a in made if a.kind == "agent_task"]
    reports = [a for a in made if a.kind == "task_filter_report"]
    step.fail(*plan.filtered_failures([r.payload for r in reports], step.info.id))
    by_env: dict[str, list[AgentTask]] = {}
    for task in tasks:
        by_env.setdefault(task.payload.environment, []).append(task.payload)
    return step.finish(
        outputs=made,
        exports={
            validated_tasks_relpath(r.id): (
                r,
                validated_combos_export(by_env.get(r.id, [])),
            )
            for r in reports
            if r.payload.passed
        },
        note=f"{len(tasks)} of {len(chosen)} combination(s) passed execution in "
        f"{len(reports)} environment(s)",
        inputs=len(chosen),
        produced=len(tasks),
    )
