"""Flow of s11 trajectory fusion: cross-domain tasks per server combination.

Input: s10's server combinations, s04's blueprints and s16's validated agent
tasks (single scope). Output: `fused_trajectory` artifacts and a
`fused_trajectory_set` per combination, exported as
`cross_domain_combinations/<Fused>.json` (the reference shape, plus the pruned
tasks with their reasons). The step note counts the pruned tasks. A combination
some of whose members have no validated trajectory is a `dependency_failed`
item and gets no model call.
"""

from __future__ import annotations

from prefect import flow

from schemas.artifact import Artifact
from schemas.fused_trajectory import FusedTrajectorySet
from schemas.fusion import ServerCombination
from schemas.report import StepReport
from schemas.run import RunRef
from schemas.validated_task import AgentTask
from tasks import inputs
from tasks import trajectory_fusion as s11
from tasks.core.trajectory_fusion import fused_trajectories_export
from tasks.step_run import StepRun
from tasks.store.paths import fused_trajectories_relpath


@flow(name="s11-trajectory-fusion", validate_parameters=False)
def fuse_trajectories(run: RunRef) -> StepReport:
    """Fuse validated single-domain trajectories of every chosen combination."""
    step = StepRun("s11", run)
    cfg = step.config.steps.s11_trajectory_fusion
    llm = step.llm(cfg)
    combos = step.store.load_outputs(
        "s10_combination_selection", ServerCombination, kind="server_combination"
    )
    blueprints = {b.payload.server_name: b for b in inputs.blueprints(step.store)}
    tasks = [
        t
        for t in step.store.load_outputs(
            "s16_task_filtering", AgentTask, kind="agent_task"
        )
        if t.payload.scope == "single"
    ]
    works = []
    for combo in combos:
        members = combo.payload.servers
        mine = {s: [t for t in tasks if t.payload.environment == s] for s in members}
        lacking = [s for s in members if not mine[s] or s not in blueprints]
        if lacking:
            step.fail(s11.unvalidated_members_failure(combo.payload.name, lacking))
            continue
        works.append(
            step.item(
                combo.payload.name,
                s11.fuse_trajectories,
                inputs={
                    "combination": combo,
                    "blueprints": [blueprints[s] for s in members],
                    "tasks": [t for s in members for t in mine[s]],
                },
                params={"cfg": cfg},
                llm=llm,
                prompts=[s11.FUSE_PROMPT],
            )
        )
    outcomes = step.run_items(works)
    made = [a for o in outcomes for a in o.artifacts]
    sets: list[Artifact[FusedTrajectorySet]] = [
        a for a in made if a.kind == "fused_trajectory_set"
    ]
    kept = sum(len(s.payload.trajectories) for s in sets)
    pruned = sum(len(s.payload.pruned) for s in sets)
    return step.finish(
        outputs=made,
        exports={
            fused_trajectories_relpath(s.id): (s, fused_trajectories_export(s.payload))
            for s in sets
        },
        note=f"{kept} fused trajectory(ies) kept, {pruned} pruned by the "
        f"feasibility filter (a segment without a validated single-domain task), "
        f"{step.tally.failed} combination(s) failed",
        inputs=len(combos),
        produced=kept,
    )
