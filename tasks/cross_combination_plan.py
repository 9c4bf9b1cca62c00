"""s15x planning: the cross-domain templates to create combinations for, and
their items.

Input: the run's store (s14x cross-domain templates; the members' s04
blueprints, s02 catalogue, s06 tables, s09 servers, and s13's merged policy of
the fused environment). Output: one `TemplateInputs` per template whose fused
environment has every input (the others as `dependency_failed` items with
their template), and `creation_item`, the item builder `run_rounds` uses for
s15x (rounds, convergence and attempts as s15's, from `InstanceConfig`). No
side effects beyond reading the store.
"""

from __future__ import annotations

from schemas.agent_task import TaskTemplate
from schemas.artifact import Artifact, FailedItem
from schemas.database import DataTable
from schemas.fusion import MergedPolicy, members
from tasks import cross_instance_combinations as s15x
from tasks import inputs
from tasks.combination_plan import RoundItem, TemplateInputs, unready_template
from tasks.core.server_tables import select_owned
from tasks.store.artifacts import ArtifactStore

CROSS_TEMPLATE_STEP = "s14x_cross_domain_task_templates"


def cross_domain_templates(
    store: ArtifactStore,
) -> tuple[list[TemplateInputs], list[tuple[Artifact[TaskTemplate], FailedItem]]]:
    """Every cross-domain template with its fused environment's inputs; a
    template whose environment lacks one is a `dependency_failed` item."""
    templates = store.load_outputs(
        CROSS_TEMPLATE_STEP, TaskTemplate, kind="task_template"
    )
    blueprints = {b.payload.server_name: b for b in inputs.blueprints(store)}
    servers = inputs.servers_by_name(store)
    policies = {
        p.payload.fused_name: p
        for p in store.load_outputs(
            "s13_policy_merge", MergedPolicy, kind="merged_policy"
        )
    }
    tables = store.load_outputs("s06_database_generation", DataTable, kind="data_table")
    catalogue = inputs.entity_catalogue(store)
    found, missing = [], []
    for template in templates:
        tmpl = template.payload
        if not tmpl.is_cross_domain:
            continue
        fused = tmpl.source
        lacking = [f"a blueprint of {s}" for s in members(fused) if s not in blueprints]
        lacking += [f"a build of {s}" for s in members(fused) if s not in servers]
        if fused not in policies:
            lacking.append("a merged policy")
        picked: dict[str, Artifact[DataTable]] = {}
        for server in members(fused):
            if server in blueprints:
                present, absent = select_owned(blueprints[server].payload, tables)
                picked |= {t.id: t for t in present}
                lacking += [f"{server} table {t}" for t in absent]
        if lacking:
            missing.append(unready_template(s15x.STEP, template, lacking))
            continue
        found.append(
            TemplateInputs(
                template,
                {
                    "blueprints": [blueprints[s] for s in members(fused)],
                    "catalogue": catalogue,
                    "tables": sorted(picked.values(), key=lambda t: t.id),
                    "servers": [servers[s] for s in members(fused)],
                    "policy": policies[fused],
                },
            )
        )
    return found, missing


creation_item = RoundItem(
    s15x.create_instance_combinations, s15x.PLAN_MODEL, s15x.PROMPTS
)
"""The s15x item of one cross-domain template in one round."""
