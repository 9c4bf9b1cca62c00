"""Flow of s15 instance combinations (single-domain path).

Input: s14's task templates and their servers' s04-s07 artifacts. Output:
`instance_selection` and `instance_combination` artifacts, exported as
`combinations/<Server>/<trajectory_hash>.json` (reference shape),
`sampling_codes/<Server>/<trajectory_hash>.py` (only scripts that found
combinations) and `combinations/_skipped_trajectories.json` (each template that
got none, with its typed reason; written on every run, empty when none failed).
Failed templates are retried in rounds (`tasks.combination_plan.run_rounds`).
"""

from __future__ import annotations

from prefect import flow

from schemas.report import StepReport
from schemas.run import RunRef
from tasks import combination_plan as plan
from tasks.step_run import StepRun
from tasks.store.paths import SKIPPED_TRAJECTORIES_RELPATH


@flow(name="s15-instance-combinations", validate_parameters=False)
def select_instance_combinations(run: RunRef) -> StepReport:
    """Plan and select entity-instance combinations for every template."""
    step = StepRun("s15", run)
    cfg = step.config.steps.s15_instance_combinations
    sources, unready = plan.single_domain_templates(step.store)
    step.fail(*(failure for _, failure in unready))
    rounds = plan.run_rounds(step, cfg, sources) if sources else plan.Rounds()
    outputs = [a for _, o in rounds.succeeded for a in o.artifacts]
    step.store.write_export(
        SKIPPED_TRAJECTORIES_RELPATH, plan.skipped_trajectories(rounds, unready)
    )
    combos = len(outputs) - len(rounds.succeeded)
    return step.finish(
        outputs=outputs,
        exports=plan.template_exports(rounds),
        note=f"{combos} combination(s) for {len(rounds.succeeded)} of "
        f"{len(sources)} template(s) in {len(rounds.failed_per_round)} round(s); "
        f"{len(rounds.failed)} skipped, {len(unready)} without inputs",
        inputs=len(sources) + len(unready),
        produced=len(rounds.succeeded),
    )
