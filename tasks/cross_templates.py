"""s14x cross-domain task templates: one judged template per fused trajectory.

Input: an s11 `fused_trajectory` (its trajectory in agent-facing names,
`Server__tool`, and the user's motivation), the combination's s13
`merged_policy`, the members' s04 `blueprint`s, the s02 `entity_catalogue` and
the members' s06 `table_summary`s. Output: a `task_template` artifact per kept
template (`source` the fused name, `domains` the members, `is_cross_domain`
true, the trajectory in agent-facing names because later steps execute it) and
a `task_template_set` per combination. The writer sees the merged policy
filtered to the trajectory's tools and the members' tables; its draft is checked
and re-asked like s14's, and the judge scores it like s14's (one call), both by
s14's `judged_template`. Side effects: model calls only.
"""

from __future__ import annotations

from schemas.agent_task import TaskTemplate, TemplateStats
from schemas.artifact import Artifact, FailedItem, ItemOutcome, WorkItem
from schemas.blueprint import ServerBlueprint
from schemas.config import TemplateConfig
from schemas.database import TableSummary
from schemas.entity import EntityCatalogue
from schemas.fused_trajectory import FusedTrajectory, FusedTrajectorySet
from schemas.fusion import MergedPolicy
from schemas.policy import SchemaTable
from tasks import task_templates as s14
from tasks.core.policy import filter_policy
from tasks.core.policy_rules import schema_tables
from tasks.core.server_tables import select_owned
from tasks.items import dependency_failed
from tasks.resources import ItemEnv

STEP = "s14x"
WRITE_PROMPT = "s14x/write_template"
PROMPTS = (WRITE_PROMPT, s14.JUDGE_PROMPT)


def missing_policy_failure(fused: str) -> FailedItem:
    """The failure of a combination without a merged policy (no model call)."""
    return dependency_failed(
        STEP,
        fused,
        f"s13 produced no merged policy for {fused}, so its fused trajectories "
        "get no task templates",
    )


def member_tables(
    blueprints: tuple[Artifact[ServerBlueprint], ...],
    catalogue: EntityCatalogue,
    summaries: tuple[Artifact[TableSummary], ...],
) -> tuple[SchemaTable, ...]:
    """The members' schema tables, each name once (the shared core entity and a
    shared peripheral entity are one table of the catalogue)."""
    tables: dict[str, SchemaTable] = {}
    for blueprint in blueprints:
        present, _ = select_owned(blueprint.payload, summaries)
        for table in schema_tables(
            blueprint.payload, catalogue, [s.payload for s in present]
        ):
            tables.setdefault(table.name, table)
    return tuple(tables.values())


def write_cross_domain_template(
    work: WorkItem,
    env: ItemEnv,
    *,
    cfg: TemplateConfig,
    source: str,
    domains: list[str],
    trajectory: list[str],
    fused: Artifact[FusedTrajectory],
    merged_policy: Artifact[MergedPolicy],
    blueprints: tuple[Artifact[ServerBlueprint], ...],
    catalogue: Artifact[EntityCatalogue],
    summaries: tuple[Artifact[TableSummary], ...],
) -> ItemOutcome:
    """The judged template of one fused trajectory, or why there is none."""
    tables = member_tables(blueprints, catalogue.payload, summaries)
    merged = merged_policy.payload
    functions = {
        b.payload.server_name: {f.name: f for f in b.payload.functions}
        for b in blueprints
    }
    named = {}
    for name in dict.fromkeys(trajectory):
        server, tool = merged.tool_names[name]
        named[name] = functions[server][tool]
    return s14.judged_template(
        work,
        env,
        cfg,
        prompt_id=WRITE_PROMPT,
        source=source,
        domains=domains,
        trajectory=trajectory,
        tables=tables,
        parents=[fused, merged_policy, *blueprints, catalogue, *summaries],
        servers=domains,
        motivation=fused.payload.motivation,
        functions=named,
        policy=filter_policy(merged.parsed, trajectory),
    )


def collect_cross_domain_templates(
    work: WorkItem,
    env: ItemEnv,
    *,
    source: str,
    domains: list[str],
    stats: TemplateStats,
    fused_set: Artifact[FusedTrajectorySet],
    templates: tuple[Artifact[TaskTemplate], ...],
) -> ItemOutcome:
    """The template file of one combination: its kept templates and counts."""
    return s14.template_set(work, source, domains, stats, fused_set, templates)
