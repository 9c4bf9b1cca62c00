"""Flows of the cross-domain pass over the task steps: s15x, s16x and s17x.

Input: s14x's cross-domain templates (fused name as source, trajectory in
agent-facing `Server__tool` names), the members' s02-s09 artifacts and s13's
merged policies. s15x creates each template's records as per-combination
overlays (`tasks.cross_instance_combinations`) in rounds like s15 and keeps only
combinations that executed; s16x runs them again as s16 does, each session
started from its overlay; s17x writes their queries as s17 does. Output:
`combinations/<Fused>/<hash>.json`, `sampling_codes/<Fused>_creation/<hash>.py`,
`combinations/_skipped_cross_domain_trajectories.json`,
`validated_tasks/<Fused>/validated_combos.json` and `queries/<Fused>.jsonl`.
"""

from __future__ import annotations

from prefect import flow

from flows.query_generation import query_step
from flows.task_filtering import filter_step
from schemas.report import StepReport
from schemas.run import RunRef
from tasks import combination_plan as plan
from tasks import cross_combination_plan as cross
from tasks.step_run import StepRun
from tasks.store.paths import SKIPPED_CROSS_TRAJECTORIES_RELPATH, creation_code_relpath


@flow(name="s15x-cross-domain-instance-combinations", validate_parameters=False)
def create_cross_domain_combinations(run: RunRef) -> StepReport:
    """Create, execute and keep combinations for every cross-domain template."""
    step = StepRun("s15x", run)
    cfg = step.config.steps.s15_instance_combinations
    sources, unready = cross.cross_domain_templates(step.store)
    step.fail(*(failure for _, failure in unready))
    rounds = (
        plan.run_rounds(step, cfg, sources, cross.creation_item)
        if sources
        else plan.Rounds()
    )
    outputs = [a for _, o in rounds.succeeded for a in o.artifacts]
    step.store.write_export(
        SKIPPED_CROSS_TRAJECTORIES_RELPATH, plan.skipped_trajectories(rounds, unready)
    )
    combos = len(outputs) - len(rounds.succeeded)
    return step.finish(
        outputs=outputs,
        exports=plan.template_exports(rounds, creation_code_relpath),
        note=f"{combos} executed combination(s) for {len(rounds.succeeded)} of "
        f"{len(sources)} cross-domain template(s) in "
        f"{len(rounds.failed_per_round)} round(s); {len(rounds.failed)} skipped, "
        f"{len(unready)} without inputs",
        inputs=len(sources) + len(unready),
        produced=len(rounds.succeeded),
    )


@flow(name="s16x-cross-domain-task-filtering", validate_parameters=False)
def filter_cross_domain_tasks(run: RunRef) -> StepReport:
    """Run every cross-domain combination's golden trajectory, with its overlay."""
    return filter_step(StepRun("s16x", run), "s15x_cross_domain_instance_combinations")


@flow(name="s17x-cross-domain-query-generation", validate_parameters=False)
def generate_cross_domain_queries(run: RunRef) -> StepReport:
    """Write a user query for every validated cross-domain task."""
    return query_step(StepRun("s17x", run), "s16x_cross_domain_task_filtering")
