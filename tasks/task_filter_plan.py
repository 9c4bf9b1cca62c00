"""Planning s16: one work item per environment, and the step's failed items.

Input: the chosen s15 combinations and the artifacts environments are made of.
Output: the work items of `tasks.task_filtering.validate_combinations` (one per
environment, with every artifact it reads), `dependency_failed` items for
environments that cannot be served, and one failed item per combination a
report filtered out. No side effects beyond recording failures on the step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from schemas.artifact import Artifact, FailedItem, WorkItem
from schemas.blueprint import ServerBlueprint
from schemas.config import TaskFilterConfig
from schemas.database import DataTable
from schemas.entity import EntityCatalogue
from schemas.fusion import members
from schemas.server import McpServer
from schemas.validated_task import InstanceCombination, TaskFilterReport
from tasks import task_filtering as s16
from tasks.core.server_tables import select_owned
from tasks.items import dependency_failed
from tasks.step_run import StepRun


def plan_environments(
    step: StepRun,
    cfg: TaskFilterConfig,
    combos: Sequence[Artifact[InstanceCombination]],
    *,
    blueprints: Mapping[str, Artifact[ServerBlueprint]],
    catalogue: Artifact[EntityCatalogue],
    tables: Sequence[Artifact[DataTable]],
    servers: Mapping[str, Artifact[McpServer]],
) -> list[WorkItem]:
    """One work item per environment with its combinations and every artifact
    it is made of; an environment with a member that has no blueprint, built
    server or data is recorded as `dependency_failed` instead."""
    grouped: dict[str, list[Artifact[InstanceCombination]]] = {}
    for combo in combos:
        grouped.setdefault(combo.payload.environment, []).append(combo)
    works = []
    for name, group in sorted(grouped.items()):
        made_of = environment_inputs(
            name,
            blueprints=blueprints,
            catalogue=catalogue,
            tables=tables,
            servers=servers,
        )
        if isinstance(made_of, FailedItem):
            step.fail(made_of.model_copy(update={"step": step.info.id}))
            continue
        works.append(
            step.item(
                name,
                s16.validate_combinations,
                inputs={"combinations": group, **made_of},
                params={
                    "cfg": cfg,
                    "simulation_time": step.config.run.simulation_time,
                    "seed": step.config.run.seed,
                    "environment": name,
                },
            )
        )
    return works


def environment_inputs(
    name: str,
    *,
    blueprints: Mapping[str, Artifact[ServerBlueprint]],
    catalogue: Artifact[EntityCatalogue],
    tables: Sequence[Artifact[DataTable]],
    servers: Mapping[str, Artifact[McpServer]],
) -> dict[str, Any] | FailedItem:
    """The artifacts an environment (a server or a fused combination) is made
    of, as work-item inputs (`blueprints`, `catalogue`, `tables`, `servers`;
    see `tasks.environment_build`), or a `dependency_failed` item naming every
    member without a blueprint, built server or data table."""
    servers_of = members(name)
    lacking = [s for s in servers_of if s not in blueprints or s not in servers]
    picked: dict[str, Artifact[DataTable]] = {}
    for server in servers_of:
        if server in blueprints:
            present, absent = select_owned(blueprints[server].payload, tables)
            picked |= {t.id: t for t in present}
            lacking += [f"{server} table {t}" for t in absent]
    if lacking:
        return dependency_failed(
            s16.STEP,
            name,
            f"{name} cannot be served: no build or data for {', '.join(lacking)}",
        )
    return {
        "blueprints": [blueprints[s] for s in servers_of],
        "catalogue": catalogue,
        "tables": sorted(picked.values(), key=lambda t: t.id),
        "servers": [servers[s] for s in servers_of],
    }


def filtered_failures(
    reports: Sequence[TaskFilterReport], step: str = s16.STEP
) -> list[FailedItem]:
    """Each filtered-out combination as a failed item of the step (s16, or
    s16x for the cross-domain pass), typed."""
    return [
        FailedItem(
            step=step,
            item_key=f"{report.environment}/{r.combo_id}",
            reason="validation_failed",
            message=f"golden trajectory failed ({r.failure}): {r.message}",
        )
        for report in reports
        for r in report.results
        if not r.passed
    ]
