"""Flow of s14 task templates: a judged user-task template per chosen trajectory.

Input: s08's tool graphs of the servers that passed s09, with their blueprints,
catalogue, table summaries and policies. Output: `task_template` artifacts and a
`task_template_set` per server, exported as `task_templates/<Server>.json` (the
reference shape). A template the judge scores under the threshold and an item
whose writer or judge never validated are failed items (`rejected_by_judge`,
`invalid_output`); a server without a passing build is a `dependency_failed`
item and gets no model call.

s14x (`write_cross_domain_templates`) is the cross-domain pass: the same items
over s11's fused trajectories (agent-facing names), with the s13 merged policy
and the members' tables, exported as `task_templates/<Fused>.json` with steps in
the reference's `Server.tool` form.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from prefect import flow

from schemas.agent_task import TaskTemplateSet
from schemas.artifact import Artifact, FailedItem
from schemas.report import StepReport
from schemas.run import RunRef
from tasks import cross_template_plan as cross_plan
from tasks import template_plan as plan
from tasks.core.task_templates import task_templates_export
from tasks.core.trajectory_fusion import cross_domain_templates_export
from tasks.step_run import StepRun
from tasks.store.paths import task_templates_relpath


@flow(name="s14-task-templates", validate_parameters=False)
def write_task_templates(run: RunRef) -> StepReport:
    """Write and judge a template for each chosen trajectory of each server."""
    step = StepRun("s14", run)
    sources, unbuilt = plan.single_domain_sources(step.store)
    return template_step(
        step,
        sources,
        unbuilt,
        export=lambda s: task_templates_export(s.payload),
        kind="template(s)",
        missing_note=f"{len(unbuilt)} server(s) without a build or graph",
    )


@flow(name="s14x-cross-domain-task-templates", validate_parameters=False)
def write_cross_domain_templates(run: RunRef) -> StepReport:
    """Write and judge a template for each fused trajectory of each combination."""
    step = StepRun("s14x", run)
    sources, unmerged = cross_plan.cross_domain_sources(step.store)
    fused = {s.source.name: s.origin["fused_set"].payload for s in sources}
    return template_step(
        step,
        sources,
        unmerged,
        export=lambda s: cross_domain_templates_export(s.payload, fused[s.id]),
        kind="cross-domain template(s)",
        missing_note=f"{len(unmerged)} combination(s) without a merged policy",
    )


def template_step(
    step: StepRun,
    sources: Sequence[plan.SourceInputs],
    missing: Sequence[FailedItem],
    *,
    export: Callable[[Artifact[TaskTemplateSet]], Any],
    kind: str,
    missing_note: str,
) -> StepReport:
    """s14's work on its sources, s14x's on the fused ones: the template items,
    then each source's collecting item. `missing` are the sources' failures
    found before any item ran; `export` gives a template set's exported file;
    `kind` and `missing_note` word the step's note."""
    step.fail(*missing)
    works = plan.template_items(step, step.config.steps.s14_task_templates, sources)
    outcomes = step.run_items(works)
    collected = step.run_items(plan.collect_items(step, sources, works, outcomes))
    templates = [a for o in outcomes for a in o.artifacts]
    sets = [a for o in collected for a in o.artifacts]
    rejected = sum(
        o.failure is not None and o.failure.reason == "rejected_by_judge"
        for o in outcomes
    )
    return step.finish(
        outputs=[*templates, *sets],
        exports={task_templates_relpath(s.id): (s, export(s)) for s in sets},
        note=f"{len(templates)} of {len(works)} {kind} kept, {rejected} "
        f"rejected by the judge, {missing_note}",
        inputs=len(works),
        produced=len(templates),
    )
