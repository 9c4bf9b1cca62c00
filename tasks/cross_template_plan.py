"""s14x planning: the cross-domain sources of trajectories.

Input: the run's store (s11 fused trajectories and their sets, s13 merged
policies, s04 blueprints, s02 catalogue, s06 summaries). Output: one
`SourceInputs` per combination with fused trajectories and a merged policy
(each trajectory's item also reads its own `fused_trajectory`), and the
`dependency_failed` items of combinations without a merged policy. The items
are then planned by `tasks.template_plan`. No side effects beyond reading the
store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from schemas.artifact import Artifact, FailedItem
from schemas.blueprint import ServerBlueprint
from schemas.database import TableSummary
from schemas.fused_trajectory import FusedTrajectory, FusedTrajectorySet
from schemas.fusion import MergedPolicy
from tasks import cross_templates as s14x
from tasks import inputs
from tasks import task_templates as s14
from tasks.core.server_tables import select_owned
from tasks.store.artifacts import ArtifactStore
from tasks.template_plan import SourceInputs

FUSION_STEP = "s11_trajectory_fusion"


def cross_domain_sources(
    store: ArtifactStore,
) -> tuple[list[SourceInputs], list[FailedItem]]:
    """One source per combination whose s11 kept a fused trajectory."""
    sets = store.load_outputs(
        FUSION_STEP, FusedTrajectorySet, kind="fused_trajectory_set"
    )
    fused = store.load_outputs(FUSION_STEP, FusedTrajectory, kind="fused_trajectory")
    merged = {
        m.id: m
        for m in store.load_outputs(
            "s13_policy_merge", MergedPolicy, kind="merged_policy"
        )
    }
    blueprints = {b.payload.server_name: b for b in inputs.blueprints(store)}
    summaries = store.load_outputs(
        "s06_database_generation", TableSummary, kind="table_summary"
    )
    catalogue = inputs.entity_catalogue(store)
    found, missing = [], []
    for fused_set in sets:
        combo = fused_set.payload.combination
        mine = [f for f in fused if f.payload.combination == combo.name]
        if not mine:
            continue
        if combo.name not in merged:
            missing.append(s14x.missing_policy_failure(combo.name))
            continue
        source = s14.TemplateSource(
            name=combo.name,
            trajectories=tuple(f.payload.trajectory for f in mine),
            domains=combo.servers,
        )
        found.append(
            SourceInputs(
                source,
                {"fused_set": fused_set},
                {
                    "merged_policy": merged[combo.name],
                    "blueprints": [blueprints[s] for s in combo.servers],
                    "catalogue": catalogue,
                    "summaries": summaries_of(summaries, combo.servers, blueprints),
                },
                per_trajectory={f.payload.trajectory: {"fused": f} for f in mine},
                writer=s14x.write_cross_domain_template,
                collector=s14x.collect_cross_domain_templates,
            )
        )
    return found, missing


def summaries_of(
    summaries: Sequence[Artifact[TableSummary]],
    servers: Sequence[str],
    blueprints: Mapping[str, Artifact[ServerBlueprint]],
) -> list[Artifact[TableSummary]]:
    """The summaries of the members' tables, each once, in member order."""
    picked: dict[str, Artifact[TableSummary]] = {}
    for server in servers:
        present, _ = select_owned(blueprints[server].payload, summaries)
        for summary in present:
            picked.setdefault(summary.id, summary)
    return list(picked.values())
